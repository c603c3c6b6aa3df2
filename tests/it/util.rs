//! Shared helpers of the integration tests: synthetic audio, temporary files, the CLI binary,
//! and the servers under test ([`TestServer`]: the service in this process; [`ServeProcess`]:
//! `attune serve` as a child process), each started on loopback ports the system picks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use attune_core::cues::CueRules;
use attune_core::model::emotion::EmotionModel;
use attune_service::hub::{CallFilter, Hub};
use attune_service::ingest::IngestConfig;
use attune_service::metrics::ServiceMetrics;
use attune_service::recorder::CallRecorder;
use attune_service::server::{ServerConfig, Service};

/// A fresh, empty folder under cargo's `target/tmp`, unique to this test (emptied when the test
/// runs again, so runs do not pile up folders in the system temp dir).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("it-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The shared corpora beside the checkout, if present.
pub fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} not found", dir.display());
        None
    }
}

/// The `attune` binary built for these tests.
pub fn attune() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attune"))
}

/// Runs `attune` with `args`; returns stdout, panicking with stderr on failure.
pub fn run_ok(args: &[&str]) -> String {
    let output = attune().args(args).output().expect("run attune");
    assert!(
        output.status.success(),
        "attune {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs `attune` with `args` expecting failure; returns stderr.
pub fn run_err(args: &[&str]) -> String {
    let output = attune().args(args).output().expect("run attune");
    assert!(
        !output.status.success(),
        "attune {args:?} should have failed"
    );
    String::from_utf8(output.stderr).expect("utf-8 stderr")
}

/// A voiced, vowel-like signal: harmonics of `f0_hz` with a falling spectrum, no fundamental
/// below 300 Hz when `telephone` is true, amplitude-modulated into syllables of `syllable_s`.
pub fn synthetic_voice(
    sample_rate_hz: u32,
    seconds: f64,
    f0_hz: f64,
    syllable_s: f64,
    telephone: bool,
) -> Vec<f32> {
    let n = (seconds * sample_rate_hz as f64) as usize;
    let max_harmonic = ((3400.0 / f0_hz) as usize).max(1);
    (0..n)
        .map(|i| {
            let t = i as f64 / sample_rate_hz as f64;
            let mut v = 0.0;
            for h in 1..=max_harmonic {
                let f = h as f64 * f0_hz;
                if telephone && f < 300.0 {
                    continue;
                }
                v += (2.0 * std::f64::consts::PI * f * t).sin() / h as f64;
            }
            let envelope = (std::f64::consts::PI * t / syllable_s)
                .sin()
                .abs()
                .powf(0.7);
            (0.15 * v * envelope) as f32
        })
        .collect()
}

/// Writes `channels` (equal lengths) as a 16-bit PCM WAV.
pub fn write_wav_i16(path: &Path, sample_rate_hz: u32, channels: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: sample_rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..channels[0].len() {
        for channel in channels {
            let v = (channel[i].clamp(-1.0, 1.0) * 32767.0).round() as i16;
            writer.write_sample(v).expect("write sample");
        }
    }
    writer.finalize().expect("finalize wav");
}

/// What a [`TestServer`] runs.
pub struct TestService {
    pub config: ServerConfig,
    pub rules: CueRules,
    pub model: Arc<EmotionModel>,
    /// Saves every ended call (and serves the recorded calls), with its counters.
    pub recorder: Option<(Arc<CallRecorder>, Arc<ServiceMetrics>)>,
    /// The telephony routes' settings.
    pub ingest: IngestConfig,
    /// Also accept Asterisk AudioSocket connections (on [`TestServer::audiosocket`]).
    pub audiosocket: bool,
}

impl TestService {
    /// `config` with the default cue rules and the shipped model, storing nothing.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            rules: CueRules::default(),
            model: Arc::new(attune_qa::files::model_or_embedded(None).expect("the shipped model")),
            recorder: None,
            ingest: IngestConfig::default(),
            audiosocket: false,
        }
    }

    /// `config` saving every ended call through `recorder` (whose model and rules analyse the
    /// calls; `metrics` are its counters, and the service's).
    pub fn with_recorder(
        config: ServerConfig,
        recorder: Arc<CallRecorder>,
        metrics: Arc<ServiceMetrics>,
    ) -> Self {
        let setup = recorder.setup().clone();
        Self {
            rules: setup.rules.clone(),
            model: setup.model.clone(),
            recorder: Some((recorder, metrics)),
            ..Self::new(config)
        }
    }
}

