//! The browser console: JSON endpoints and 404s over loopback, and the live wall, the agent view
//! and reconnection in headless Chromium (Debian's `chromium` + `chromium-driver`, driven with
//! fantoccini). Screenshots go to `target/screenshots/`.
//!
//! `cargo test --release --test it console_latency -- --ignored --nocapture` measures the
//! event-to-screen latency with 200 live calls on the wall.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use attune_core::cues::CueRules;
use attune_core::cues::{CueEvent, CueKind, CueParty, CueTransition, Evidence, Severity};
use attune_core::model::emotion::EmotionModel;
use attune_service::auth::Gate;
use attune_service::console;
use attune_service::feeder::{self, FeedPace, Recording, ScriptedCall};
use attune_service::hub::{CallInfo, Hub, HubEventKind};

pub(crate) fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/calls")
}

fn model() -> Arc<EmotionModel> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emotion.json");
    Arc::new(attune_qa::files::load_model(&path).expect("load the emotion model"))
}

fn call_info(call_id: &str, agent_id: &str, team: &str) -> CallInfo {
    CallInfo {
        call_id: call_id.into(),
        agent_id: agent_id.into(),
        team: team.into(),
        started_at_unix_ms: 0,
    }
}

pub(crate) fn open_cue(cue_id: u64) -> CueEvent {
    CueEvent {
        cue_id,
        kind: CueKind::AgentSpeakingQuickly,
        party: CueParty::Agent,
        severity: Severity::Warning,
        event: CueTransition::Open,
        t_s: 1.0,
        start_s: 0.0,
        end_s: 1.0,
        evidence: Evidence {
            rule: "test".into(),
            values: Vec::new(),
        },
        guidance: Some("Slow down."),
    }
}

/// A console server on `address` (127.0.0.1:0 for any port); stopped by sending on the channel.
pub(crate) struct ConsoleServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ConsoleServer {
    async fn start(hub: Arc<Hub>, address: SocketAddr) -> Self {
        Self::start_with_store(hub, address, None).await
    }

