//! The browser console over HTTP: the supervisors' live wall (`/`), a call's detail view
//! (`/calls/{call_id}`), the alert feed (`/alerts`), the agent's own view (`/agent/{agent_id}`),
//! the JSON endpoints behind them (`/api/...`) and the live push (`/events`, server-sent
//! events). Everything live is read from the [`Hub`]; the assets (`web/`) are embedded in the
//! binary.
//!
//! Stored calls (with a [`CallRecorder`], i.e. `--db`): the "Recorded calls" page
//! (`/recorded`, filters as `attune calls`, upload of a recording to score), a stored call's QA
//! report (`/recorded/{call_id}`, the HTML of `attune analyze --format html` drawn from the
//! stored result document), their JSON (`/api/recorded`, `/api/recorded/{call_id}`) and the
//! upload (`POST /api/recordings?name=&agent=&team=`, the WAV file as the body). The database
//! work and the scoring run on blocking threads.
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
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::auth::web::{Authed, ClientAddress};
use crate::auth::{Access, Gate, Principal, Role};
use crate::hub::{
    AlertAck, AlertFilter, CallFilter, CallInfo, CallView, Hub, HubEvent, HubEventKind, now_unix_ms,
};
use crate::recorder::{CallRecorder, UploadError, UploadInfo};
use attune_core::cues::Severity;

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
    /// The store of recorded calls (none: the Recorded calls page says so).
    recorder: Option<Arc<CallRecorder>>,
    /// Who may see and do what.
    gate: Arc<Gate>,
}

impl FromRef<ConsoleState> for Arc<Gate> {
    fn from_ref(state: &ConsoleState) -> Arc<Gate> {
        state.gate.clone()
    }
}

fn forbidden(what: &str) -> Response {
    json_error(StatusCode::FORBIDDEN, format!("forbidden: {what}"))
}

/// Whether `who` may see this live call.
fn may_view(who: &Principal, call: &CallInfo) -> bool {
    who.may(Access::ViewLiveCall {
        team: &call.team,
        agent_id: &call.agent_id,
    })
}

/// The call filter of a request, narrowed to what `who` may see: an agent's queries are
/// always about their own calls, whatever the query says.
fn scoped_filter(who: &Principal, query: &CallQuery) -> CallFilter {
    let mut filter = query.filter();
    if who.role == Role::Agent {
        filter.agent_id = Some(who.agent_id.clone().unwrap_or_else(|| "\0none".into()));
    }
    filter
}

/// Runs an audit write off the async threads (nothing when authentication is off).
fn audit(
    gate: &Arc<Gate>,
    who: &Principal,
    action: &str,
    target: &str,
    source: &str,
    outcome: &str,
) {
    if !gate.enabled() {
        return;
    }
    let (gate, actor, action, target, source, outcome) = (
        gate.clone(),
        who.actor.clone(),
        action.to_owned(),
        target.to_owned(),
        source.to_owned(),
        outcome.to_owned(),
    );
    tokio::task::spawn_blocking(move || gate.audit(&actor, &action, &target, &source, &outcome));
}

