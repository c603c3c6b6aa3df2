//! The HTTP edge: `/healthz` and `/metrics` (Prometheus text). Other HTTP features (the
//! console) merge their routes into [`router`]'s.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::hub::Hub;
use super::metrics::{ServiceMetrics, render_prometheus};

/// What HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub metrics: Arc<ServiceMetrics>,
}

/// `/healthz` and `/metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_prometheus(&state.hub, &state.metrics),
    )
}
