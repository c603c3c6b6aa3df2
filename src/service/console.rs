//! The browser console over HTTP: the supervisors' live wall (`/`), a call's detail view
//! (`/calls/{call_id}`), the alert feed (`/alerts`), the agent's own view (`/agent/{agent_id}`),
//! the JSON endpoints behind them (`/api/...`) and the live push (`/events`, server-sent
//! events). Everything is read from the [`Hub`]; the assets (`web/`) are embedded in the binary.
//!
//! [`routes`] is the router to merge into a service; [`serve`] runs it alone on an already-bound
//! listener until a shutdown signal (the demo and the tests).
//!
//! Slow consoles never slow ingest: each `/events` stream reads the hub's broadcast at its own
//! pace; one that falls behind gets a `resync` event (the page re-reads the state) and its
//! missed events are counted with [`Hub::count_dropped`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::cues::Severity;
use crate::service::hub::{
    AlertAck, AlertFilter, CallFilter, CallView, Hub, HubEvent, HubEventKind, now_unix_ms,
};

/// Alerts returned by `/api/alerts` when no `limit` is given (and the most it returns).
pub const ALERTS_DEFAULT_LIMIT: usize = 200;
pub const ALERTS_MAX_LIMIT: usize = 2_000;
/// Period of the `tick` event every `/events` stream sends, so pages can tell live from stale.
pub const TICK_PERIOD: Duration = Duration::from_secs(5);

/// Tells the console's event streams to end (so a graceful shutdown does not wait for open
/// browser tabs). [`StopSignal::never`] for a router whose server ends its connections itself.
#[derive(Clone, Debug)]
pub struct StopSignal {
    receiver: watch::Receiver<bool>,
    /// For [`StopSignal::never`]: the sender, kept alive so the signal never reads as fired.
    _never: Option<Arc<watch::Sender<bool>>>,
}

impl StopSignal {
    /// A signal and the sender that fires it (`send(true)`, or dropping it).
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, receiver) = watch::channel(false);
        (
            tx,
            Self {
                receiver,
                _never: None,
            },
        )
    }

    /// A signal that fires when `receiver` reads `true` (or its sender is dropped): e.g. a
    /// service's own shutdown signal.
    pub fn from_receiver(receiver: watch::Receiver<bool>) -> Self {
        Self {
            receiver,
            _never: None,
        }
    }

    /// A signal that never fires.
    pub fn never() -> Self {
        let (tx, receiver) = watch::channel(false);
        Self {
            receiver,
            _never: Some(Arc::new(tx)),
        }
    }

    async fn fired(&mut self) {
        // A dropped sender counts as fired.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}

#[derive(Clone)]
struct ConsoleState {
    hub: Arc<Hub>,
    /// Identifies this server run (its start, ms since the Unix epoch): pages that see it change
    /// know the server restarted.
    boot_id: u64,
    stop: StopSignal,
}

/// The console's routes (pages, assets, JSON, `/events`). Merge into a service's router.
pub fn routes(hub: Arc<Hub>, stop: StopSignal) -> Router {
    let state = ConsoleState {
        hub,
        boot_id: now_unix_ms(),
        stop,
    };
    Router::new()
        .route("/", get(wall_page))
        .route("/calls/{call_id}", get(call_page))
        .route("/alerts", get(alerts_page))
        .route("/agent/{agent_id}", get(agent_page))
        .route("/static/{file}", get(asset))
        .route("/api/calls", get(api_calls))
        .route("/api/calls/{call_id}", get(api_call))
        .route("/api/alerts", get(api_alerts))
        .route("/api/alerts/{call_id}/{cue_id}/ack", post(api_ack))
        .route("/events", get(events))
        .fallback(not_found_page)
        .with_state(state)
}

/// Serves the console alone on `listener` until `shutdown` completes; open event streams are
/// ended, and connections still open a second later are dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop) = StopSignal::new();
    let mut stopped = stop.clone();
    let app = routes(hub, stop);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    tokio::select! {
        result = server => result,
        () = async {
            stopped.fired().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        } => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Pages and assets

const PAGE_WALL: &str = include_str!("../../web/wall.html");
const PAGE_CALL: &str = include_str!("../../web/call.html");
const PAGE_ALERTS: &str = include_str!("../../web/alerts.html");
const PAGE_AGENT: &str = include_str!("../../web/agent.html");
const PAGE_NOT_FOUND: &str = include_str!("../../web/404.html");

/// Embedded assets: (file name, content type, text).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../web/console.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/common.js"),
    ),
    (
        "wall.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/wall.js"),
    ),
    (
        "call.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/call.js"),
    ),
    (
        "alerts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/alerts.js"),
    ),
    (
        "agent.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/agent.js"),
    ),
];

