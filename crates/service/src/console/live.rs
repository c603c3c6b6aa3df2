//! The JSON of live calls: `/api/calls` (ranked by the hub's attention score,
//! [`crate::attention`]), `/api/calls/{call_id}`,
//! `/api/alerts` and acknowledging an alert, each narrowed to what the principal may see.

use super::*;

#[derive(Serialize)]
pub(super) struct CallsBody {
    server_time_unix_ms: u64,
    boot_id: u64,
    /// Most attention first (each view's `attention`, the hub's figure: [`crate::attention`]).
    calls: Vec<CallView>,
}

pub(super) async fn api_calls(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(query): Query<CallQuery>,
) -> Response {
    if !who.sees_live_calls() {
        return forbidden("this role does not see live calls");
    }
    let mut calls: Vec<CallView> = state
        .hub
        .live_calls(&scoped_filter(&who, &query))
        .into_iter()
        .filter(|view| may_view(&who, &view.call))
        .collect();
    calls.sort_by(|a, b| {
        b.attention
            .cmp(&a.attention)
            .then_with(|| a.call.started_at_unix_ms.cmp(&b.call.started_at_unix_ms))
    });
    axum::Json(CallsBody {
        server_time_unix_ms: now_unix_ms(),
        boot_id: state.boot_id,
        calls,
    })
    .into_response()
}

pub(super) async fn api_call(
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

pub(super) fn parse_severity(name: &str) -> Option<Severity> {
    [Severity::Info, Severity::Warning, Severity::Critical]
        .into_iter()
        .find(|s| s.as_str() == name)
}

#[derive(Serialize)]
pub(super) struct AlertsBody {
    server_time_unix_ms: u64,
    alerts: Vec<crate::hub::Alert>,
}

pub(super) async fn api_alerts(
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
pub(super) async fn api_ack(
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
