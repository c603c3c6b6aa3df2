//! Stored calls in the service: live calls scored and saved at their end (through the real gRPC
//! server), a store error counted without harm, the recorded-calls JSON and report pages, the
//! upload of a recording (good and bad files), and the Recorded calls page in headless Chromium.
//! Recordings: live calls of opted-in teams (gRPC and Twilio) and their uploads kept as stereo
//! WAV, the audio endpoint (whole, clips, ranges, bad parameters), the retention sweep, and an
//! evidence moment played from the report in Chromium.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use tokio::sync::mpsc;

use attune_qa::ScoringSetup;
use attune_qa::store::{CallQuery, Store};
use attune_service::client::{ChunkedAudio, connect, ingest_call, send_paced};
use attune_service::grpc::SessionConfig;
use attune_service::hub::Hub;
use attune_service::metrics::ServiceMetrics;
use attune_service::pb;
use attune_service::recorder::CallRecorder;
use attune_service::recordings::{RecordTeams, RecordingPolicy, Recordings};
use attune_service::server::ServerConfig;
use attune_service::session::Encoding;

use crate::console::{Browser, ConsoleServer, examples_dir, http_bytes, wait_for};
use crate::util::{TestServer, TestService, run_ok, temp_dir};

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

/// The service saving its ended calls through `recorder`, with the console and the telephony
/// routes.
async fn live_server(recorder: Arc<CallRecorder>, metrics: Arc<ServiceMetrics>) -> TestServer {
    let config = ServerConfig {
        max_calls: 8,
        session: SessionConfig {
            idle_timeout: Duration::from_secs(5),
            // Calls are streamed as fast as they go: not paced.
            limits: attune_service::session::SessionLimits::default().unpaced(),
            ..SessionConfig::default()
        },
        analysis_threads: 2,
        ..ServerConfig::default()
    };
    TestServer::start(TestService::with_recorder(config, recorder, metrics)).await
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
    let server = live_server(recorder, metrics).await;

    stream_upset_call(&server.grpc_url, "live-upset-1", "ann", "north").await;
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
    stream_upset_call(&server.grpc_url, "live-upset-2", "bob", "north").await;
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
    stream_upset_call(&server.grpc_url, "live-upset-3", "cy", "south").await;
    let row = wait_stored(&db, "live-upset-3").await;
    assert_eq!(row.score_pct, expected);
    assert_eq!(server.metric("attune_store_errors_total").await, 0.0);
    let (status, body) = request(server.http, "GET", "/api/recorded?team=south", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["calls"][0]["call_id"], "live-upset-3");

    // A call whose client goes away is stored too (reason "disconnected"), with what was heard.
    disconnect_midway(&server.grpc_url, "live-dropped").await;
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
    let server = live_server(recorder, metrics).await;
    stream_upset_call(&server.grpc_url, "pg-live", "ann", "north").await;
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

// ---------------------------------------------------------------------------------------------
// Recordings

/// A store at `db` whose calls of `teams` are recorded in `<db>.recordings`.
fn recording_recorder(
    db: &Path,
    teams: &str,
) -> (Arc<CallRecorder>, Arc<ServiceMetrics>, Arc<Recordings>) {
    let metrics = Arc::new(ServiceMetrics::default());
    let policy = RecordingPolicy {
        dir: PathBuf::from(format!("{}.recordings", db.display())),
        teams: RecordTeams::parse(teams).unwrap(),
        retention_days: 30,
    };
    let recordings = Recordings::open(policy, metrics.clone()).unwrap();
    let store = Store::open(&db.display().to_string()).unwrap();
    let recorder = CallRecorder::start(store, setup(), metrics.clone())
        .unwrap()
        .with_recordings(recordings.clone());
    (Arc::new(recorder), metrics, recordings)
}

fn tone(rate_hz: u32, seconds: f64, hz: f64, amplitude: f32) -> Vec<f32> {
    let n = (f64::from(rate_hz) * seconds) as usize;
    (0..n)
        .map(|i| {
            amplitude
                * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate_hz)).sin() as f32
        })
        .collect()
}