/// The console's routes (pages, assets, JSON, `/events`, and the recorded calls when
/// `recorder` is given). Merge into a service's router.
pub fn routes(
    hub: Arc<Hub>,
    stop: StopSignal,
    recorder: Option<Arc<CallRecorder>>,
    gate: Arc<Gate>,
) -> Router {
    // The body limit is enforced by the handler (with a message naming it); axum's own limit
    // sits just above, so the handler sees every body up to it.
    let upload_limit = recorder
        .as_ref()
        .map_or(0, |r| r.max_upload_bytes)
        .saturating_add(1);
    let state = ConsoleState {
        hub,
        boot_id: now_unix_ms(),
        stop,
        recorder,
        gate: gate.clone(),
    };
    Router::new()
        .route("/recorded", get(recorded_page))
        .route("/recorded/{call_id}", get(recorded_report_page))
        .route("/api/recorded", get(api_recorded))
        .route("/api/recorded/{call_id}", get(api_recorded_call))
        .route(
            "/api/recordings",
            post(api_upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/", get(wall_page))
        .route("/calls/{call_id}", get(call_page))
        .route("/alerts", get(alerts_page))
        .route("/agent", get(own_agent_page))
        .route("/agent/{agent_id}", get(agent_page))
        .route("/admin/audit", get(audit_page))
        .route("/api/audit", get(api_audit))
        .route("/static/{file}", get(asset))
        .route("/api/calls", get(api_calls))
        .route("/api/calls/{call_id}", get(api_call))
        .route("/api/alerts", get(api_alerts))
        .route("/api/alerts/{call_id}/{cue_id}/ack", post(api_ack))
        .route("/events", get(events))
        .fallback(not_found_page)
        .with_state(state)
        .merge(crate::auth::web::routes(gate))
        .layer(axum::middleware::from_fn(
            crate::auth::web::security_headers,
        ))
}

/// Serves the console alone on `listener` until `shutdown` completes; open event streams are
/// ended, and connections still open a second later are dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Arc<Hub>,
    recorder: Option<Arc<CallRecorder>>,
    gate: Arc<Gate>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop) = StopSignal::new();
    let mut stopped = stop.clone();
    let app = routes(hub, stop, recorder, gate);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<crate::tls::PeerAddr>(),
    )
    .with_graceful_shutdown(async move {
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

const PAGE_WALL: &str = include_str!("../../../web/wall.html");
const PAGE_CALL: &str = include_str!("../../../web/call.html");
const PAGE_ALERTS: &str = include_str!("../../../web/alerts.html");
const PAGE_AGENT: &str = include_str!("../../../web/agent.html");
const PAGE_NOT_FOUND: &str = include_str!("../../../web/404.html");
const PAGE_RECORDED: &str = include_str!("../../../web/recorded.html");
const PAGE_AUDIT: &str = include_str!("../../../web/audit.html");

/// Embedded assets: (file name, content type, text).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../../web/console.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/common.js"),
    ),
    (
        "wall.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/wall.js"),
    ),
    (
        "call.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/call.js"),
    ),
    (
        "alerts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/alerts.js"),
    ),
    (
        "agent.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/agent.js"),
    ),
    (
        "recorded.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/recorded.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/audit.js"),
    ),
];

