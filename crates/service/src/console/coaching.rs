//! The coaching view: who has stored calls (`/api/coaching/roster`), an agent's or a team's
//! trends of the empathy measures, the QA items and calmness per day, week or month against the
//! team, and the moments to review (`/api/coaching?agent=ID|team=T&period=day|week|month`, the
//! figures of [`attune_qa::coaching`]), and the pages drawing them (`/coaching`,
//! `/coaching/agent/{agent_id}`, `/coaching/team/{team}`). Each moment links to its call's
//! report timeline (`/recorded/{call_id}#t=S`) and, when the call has a recording, to a clip
//! around it (`/api/recorded/{call_id}/audio?from_s=&to_s=`).
//!
//! Who may open it: the roles that read stored calls (admin, supervisor, QA, API), each seeing
//! only the calls of the teams they may read: a call they may not read counts in no figure,
//! not even a team's mean. A team they do not cover is refused outright.

use super::*;
use attune_qa::coaching::{CoachingError, CoachingRequest, CoachingSubject, DEFAULT_MAX_MOMENTS};
use attune_qa::store::TrendPeriod;

/// Seconds of audio a moment's clip plays before and after the moment.
pub const CLIP_BEFORE_S: f64 = 3.0;
pub const CLIP_AFTER_S: f64 = 5.0;

/// Most moments a request may ask for.
pub const MAX_MOMENTS: usize = 100;

/// Longest agent or team id accepted (bytes).
const MAX_ID_BYTES: usize = 200;

/// `/coaching`, `/coaching/agent/{id}`, `/coaching/team/{team}`: one page; its script reads
/// the path and draws the roster or the subject's view.
pub(super) async fn coaching_page(Authed(who): Authed) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("the coaching view is for roles that read stored calls");
    }
    page(StatusCode::OK, PAGE_COACHING)
}

pub(super) async fn coaching_subject_page(
    Authed(who): Authed,
    Path((kind, _id)): Path<(String, String)>,
) -> Response {
    if kind != "agent" && kind != "team" {
        return not_found(&format!("/coaching/{kind}"));
    }
    coaching_page(Authed(who)).await
}

/// Query of `/api/coaching`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CoachingQuery {
    agent: Option<String>,
    team: Option<String>,
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    moments: Option<String>,
}

impl CoachingQuery {
    pub(super) fn to_request(&self) -> Result<CoachingRequest, String> {
        let id = |name: &str, v: &Option<String>| -> Result<Option<String>, String> {
            match non_empty(v) {
                None => Ok(None),
                Some(text) if text.len() > MAX_ID_BYTES => Err(format!(
                    "{name} is {} bytes long; at most {MAX_ID_BYTES}",
                    text.len()
                )),
                Some(text) => Ok(Some(text)),
            }
        };
        let subject = match (id("agent", &self.agent)?, id("team", &self.team)?) {
            (Some(agent), None) => CoachingSubject::Agent(agent),
            (None, Some(team)) => CoachingSubject::Team(team),
            (Some(_), Some(_)) => return Err("give agent or team, not both".into()),
            (None, None) => return Err("give agent=AGENT_ID or team=TEAM".into()),
        };
        let period = match non_empty(&self.period) {
            None => TrendPeriod::Week,
            Some(p) => TrendPeriod::parse(p.trim())?,
        };
        let max_moments = match non_empty(&self.moments) {
            None => DEFAULT_MAX_MOMENTS,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("moments must be a whole number, got {text:?}"))?
                .min(MAX_MOMENTS),
        };
        Ok(CoachingRequest {
            subject,
            period,
            from: non_empty(&self.from),
            to: non_empty(&self.to),
            max_moments,
        })
    }
}

/// `/api/coaching?agent=ID|team=T&period=day|week|month&from=YYYY-MM-DD&to=YYYY-MM-DD&moments=N`:
/// the coaching summary, each moment with its `report_url` and (with a recording) `audio_url`.
pub(super) async fn api_coaching(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Query(query): Query<CoachingQuery>,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("the coaching view is for roles that read stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let request = match query.to_request() {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let target = match &request.subject {
        CoachingSubject::Agent(a) => format!("agent:{a}"),
        CoachingSubject::Team(t) => {
            if !who.may(Access::ReadStored { team: Some(t) }) {
                audit(
                    &state.gate,
                    &who,
                    "coaching_read",
                    &format!("team:{t}"),
                    &source,
                    "forbidden",
                );
                return forbidden(&format!("team {t:?} is not among the teams you may read"));
            }
            format!("team:{t}")
        }
    };
    let who_ = who.clone();
    let result = blocking(move || {
        let may_read = |team: Option<&str>| who_.may(Access::ReadStored { team });
        let summary = recorder.coaching(&request, &may_read)?;
        Ok::<_, CoachingError>(with_links(summary, recorder.recordings().map(|r| &**r)))
    })
    .await;
    let outcome = if matches!(result, Some(Ok(_))) {
        "ok"
    } else {
        "failed"
    };
    audit(
        &state.gate,
        &who,
        "coaching_read",
        &target,
        &source,
        outcome,
    );
    match result {
        Some(Ok(body)) => axum::Json(body).into_response(),
        Some(Err(CoachingError::Store(e))) => store_failed(&e),
        Some(Err(e)) => json_error(StatusCode::BAD_REQUEST, e.to_string()),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store task failed".into(),
        ),
    }
}

