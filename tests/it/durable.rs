//! Issue 17's remaining durability and limit cases, each against the real service: a peer
//! address over `--max-calls-per-peer` is refused with the limit named; a store that cannot
//! write keeps the ended call spooled, says so in the log and /metrics and stores it once the
//! database is back; a full disk under the spool and the database acknowledges nothing as
//! stored that is not, says why, and does not panic.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use attune_core::cues::CueRules;
use attune_qa::store::{CallQuery, Store};
use attune_service::hub::{CallFilter, Hub};
use attune_service::ingest::IngestConfig;
use attune_service::ingest::clients::{StereoCall, stream_twilio};
use attune_service::metrics::ServiceMetrics;
use attune_service::server::{ServerConfig, Service};
use attune_service::session::SessionLimits;

use crate::util::{attune, run_ok, synthetic_voice, temp_dir, write_wav_i16};

/// Waits up to `limit` for `done`, panicking with `what` (and `context()`) past it.
fn wait_until(
    limit: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut done: impl FnMut() -> bool,
) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}: {}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// --- --max-calls-per-peer -----------------------------------------------------------------

struct PeerServer {
    http: std::net::SocketAddr,
    hub: Arc<Hub>,
    metrics: Arc<ServiceMetrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_peer_limited(max_calls_per_peer: usize) -> PeerServer {
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let config = ServerConfig {
        max_calls: 50,
        analysis_threads: 2,
        session: attune_service::grpc::SessionConfig {
            limits: SessionLimits {
                max_calls_per_peer,
                ..SessionLimits::default()
            },
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let model = Arc::new(attune_qa::files::model_or_embedded(None).unwrap());
    let service = Service::new(config, CueRules::default(), model).unwrap();
    let (hub, metrics) = (service.hub.clone(), service.metrics.clone());
    let app = attune_service::http::router(service.app_state())
        .merge(service.ingest_routes(Arc::new(IngestConfig::default())));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        service
            .serve(grpc, http, app, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    PeerServer {
        http: http_addr,
        hub,
        metrics,
        stop: Some(stop),
        task,
    }
}

fn tone_call(call_id: &str, seconds: f64) -> StereoCall {
    StereoCall {
        call_id: call_id.into(),
        agent_id: "alice".into(),
        team: "billing".into(),
        caller: synthetic_voice(8000, seconds, 120.0, 0.25, true),
        agent: synthetic_voice(8000, seconds, 210.0, 0.3, true),
    }
}

/// Issue 17: telephony calls from one address are capped; the one over the cap is closed
/// with 1008 naming the limit, counted in /metrics, and the address may call again once its
/// calls end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_call_limit_is_refused_with_the_limit_named() {
    let server = start_peer_limited(2).await;
    let url = format!("ws://{}", server.http);
    let live: Vec<_> = (0..2)
        .map(|i| {
            let (url, call) = (url.clone(), tone_call(&format!("CA-peer-{i}"), 3.0));
            tokio::spawn(async move { stream_twilio(&url, &call, 1.0, None).await })
        })
        .collect();
    let began = Instant::now();
    while server.hub.live_calls(&CallFilter::default()).len() < 2 {
        assert!(began.elapsed() < Duration::from_secs(5), "two calls start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let third = stream_twilio(&url, &tone_call("CA-peer-2", 1.0), 4.0, None)
        .await
        .expect("the third stream connects");
    let (code, reason) = third.close.expect("the third call is closed");
    assert_eq!(code, 1008, "{reason}");
    assert_eq!(
        reason,
        "too many live calls for peer 127.0.0.1: the limit per peer is 2 (--max-calls-per-peer)"
    );
    assert_eq!(
        server
            .metrics
            .calls_refused_peer
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(
        server
            .hub
            .live_calls(&CallFilter {
                call_id: Some("CA-peer-2".into()),
                ..CallFilter::default()
            })
            .is_empty(),
        "the refused call never went live"
    );
    for call in live {
        let report = call.await.unwrap().unwrap();
        assert_eq!(report.close.map(|c| c.0), Some(1000));
    }
    // Its calls ended: the address may call again.
    let again = stream_twilio(&url, &tone_call("CA-peer-3", 1.0), 4.0, None)
        .await
        .unwrap();
    assert_eq!(
        again.close.as_ref().map(|c| c.0),
        Some(1000),
        "{:?}",
        again.close
    );
    let _ = server.stop.map(|s| s.send(()));
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("server stops")
        .unwrap();
}

// --- `attune serve` with a store that cannot write ---------------------------------------

/// `attune serve` on a SQLite file, its log collected as it comes.
struct Served {
    child: Child,
    grpc: String,
    metrics: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(db: &str, extra: &[&str]) -> Self {
        let mut child = attune()
            .args(["serve", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(["--metrics-http", "127.0.0.1:0", "--db", db])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run attune serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let (mut grpc, mut metrics) = (None, None);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("gRPC on ").nth(1) {
                    grpc = rest.split(',').next().map(|s| s.trim().to_owned());
                }
                if let Some(rest) = line.split("/metrics without authentication on ").nth(1) {
                    metrics = Some(rest.trim().to_owned());
                }
                sink.lock().unwrap().push(line);
                if let (Some(g), Some(m)) = (&grpc, &metrics) {
                    let _ = addrs_tx.send((g.clone(), m.clone()));
                }
            }
        });
        let (grpc, metrics) = addrs_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve prints its addresses: {:?}", log.lock().unwrap()));
        Self {
            child,
            grpc,
            metrics,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn metric(&self, name: &str) -> f64 {
        let mut stream = std::net::TcpStream::connect(&self.metrics).expect("metrics address");
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
            .parse()
            .unwrap()
    }

    /// Streams `file` as call `id` at 4x real time; whether the call ended without an error.
    fn replay(&self, token: &str, file: &Path, id: &str) -> bool {
        attune()
            .arg("replay")
            .arg(file)
            .args([
                "--server",
                &format!("http://{}", self.grpc),
                "--token",
                token,
            ])
            .args(["--call-id", id, "--agent-id", "a1", "--team", "t1"])
            .args(["--speed", "4", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run attune replay")
            .success()
    }

    /// SIGTERM; the exit status and the whole log.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("serve did not stop within 60 s of SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The log thread ends with the pipe.
        std::thread::sleep(Duration::from_millis(200));
        (status, self.log())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn ingest_token(db: &str) -> String {
    run_ok(&[
        "tokens", "create", "--role", "ingest", "--teams", "*", "--db", db,
    ])
    .trim()
    .to_owned()
}

fn short_call(dir: &Path) -> PathBuf {
    let path = dir.join("short.wav");
    write_wav_i16(
        &path,
        8000,
        &[
            synthetic_voice(8000, 2.0, 120.0, 0.25, true),
            synthetic_voice(8000, 2.0, 210.0, 0.3, true),
        ],
    );
    path
}

fn spooled_files(spool: &Path) -> usize {
    std::fs::read_dir(spool).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".call.json"))
            .count()
    })
}

fn stored_ids(db: &str) -> Vec<String> {
    let mut ids: Vec<String> = Store::open(db)
        .unwrap()
        .calls(&CallQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.call_id)
        .collect();
    ids.sort();
    ids
}

/// The database locked past the retry window (`--store-retry-s 1`, so the test takes seconds,
/// not the default 120 s; SQLite's own 5 s busy wait is longer than that window here): the ended call stays spooled, /metrics and the log say so, it is
/// tried again every `--store-retry-every-s` and stored exactly once when the lock goes.
#[cfg(unix)]
#[test]
fn a_store_that_cannot_write_keeps_the_call_spooled_and_stores_it_once_back() {
    let dir = temp_dir("durable-store-down");
    let db_path = dir.join("attune.db");
    let db = db_path.to_str().unwrap();
    let spool = dir.join("attune.db.spool");
    let token = ingest_token(db);
    let call = short_call(&dir);
    let server = Served::start(
        db,
        &["--store-retry-s", "1", "--store-retry-every-s", "0.3"],
    );
    assert!(server.replay(&token, &call, "before"));
    wait_until(
        Duration::from_secs(20),
        "`before` stored",
        || server.log(),
        || server.metric("attune_calls_stored_total") == 1.0,
    );

    let mut holder = Store::open(db).unwrap();
    holder.hold_write_lock_for_tests().unwrap();
    let locked_at = Instant::now();
    assert!(
        server.replay(&token, &call, "stuck-1"),
        "the call itself ends normally"
    );
    wait_until(
        Duration::from_secs(20),
        "the log saying stuck-1 stays spooled",
        || server.log(),
        || server.log().contains("live call stuck-1 is not stored yet"),
    );
    // Past the window, not before it.
    assert!(locked_at.elapsed() >= Duration::from_secs(1));
    let log = server.log();
    assert!(log.contains("it stays spooled in"), "{log}");
    assert!(log.contains("tried again every 0.3 s"), "{log}");
    // Several retry periods later it is still spooled, counted, and not stored.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.metric("attune_store_spooled_calls"), 1.0);
    assert_eq!(spooled_files(&spool), 1);
    assert_eq!(server.metric("attune_calls_stored_total"), 1.0);
    assert_eq!(server.metric("attune_store_errors_total"), 0.0);
    assert!(
        !server.log().contains("spooled calls stored"),
        "{}",
        server.log()
    );

    // The database back: stored once, the spool empty.
    drop(holder);
    wait_until(
        Duration::from_secs(20),
        "stuck-1 stored",
        || server.log(),
        || server.metric("attune_calls_stored_total") == 2.0,
    );
    assert_eq!(server.metric("attune_store_spooled_calls"), 0.0);
    assert_eq!(spooled_files(&spool), 0);
    assert!(
        server
            .log()
            .contains("1 spooled calls stored (0 still waiting)")
    );
    let (status, log) = server.stop();
    assert!(status.success(), "{status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(stored_ids(db), ["before", "stuck-1"]);
}

/// A size-limited tmpfs, unmounted when dropped.
struct TinyDisk(PathBuf);

impl TinyDisk {
    /// None (saying why) unless this process may mount (root in the test container).
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self(dir.to_owned())),
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a {size} tmpfs on {} (needs root): {}",
                    dir.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount: {e}");
                None
            }
        }
    }

    /// Fills the disk to the last byte; the filler's path.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0xA5u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                    break;
                }
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The database and its spool on a disk that fills up (a 2 MB tmpfs; skipped, saying so,
/// where the test may not mount one): the call that ends then is never counted as stored
/// unless the database has it, the log names it and the reason, the spool fault is counted,
/// nothing panics, and once there is room again calls are stored as before.
#[cfg(unix)]
#[test]
fn a_full_disk_acknowledges_nothing_as_stored_that_is_not_and_says_why() {
    let dir = temp_dir("durable-full-disk");
    let Some(disk) = TinyDisk::mount(&dir.join("tiny"), "2m") else {
        return;
    };
    let db_path = disk.0.join("attune.db");
    let db = db_path.to_str().unwrap();
    let spool = disk.0.join("attune.db.spool");
    let token = ingest_token(db);
    let call = short_call(&dir);
    let server = Served::start(
        db,
        &["--store-retry-s", "1", "--store-retry-every-s", "0.3"],
    );
    assert!(server.replay(&token, &call, "roomy"));
    wait_until(
        Duration::from_secs(20),
        "`roomy` stored",
        || server.log(),
        || server.metric("attune_calls_stored_total") == 1.0,
    );

    let filler = disk.fill();
    assert!(
        server.replay(&token, &call, "full-1"),
        "the call itself ends normally"
    );
    wait_until(
        Duration::from_secs(20),
        "the log naming full-1 and the spool fault",
        || server.log(),
        || server.log().contains("cannot spool ended call full-1"),
    );
    let log = server.log();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(server.metric("attune_store_spool_errors_total") >= 1.0);
    // Stored (if the database found room in its own pages) or said not to be, never both and
    // never neither, once the retry window is over.
    wait_until(
        Duration::from_secs(20),
        "full-1 stored or given up",
        || server.log(),
        || {
            server.metric("attune_calls_stored_total")
                + server.metric("attune_store_errors_total")
                + server.metric("attune_store_spooled_calls")
                == 2.0
        },
    );
    let stored_while_full = server.metric("attune_calls_stored_total");
    let errors = server.metric("attune_store_errors_total");
    if errors > 0.0 {
        assert!(
            server.log().contains("live call full-1 was not stored"),
            "{}",
            server.log()
        );
    }
    // The service still answers.
    assert!(server.metric("attune_live_calls") == 0.0);

    // Room again: the next call is stored.
    std::fs::remove_file(&filler).unwrap();
    assert!(server.replay(&token, &call, "after"));
    wait_until(
        Duration::from_secs(30),
        "`after` stored",
        || server.log(),
        || {
            server.metric("attune_calls_stored_total") == stored_while_full + 1.0
                && server.metric("attune_store_spooled_calls") == 0.0
        },
    );
    let stored_total = server.metric("attune_calls_stored_total");
    let (status, log) = server.stop();
    assert!(status.success(), "{status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(spooled_files(&spool), 0);
    // What /metrics counted as stored is what the database holds, nothing more.
    let ids = stored_ids(db);
    assert_eq!(ids.len() as f64, stored_total, "{ids:?}\n{log}");
    assert!(ids.contains(&"roomy".to_owned()) && ids.contains(&"after".to_owned()));
    assert_eq!(
        ids.contains(&"full-1".to_owned()),
        errors == 0.0,
        "{ids:?}\n{log}"
    );
    let mut store = Store::open(db).unwrap();
    assert!(store.check_integrity(true).unwrap().is_empty());
}