fn page(status: StatusCode, html: &'static str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// The 404 page, naming what was not found (escaped).
fn not_found(what: &str) -> Response {
    let html = PAGE_NOT_FOUND.replace("{{what}}", &attune_qa::html::escape(what));
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

/// Where a principal starts: agents on their own view, QA analysts on the recorded calls.
fn home_of(who: &Principal) -> Option<&'static str> {
    match who.role {
        Role::Agent => Some("/agent"),
        Role::Qa => Some("/recorded"),
        _ => None,
    }
}

async fn wall_page(Authed(who): Authed) -> Response {
    if let Some(home) = home_of(&who) {
        return axum::response::Redirect::to(home).into_response();
    }
    if !who.sees_live_calls() {
        return forbidden("this role does not see live calls");
    }
    page(StatusCode::OK, PAGE_WALL)
}

async fn alerts_page(Authed(who): Authed) -> Response {
    if !who.sees_live_calls() || who.role == Role::Agent {
        return forbidden("the alert feed is for supervisors");
    }
    page(StatusCode::OK, PAGE_ALERTS)
}

async fn call_page(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Path(call_id): Path<String>,
) -> Response {
    match state.hub.timeline(&call_id) {
        Some(t) if may_view(&who, &t.view.call) => page(StatusCode::OK, PAGE_CALL),
        // A call one may not see is not found, so ids cannot be probed.
        _ => not_found(&format!("call {call_id}")),
    }
}

/// `/agent`: the signed-in agent's own view.
async fn own_agent_page(Authed(who): Authed) -> Response {
    match (&who.role, &who.agent_id) {
        (Role::Agent, Some(id)) => {
            let path = format!("/agent/{}", crate::auth::web::path_segment(id));
            axum::response::Redirect::to(&path).into_response()
        }
        (Role::Agent, None) => forbidden("this agent account has no agent id"),
        _ => forbidden("/agent is an agent's own view; open /agent/AGENT_ID"),
    }
}

/// The agent's page. An agent with no live or recent call gets the page with status 404: it
/// says so and shows their next call when it starts. Agents open only their own.
async fn agent_page(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Path(agent_id): Path<String>,
) -> Response {
    let allowed = match who.role {
        Role::Agent => who.agent_id.as_deref() == Some(agent_id.as_str()),
        Role::Admin | Role::Supervisor | Role::Monitor | Role::Api => true,
        _ => false,
    };
    if !allowed {
        return forbidden("an agent sees only their own view");
    }
    let filter = CallFilter {
        agent_id: Some(agent_id),
        ..CallFilter::default()
    };
    let visible = |views: Vec<CallView>| views.iter().any(|v| may_view(&who, &v.call));
    let known = visible(state.hub.live_calls(&filter)) || visible(state.hub.ended_calls(&filter));
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

async fn api_calls(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(query): Query<CallQuery>,
) -> Response {
    if !who.sees_live_calls() {
        return forbidden("this role does not see live calls");
    }
    let mut calls: Vec<RankedCall> = state
        .hub
        .live_calls(&scoped_filter(&who, &query))
        .into_iter()
        .filter(|view| may_view(&who, &view.call))
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

async fn api_call(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Path(call_id): Path<String>,
) -> Response {
    match state.hub.timeline(&call_id) {
        Some(timeline) if may_view(&who, &timeline.view.call) => {
            axum::Json(timeline).into_response()
        }
        _ => json_error(
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
    alerts: Vec<crate::hub::Alert>,
}

async fn api_alerts(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(query): Query<CallQuery>,
) -> Response {
    if !who.sees_live_calls() {
        return forbidden("this role does not see alerts");
    }
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
        calls: scoped_filter(&who, &query),
        severity,
    };
    let limit = query
        .limit
        .unwrap_or(ALERTS_DEFAULT_LIMIT)
        .min(ALERTS_MAX_LIMIT);
    let mut alerts = state.hub.alerts(&filter, ALERTS_MAX_LIMIT);
    alerts.retain(|a| may_view(&who, &a.call));
    alerts.truncate(limit);
    axum::Json(AlertsBody {
        server_time_unix_ms: now_unix_ms(),
        alerts,
    })
    .into_response()
}

/// `POST /api/alerts/{call_id}/{cue_id}/ack`: acknowledges an alert as the signed-in person
/// (who made it comes from the session, never from the request). The body, if any, must be
/// JSON; it is not needed.
async fn api_ack(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    headers: axum::http::HeaderMap,
    Path((call_id, cue_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(cue_id) = cue_id.parse::<u64>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("cue id must be a whole number, got {cue_id:?}"),
        );
    };
    if !body.iter().all(u8::is_ascii_whitespace) {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "an acknowledgement's body, if any, must be application/json".into(),
            );
        }
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&body) {
            return json_error(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}"));
        }
    }
    let Some(call) = state.hub.timeline(&call_id).map(|t| t.view.call) else {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("no live or recent call {call_id:?}"),
        );
    };
    if !may_view(&who, &call) {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("no live or recent call {call_id:?}"),
        );
    }
    if !who.may(Access::Acknowledge { team: &call.team }) {
        audit(
            &state.gate,
            &who,
            "ack",
            &format!("{call_id}/{cue_id}"),
            &source,
            "denied",
        );
        return forbidden("only a supervisor of the call's team acknowledges its alerts");
    }
    match state.hub.acknowledge_alert(&call_id, cue_id, &who.name) {
        Ok(ack) => {
            audit(
                &state.gate,
                &who,
                "ack",
                &format!("{call_id}/{cue_id}"),
                &source,
                "ok",
            );
            if let Some(recorder) = state.recorder.clone() {
                let record = attune_qa::store::AckRecord {
                    call_id: call_id.clone(),
                    cue_id: cue_id as i64,
                    by: ack.by.clone(),
                    at_unix_ms: ack.at_unix_ms as i64,
                };
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = recorder.save_ack(&record) {
                        eprintln!("attune: acknowledgement not stored: {e}");
                    }
                });
            }
            axum::Json(ack).into_response()
        }
        Err(e) => json_error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Recorded calls (the store)

