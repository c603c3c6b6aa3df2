//! Stored calls in the service: live calls scored and saved at their end (through the real gRPC
//! server), a store error counted without harm, the recorded-calls JSON and report pages, the
//! upload of a recording (good and bad files), and the Recorded calls page in headless Chromium.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use tokio::sync::{mpsc, oneshot};

use attune_qa::ScoringSetup;
use attune_qa::store::{CallQuery, Store};
use attune_service::client::{ChunkedAudio, connect, ingest_call, send_paced};
use attune_service::grpc::SessionConfig;
use attune_service::http::router;
use attune_service::hub::Hub;
use attune_service::metrics::ServiceMetrics;
use attune_service::pb;
use attune_service::recorder::CallRecorder;
use attune_service::server::{ServerConfig, Service};
use attune_service::session::Encoding;

use crate::console::{Browser, ConsoleServer, examples_dir, http_bytes, wait_for};
use crate::util::{run_ok, temp_dir};

fn upset_wav() -> PathBuf {
    examples_dir().join("upset_caller.wav")
}

fn setup() -> Arc<ScoringSetup> {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emotion.json");
    Arc::new(ScoringSetup::load(Some(&model), None, None, 0).expect("scoring setup"))
}

fn recorder_at(db: &Path, busy_timeout: Duration) -> (Arc<CallRecorder>, Arc<ServiceMetrics>) {
    recorder_of(Store::open_with_timeout(&db.display().to_string(), busy_timeout).unwrap())
}

fn recorder_of(store: Store) -> (Arc<CallRecorder>, Arc<ServiceMetrics>) {
    let metrics = Arc::new(ServiceMetrics::default());
    let recorder = CallRecorder::start(store, setup(), metrics.clone()).unwrap();
    (Arc::new(recorder), metrics)
}

