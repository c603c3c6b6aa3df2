//! The console's pages and assets: the wall, the alert feed, a call's detail, the agent's own
//! view, the audit log, the 404 page and the embedded `web/` files. Which pages a role may open
//! is decided here; what a page shows comes from the JSON endpoints.

use super::*;

pub(super) const PAGE_WALL: &str = include_str!("../../../../web/wall.html");
pub(super) const PAGE_CALL: &str = include_str!("../../../../web/call.html");
pub(super) const PAGE_ALERTS: &str = include_str!("../../../../web/alerts.html");
pub(super) const PAGE_AGENT: &str = include_str!("../../../../web/agent.html");
pub(super) const PAGE_NOT_FOUND: &str = include_str!("../../../../web/404.html");
pub(super) const PAGE_RECORDED: &str = include_str!("../../../../web/recorded.html");
pub(super) const PAGE_COACHING: &str = include_str!("../../../../web/coaching.html");
pub(super) const PAGE_AUDIT: &str = include_str!("../../../../web/audit.html");
pub(super) const PAGE_ADMIN: &str = include_str!("../../../../web/admin.html");

/// Embedded assets: (file name, content type, text).
pub(super) const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../../../web/console.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/common.js"),
    ),
    (
        "wall.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/wall.js"),
    ),
    (
        "call.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/call.js"),
    ),
    (
        "alerts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/alerts.js"),
    ),
    (
        "agent.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/agent.js"),
    ),
    (
        "recorded.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/recorded.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/audit.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/admin.js"),
    ),
    (
        "coaching.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/coaching.js"),
    ),
    (
        "report-audio.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/report-audio.js"),
    ),
];

pub(super) fn page(status: StatusCode, html: &'static str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// The 404 page, naming what was not found (escaped).
pub(super) fn not_found(what: &str) -> Response {
    let html = PAGE_NOT_FOUND.replace("{{what}}", &attune_qa::html::escape(what));
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

/// Where a principal starts: agents on their own view, QA analysts on the recorded calls.
pub(super) fn home_of(who: &Principal) -> Option<&'static str> {
    match who.role {
        Role::Agent => Some("/agent"),
        Role::Qa => Some("/recorded"),
        _ => None,
    }
}

pub(super) async fn wall_page(Authed(who): Authed) -> Response {
    if let Some(home) = home_of(&who) {
        return axum::response::Redirect::to(home).into_response();
    }
    if !who.sees_live_calls() {
        return forbidden("this role does not see live calls");
    }
    page(StatusCode::OK, PAGE_WALL)
}

pub(super) async fn alerts_page(Authed(who): Authed) -> Response {
    if !who.sees_live_calls() || who.role == Role::Agent {
        return forbidden("the alert feed is for supervisors");
    }
    page(StatusCode::OK, PAGE_ALERTS)
}

pub(super) async fn call_page(
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
pub(super) async fn own_agent_page(Authed(who): Authed) -> Response {
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
pub(super) async fn agent_page(
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

pub(super) async fn asset(Path(file): Path<String>) -> Response {
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

pub(super) async fn not_found_page(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        json_error(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path()))
    } else {
        not_found(&format!("page {}", uri.path()))
    }
}