/// What `/recorded` and `/api/recorded` say when no database is configured.
const NO_STORE: &str = "no database is configured, so no call is stored: start `attune serve` \
    (or `attune demo`) with --db PATH (a SQLite file) or --db postgres://...";

async fn recorded_page(Authed(who): Authed) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    page(StatusCode::OK, PAGE_RECORDED)
}

/// Runs store work on a blocking thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// The report page of a stored call: the stored result document drawn by the QA report.
async fn recorded_report_page(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(call_id): Path<String>,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        let html = format!(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>\
             <title>No database — Attune</title><link rel='stylesheet' href='/static/console.css'>\
             </head><body><header class='bar'><h1>Attune</h1><nav><a href='/'>Live wall</a>\
             <a href='/recorded'>Recorded calls</a></nav></header><main><h2>No database</h2>\
             <p class='notice' id='no-store'>{}</p></main></body></html>",
            attune_qa::html::escape(NO_STORE)
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response();
    };
    let found = read_stored(&state, &who, &source, recorder, &call_id).await;
    let doc = match found {
        Some(Ok(Some(text))) => text,
        Some(Ok(None)) => return not_found(&format!("stored call {call_id}")),
        Some(Err(e)) => {
            return store_failed(&e);
        }
        None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let rendered = serde_json::from_str::<serde_json::Value>(&doc)
        .map_err(|e| format!("bad stored document: {e}"))
        .and_then(|doc| attune_qa::html::render_document(&doc))
        .map(|html| {
            html.replacen(
                "<body>",
                "<body><nav><a href='/recorded'>← Recorded calls</a></nav>",
                1,
            )
        });
    match rendered {
        // The report as `attune analyze --format html` writes it, with a way back.
        Ok(html) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("stored call {call_id}: {e}"),
        )
            .into_response(),
    }
}

/// Query of `/api/recorded`: the filters of `attune calls`; empty values match everything.
#[derive(Debug, Default, Deserialize)]
struct RecordedQuery {
    agent: Option<String>,
    team: Option<String>,
    from: Option<String>,
    to: Option<String>,
    min_score: Option<String>,
    max_score: Option<String>,
    /// `true`/`1`/`on`: only calls whose caller ended upset.
    caller_ended_upset: Option<String>,
    agent_interruptions_over: Option<String>,
    limit: Option<String>,
}

/// Most rows `/api/recorded` returns when no `limit` is given (and the most it returns).
pub const RECORDED_DEFAULT_LIMIT: i64 = 500;
pub const RECORDED_MAX_LIMIT: i64 = 10_000;

impl RecordedQuery {
    fn to_query(&self) -> Result<attune_qa::store::CallQuery, String> {
        fn number<T: std::str::FromStr>(
            name: &str,
            v: &Option<String>,
        ) -> Result<Option<T>, String> {
            match non_empty(v) {
                None => Ok(None),
                Some(text) => text
                    .trim()
                    .parse::<T>()
                    .map(Some)
                    .map_err(|_| format!("{name} must be a number, got {text:?}")),
            }
        }
        let date = |v: &Option<String>| {
            non_empty(v)
                .map(|t| attune_qa::store::parse_date(t.trim()))
                .transpose()
        };
        let min_score_pct: Option<f64> = number("min_score", &self.min_score)?;
        let max_score_pct: Option<f64> = number("max_score", &self.max_score)?;
        if let (Some(lo), Some(hi)) = (min_score_pct, max_score_pct)
            && lo > hi
        {
            return Err(format!("min_score {lo} is above max_score {hi}"));
        }
        let upset = match non_empty(&self.caller_ended_upset).as_deref() {
            None | Some("false" | "0" | "off") => false,
            Some("true" | "1" | "on") => true,
            Some(other) => {
                return Err(format!(
                    "caller_ended_upset must be true or false, got {other:?}"
                ));
            }
        };
        let limit: Option<i64> = number("limit", &self.limit)?;
        Ok(attune_qa::store::CallQuery {
            agent: non_empty(&self.agent),
            team: non_empty(&self.team),
            from: date(&self.from)?,
            to: date(&self.to)?,
            min_score_pct,
            max_score_pct,
            caller_ended_upset: upset,
            agent_interruptions_over: number(
                "agent_interruptions_over",
                &self.agent_interruptions_over,
            )?,
            limit: Some(
                limit
                    .unwrap_or(RECORDED_DEFAULT_LIMIT)
                    .clamp(1, RECORDED_MAX_LIMIT),
            ),
        })
    }
}