/// The service in this process, composed as `attune serve` composes it (gRPC; HTTP with
/// [`Service::http_router`]: `/healthz`, `/metrics`, the console under the config's gate and the
/// telephony routes), on loopback ports the system picks. Ready when [`TestServer::start`] returns (the listeners are bound);
/// [`TestServer::stop`] drains it; dropped, it is told to stop.
pub struct TestServer {
    /// The gRPC address as a URL (`https://` under TLS).
    pub grpc_url: String,
    pub http: SocketAddr,
    /// The AudioSocket listener, when [`TestService::audiosocket`] asked for one.
    pub audiosocket: Option<SocketAddr>,
    pub hub: Arc<Hub>,
    /// The service's counters (the recorder's when it has one).
    pub metrics: Arc<ServiceMetrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

/// How long a stopping [`TestServer`] may take to drain.
const TEST_SERVER_DRAIN_BOUND: Duration = Duration::from_secs(10);

impl TestServer {
    pub async fn start(what: TestService) -> Self {
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (grpc, http) = (bind().await.unwrap(), bind().await.unwrap());
        let scheme = if what.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let grpc_url = format!("{scheme}://{}", grpc.local_addr().unwrap());
        let http_addr = http.local_addr().unwrap();
        let service = Service::with_recorder(what.config, what.rules, what.model, what.recorder)
            .expect("the service starts");
        let (hub, metrics) = (service.hub.clone(), service.metrics.clone());
        let ingest = Arc::new(what.ingest);
        let app = service.http_router(ingest.clone());
        let audiosocket = if what.audiosocket {
            let listener = bind().await.unwrap();
            let address = listener.local_addr().unwrap();
            service.spawn_audiosocket(listener, ingest);
            Some(address)
        } else {
            None
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            service
                .serve(grpc, http, app, async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| e.to_string())
        });
        Self {
            grpc_url,
            http: http_addr,
            audiosocket,
            hub,
            metrics,
            stop: Some(stop),
            task,
        }
    }

    /// Stops the service and waits for it to drain; what serving came to.
    pub async fn shut_down(mut self) -> Result<(), String> {
        let _ = self.stop.take().map(|s| s.send(()));
        match tokio::time::timeout(TEST_SERVER_DRAIN_BOUND, &mut self.task).await {
            Err(_) => Err(format!(
                "the server did not stop within {} s",
                TEST_SERVER_DRAIN_BOUND.as_secs()
            )),
            Ok(Err(join)) => Err(format!("the server task failed: {join}")),
            Ok(Ok(served)) => served,
        }
    }

    /// As [`Self::shut_down`], panicking unless the service stopped cleanly in time.
    pub async fn stop(self) {
        if let Err(e) = self.shut_down().await {
            panic!("{e}");
        }
    }

    /// The HTTP address as a WebSocket URL (`ws://HOST:PORT`, no path).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.http)
    }

    /// Live calls in the hub now.
    pub fn live_calls(&self) -> usize {
        self.hub.live_calls(&CallFilter::default()).len()
    }

    /// Waits (`bound` at most) until at least `n` calls are live.
    pub async fn wait_live(&self, n: usize, bound: Duration) {
        let began = std::time::Instant::now();
        while self.live_calls() < n {
            assert!(
                began.elapsed() < bound,
                "{n} live calls within {bound:?} (live: {})",
                self.live_calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of the metric `name` in `/metrics` (read without credentials).
    pub async fn metric(&self, name: &str) -> f64 {
        let (status, body) =
            crate::console::http_bytes(self.http, "GET", "/metrics", "text/plain", b"").await;
        assert_eq!(status, 200, "/metrics: {body}");
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
            .parse()
            .unwrap_or_else(|e| panic!("{name} is not a number ({e}):\n{body}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `attune serve --grpc 127.0.0.1:0 --http 127.0.0.1:0` and more arguments, as a child process
/// whose standard error is collected. Ready when [`ServeProcess::start`] returns (it printed
/// the addresses it listens on, once its listeners were bound); killed on drop.
pub struct ServeProcess {
    child: std::process::Child,
    /// The gRPC address, `HOST:PORT`.
    pub grpc: String,
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl ServeProcess {
    pub fn start(args: &[&str]) -> Self {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = attune()
            .args(["serve", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run attune serve");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        // "attune serve: gRPC on ADDR, HTTP on ADDR (max ..."
        let grpc = lines.by_ref().map_while(Result::ok).find_map(|line| {
            seen.push(line.clone());
            let grpc = line.split("gRPC on ").nth(1)?.split(',').next()?.trim();
            Some(grpc.to_owned())
        });
        let Some(grpc) = grpc else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("attune serve did not print its addresses: {seen:?}");
        };
        let log = std::thread::spawn(move || {
            seen.extend(lines.map_while(Result::ok));
            seen
        });
        Self {
            child,
            grpc,
            log: Some(log),
        }
    }

    /// The gRPC address as a URL.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Sends SIGTERM and waits (`bound` at most) for the process to exit; its status and its
    /// whole log.
    #[cfg(unix)]
    pub fn terminate(mut self, bound: Duration) -> (std::process::ExitStatus, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < bound,
                "serve did not stop within {bound:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        (status, self.take_log())
    }

    /// Kills the process (SIGKILL); its whole log.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.take_log()
    }

    fn take_log(&mut self) -> String {
        self.log
            .take()
            .and_then(|log| log.join().ok())
            .unwrap_or_default()
            .join("\n")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