fn page(status: StatusCode, html: &'static str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// The 404 page, naming what was not found (escaped).
fn not_found(what: &str) -> Response {
    let html = PAGE_NOT_FOUND.replace("{{what}}", &crate::qa::html::escape(what));
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

async fn wall_page() -> Response {
    page(StatusCode::OK, PAGE_WALL)
}

async fn alerts_page() -> Response {
    page(StatusCode::OK, PAGE_ALERTS)
}

async fn call_page(State(state): State<ConsoleState>, Path(call_id): Path<String>) -> Response {
    if state.hub.timeline(&call_id).is_some() {
        page(StatusCode::OK, PAGE_CALL)
    } else {
        not_found(&format!("call {call_id}"))
    }
}

/// The agent's page. An agent with no live or recent call gets the page with status 404: it
/// says so and shows their next call when it starts.
async fn agent_page(State(state): State<ConsoleState>, Path(agent_id): Path<String>) -> Response {
    let filter = CallFilter {
        agent_id: Some(agent_id),
        ..CallFilter::default()
    };
    let known =
        !state.hub.live_calls(&filter).is_empty() || !state.hub.ended_calls(&filter).is_empty();
    let status = if known {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    page(status, PAGE_AGENT)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, text)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *text,
        )
            .into_response(),
        None => not_found(&format!("file {file}")),
    }
}

async fn not_found_page(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        json_error(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path()))
    } else {
        not_found(&format!("page {}", uri.path()))
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn json_error(status: StatusCode, error: String) -> Response {
    (status, axum::Json(ErrorBody { error })).into_response()
}

/// Query of `/api/calls`, `/api/alerts` and `/events`; empty values match everything.
#[derive(Debug, Default, Deserialize)]
struct CallQuery {
    team: Option<String>,
    agent_id: Option<String>,
    call_id: Option<String>,
    severity: Option<String>,
    limit: Option<usize>,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| !v.is_empty()).cloned()
}

impl CallQuery {
    fn filter(&self) -> CallFilter {
        CallFilter {
            team: non_empty(&self.team),
            agent_id: non_empty(&self.agent_id),
            call_id: non_empty(&self.call_id),
        }
    }
}

/// How much a call needs a supervisor's attention (higher first): open critical cues, then
/// warnings, an upset caller, a tense agent. The wall's script orders cards by the same rule.
pub fn attention_score(view: &CallView) -> u32 {
    let mut score = 0;
    for cue in &view.open_cues {
        score += match cue.severity {
            Severity::Critical => 1_000,
            Severity::Warning => 100,
            Severity::Info => 0,
        };
    }
    if let Some(latest) = &view.latest {
        if let Some(emotion) = &latest.caller_emotion {
            score += match emotion.emotion {
                Some("angry") => 300,
                Some("anxious" | "sad") => 100,
                _ => 0,
            };
        }
        if let Some(calmness) = latest.agent_calmness {
            if calmness < 40.0 {
                score += 200;
            } else if calmness < 60.0 {
                score += 80;
            }
        }
    }
    score
}

#[derive(Serialize)]
struct CallsBody {
    server_time_unix_ms: u64,
    boot_id: u64,
    calls: Vec<RankedCall>,
}

#[derive(Serialize)]
struct RankedCall {
    attention: u32,
    #[serde(flatten)]
    view: CallView,
}

async fn api_calls(State(state): State<ConsoleState>, Query(query): Query<CallQuery>) -> Response {
    let mut calls: Vec<RankedCall> = state
        .hub
        .live_calls(&query.filter())
        .into_iter()
        .map(|view| RankedCall {
            attention: attention_score(&view),
            view,
        })
        .collect();
    calls.sort_by(|a, b| {
        b.attention.cmp(&a.attention).then_with(|| {
            a.view
                .call
                .started_at_unix_ms
                .cmp(&b.view.call.started_at_unix_ms)
        })
    });
    axum::Json(CallsBody {
        server_time_unix_ms: now_unix_ms(),
        boot_id: state.boot_id,
        calls,
    })
    .into_response()
}

async fn api_call(State(state): State<ConsoleState>, Path(call_id): Path<String>) -> Response {
    match state.hub.timeline(&call_id) {
        Some(timeline) => axum::Json(timeline).into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            format!("no live or recent call {call_id:?}"),
        ),
    }
}

fn parse_severity(name: &str) -> Option<Severity> {
    [Severity::Info, Severity::Warning, Severity::Critical]
        .into_iter()
        .find(|s| s.as_str() == name)
}

#[derive(Serialize)]
struct AlertsBody {
    server_time_unix_ms: u64,
    alerts: Vec<crate::service::hub::Alert>,
}

async fn api_alerts(State(state): State<ConsoleState>, Query(query): Query<CallQuery>) -> Response {
    let severity = match non_empty(&query.severity) {
        None => None,
        Some(name) => match parse_severity(&name) {
            Some(s) => Some(s),
            None => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown severity {name:?} (expected info, warning or critical)"),
                );
            }
        },
    };
    let filter = AlertFilter {
        calls: query.filter(),
        severity,
    };
    let limit = query
        .limit
        .unwrap_or(ALERTS_DEFAULT_LIMIT)
        .min(ALERTS_MAX_LIMIT);
    axum::Json(AlertsBody {
        server_time_unix_ms: now_unix_ms(),
        alerts: state.hub.alerts(&filter, limit),
    })
    .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct AckBody {
    #[serde(default)]
    by: String,
}