#[derive(Serialize)]
struct RecordedBody {
    calls: Vec<attune_qa::store::CallRow>,
}

/// `/api/recorded?agent=&team=&from=&to=&min_score=&max_score=&caller_ended_upset=&agent_interruptions_over=&limit=`:
/// stored calls, newest first (`Store::calls`); 503 without a database.
async fn api_recorded(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(query): Query<RecordedQuery>,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let query = match query.to_query() {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let found = blocking(move || {
        recorder.calls(&query).map(|mut calls| {
            calls.retain(|c| {
                who.may(Access::ReadStored {
                    team: c.team.as_deref(),
                })
            });
            RecordedBody { calls }
        })
    })
    .await;
    match found {
        Some(Ok(body)) => axum::Json(body).into_response(),
        Some(Err(e)) => store_failed(&e),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store task failed".into(),
        ),
    }
}

/// `/api/recorded/{call_id}`: a stored call's result document.
async fn api_recorded_call(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(call_id): Path<String>,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    match read_stored(&state, &who, &source, recorder, &call_id).await {
        Some(Ok(Some(doc))) => ([(header::CONTENT_TYPE, "application/json")], doc).into_response(),
        Some(Ok(None)) => json_error(StatusCode::NOT_FOUND, format!("no stored call {call_id:?}")),
        Some(Err(e)) => store_failed(&e),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store task failed".into(),
        ),
    }
}

/// A stored call's document if `who` may read it (None inside: no such call, or one of a team
/// they do not cover); every read is audited.
async fn read_stored(
    state: &ConsoleState,
    who: &Principal,
    source: &str,
    recorder: Arc<CallRecorder>,
    call_id: &str,
) -> Option<Result<Option<String>, attune_qa::store::StoreError>> {
    let id = call_id.to_owned();
    let who_ = who.clone();
    let result = blocking(move || {
        let team = match recorder.call_team(&id) {
            Ok(Some(team)) => team,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !who_.may(Access::ReadStored {
            team: team.as_deref(),
        }) {
            return Ok(None);
        }
        recorder.report_json(&id)
    })
    .await;
    let outcome = match &result {
        Some(Ok(Some(_))) => "ok",
        Some(Ok(None)) => "not found",
        _ => "failed",
    };
    audit(&state.gate, who, "report_read", call_id, source, outcome);
    result
}

#[derive(Debug, Default, Deserialize)]
struct UploadQuery {
    name: Option<String>,
    agent: Option<String>,
    team: Option<String>,
    /// Channel carrying the agent: 0 (default) or 1.
    agent_channel: Option<String>,
}

/// A store failure: logged in full on the server; the client learns only that it failed (the
/// store's location and its messages are not theirs to read).
fn store_failed(e: &attune_qa::store::StoreError) -> Response {
    eprintln!("attune: console: store: {e}");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the store failed; the server's log says why".into(),
    )
}

/// `/admin/audit`: the audit log (admins).
async fn audit_page(Authed(who): Authed) -> Response {
    if !who.may(Access::Administer) {
        return forbidden("the audit log is for admins");
    }
    page(StatusCode::OK, PAGE_AUDIT)
}

#[derive(Debug, Default, Deserialize)]
struct AuditQueryParams {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    limit: Option<i64>,
}