    /// As [`Self::start`], with stored calls (the Recorded calls page and upload).
    pub(crate) async fn start_with_store(
        hub: Arc<Hub>,
        address: SocketAddr,
        recorder: Option<Arc<attune_service::recorder::CallRecorder>>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("bind the console");
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(console::serve(
            listener,
            hub,
            recorder,
            Arc::new(Gate::disabled()),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            address,
            stop: Some(stop),
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the console stops within 5 s")
            .unwrap()
            .unwrap();
    }
}

/// A bare HTTP/1.1 request with a JSON body; returns (status, body).
async fn http(address: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_bytes(address, method, path, "application/json", body.as_bytes()).await
}

/// A bare HTTP/1.1 request; returns (status, body). The body is sent while the response is
/// read, so a server that answers early (e.g. 413) is heard.
pub(crate) async fn http_bytes(
    address: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let r = raw_request(
        address,
        method,
        path,
        &[("Content-Type", content_type)],
        body,
    )
    .await;
    (r.status, r.body)
}

/// A raw HTTP response: status, header lines (lower-case names), body.
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name=value` of a Set-Cookie header.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .find_map(|(_, v)| {
                v.split(';')
                    .next()
                    .filter(|pair| pair.starts_with(&format!("{name}=")))
                    .map(str::to_owned)
            })
    }
}

/// A bare HTTP/1.1 request with extra headers.
pub(crate) async fn raw_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let (mut read, mut write) = stream.split();
    let send = async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(body).await;
    };
    let mut response = Vec::new();
    // A server that drops the connection (e.g. a TLS port) gives status 0.
    let _ = tokio::join!(send, read.read_to_end(&mut response));
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
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
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

pub(crate) async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_json_endpoints_alerts_acks_and_404s() {
    let hub = Arc::new(Hub::new(16));
    let server = ConsoleServer::start(hub.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let recording = Recording::load_example(&examples_dir().join("upset_caller.wav")).unwrap();
    let script = ScriptedCall::analyse(&recording, model(), &CueRules::default()).unwrap();
    // Replay the analysed call fast and wait until it ended.
    feeder::replay_call(
        &hub,
        call_info("json-1", "agent-json", "red"),
        &script,
        FeedPace { speed: 200.0 },
    )
    .await
    .unwrap();
    let (status, body) = http(server.address, "GET", "/api/calls", "").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["calls"].as_array().unwrap().len(), 0, "ended");
    let (status, body) = http(server.address, "GET", "/api/calls/json-1", "").await;
    assert_eq!(status, 200);
    let timeline = json(&body);
    assert!(timeline["snapshots"].as_array().unwrap().len() > 60);
    assert!(
        timeline["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["caller"]["loudness_db"].is_number()),
        "per-party loudness in the snapshots"
    );
    let cues = timeline["cues"].as_array().unwrap();
    assert!(!cues.is_empty(), "the upset caller raises cues");

    let (status, body) = http(server.address, "GET", "/api/alerts?team=red", "").await;
    assert_eq!(status, 200);
    let alerts = json(&body)["alerts"].as_array().unwrap().clone();
    assert!(!alerts.is_empty());
    let cue_id = alerts[0]["cue"]["cue_id"].as_u64().unwrap();
    let (_, body) = http(server.address, "GET", "/api/alerts?team=blue", "").await;
    assert_eq!(json(&body)["alerts"].as_array().unwrap().len(), 0);
    let (status, body) = http(server.address, "GET", "/api/alerts?severity=loud", "").await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown severity"), "{body}");

    let path = format!("/api/alerts/json-1/{cue_id}/ack");
    // Who acknowledged comes from the session (here: authentication off), never the body.
    let (status, body) = http(server.address, "POST", &path, r#"{"by":"sam"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["by"], "anonymous");
    let (_, body) = http(server.address, "GET", "/api/alerts?team=red", "").await;
    let acked = json(&body)["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["cue"]["cue_id"].as_u64() == Some(cue_id))
        .cloned()
        .unwrap();
    assert_eq!(acked["ack"]["by"], "anonymous");
    let (status, _) = http(server.address, "POST", "/api/alerts/json-1/999999/ack", "").await;
    assert_eq!(status, 404);
    let (status, _) = http(server.address, "POST", &path, "{not json").await;
    assert_eq!(status, 400);

    for (path, needle) in [
        ("/calls/no-such-call", "no call no-such-call"),
        ("/agent/nobody", "No call for agent"),
        ("/calls/%3Cscript%3E", "&lt;script&gt;"),
        ("/nowhere", "Not found"),
    ] {
        let (status, body) = http(server.address, "GET", path, "").await;
        assert_eq!(status, 404, "{path}");
        assert!(
            body.contains(needle) || body.contains("agent.js"),
            "{path}: {body}"
        );
    }
    let (status, body) = http(server.address, "GET", "/api/calls/no-such-call", "").await;
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("no-such-call")
    );
    let (status, _) = http(server.address, "GET", "/calls/json-1", "").await;
    assert_eq!(status, 200);
    let (status, _) = http(server.address, "GET", "/agent/agent-json", "").await;
    assert_eq!(status, 200);
    let (status, body) = http(server.address, "GET", "/static/wall.js", "").await;
    assert_eq!(status, 200);
    // The wall orders by the server's attention score and computes none of its own.
    assert!(body.contains("data.attention"), "{body}");
    let (status, body) = http(server.address, "GET", "/static/common.js", "").await;
    assert_eq!(status, 200);
    assert!(!body.contains("attentionScore"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_event_reader_gets_resync_and_never_slows_ingest() {
    let hub = Arc::new(Hub::new(4));
    let server = ConsoleServer::start(hub.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let request = format!("GET /events HTTP/1.1\r\nHost: {}\r\n\r\n", server.address);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).contains("200 OK"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The reader reads nothing while 60,000 events are published (far more than the hub's
    // subscriber buffer plus the socket buffers hold).
    let call = hub
        .start_call(call_info("flood", "agent-flood", "red"))
        .unwrap();
    let started = Instant::now();
    for cue_id in 0..30_000 {
        let mut cue = open_cue(cue_id);
        hub.publish(&call, HubEventKind::Cue(cue.clone()));
        cue.event = CueTransition::Close;
        hub.publish(&call, HubEventKind::Cue(cue));
    }
    let ingest = started.elapsed();
    assert!(ingest < Duration::from_secs(10), "ingest took {ingest:?}");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("event: resync") {
        assert!(Instant::now() < deadline, "no resync event");
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("the stream goes on")
            .unwrap();
        assert!(read > 0, "the stream ended");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
        if seen.len() > 8192 {
            seen.drain(..seen.len() - 8192);
        }
    }
    let dropped = hub
        .counters
        .events_dropped_slow_subscribers
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped > 0, "missed events are counted");
    drop(stream);
    server.stop().await;
}

/// chromedriver on a free port, and a headless Chromium session through it.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: Driver,
}

/// The chromedriver process, killed when dropped.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a headless Chromium can be driven here. Without `chromedriver` a browser test is
/// skipped (saying so) unless `ATTUNE_REQUIRE_BROWSER=1`, which `.ci/run` sets.
pub(crate) fn browser_available(test: &str) -> bool {
    let found = std::process::Command::new("chromedriver")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("ATTUNE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromedriver must be installed (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED {test}: chromedriver not installed (apt-get install chromium chromium-driver)"
        );
    }
    found
}

impl Browser {
    pub(crate) async fn start() -> Self {
        Self::start_with_args(&[]).await
    }

    /// As [`Self::start`], with more Chromium switches (e.g. an autoplay policy).
    pub(crate) async fn start_with_args(extra_args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(Driver)
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--window-size=1280,900",
        ];
        args.extend_from_slice(extra_args);
        let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(
            serde_json::json!({"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot start chromedriver: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Self {
            client,
            _driver: driver,
        }
    }

    pub(crate) async fn text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |v| v.len())
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(name), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_wall_and_agent_view_in_chromium() {
    if !browser_available("console_wall_and_agent_view_in_chromium") {
        return;
    }
    let hub = Arc::new(Hub::new(16));
    let server = ConsoleServer::start(hub.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let browser = Browser::start().await;
    let client = &browser.client;
    let wall = client.window().await.unwrap();
    client.goto(&server.url("/")).await.unwrap();

    // Two calls: the upset caller (live analysis, 8x real time) and a calm one of another agent.
    let model = model();
    let upset = Recording::load_example(&examples_dir().join("upset_caller.wav")).unwrap();
    let calm = Recording::load_example(&examples_dir().join("calm.wav")).unwrap();
    let pace = FeedPace { speed: 8.0 };
    let feeds = {
        let (hub, model) = (hub.clone(), model.clone());
        tokio::spawn(async move {
            let rules = CueRules::default();
            let a = feeder::feed_call(
                &hub,
                call_info("it-upset", "agent-upset", "red"),
                &upset,
                model.clone(),
                &rules,
                pace,
            );
            let b = feeder::feed_call(
                &hub,
                call_info("it-calm", "agent-calm", "blue"),
                &calm,
                model,
                &rules,
                pace,
            );
            let (a, b) = tokio::join!(a, b);
            a.unwrap();
            b.unwrap();
        })
    };

    let card = "li.call[data-call-id='it-upset']";
    wait_for("the call on the wall", Duration::from_secs(10), || async {
        (browser.count(card).await == 1).then_some(())
    })
    .await;
    let first_state = browser
        .text(&format!("{card} .caller"))
        .await
        .unwrap_or_default();

    // The agent view in a second tab.
    let agent_tab = client.new_window(true).await.unwrap();
    client
        .switch_to_window(agent_tab.handle.clone())
        .await
        .unwrap();
    client
        .goto(&server.url("/agent/agent-upset"))
        .await
        .unwrap();
    let agent_window = client.window().await.unwrap();

    let (mut wall_state, mut wall_cue, mut agent_cue) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(40);
    while wall_state.is_none() || wall_cue.is_none() || agent_cue.is_none() {
        assert!(
            Instant::now() < deadline,
            "timed out: caller state change {wall_state:?}, wall cue {wall_cue:?}, agent cue {agent_cue:?} (first state {first_state:?})"
        );
        client.switch_to_window(wall.clone()).await.unwrap();
        let state = browser
            .text(&format!("{card} .caller"))
            .await
            .unwrap_or_default();
        if wall_state.is_none() && !state.is_empty() && state != first_state {
            wall_state = Some(state);
        }
        if wall_cue.is_none()
            && let Some(cue) = browser.text(&format!("{card} ul.cues li.cue")).await
        {
            browser.screenshot("console-wall.png").await;
            wall_cue = Some(cue);
        }
        client.switch_to_window(agent_window.clone()).await.unwrap();
        if agent_cue.is_none()
            && let Some(tip) = browser.text(".cue-tip").await
        {
            browser.screenshot("console-agent.png").await;
            agent_cue = Some(tip);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The agent view shows only the agent's own call.
    let agent_page = browser.text("main").await.unwrap();
    assert!(!agent_page.contains("it-calm"), "{agent_page}");
    assert!(!agent_page.contains("agent-calm"), "{agent_page}");
    eprintln!(
        "wall: caller {first_state:?} -> {wall_state:?}, cue {wall_cue:?}; agent view: {agent_cue:?}"
    );

    // The alert feed: an acknowledgement made elsewhere shows up live.
    client.goto(&server.url("/alerts")).await.unwrap();
    let row = "tr[data-alert^='it-upset/']";
    wait_for("alerts listed", Duration::from_secs(10), || async {
        (browser.count(row).await > 0).then_some(())
    })
    .await;
    let alert_key = browser
        .client
        .find(Locator::Css(row))
        .await
        .unwrap()
        .attr("data-alert")
        .await
        .unwrap()
        .unwrap();
    let (status, _) = http(
        server.address,
        "POST",
        &format!("/api/alerts/{alert_key}/ack"),
        r#"{"by":"lead"}"#,
    )
    .await;
    assert_eq!(status, 200);
    wait_for(
        "the acknowledgement on the page",
        Duration::from_secs(10),
        || async {
            let text = browser
                .text(&format!("tr[data-alert='{alert_key}']"))
                .await?;
            // Who acknowledged comes from the session (authentication off here).
            text.contains("by anonymous").then_some(())
        },
    )
    .await;
    browser.screenshot("console-alerts.png").await;

    // Hundreds of open cues on one call: the card shows a few and counts the rest.
    let many = hub
        .start_call(call_info("it-many", "agent-many", "red"))
        .unwrap();
    for cue_id in 1..=300 {
        hub.publish(&many, HubEventKind::Cue(open_cue(cue_id)));
    }
    client.switch_to_window(wall.clone()).await.unwrap();
    wait_for("+294 more", Duration::from_secs(10), || async {
        let text = browser
            .text("li.call[data-call-id='it-many'] ul.cues")
            .await?;
        text.contains("+294 more").then_some(())
    })
    .await;
    client.switch_to_window(agent_window.clone()).await.unwrap();

    // The detail view draws its charts.
    client.goto(&server.url("/calls/it-upset")).await.unwrap();
    wait_for("charts", Duration::from_secs(10), || async {
        (browser.count("#chart-loud path").await >= 2
            && browser.count("#chart-ribbon rect").await > 3)
            .then_some(())
    })
    .await;
    browser.screenshot("console-call.png").await;

    // An unknown call: a 404 page, not a blank screen.
    client.goto(&server.url("/calls/nope")).await.unwrap();
    assert_eq!(
        browser.text("#not-found").await.as_deref(),
        Some("Not found")
    );

    // Back on the wall: a server restart is noticed and recovered from without a reload.
    client.switch_to_window(wall.clone()).await.unwrap();
    let address = server.address;
    server.stop().await;
    wait_for("the stale notice", Duration::from_secs(20), || async {
        let stale = client
            .execute("return document.body.dataset.stale", vec![])
            .await
            .ok()?;
        (stale == "true").then_some(())
    })
    .await;
    browser.screenshot("console-stale.png").await;
    let server = ConsoleServer::start(hub.clone(), address).await;
    wait_for("reconnection", Duration::from_secs(30), || async {
        let stale = client
            .execute("return document.body.dataset.stale", vec![])
            .await
            .ok()?;
        (stale == "false").then_some(())
    })
    .await;
    feeds.abort();
    let _ = client.clone().close().await;
    server.stop().await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Event-to-screen latency with 200 live calls on the wall (real-time pace; the calls replay
/// pre-analysed events so the two cores go to the server and the browser, not the analysis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly (about 60 s)"]
async fn console_latency_with_200_live_calls() {
    if !browser_available("console_latency_with_200_live_calls") {
        return;
    }
    const CALLS: usize = 200;
    let hub = Arc::new(Hub::new(CALLS + 10));
    let server = ConsoleServer::start(hub.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let model = model();
    let scripts: Vec<Arc<ScriptedCall>> = Recording::load_examples(&examples_dir())
        .unwrap()
        .iter()
        .map(|r| Arc::new(ScriptedCall::analyse(r, model.clone(), &CueRules::default()).unwrap()))
        .collect();
    let mut feeds = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let hub = hub.clone();
        let script = scripts[i % scripts.len()].clone();
        feeds.spawn(async move {
            // Staggered over 5 s so the calls are at different points.
            tokio::time::sleep(Duration::from_millis(25 * i as u64)).await;
            loop {
                let info = call_info(
                    &format!("load-{i}-{}", attune_service::hub::now_unix_ms()),
                    &format!("agent-{i:03}"),
                    ["north", "south", "east", "west"][i % 4],
                );
                let _ = feeder::replay_call(&hub, info, &script, FeedPace::REAL_TIME).await;
            }
        });
    }
    let browser = Browser::start().await;
    let client = &browser.client;
    client.goto(&server.url("/")).await.unwrap();
    wait_for("200 calls on the wall", Duration::from_secs(30), || async {
        (browser.count("li.call").await >= CALLS).then_some(())
    })
    .await;
    // Measure for 30 s: drop the warm-up, and probe responsiveness with a timer's lateness.
    client
        .execute(
            "window.attuneLatencies.length = 0; window.timerLateMs = [];
             let last = performance.now();
             setInterval(() => { const now = performance.now(); window.timerLateMs.push(now - last - 100); last = now; }, 100);
             return 0;",
            vec![],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let read = |script: &'static str| async move {
        let value = client.execute(script, vec![]).await.unwrap();
        let mut v: Vec<f64> = serde_json::from_value(value).unwrap();
        v.sort_by(f64::total_cmp);
        v
    };
    let latencies = read("return window.attuneLatencies.slice()").await;
    let late = read("return window.timerLateMs.slice()").await;
    let cards = browser.count("li.call").await;
    browser.screenshot("console-wall-200.png").await;
    println!(
        "console latency, {cards} calls on the wall, {} events rendered in 30 s: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "page responsiveness: 100 ms timer late by p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; events dropped for slow subscribers: {}",
        percentile(&late, 50.0),
        percentile(&late, 95.0),
        late.last().copied().unwrap_or(f64::NAN),
        hub.counters
            .events_dropped_slow_subscribers
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(latencies.len() > 1000, "too few events rendered");
    assert!(
        percentile(&latencies, 95.0) < 500.0,
        "p95 latency over 500 ms"
    );
    feeds.abort_all();
    let _ = client.clone().close().await;
    server.stop().await;
}

/// `attune demo` prints the console URL and has live calls on it within seconds; it is served
/// through the service's HTTP edge (a stalled request head is cut at its timeout) and drains
/// and exits cleanly at SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_live_example_calls() {
    use std::io::BufRead;
    let db = crate::util::temp_dir("demo-db").join("demo.db");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_attune"))
        .args([
            "demo",
            "--http",
            "127.0.0.1:0",
            "--calls",
            "2",
            "--speed",
            "4",
            "--db",
            &db.display().to_string(),
            "--http-header-timeout-s",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run attune demo");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    // Sign-in is on: the demo prints a one-time link for its admin.
    let link = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim()
                .strip_prefix("sign in")
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        })
        .expect("the demo prints a sign-in link");
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim()
                .strip_prefix("live wall")
                .map(|u| u.trim().to_owned())
        })
        .expect("the demo prints the wall's URL");
    let address: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (status, _) = http(address, "GET", "/api/calls", "").await;
    assert_eq!(status, 401, "the demo's API needs a sign-in");
    let path = link.trim_start_matches(&format!("http://{address}"));
    let signed_in = raw_request(address, "GET", path, &[], b"").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookie = signed_in
        .cookie("attune_session")
        .expect("a session cookie");
    let again = raw_request(address, "GET", path, &[], b"").await;
    assert_eq!(again.status, 401, "a sign-in link works once");
    let get = |path: &'static str| {
        let cookie = cookie.clone();
        async move {
            let r = raw_request(address, "GET", path, &[("Cookie", &cookie)], b"").await;
            (r.status, r.body)
        }
    };
    let judged = wait_for("a judged demo call", Duration::from_secs(30), || async {
        let (status, body) = get("/api/calls").await;
        let calls = json(&body)["calls"].as_array()?.clone();
        (status == 200
            && calls
                .iter()
                .any(|c| c["latest"]["caller_emotion"].is_object()))
        .then_some(calls)
    })
    .await;
    assert!(
        judged
            .iter()
            .all(|c| c["call"]["call_id"].as_str().unwrap().starts_with("demo-"))
    );
    // The demo stores its calls: the Recorded calls endpoint answers from its database.
    let (status, body) = get("/api/recorded").await;
    assert_eq!(status, 200, "{body}");
    assert!(json(&body)["calls"].is_array(), "{body}");
    assert!(
        !body.contains(&db.display().to_string()),
        "the store's path is not the client's to read: {body}"
    );
    // The HTTP edge of `attune serve`: a request head that never ends is cut at the timeout.
    let mut stalled = tokio::net::TcpStream::connect(address).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let began = Instant::now();
    let mut buf = [0u8; 1024];
    let cut = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(1..) = stalled.read(&mut buf).await {}
    })
    .await;
    assert!(cut.is_ok(), "the demo keeps a stalled request head open");
    assert!(
        began.elapsed() >= Duration::from_millis(700),
        "{:?}",
        began.elapsed()
    );
    #[cfg(unix)]
    {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let stopped = wait_for("the demo to exit", Duration::from_secs(20), || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await;
        assert!(
            stopped.success(),
            "the demo drains and exits cleanly: {stopped}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn demo_names_a_missing_calls_folder() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_attune"))
        .args([
            "demo",
            "--http",
            "127.0.0.1:0",
            "--calls-dir",
            "/no/such/folder",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/no/such/folder"), "{stderr}");
}