async fn api_ack(
    State(state): State<ConsoleState>,
    Path((call_id, cue_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(cue_id) = cue_id.parse::<u64>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("cue id must be a whole number, got {cue_id:?}"),
        );
    };
    let body: AckBody = if body.iter().all(u8::is_ascii_whitespace) {
        AckBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!("body must be JSON like {{\"by\": \"name\"}}: {e}"),
                );
            }
        }
    };
    match state.hub.acknowledge_alert(&call_id, cue_id, &body.by) {
        Ok(ack) => axum::Json(ack).into_response(),
        Err(e) => json_error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

fn hub_event_name(kind: &HubEventKind) -> &'static str {
    match kind {
        HubEventKind::CallStarted => "call_started",
        HubEventKind::Snapshot(_) => "snapshot",
        HubEventKind::Emotion(_) => "emotion",
        HubEventKind::Cue(_) => "cue",
        HubEventKind::CallEnded(_) => "call_ended",
    }
}

fn sse_json(name: &'static str, value: &impl Serialize) -> Event {
    match serde_json::to_string(value) {
        Ok(data) => Event::default().event(name).data(data),
        Err(e) => Event::default().event("error").data(e.to_string()),
    }
}

#[derive(Serialize)]
struct Hello {
    boot_id: u64,
    server_time_unix_ms: u64,
}

#[derive(Serialize)]
struct Resync {
    missed_events: u64,
}

struct EventStream {
    hub: Arc<Hub>,
    filter: CallFilter,
    events: broadcast::Receiver<Arc<HubEvent>>,
    acks: Option<broadcast::Receiver<AlertAck>>,
    hello: Option<Event>,
    tick: tokio::time::Interval,
    stop: StopSignal,
}

impl EventStream {
    async fn next_event(&mut self) -> Option<Event> {
        if let Some(hello) = self.hello.take() {
            return Some(hello);
        }
        loop {
            tokio::select! {
                biased;
                () = self.stop.fired() => return None,
                received = self.events.recv() => match received {
                    Ok(event) => {
                        if self.filter.matches(&event.call) {
                            return Some(sse_json(hub_event_name(&event.kind), &*event));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        self.hub.count_dropped(missed);
                        return Some(sse_json("resync", &Resync { missed_events: missed }));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                received = recv_ack(&mut self.acks) => match received {
                    Ok(ack) => {
                        if self.filter.matches(&ack.call) {
                            return Some(sse_json("ack", &ack));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some(sse_json("resync", &Resync { missed_events: missed }));
                    }
                    Err(broadcast::error::RecvError::Closed) => self.acks = None,
                },
                _ = self.tick.tick() => {
                    return Some(sse_json("tick", &Hello {
                        boot_id: 0,
                        server_time_unix_ms: now_unix_ms(),
                    }));
                }
            }
        }
    }
}

async fn recv_ack(
    acks: &mut Option<broadcast::Receiver<AlertAck>>,
) -> Result<AlertAck, broadcast::error::RecvError> {
    match acks {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `/events?team=&agent_id=&call_id=`: `hello` first, then every matching hub event (named by
/// its type: `call_started`, `snapshot`, `emotion`, `cue`, `call_ended`), `ack` for
/// acknowledgements (not on agent streams), `resync` after falling behind, `tick` every
/// [`TICK_PERIOD`].
async fn events(State(state): State<ConsoleState>, Query(query): Query<CallQuery>) -> Response {
    let filter = query.filter();
    let (_, events) = state.hub.subscribe(&filter);
    let acks = filter
        .agent_id
        .is_none()
        .then(|| state.hub.subscribe_acks());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK_PERIOD, TICK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = EventStream {
        hub: state.hub.clone(),
        filter,
        events,
        acks,
        hello: Some(sse_json(
            "hello",
            &Hello {
                boot_id: state.boot_id,
                server_time_unix_ms: now_unix_ms(),
            },
        )),
        tick,
        stop: state.stop.clone(),
    };
    let stream = futures_util::stream::unfold(stream, |mut s| async move {
        let event = s.next_event().await?;
        Some((Ok::<_, std::convert::Infallible>(event), s))
    });
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            crate::qa::html::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn every_asset_the_pages_load_is_embedded() {
        for page in [
            PAGE_WALL,
            PAGE_CALL,
            PAGE_ALERTS,
            PAGE_AGENT,
            PAGE_NOT_FOUND,
        ] {
            for part in page.split("/static/").skip(1) {
                let file = part.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|(name, _, _)| *name == file),
                    "{file} is not embedded"
                );
            }
        }
    }

    #[tokio::test]
    async fn stop_signals_fire_when_told_or_dropped_and_never_otherwise() {
        let short = Duration::from_millis(20);
        let mut never = StopSignal::never();
        assert!(tokio::time::timeout(short, never.fired()).await.is_err());
        let (tx, mut stop) = StopSignal::new();
        assert!(tokio::time::timeout(short, stop.fired()).await.is_err());
        tx.send(true).unwrap();
        assert!(tokio::time::timeout(short, stop.fired()).await.is_ok());
        let (tx, mut stop) = StopSignal::new();
        drop(tx);
        assert!(tokio::time::timeout(short, stop.fired()).await.is_ok());
    }
}