/// A sample in -1..=1 as 16-bit PCM, as the recordings store it.
fn pcm16(v: f32) -> i16 {
    (v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples
        .iter()
        .map(|&s| (f64::from(s) / 32_768.0).powi(2))
        .sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// A WAV's rate, channels and (left, right) samples.
fn stereo_of(bytes: &[u8]) -> (u32, u16, Vec<i16>, Vec<i16>) {
    let mut wav = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).expect("a WAV");
    let spec = wav.spec();
    assert_eq!(spec.bits_per_sample, 16);
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (spec.sample_rate, spec.channels, left, right)
}

/// A raw HTTP/1.1 GET with extra headers: (status, lower-case headers, body bytes).
async fn get_bytes(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Streams two channels as a PCM16 live call, as fast as it goes.
async fn stream_pcm16_call(url: &str, header: pb::CallHeader, channels: [&[f32]; 2]) {
    let audio = ChunkedAudio::interleaved(channels, header.sample_rate_hz, 320, Encoding::Pcm16le);
    let mut client = connect(url, &Default::default()).await.unwrap();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move { send_paced(&audio, 1000.0, tokio::time::Instant::now(), tx).await });
    ingest_call(&mut client, header, rx, |_, _| {})
        .await
        .expect("the call ends OK");
}

fn pcm16_header(call_id: &str, team: &str, rate_hz: u32, agent_channel: u32) -> pb::CallHeader {
    pb::CallHeader {
        call_id: call_id.into(),
        agent_id: "ann".into(),
        team: team.into(),
        sample_rate_hz: rate_hz,
        encoding: pb::AudioEncoding::Pcm16le as i32,
        layout: pb::ChannelLayout::InterleavedStereo as i32,
        agent_channel,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_calls_of_recorded_teams_are_kept_in_stereo_and_served_whole_or_in_clips() {
    let dir = temp_dir("recordings-live");
    let db = dir.join("rec.db");
    let rec_dir = dir.join("rec.db.recordings");
    // A recording of an earlier run, past the retention: deleted by the sweep at start.
    std::fs::create_dir_all(&rec_dir).unwrap();
    let old = rec_dir.join("old-call.wav");
    std::fs::write(&old, b"RIFF").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(40 * 86_400))
        .unwrap();
    let (recorder, metrics, recordings) = recording_recorder(&db, "north");
    assert!(!old.exists(), "the sweep at start deletes old recordings");
    let server = live_server(recorder, metrics).await;
    assert_eq!(server.metric("attune_recordings_deleted_total").await, 1.0);

    // 3 s at 16 kHz with the agent on channel 0: the agent must come out on the right.
    let rate = 16_000;
    let agent = tone(rate, 3.0, 220.0, 0.5);
    let caller = tone(rate, 3.0, 330.0, 0.1);
    stream_pcm16_call(
        &server.grpc_url,
        pcm16_header("rec-north", "north", rate, 0),
        [&agent, &caller],
    )
    .await;
    stream_pcm16_call(
        &server.grpc_url,
        pcm16_header("rec-south", "south", rate, 0),
        [&agent, &caller],
    )
    .await;
    wait_stored(&db, "rec-north").await;
    wait_stored(&db, "rec-south").await;
    assert!(recordings.wait_idle(Duration::from_secs(10)));
    let file = std::fs::read(rec_dir.join("rec-north.wav")).expect("the call is recorded");
    let (file_rate, channels, left, right) = stereo_of(&file);
    assert_eq!((file_rate, channels), (rate, 2));
    assert_eq!(left.len(), agent.len(), "every frame sent is recorded");
    assert!(
        right.iter().zip(&agent).all(|(&s, &v)| s == pcm16(v)),
        "the agent is on the right"
    );
    assert!(
        left.iter().zip(&caller).all(|(&s, &v)| s == pcm16(v)),
        "the caller is on the left"
    );
    assert!(
        !rec_dir.join("rec-south.wav").exists(),
        "a team not opted in is not recorded"
    );
    let names: Vec<String> = std::fs::read_dir(&rec_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["rec-north.wav"], "no part file is left");
    assert_eq!(server.metric("attune_recordings_saved_total").await, 1.0);
    assert_eq!(server.metric("attune_recording_errors_total").await, 0.0);
    assert_eq!(server.metric("attune_recordings_active").await, 0.0);

    // The whole recording, as the file.
    let (status, headers, body) =
        get_bytes(server.http, "/api/recorded/rec-north/audio", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header_of(&headers, "content-type"), Some("audio/wav"));
    assert_eq!(header_of(&headers, "accept-ranges"), Some("bytes"));
    assert_eq!(body, file);
    // A clip: exactly its samples.
    let (status, _, body) = get_bytes(
        server.http,
        "/api/recorded/rec-north/audio?from_s=1&to_s=2.5",
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, clip_left, clip_right) = stereo_of(&body);
    assert_eq!(clip_left.len(), 24_000);
    assert_eq!(clip_right, right[16_000..40_000]);
    assert_eq!(clip_left, left[16_000..40_000]);
    // Clamped to the recording's end.
    let (status, _, body) = get_bytes(
        server.http,
        "/api/recorded/rec-north/audio?from_s=2&to_s=100",
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stereo_of(&body).2.len(), 16_000);
    // Byte ranges, for a player that seeks.
    let (status, headers, body) = get_bytes(
        server.http,
        "/api/recorded/rec-north/audio",
        &[("Range", "bytes=0-99")],
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(body, file[..100]);
    assert_eq!(
        header_of(&headers, "content-range"),
        Some(format!("bytes 0-99/{}", file.len()).as_str())
    );
    let (status, _, body) = get_bytes(
        server.http,
        "/api/recorded/rec-north/audio",
        &[("Range", "bytes=1000-")],
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(body, file[1000..]);
    let (status, headers, _) = get_bytes(
        server.http,
        "/api/recorded/rec-north/audio",
        &[("Range", "bytes=99999999-")],
    )
    .await;
    assert_eq!(status, 416);
    assert_eq!(
        header_of(&headers, "content-range"),
        Some(format!("bytes */{}", file.len()).as_str())
    );
    // Bad clips: a 400 naming the parameter.
    for (query, says) in [
        ("from_s=abc&to_s=2", "from_s must be a number"),
        ("from_s=1&to_s=-2", "to_s must be a number"),
        (
            "from_s=2&to_s=1",
            "to_s (1) must be greater than from_s (2)",
        ),
        ("from_s=0&to_s=121", "a clip is at most 120 s"),
        ("from_s=1", "to_s is missing"),
        ("to_s=1", "from_s is missing"),
        (
            "from_s=10&to_s=11",
            "from_s 10 is past the end of the recording",
        ),
    ] {
        let (status, body) = request(
            server.http,
            "GET",
            &format!("/api/recorded/rec-north/audio?{query}"),
            b"",
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            json(&body)["error"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    // No recording, no call: 404 with a JSON error.
    let (status, body) = request(server.http, "GET", "/api/recorded/rec-south/audio", b"").await;
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("has no recording"),
        "{body}"
    );
    let (status, body) = request(server.http, "GET", "/api/recorded/nothere/audio", b"").await;
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("no stored call"),
        "{body}"
    );
    // The report has a player only when the call has a recording.
    let (status, page) = request(server.http, "GET", "/recorded/rec-north", b"").await;
    assert_eq!(status, 200);
    assert!(page.contains("<audio id='call-audio' controls preload='metadata' src='/api/recorded/rec-north/audio'>"), "{page}");
    assert!(page.contains("<script src='/static/report-audio.js'></script>"));
    let (_, page) = request(server.http, "GET", "/recorded/rec-south", b"").await;
    assert!(!page.contains("<audio") && !page.contains("report-audio.js"));
    let (status, _) = request(server.http, "GET", "/static/report-audio.js", b"").await;
    assert_eq!(status, 200);

    // A Twilio call of the team, through the same place: mu-law at 8 kHz, parties not swapped.
    let call = attune_service::ingest::clients::StereoCall {
        call_id: "CA-recorded".into(),
        agent_id: "bo".into(),
        team: "north".into(),
        caller: tone(8000, 2.0, 300.0, 0.1),
        agent: tone(8000, 2.0, 450.0, 0.5),
    };
    let report = attune_service::ingest::clients::stream_twilio(
        &format!("ws://{}", server.http),
        &call,
        50.0,
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.close.as_ref().map(|c| c.0), Some(1000), "{report:?}");
    let path = rec_dir.join("CA-recorded.wav");
    wait_for(
        "the Twilio call's recording",
        Duration::from_secs(20),
        || async { path.exists().then_some(()) },
    )
    .await;
    let (rate_hz, channels, left, right) = stereo_of(&std::fs::read(&path).unwrap());
    assert_eq!((rate_hz, channels), (8000, 2));
    assert!(
        (left.len() as f64 / 8000.0 - 2.0).abs() < 0.1,
        "{}",
        left.len()
    );
    let (caller_rms, agent_rms) = (rms(&left), rms(&right));
    assert!(
        (caller_rms - 0.1 / 2f64.sqrt()).abs() < 0.01
            && (agent_rms - 0.5 / 2f64.sqrt()).abs() < 0.03,
        "caller (left) rms {caller_rms}, agent (right) rms {agent_rms}"
    );

    // Uploads of a recorded team keep their audio (agent on channel 1 → right); others do not.
    let wav = std::fs::read(upset_wav()).unwrap();
    let (status, body) = request(
        server.http,
        "POST",
        "/api/recordings?name=u.wav&agent=ann&team=north&agent_channel=1",
        &wav,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let answer = json(&body);
    let id = answer["call_id"].as_str().unwrap().to_owned();
    let audio_url = format!("/api/recorded/{id}/audio");
    assert_eq!(answer["audio_url"], audio_url.as_str());
    let (status, _, body) = get_bytes(server.http, &audio_url, &[]).await;
    assert_eq!(status, 200);
    let source = attune_qa::files::read_wav(&upset_wav()).unwrap();
    let (rate_hz, _, left, right) = stereo_of(&body);
    assert_eq!(rate_hz, source.sample_rate_hz);
    assert_eq!(left.len(), source.channels[0].len());
    assert!(
        right
            .iter()
            .zip(&source.channels[1])
            .all(|(&s, &v)| s == pcm16(v))
    );
    assert!(
        left.iter()
            .zip(&source.channels[0])
            .all(|(&s, &v)| s == pcm16(v))
    );
    let (status, body) = request(
        server.http,
        "POST",
        "/api/recordings?name=v.wav&agent=ann&team=south",
        &wav,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let answer = json(&body);
    assert!(answer["audio_url"].is_null(), "{body}");
    let id = answer["call_id"].as_str().unwrap();
    let (status, _) = request(
        server.http,
        "GET",
        &format!("/api/recorded/{id}/audio"),
        b"",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(server.metric("attune_recordings_saved_total").await, 3.0);
    assert_eq!(server.metric("attune_recording_errors_total").await, 0.0);
    server.stop().await;
    // Retention with "now" a month on: every recording goes, and is counted.
    let later = std::time::SystemTime::now() + Duration::from_secs(31 * 86_400);
    assert_eq!(recordings.sweep(later).deleted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_report_plays_an_evidence_moment_in_chromium() {
    if !crate::console::browser_available("a_recorded_report_plays_an_evidence_moment_in_chromium")
    {
        return;
    }
    let dir = temp_dir("recordings-browser");
    let (recorder, _, _) = recording_recorder(&dir.join("play.db"), "north");
    let server = ConsoleServer::start_with_store(
        Arc::new(Hub::new(4)),
        "127.0.0.1:0".parse().unwrap(),
        Some(recorder),
    )
    .await;
    let wav = std::fs::read(upset_wav()).unwrap();
    let (status, body) = request(
        server.address(),
        "POST",
        "/api/recordings?name=upset.wav&agent=zoe&team=north&agent_channel=1",
        &wav,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = json(&body)["call_id"].as_str().unwrap().to_owned();

    let browser = Browser::start_with_args(&["--autoplay-policy=no-user-gesture-required"]).await;
    let client = &browser.client;
    client
        .goto(&server.url(&format!("/recorded/{id}")))
        .await
        .unwrap();
    let moment = "#empathy + table button.play-moment";
    wait_for(
        "the moments' play buttons",
        Duration::from_secs(10),
        || async { (browser.count(moment).await > 0).then_some(()) },
    )
    .await;
    assert!(browser.count("#cues + table button.play-moment").await > 0);
    let button = client.find(Locator::Css(moment)).await.unwrap();
    let t_s: f64 = button
        .attr("data-play-s")
        .await
        .unwrap()
        .expect("the moment's time")
        .parse()
        .unwrap();
    button.click().await.unwrap();
    let state = || async {
        client
            .execute(
                "const a = document.getElementById('call-audio');\
                 return [a.readyState, a.currentTime, a.error ? a.error.code : 0, a.paused, a.ended];",
                vec![],
            )
            .await
            .unwrap()
    };
    let reached = wait_for(
        "the player to play from the moment",
        Duration::from_secs(20),
        || async {
            let s = state().await;
            assert_eq!(s[2], 0, "media error: {s}");
            let ready = s[0].as_u64().unwrap_or(0);
            let at = s[1].as_f64().unwrap_or(0.0);
            (ready >= 2 && (at > t_s + 0.3 || s[4] == true)).then_some(at)
        },
    )
    .await;
    assert!(
        reached >= t_s,
        "played from {reached} s, the moment is at {t_s} s"
    );
    browser.screenshot("recorded-report-player.png").await;
    let _ = client.clone().close().await;
    server.stop().await;
}

/// The coaching view in Chromium: zoe's calls on three days (two uploads today with their
/// recordings, copies of their documents stored on earlier days) and a teammate's call; the
/// roster leads to zoe's page, which draws her trend against the team and plays an evidence
/// moment's clip; each moment links to its report's timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coaching_view_shows_an_agents_trend_and_plays_a_moment_in_chromium() {
    if !crate::console::browser_available(
        "the_coaching_view_shows_an_agents_trend_and_plays_a_moment_in_chromium",
    ) {
        return;
    }
    let dir = temp_dir("coaching-browser");
    let db = dir.join("coach.db");
    let (recorder, _, _) = recording_recorder(&db, "north");
    let server = ConsoleServer::start_with_store(
        Arc::new(Hub::new(4)),
        "127.0.0.1:0".parse().unwrap(),
        Some(recorder),
    )
    .await;
    let upset = std::fs::read(upset_wav()).unwrap();
    let calm = std::fs::read(examples_dir().join("calm.wav")).unwrap();
    let mut uploaded = Vec::new();
    for (wav, agent, agent_channel) in [(&upset, "zoe", 1), (&calm, "zoe", 0), (&calm, "yan", 0)] {
        let (status, body) = request(
            server.address(),
            "POST",
            &format!(
                "/api/recordings?name=c.wav&agent={agent}&team=north&agent_channel={agent_channel}"
            ),
            wav,
        )
        .await;
        assert_eq!(status, 201, "{body}");
        uploaded.push(json(&body)["call_id"].as_str().unwrap().to_owned());
    }
    // Copies of zoe's documents on the two days before today (no recordings).
    let (_, doc) = request(
        server.address(),
        "GET",
        &format!("/api/recorded/{}", uploaded[0]),
        b"",
    )
    .await;
    let doc = json(&doc);
    let mut store = Store::open(&db.display().to_string()).unwrap();
    for days_ago in [1u64, 2] {
        let at = attune_qa::rfc3339_utc(
            std::time::SystemTime::now() - Duration::from_secs(days_ago * 86_400),
        );
        let call = attune_qa::store::StoredCall::from_document(
            &doc,
            &format!("zoe-earlier-{days_ago}"),
            "recording",
            Some("zoe".into()),
            Some("north".into()),
            at,
        )
        .unwrap();
        store.save_call(&call).unwrap();
    }
    drop(store);

    let browser = Browser::start_with_args(&["--autoplay-policy=no-user-gesture-required"]).await;
    let client = &browser.client;
    client.goto(&server.url("/coaching")).await.unwrap();
    let zoe = "#agents a[href='/coaching/agent/zoe']";
    wait_for("zoe in the roster", Duration::from_secs(10), || async {
        (browser.count(zoe).await > 0).then_some(())
    })
    .await;
    assert!(browser.count("#teams a[href='/coaching/team/north']").await > 0);
    client
        .find(Locator::Css(zoe))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the trend drawn", Duration::from_secs(10), || async {
        (browser.count("#trend circle.trend-point.subject").await > 0).then_some(())
    })
    .await;
    // Per day: three days of zoe, each with a point; the team's line beside hers.
    client
        .find(Locator::Css("#period"))
        .await
        .unwrap()
        .select_by_value("day")
        .await
        .unwrap();
    client
        .find(Locator::Css("#range button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("three days of zoe", Duration::from_secs(10), || async {
        (browser.count("#trend circle.trend-point.subject").await == 3).then_some(())
    })
    .await;
    assert_eq!(browser.count("#trend polyline.trend-line.subject").await, 1);
    assert!(browser.count("#trend circle.trend-point.team").await >= 3);
    assert_eq!(browser.count("#periods tr").await, 3);
    assert!(browser.count("#items tr").await > 0);
    assert!(
        browser
            .text("#subject-title")
            .await
            .unwrap_or_default()
            .contains("Agent zoe")
    );

    browser.screenshot("coaching-trend.png").await;
    // Moments: each links to its report's timeline; the ones of recorded calls play.
    let links = client
        .find_all(Locator::Css("#moments a.moment-link"))
        .await
        .unwrap();
    assert!(!links.is_empty(), "no moment to review");
    for link in &links {
        let href = link.attr("href").await.unwrap().unwrap();
        assert!(
            href.starts_with("/recorded/") && href.contains("#t="),
            "{href}"
        );
    }
    let play = "#moments button.play-moment";
    assert!(browser.count(play).await > 0, "no moment with a recording");
    let button = client.find(Locator::Css(play)).await.unwrap();
    let url = button.attr("data-audio-url").await.unwrap().unwrap();
    assert!(url.contains("/audio?from_s="), "{url}");
    button.click().await.unwrap();
    let state = || async {
        client
            .execute(
                "const a = document.getElementById('moment-audio');\
                 return [a.readyState, a.currentTime, a.error ? a.error.code : 0, a.ended];",
                vec![],
            )
            .await
            .unwrap()
    };
    wait_for(
        "the moment's clip to play",
        Duration::from_secs(20),
        || async {
            let s = state().await;
            assert_eq!(s[2], 0, "media error: {s}");
            let ready = s[0].as_u64().unwrap_or(0);
            let at = s[1].as_f64().unwrap_or(0.0);
            (ready >= 2 && (at > 0.3 || s[3] == true)).then_some(())
        },
    )
    .await;
    browser.screenshot("coaching-agent.png").await;
    // The moment's link opens the report.
    let href = links[0].attr("href").await.unwrap().unwrap();
    client.goto(&server.url(&href)).await.unwrap();
    wait_for("the report", Duration::from_secs(10), || async {
        (browser.count("#empathy").await > 0).then_some(())
    })
    .await;
    let _ = client.clone().close().await;
    server.stop().await;
}