/// The QA score `attune analyze` gives a file (agent on `agent_channel`).
fn analyze_score_pct(path: &Path, agent_channel: u16) -> Option<f64> {
    let out = run_ok(&[
        "analyze",
        &path.display().to_string(),
        "--agent-channel",
        &agent_channel.to_string(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    doc["qa"]["score_pct"].as_f64()
}

/// A raw HTTP/1.1 request with a WAV (or any) body; returns (status, body).
async fn request(address: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    http_bytes(address, method, path, "audio/wav", body).await
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

struct LiveServer {
    url: String,
    http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl LiveServer {
    async fn start(recorder: Arc<CallRecorder>, metrics: Arc<ServiceMetrics>) -> Self {
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", grpc.local_addr().unwrap());
        let http_addr = http.local_addr().unwrap();
        let config = ServerConfig {
            max_calls: 8,
            session: SessionConfig {
                idle_timeout: Duration::from_secs(5),
                ..SessionConfig::default()
            },
            analysis_threads: 2,
            ..ServerConfig::default()
        };
        let setup = recorder.setup().clone();
        let service = Service::with_recorder(
            config,
            setup.rules.clone(),
            setup.model.clone(),
            Some((recorder.clone(), metrics)),
        )
        .unwrap();
        let console = attune_service::console::routes(
            service.app_state().hub,
            attune_service::console::StopSignal::from_receiver(service.stop_signal()),
            Some(recorder),
            std::sync::Arc::new(attune_service::auth::Gate::disabled()),
        );
        let app = router(service.app_state()).merge(console);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            service
                .serve(grpc, http, app, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Self {
            url,
            http: http_addr,
            stop: Some(stop),
            task,
        }
    }

    async fn metric(&self, name: &str) -> f64 {
        let (status, body) = request(self.http, "GET", "/metrics", b"").await;
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
            .parse()
            .unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server stops within 10 s")
            .unwrap();
    }
}

/// `upset_caller.wav` as mu-law chunks of 100 ms, and the header of a call of it (agent on
/// channel 1).
fn upset_call(call_id: &str, agent: &str, team: &str) -> (ChunkedAudio, pb::CallHeader) {
    let buffer = attune_qa::files::read_wav(&upset_wav()).unwrap();
    let audio = ChunkedAudio::interleaved(
        [&buffer.channels[0], &buffer.channels[1]],
        buffer.sample_rate_hz,
        800,
        Encoding::Mulaw,
    );
    let header = pb::CallHeader {
        call_id: call_id.into(),
        agent_id: agent.into(),
        team: team.into(),
        sample_rate_hz: buffer.sample_rate_hz,
        encoding: pb::AudioEncoding::Mulaw as i32,
        layout: pb::ChannelLayout::InterleavedStereo as i32,
        agent_channel: 1,
    };
    (audio, header)
}

/// Streams `upset_caller.wav` as a live call, as fast as it goes.
async fn stream_upset_call(url: &str, call_id: &str, agent: &str, team: &str) {
    let (audio, header) = upset_call(call_id, agent, team);
    let mut client = connect(url, &Default::default()).await.unwrap();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move { send_paced(&audio, 1000.0, tokio::time::Instant::now(), tx).await });
    ingest_call(&mut client, header, rx, |_, _| {})
        .await
        .expect("the call ends OK");
}

/// The first 3 s of `upset_caller.wav` as a live call whose client stops sending without
/// ending the call (the server ends it as "disconnected").
async fn disconnect_midway(url: &str, call_id: &str) {
    let (audio, header) = upset_call(call_id, "dan", "west");
    let (tx, rx) = mpsc::channel(64);
    let msg = |m| pb::IngestRequest { msg: Some(m) };
    tx.send(msg(pb::ingest_request::Msg::Header(header)))
        .await
        .unwrap();
    for (seq, chunk) in audio.chunks.iter().take(30).enumerate() {
        tx.send(msg(pb::ingest_request::Msg::Audio(pb::AudioChunk {
            seq: seq as u64,
            channel: 0,
            audio: chunk.clone(),
        })))
        .await
        .unwrap();
    }
    drop(tx);
    let mut client = connect(url, &Default::default()).await.unwrap();
    let mut inbound = client
        .ingest(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    while let Ok(Some(_)) = inbound.message().await {}
}

async fn wait_stored(db: &Path, call_id: &str) -> attune_qa::store::CallRow {
    let db = db.display().to_string();
    let id = call_id.to_owned();
    wait_for(
        &format!("call {call_id} stored"),
        Duration::from_secs(20),
        || {
            let (db, id) = (db.clone(), id.clone());
            async move {
                let mut store = Store::open(&db).ok()?;
                store
                    .calls(&CallQuery::default())
                    .ok()?
                    .into_iter()
                    .find(|c| c.call_id == id)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_calls_are_scored_and_stored_at_their_end_and_a_locked_store_delays_them() {
    let dir = temp_dir("recorded-live");
    let db = dir.join("live.db");
    let (recorder, metrics) = recorder_at(&db, Duration::from_millis(200));
    let server = LiveServer::start(recorder, metrics).await;

    stream_upset_call(&server.url, "live-upset-1", "ann", "north").await;
    let row = wait_stored(&db, "live-upset-1").await;
    assert_eq!(row.source, "live");
    assert_eq!(row.agent.as_deref(), Some("ann"));
    assert_eq!(row.team.as_deref(), Some("north"));
    // Scored exactly as `attune analyze` scores the same audio.
    let expected = analyze_score_pct(&upset_wav(), 1);
    assert!(expected.is_some());
    assert_eq!(row.score_pct, expected, "live score = analyze score");
    assert!(row.caller_ended_upset);
    // Found through the store's query, as `attune calls` finds it.
    let mut store = Store::open(&db.display().to_string()).unwrap();
    let by_agent = store
        .calls(&CallQuery {
            agent: Some("ann".into()),
            caller_ended_upset: true,
            ..CallQuery::default()
        })
        .unwrap();
    assert_eq!(by_agent.len(), 1);
    assert!(!store.qa_items("live-upset-1").unwrap().is_empty());
    let listed = run_ok(&["calls", "--db", &db.display().to_string()]);
    assert!(listed.contains("live:live-upset-1"), "{listed}");
    assert_eq!(server.metric("attune_calls_stored_total").await, 1.0);
    assert_eq!(server.metric("attune_store_errors_total").await, 0.0);

    // A locked database: the call waits (the write is retried and counted), the service goes
    // on, and once the lock is released it is stored, not lost.
    store.hold_write_lock_for_tests().unwrap();
    stream_upset_call(&server.url, "live-upset-2", "bob", "north").await;
    wait_for(
        "the store retry counted",
        Duration::from_secs(20),
        || async { (server.metric("attune_store_retries_total").await >= 1.0).then_some(()) },
    )
    .await;
    assert_eq!(server.metric("attune_calls_stored_total").await, 1.0);
    drop(store);
    let row = wait_stored(&db, "live-upset-2").await;
    assert_eq!(row.score_pct, expected);
    stream_upset_call(&server.url, "live-upset-3", "cy", "south").await;
    let row = wait_stored(&db, "live-upset-3").await;
    assert_eq!(row.score_pct, expected);
    assert_eq!(server.metric("attune_store_errors_total").await, 0.0);
    let (status, body) = request(server.http, "GET", "/api/recorded?team=south", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["calls"][0]["call_id"], "live-upset-3");

    // A call whose client goes away is stored too (reason "disconnected"), with what was heard.
    disconnect_midway(&server.url, "live-dropped").await;
    let row = wait_stored(&db, "live-dropped").await;
    assert_eq!(row.agent.as_deref(), Some("dan"));
    assert!((row.duration_s - 3.0).abs() < 0.2, "{}", row.duration_s);
    assert_eq!(server.metric("attune_calls_stored_total").await, 4.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_scored_like_analyze_and_bad_ones_named() {
    let dir = temp_dir("recorded-upload");
    let (recorder, _) = recorder_at(&dir.join("up.db"), Duration::from_secs(5));
    let hub = Arc::new(Hub::new(4));
    let server =
        ConsoleServer::start_with_store(hub, "127.0.0.1:0".parse().unwrap(), Some(recorder)).await;
    let address = server.address();
    let wav = std::fs::read(upset_wav()).unwrap();

    let (status, body) = request(
        address,
        "POST",
        "/api/recordings?name=upset_caller.wav&agent=dee&team=qa&agent_channel=1",
        &wav,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let answer = json(&body);
    let call_id = answer["call_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["report_url"], format!("/recorded/{call_id}"));
    let expected = analyze_score_pct(&upset_wav(), 1);
    assert_eq!(answer["score_pct"].as_f64(), expected);

    // Listed with the filters of `attune calls`, with the same score.
    let (status, body) = request(address, "GET", "/api/recorded?agent=dee", b"").await;
    assert_eq!(status, 200, "{body}");
    let calls = json(&body)["calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0]["source"], "recording");
    assert_eq!(calls[0]["score_pct"].as_f64(), expected);
    for (query, n) in [
        ("agent=nobody", 0),
        ("min_score=101", 0),
        ("caller_ended_upset=true&team=qa", 1),
        ("agent_interruptions_over=5", 0),
        ("from=2000-01-01&to=2999-12-31", 1),
    ] {
        let (status, body) = request(address, "GET", &format!("/api/recorded?{query}"), b"").await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(json(&body)["calls"].as_array().unwrap().len(), n, "{query}");
    }
    let (status, body) = request(address, "GET", "/api/recorded?from=yesterday", b"").await;
    assert_eq!(status, 400);
    assert!(body.contains("is not a date"), "{body}");

    // The stored document, and the report page: the rubric table `attune analyze --format
    // html` writes for the same file.
    let (status, body) = request(address, "GET", &format!("/api/recorded/{call_id}"), b"").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["qa"]["score_pct"].as_f64(), expected);
    let (status, page) = request(address, "GET", &format!("/recorded/{call_id}"), b"").await;
    assert_eq!(status, 200);
    let cli_html = run_ok(&[
        "analyze",
        &upset_wav().display().to_string(),
        "--agent-channel",
        "1",
        "--format",
        "html",
    ]);
    let rubric = |html: &str| {
        let start = html.find("<h2 id='rubric'>").expect("rubric section");
        let end = start + html[start..].find("</table>").unwrap();
        html[start..end].to_owned()
    };
    assert_eq!(rubric(&page), rubric(&cli_html));
    assert!(page.contains("<a href='/recorded'>← Recorded calls</a>"));
    let (status, _) = request(address, "GET", "/recorded/rec-nothere", b"").await;
    assert_eq!(status, 404);

    // Bad uploads: each a 4xx naming the problem.
    let mono = {
        let path = dir.join("mono.wav");
        let voice = crate::util::synthetic_voice(8000, 2.0, 150.0, 0.3, true);
        crate::util::write_wav_i16(&path, 8000, &[voice]);
        std::fs::read(path).unwrap()
    };
    let cases: [(&str, Vec<u8>, u16, &str); 4] = [
        ("empty", Vec::new(), 400, "body is empty"),
        (
            "garbage",
            b"this is not audio at all, just text".repeat(20),
            400,
            "not a WAV recording",
        ),
        ("mono", mono, 422, "mono recording"),
        ("truncated", wav[..wav.len() / 2].to_vec(), 400, "truncated"),
    ];
    for (what, bytes, want, says) in cases {
        let (status, body) = request(address, "POST", "/api/recordings?name=x.wav", &bytes).await;
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            json(&body)["error"].as_str().unwrap().contains(says),
            "{what}: {body}"
        );
    }
    let (status, body) = request(
        address,
        "POST",
        "/api/recordings?agent_channel=2",
        &wav[..100],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("agent_channel must be 0 or 1"), "{body}");
    server.stop().await;

    // Over the size limit (a small one here; 256 MiB by default).
    let store = Store::open(&dir.join("small.db").display().to_string()).unwrap();
    let mut small =
        CallRecorder::start(store, setup(), Arc::new(ServiceMetrics::default())).unwrap();
    small.max_upload_bytes = 4096;
    let server = ConsoleServer::start_with_store(
        Arc::new(Hub::new(4)),
        "127.0.0.1:0".parse().unwrap(),
        Some(Arc::new(small)),
    )
    .await;
    let (status, body) = request(server.address(), "POST", "/api/recordings", &wav[..20_000]).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("over the upload limit of 4096 bytes"),
        "{body}"
    );
    server.stop().await;

    // No database: said plainly, not a 500.
    let server = ConsoleServer::start_with_store(
        Arc::new(Hub::new(4)),
        "127.0.0.1:0".parse().unwrap(),
        None,
    )
    .await;
    let (status, body) = request(server.address(), "GET", "/api/recorded", b"").await;
    assert_eq!(status, 503);
    assert!(body.contains("no database is configured"), "{body}");
    let (status, body) = request(server.address(), "GET", "/recorded", b"").await;
    assert_eq!(status, 200);
    assert!(body.contains("Recorded calls"), "{body}");
    let (status, body) = request(server.address(), "POST", "/api/recordings", &wav[..100]).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = request(server.address(), "GET", "/recorded/x", b"").await;
    assert_eq!(status, 503);
    assert!(body.contains("no database is configured"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_calls_page_uploads_filters_and_opens_reports_in_chromium() {
    if !crate::console::browser_available(
        "recorded_calls_page_uploads_filters_and_opens_reports_in_chromium",
    ) {
        return;
    }
    let started = std::time::Instant::now();
    let dir = temp_dir("recorded-browser");
    let (recorder, _) = recorder_at(&dir.join("page.db"), Duration::from_secs(5));
    let server = ConsoleServer::start_with_store(
        Arc::new(Hub::new(4)),
        "127.0.0.1:0".parse().unwrap(),
        Some(recorder),
    )
    .await;
    // Another agent's call is already stored.
    let calm = std::fs::read(examples_dir().join("calm.wav")).unwrap();
    let (status, body) = request(
        server.address(),
        "POST",
        "/api/recordings?name=calm.wav&agent=other&team=blue",
        &calm,
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let browser = Browser::start().await;
    let client = &browser.client;
    let type_into = |css: &'static str, text: String| async move {
        client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(&text)
            .await
            .unwrap();
    };
    let click = |css: String| async move {
        client
            .find(Locator::Css(&css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };
    client.goto(&server.url("/recorded")).await.unwrap();
    let rows = "#calls tr[data-call-id]";
    wait_for("the stored call listed", Duration::from_secs(5), || async {
        (browser.count(rows).await == 1).then_some(())
    })
    .await;

    // Upload through the form.
    type_into("#file", upset_wav().display().to_string()).await;
    type_into("#up-agent", "zoe".into()).await;
    type_into("#up-team", "red".into()).await;
    client
        .find(Locator::Css("#up-channel"))
        .await
        .unwrap()
        .select_by_value("1")
        .await
        .unwrap();
    click("#upload-button".into()).await;
    wait_for(
        "the uploaded call listed",
        Duration::from_secs(10),
        || async { (browser.count(rows).await == 2).then_some(()) },
    )
    .await;
    let status = browser.text("#upload-status").await.unwrap_or_default();
    let expected = analyze_score_pct(&upset_wav(), 1).unwrap();
    assert!(
        status.contains(&format!("{expected:.1} %")),
        "upload status {status:?} (analyze: {expected})"
    );
    browser.screenshot("recorded-list.png").await;

    // Filter by agent.
    type_into("#agent", "zoe".into()).await;
    click("#filters button[type=submit]".into()).await;
    wait_for("only zoe's call", Duration::from_secs(5), || async {
        (browser.count(rows).await == 1).then_some(())
    })
    .await;
    let agent = browser.text(&format!("{rows} td.agent")).await.unwrap();
    assert_eq!(agent, "zoe");
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("agent=zoe")
    );

    // Open its report: the rubric table.
    click(format!("{rows} a")).await;
    wait_for(
        "the report's rubric table",
        Duration::from_secs(5),
        || async { (browser.count("#rubric + table tr[id^='item-']").await > 0).then_some(()) },
    )
    .await;
    let score = browser.text("p.score").await.unwrap();
    assert!(score.starts_with(&format!("{expected:.1} %")), "{score}");
    browser.screenshot("recorded-report.png").await;

    // A bad file through the form: the page names the problem.
    client.goto(&server.url("/recorded")).await.unwrap();
    let bad = dir.join("not-audio.wav");
    std::fs::write(&bad, b"hello, this is not a recording").unwrap();
    type_into("#file", bad.display().to_string()).await;
    click("#upload-button".into()).await;
    let said = wait_for("the upload error shown", Duration::from_secs(5), || async {
        browser
            .text("#upload-status.error")
            .await
            .filter(|t| !t.is_empty())
    })
    .await;
    assert!(said.contains("not a WAV recording"), "{said}");
    let _ = client.clone().close().await;
    server.stop().await;
    eprintln!(
        "recorded-calls browser test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The same over PostgreSQL (feature `postgres`, `ATTUNE_TEST_POSTGRES_URL` set as `.ci/run`
/// does): a live call and an upload stored, listed and read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_live_calls_and_uploads() {
    let Ok(url) = std::env::var("ATTUNE_TEST_POSTGRES_URL") else {
        eprintln!("skipping: ATTUNE_TEST_POSTGRES_URL not set (.ci/run sets it)");
        return;
    };
    if !cfg!(feature = "postgres") {
        eprintln!("skipping: built without the `postgres` feature");
        return;
    }
    // PostgreSQL's blocking client is used off the async threads, as `attune serve` does.
    let store = tokio::task::spawn_blocking(move || {
        let db_url = attune_qa::store::fresh_postgres_database_for_tests(
            &url,
            &format!("attune_rec_{}", std::process::id()),
        )?;
        Store::open(&db_url)
    })
    .await
    .unwrap()
    .unwrap();
    let (recorder, metrics) = recorder_of(store);
    let server = LiveServer::start(recorder, metrics).await;
    stream_upset_call(&server.url, "pg-live", "ann", "north").await;
    let wav = std::fs::read(upset_wav()).unwrap();
    let (status, body) = request(
        server.http,
        "POST",
        "/api/recordings?name=u.wav&agent=ann&agent_channel=1",
        &wav,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let expected = analyze_score_pct(&upset_wav(), 1);
    let listed = wait_for("both calls listed", Duration::from_secs(20), || async {
        let (_, body) = request(server.http, "GET", "/api/recorded?agent=ann", b"").await;
        let calls = json(&body)["calls"].as_array()?.clone();
        (calls.len() == 2).then_some(calls)
    })
    .await;
    let mut sources: Vec<&str> = listed
        .iter()
        .map(|c| c["source"].as_str().unwrap())
        .collect();
    sources.sort_unstable();
    assert_eq!(sources, ["live", "recording"]);
    assert!(listed.iter().all(|c| c["score_pct"].as_f64() == expected));
    let (status, page) = request(server.http, "GET", "/recorded/pg-live", b"").await;
    assert_eq!(status, 200);
    assert!(page.contains("<h2 id='rubric'>"));
    assert_eq!(server.metric("attune_store_errors_total").await, 0.0);
    server.stop().await;
}
