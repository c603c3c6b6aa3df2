//! The HTTP edge: `/healthz` and `/metrics` (Prometheus text). Other HTTP features (the
//! console) merge their routes into [`router`]'s.
//!
//! `/metrics` on the main listener needs a token (monitor or api role) or an admin's session;
//! [`metrics_only_router`] serves it without one on a listener of its own (`--metrics-http`,
//! for a scraper on a private interface).

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::web::Authed;
use super::auth::{Access, Gate};
use super::hub::Hub;
use super::metrics::{ServiceMetrics, render_prometheus};

/// What HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub metrics: Arc<ServiceMetrics>,
    pub gate: Arc<Gate>,
}

impl FromRef<AppState> for Arc<Gate> {
    fn from_ref(state: &AppState) -> Arc<Gate> {
        state.gate.clone()
    }
}

/// `/healthz` and `/metrics` (the latter for principals that may read metrics).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(guarded_metrics))
        .with_state(state)
}

/// `/healthz` and `/metrics` without authentication: for a listener of its own.
pub fn metrics_only_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn guarded_metrics(state: State<AppState>, Authed(who): Authed) -> Response {
    if !who.may(Access::Metrics) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(
                serde_json::json!({"error": "forbidden: /metrics needs a monitor or api token"}),
            ),
        )
            .into_response();
    }
    metrics(state).await
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_prometheus(&state.hub, &state.metrics),
    )
        .into_response()
}

/// Serves [`metrics_only_router`] on `listener` (until the process ends).
pub fn spawn_metrics_only(listener: tokio::net::TcpListener, state: AppState) {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, metrics_only_router(state)).await {
            eprintln!("attune: the metrics listener stopped: {e}");
        }
    });
}

/// `router` with `Strict-Transport-Security` on every response (a console served over TLS).
pub fn with_hsts(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(super::auth::web::hsts_header))
}