/// `/api/audit?actor=&action=&target=&limit=`: audit entries, newest first (admins).
async fn api_audit(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(q): Query<AuditQueryParams>,
) -> Response {
    if !who.may(Access::Administer) {
        return forbidden("the audit log is for admins");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let query = attune_qa::store::AuditQuery {
        actor: non_empty(&q.actor),
        action: non_empty(&q.action),
        target: non_empty(&q.target),
        limit: Some(q.limit.unwrap_or(500).clamp(1, 10_000)),
    };
    match blocking(move || recorder.audit_entries(&query)).await {
        Some(Ok(entries)) => axum::Json(serde_json::json!({ "entries": entries })).into_response(),
        Some(Err(e)) => store_failed(&e),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store task failed".into(),
        ),
    }
}

/// Content types an upload may carry.
pub const UPLOAD_CONTENT_TYPES: &[&str] = &["audio/wav", "audio/x-wav", "audio/wave"];

fn upload_error(e: &UploadError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_error(status, e.to_string())
}

/// `POST /api/recordings?name=&agent=&team=&agent_channel=` with a WAV file as the body: scores it with the
/// default rubric on a blocking thread, stores it (`source = "recording"`) and answers with its
/// call id and score. At most [`crate::recorder::MAX_CONCURRENT_UPLOADS`] at once.
async fn api_upload(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    headers: axum::http::HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if !who.may(Access::Upload) {
        return forbidden("only QA analysts and admins upload recordings");
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !UPLOAD_CONTENT_TYPES.contains(&content_type) {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "an upload's Content-Type must be one of {}, got {content_type:?}",
                UPLOAD_CONTENT_TYPES.join(", ")
            ),
        );
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            // The only rejection of a plain body is failing to read it: over the limit, or
            // the client went away.
            let status = rejection.status();
            let e = if status == StatusCode::PAYLOAD_TOO_LARGE {
                UploadError::TooLarge {
                    size_bytes: recorder.max_upload_bytes as u64 + 1,
                    limit_bytes: recorder.max_upload_bytes,
                }
            } else {
                return json_error(status, format!("cannot read the upload: {rejection}"));
            };
            return upload_error(&e);
        }
    };
    let permit = match recorder.upload_permit() {
        Ok(p) => p,
        Err(e) => return upload_error(&e),
    };
    let agent_channel = match non_empty(&query.agent_channel) {
        None => 0,
        Some(text) => match text.trim().parse::<u16>() {
            Ok(c) if c <= 1 => c,
            _ => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!("agent_channel must be 0 or 1, got {text:?}"),
                );
            }
        },
    };
    let info = UploadInfo {
        name: query.name,
        agent: query.agent,
        team: query.team,
        agent_channel,
    };
    let scored = blocking(move || {
        let _permit = permit;
        recorder.score_upload(&info, Vec::from(body))
    })
    .await;
    match scored {
        Some(Ok(result)) => {
            audit(
                &state.gate,
                &who,
                "upload",
                &result.call_id,
                &source,
                &format!("ok sha256={}", result.content_sha256),
            );
            (StatusCode::CREATED, axum::Json(result)).into_response()
        }
        Some(Err(e)) => upload_error(&e),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the scoring task failed".into(),
        ),
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
    who: Principal,
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
                        if self.filter.matches(&event.call) && may_view(&self.who, &event.call) {
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
                        if self.filter.matches(&ack.call) && may_view(&self.who, &ack.call) {
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
async fn events(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(query): Query<CallQuery>,
) -> Response {
    if !who.sees_live_calls() {
        return forbidden("this role does not see live calls");
    }
    let filter = scoped_filter(&who, &query);
    let (_, events) = state.hub.subscribe(&filter);
    let acks =
        (filter.agent_id.is_none() && who.role != Role::Agent).then(|| state.hub.subscribe_acks());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK_PERIOD, TICK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = EventStream {
        hub: state.hub.clone(),
        who,
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
            attune_qa::html::escape("<a href=\"x\">'&'</a>"),
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
            PAGE_RECORDED,
            PAGE_AUDIT,
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