/// The summary as JSON with each moment's links added.
fn with_links(
    summary: attune_qa::coaching::CoachingSummary,
    recordings: Option<&crate::recordings::Recordings>,
) -> serde_json::Value {
    let links: Vec<(String, Option<String>)> = summary
        .moments
        .iter()
        .map(|m| {
            let id = crate::auth::web::path_segment(&m.call_id);
            let report = format!("/recorded/{id}#t={:.1}", m.t_s);
            let audio = recordings.filter(|r| r.has(&m.call_id)).map(|_| {
                format!(
                    "/api/recorded/{id}/audio?from_s={:.2}&to_s={:.2}",
                    (m.t_s - CLIP_BEFORE_S).max(0.0),
                    m.t_s + CLIP_AFTER_S
                )
            });
            (report, audio)
        })
        .collect();
    let mut body = serde_json::to_value(&summary).unwrap_or(serde_json::Value::Null);
    if let Some(moments) = body.get_mut("moments").and_then(|m| m.as_array_mut()) {
        for (moment, (report, audio)) in moments.iter_mut().zip(links) {
            moment["report_url"] = report.into();
            moment["audio_url"] = audio.map_or(serde_json::Value::Null, Into::into);
        }
    }
    body
}

#[derive(Serialize)]
struct RosterBody {
    agents: Vec<attune_qa::store::RosterRow>,
    teams: Vec<TeamRow>,
}

#[derive(Serialize)]
struct TeamRow {
    team: String,
    calls: i64,
    agents: usize,
    last_call_at: String,
}

/// `/api/coaching/roster`: the agents (per team) and the teams with stored calls the viewer
/// may read.
pub(super) async fn api_coaching_roster(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("the coaching view is for roles that read stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let found = blocking(move || recorder.roster()).await;
    match found {
        Some(Ok(mut rows)) => {
            rows.retain(|r| {
                who.may(Access::ReadStored {
                    team: r.team.as_deref(),
                })
            });
            let mut teams: std::collections::BTreeMap<String, TeamRow> = Default::default();
            for r in &rows {
                let Some(team) = &r.team else { continue };
                let row = teams.entry(team.clone()).or_insert_with(|| TeamRow {
                    team: team.clone(),
                    calls: 0,
                    agents: 0,
                    last_call_at: String::new(),
                });
                row.calls += r.calls;
                row.agents += usize::from(r.agent.is_some());
                if r.last_call_at > row.last_call_at {
                    row.last_call_at = r.last_call_at.clone();
                }
            }
            axum::Json(RosterBody {
                agents: rows,
                teams: teams.into_values().collect(),
            })
            .into_response()
        }
        Some(Err(e)) => store_failed(&e),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store task failed".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<CoachingRequest, String> {
        let mut q = CoachingQuery::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "agent" => q.agent = v,
                "team" => q.team = v,
                "period" => q.period = v,
                "from" => q.from = v,
                "to" => q.to = v,
                "moments" => q.moments = v,
                _ => unreachable!(),
            }
        }
        q.to_request()
    }

    #[test]
    fn a_request_names_one_subject_and_bad_parameters_are_named() {
        let r = query(&[("agent", "a1")]).unwrap();
        assert_eq!(r.subject, CoachingSubject::Agent("a1".into()));
        assert_eq!(r.period, TrendPeriod::Week);
        assert_eq!(r.max_moments, DEFAULT_MAX_MOMENTS);
        let r = query(&[("team", "t1"), ("period", "day"), ("moments", "5000")]).unwrap();
        assert_eq!(r.subject, CoachingSubject::Team("t1".into()));
        assert_eq!(r.period, TrendPeriod::Day);
        assert_eq!(r.max_moments, MAX_MOMENTS);
        assert!(query(&[]).unwrap_err().contains("give agent"));
        assert!(
            query(&[("agent", "a"), ("team", "t")])
                .unwrap_err()
                .contains("not both")
        );
        assert!(query(&[("agent", "a"), ("period", "year")]).is_err());
        assert!(
            query(&[("agent", "a"), ("moments", "-1")])
                .unwrap_err()
                .contains("moments")
        );
        let long = "x".repeat(MAX_ID_BYTES + 1);
        assert!(
            query(&[("agent", &long)])
                .unwrap_err()
                .contains("bytes long")
        );
    }
}
