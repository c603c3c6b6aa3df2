//! The browser console over HTTP: the supervisors' live wall (`/`), a call's detail view
//! (`/calls/{call_id}`), the alert feed (`/alerts`), the agent's own view (`/agent/{agent_id}`),
//! the JSON endpoints behind them (`/api/...`) and the live push (`/events`, server-sent
//! events). Everything live is read from the [`Hub`]; the assets (`web/`) are embedded in the
//! binary.
//!
//! Stored calls (with a [`CallRecorder`], i.e. `--db`): the "Recorded calls" page
//! (`/recorded`, filters as `attune calls`, upload of a recording to score), a stored call's QA
//! report (`/recorded/{call_id}`, the HTML of `attune analyze --format html` drawn from the
//! stored result document, with a player when the call has a recording), their JSON
//! (`/api/recorded`, `/api/recorded/{call_id}`), a call's audio
//! (`/api/recorded/{call_id}/audio?from_s=&to_s=`, see [`crate::recordings`]) and the upload
//! (`POST /api/recordings?name=&agent=&team=`, the WAV file as the body). The database work,
//! the files and the scoring run on blocking threads.
//!
//! [`routes`] is the router a service merges into its own
//! ([`crate::server::Service::http_router`]: `attune serve` and `attune demo`); [`serve`] runs
//! it alone over a given hub on an already-bound listener until a shutdown signal (the tests).
//!
//! Layout: `pages` (pages and assets, and which role may open which), `live` (the JSON of live
//! calls and alerts, acknowledging), `recorded` (stored calls, uploads, the audit log's JSON),
//! `coaching` (the coaching view's pages and JSON), `events` (the live push); this file holds
//! the router, the shared state and the access helpers.
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

mod admin;
mod coaching;
mod events;
mod live;
mod pages;
mod recorded;

use attune_core::cues::Severity;
use coaching::*;
use events::*;
use live::*;
use pages::*;
pub use recorded::*;

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
        .route("/api/recorded/{call_id}/audio", get(api_recorded_audio))
        .route(
            "/api/recordings",
            post(api_upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/coaching", get(coaching_page))
        .route("/coaching/{kind}/{id}", get(coaching_subject_page))
        .route("/api/coaching", get(api_coaching))
        .route("/api/coaching/roster", get(api_coaching_roster))
        .route("/", get(wall_page))
        .route("/calls/{call_id}", get(call_page))
        .route("/alerts", get(alerts_page))
        .route("/agent", get(own_agent_page))
        .route("/agent/{agent_id}", get(agent_page))
        .route("/admin", get(admin::admin_page))
        .route(
            "/api/admin/users",
            get(admin::api_users).post(admin::api_add_user),
        )
        .route(
            "/api/admin/users/{name}/disabled",
            post(admin::api_disable_user),
        )
        .route(
            "/api/admin/users/{name}/password",
            post(admin::api_set_password),
        )
        .route(
            "/api/admin/tokens",
            get(admin::api_tokens).post(admin::api_create_token),
        )
        .route(
            "/api/admin/tokens/{token_id}/revoke",
            post(admin::api_revoke_token),
        )
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

/// Serves the console alone over `hub` on `listener` (a hub fed by the caller: the tests)
/// until `shutdown` completes, through the same HTTP edge as a service
/// ([`crate::http_conn`], default limits); open event streams are ended, and connections still
/// open a second later are dropped. A whole service serves the console with
/// [`crate::server::Service::http_router`].
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
    let server = crate::http_conn::serve(
        listener,
        app,
        None,
        crate::http_conn::HttpLimits::default(),
        Arc::new(crate::metrics::ServiceMetrics::default()),
        async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        },
    );
    tokio::select! {
        result = server => result,
        () = async {
            stopped.fired().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        } => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON shared by the endpoints

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

/// Fuzzing hook (fuzz/fuzz_targets/http_query_form.rs): `bytes` as the urlencoded query of
/// every console handler (through axum's form extractor: the same serde_urlencoded parser as
/// `Query`), then each query's own checks. Not part of the API.
#[doc(hidden)]
pub fn fuzz_queries(bytes: &[u8]) {
    if let Some(q) = parse_form::<CallQuery>(bytes) {
        let _ = q.filter();
    }
    if let Some(q) = parse_form::<CoachingQuery>(bytes) {
        let _ = q.to_request();
    }
    let _ = parse_form::<recorded::AudioQuery>(bytes);
    if let Some(q) = parse_form::<recorded::RecordedQuery>(bytes) {
        let _ = q.to_query();
    }
    let _ = parse_form::<recorded::AuditQueryParams>(bytes);
    let _ = parse_form::<recorded::UploadQuery>(bytes);
}

/// `bytes` as an `application/x-www-form-urlencoded` body through [`axum::Form`] (fuzzing).
#[doc(hidden)]
pub fn parse_form<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    use axum::extract::FromRequest;
    let request = axum::http::Request::post("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(bytes.to_vec()))
        .ok()?;
    let mut future = std::pin::pin!(axum::Form::<T>::from_request(request, &()));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // A full in-memory body: ready at once (a few polls at most).
    for _ in 0..16 {
        if let std::task::Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            return result.ok().map(|form| form.0);
        }
    }
    None
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
            PAGE_ADMIN,
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
