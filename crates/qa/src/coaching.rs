//! The coaching view's figures ([`coaching_summary`]): for one agent or one team and a period
//! kind (day, ISO week, month), per period the calls, the mean QA score, each QA item's pass
//! rate, the mean empathy scores (active listening, attunement, de-escalation) and the mean of
//! each call's lowest agent calmness; for an agent the same figures of each team they took
//! calls for (the comparison), for a team each agent's figures over the range; and the moments
//! to review: the empathy evidence of the subject's newest calls, lowest-scored measure first.
//!
//! Everything comes from the store: the calls table (score, calmness), the QA items table
//! (pass / fail / not applicable) and the stored result documents (the empathy object). A call
//! the viewer may not read (the `may_read` filter, by team) counts nowhere, not even in a
//! team's mean. Unscored measures and not-applicable items count in no mean; calls stored
//! before the empathy measures have none.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::calendar;
use crate::store::{CallQuery, CallRow, Store, StoreError, TrendPeriod};
use crate::trend::{StoredDocument, StoredEmpathy};

/// The empathy measures, in the order of every per-measure array here.
pub const MEASURES: [&str; 3] = ["active_listening", "attunement", "de_escalation"];

/// Moments to review returned when the request does not say.
pub const DEFAULT_MAX_MOMENTS: usize = 20;

/// How many of the subject's newest calls in the range give moments to review.
pub const MOMENT_CALLS: usize = 50;

/// Periods shown when the request gives no `from`: 30 days, 12 weeks or 12 months up to `to`.
pub const DEFAULT_DAYS: i64 = 30;
pub const DEFAULT_WEEKS: i64 = 12;
pub const DEFAULT_MONTHS: i64 = 12;

/// Whose coaching view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoachingSubject {
    Agent(String),
    Team(String),
}

/// What [`coaching_summary`] is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CoachingRequest {
    pub subject: CoachingSubject,
    pub period: TrendPeriod,
    /// First day counted, `YYYY-MM-DD` (None: [`DEFAULT_DAYS`] days, [`DEFAULT_WEEKS`] weeks or
    /// [`DEFAULT_MONTHS`] months before `to`, from the start of a week or month).
    pub from: Option<String>,
    /// Last day counted, `YYYY-MM-DD` (None: today, UTC).
    pub to: Option<String>,
    pub max_moments: usize,
}

/// What can go wrong building a summary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoachingError {
    /// A bad request: `parameter` names which one.
    #[error("{parameter} {value:?} is not a date (expected YYYY-MM-DD)")]
    BadDate {
        parameter: &'static str,
        value: String,
    },
    #[error("from {from} is after to {to}")]
    EmptyRange { from: String, to: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One QA item's results over a set of calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ItemTally {
    pub passed: u64,
    pub failed: u64,
    /// passed / (passed + failed) × 100; None when the item applied to none of the calls.
    pub pass_rate_pct: Option<f64>,
}

/// The figures of a set of calls (one period, or one agent over the range).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub calls: u64,
    /// Means over the calls that have the figure (None: none has), rounded to 0.1.
    pub mean_score_pct: Option<f64>,
    pub mean_active_listening: Option<f64>,
    pub mean_attunement: Option<f64>,
    pub mean_de_escalation: Option<f64>,
    /// Mean of each call's lowest agent calmness (0–100).
    pub mean_agent_calmness_min: Option<f64>,
    /// Per QA item id.
    pub items: BTreeMap<String, ItemTally>,
}

/// The figures of one period: `2026-12-03`, `2026-W49` or `2026-12`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodFigures {
    pub period: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A team's figures per period, to compare an agent with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamSeries {
    pub team: String,
    pub series: Vec<PeriodFigures>,
}

/// One agent's figures over the whole range (the team view).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentFigures {
    pub agent: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A QA item as the rubric names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemName {
    pub item_id: String,
    pub title: String,
}

/// A moment to review: one evidence moment of a call's empathy measure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewMoment {
    pub call_id: String,
    pub call_at: String,
    pub agent: Option<String>,
    /// One of [`MEASURES`].
    pub measure: &'static str,
    /// That measure's score in this call (None: unscored).
    pub measure_score: Option<f64>,
    pub call_score_pct: Option<f64>,
    /// Call time, seconds.
    pub t_s: f64,
    pub what: String,
}

/// The coaching view of one agent or team. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoachingSummary {
    /// `agent` or `team`.
    pub subject: &'static str,
    pub id: String,
    /// `day`, `week` or `month`.
    pub period: &'static str,
    /// The days counted, inclusive (`YYYY-MM-DD`).
    pub from: String,
    pub to: String,
    /// The QA items met in these calls, newest rubric order first.
    pub items: Vec<ItemName>,
    /// The subject's figures per period with calls, oldest first.
    pub series: Vec<PeriodFigures>,
    /// An agent's teams (the teams of their calls in the range), each per period; empty for a
    /// team.
    pub comparison: Vec<TeamSeries>,
    /// A team's agents over the whole range, in agent order; empty for an agent.
    pub agents: Vec<AgentFigures>,
    pub moments: Vec<ReviewMoment>,
}

/// A stored call with what the figures read of it.
struct Entry {
    row: CallRow,
    empathy: Option<StoredEmpathy>,
    /// (item id, result) in rubric order.
    items: Vec<(String, String)>,
}

/// A running mean.
#[derive(Default, Clone, Copy)]
struct Mean {
    sum: f64,
    n: u64,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }

    fn value(self) -> Option<f64> {
        (self.n > 0).then(|| round1(self.sum / self.n as f64))
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The sums behind one [`Figures`].
#[derive(Default)]
struct Tally {
    calls: u64,
    score: Mean,
    measures: [Mean; 3],
    calmness: Mean,
    items: BTreeMap<String, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, e: &Entry) {
        self.calls += 1;
        self.score.add(e.row.score_pct);
        self.calmness.add(e.row.agent_calmness_min);
        if let Some(empathy) = &e.empathy {
            for (mean, (score, _)) in self.measures.iter_mut().zip(empathy.measures()) {
                mean.add(score);
            }
        }
        for (item, result) in &e.items {
            let (passed, failed) = self.items.entry(item.clone()).or_default();
            match result.as_str() {
                "pass" => *passed += 1,
                "fail" => *failed += 1,
                _ => {}
            }
        }
    }

    fn figures(&self) -> Figures {
        Figures {
            calls: self.calls,
            mean_score_pct: self.score.value(),
            mean_active_listening: self.measures[0].value(),
            mean_attunement: self.measures[1].value(),
            mean_de_escalation: self.measures[2].value(),
            mean_agent_calmness_min: self.calmness.value(),
            items: self
                .items
                .iter()
                .map(|(id, &(passed, failed))| {
                    let applied = passed + failed;
                    let pass_rate_pct =
                        (applied > 0).then(|| round1(passed as f64 * 100.0 / applied as f64));
                    let tally = ItemTally {
                        passed,
                        failed,
                        pass_rate_pct,
                    };
                    (id.clone(), tally)
                })
                .collect(),
        }
    }
}

/// The figures of `entries` per period, oldest period first.
fn series(entries: &[Entry], period: TrendPeriod) -> Vec<PeriodFigures> {
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for e in entries {
        groups
            .entry(period.label(&e.row.call_at))
            .or_default()
            .add(e);
    }
    groups
        .into_iter()
        .map(|(period, t)| PeriodFigures {
            period,
            figures: t.figures(),
        })
        .collect()
}

/// A `YYYY-MM-DD` parameter as a day number.
fn day_of(parameter: &'static str, value: &str) -> Result<i64, CoachingError> {
    let bad = || CoachingError::BadDate {
        parameter,
        value: value.to_owned(),
    };
    if value.len() != 10 {
        return Err(bad());
    }
    let (y, m, d) = calendar::parse_ymd(value).ok_or_else(bad)?;
    Ok(calendar::days_from_civil(y, m, d))
}

/// The days counted: (from, to), inclusive, as day numbers.
fn range(request: &CoachingRequest) -> Result<(i64, i64), CoachingError> {
    let to = match &request.to {
        Some(to) => day_of("to", to)?,
        None => {
            let today = crate::rfc3339_utc(std::time::SystemTime::now());
            day_of("to", &today[..10])?
        }
    };
    let from = match &request.from {
        Some(from) => day_of("from", from)?,
        None => match request.period {
            TrendPeriod::Day => to - (DEFAULT_DAYS - 1),
            TrendPeriod::Week => to - (calendar::iso_weekday(to) - 1) - 7 * (DEFAULT_WEEKS - 1),
            TrendPeriod::Month => {
                let (y, m, _) = calendar::civil_from_days(to);
                let months = y * 12 + i64::from(m) - 1 - (DEFAULT_MONTHS - 1);
                calendar::days_from_civil(
                    months.div_euclid(12),
                    months.rem_euclid(12) as u32 + 1,
                    1,
                )
            }
        },
    };
    if from > to {
        return Err(CoachingError::EmptyRange {
            from: calendar::format_days(from),
            to: calendar::format_days(to),
        });
    }
    Ok((from, to))
}

/// The calls matching `query` that `may_read` lets through (by team), with their empathy and
/// QA items; newest first. Also the QA items' names, newest rubric first.
fn load(
    store: &mut Store,
    query: &CallQuery,
    may_read: &dyn Fn(Option<&str>) -> bool,
) -> Result<(Vec<Entry>, Vec<ItemName>), StoreError> {
    let mut items: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut names: Vec<ItemName> = Vec::new();
    let mut named: BTreeSet<String> = BTreeSet::new();
    let rows: Vec<CallRow> = store
        .calls(query)?
        .into_iter()
        .filter(|r| may_read(r.team.as_deref()))
        .collect();
    let readable: BTreeSet<&str> = rows.iter().map(|r| r.call_id.as_str()).collect();
    for r in store.qa_results(query)? {
        if !readable.contains(r.call_id.as_str()) {
            continue;
        }
        if named.insert(r.item_id.clone()) {
            names.push(ItemName {
                item_id: r.item_id.clone(),
                title: r.title.clone(),
            });
        }
        items
            .entry(r.call_id)
            .or_default()
            .push((r.item_id, r.result));
    }
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        // A document that cannot be read as one with empathy counts as one without.
        let empathy = store
            .report_json(&row.call_id)?
            .and_then(|json| serde_json::from_str::<StoredDocument>(&json).ok())
            .and_then(|doc| doc.empathy);
        let items = items.remove(&row.call_id).unwrap_or_default();
        entries.push(Entry {
            row,
            empathy,
            items,
        });
    }
    Ok((entries, names))
}

/// The moments of the newest [`MOMENT_CALLS`] of `entries` (newest first), lowest measure
/// score first (unscored last), then newest call, then call time; at most `max`.
fn moments(entries: &[Entry], max: usize) -> Vec<ReviewMoment> {
    let mut out = Vec::new();
    for e in entries.iter().take(MOMENT_CALLS) {
        let Some(empathy) = &e.empathy else {
            continue;
        };
        for (measure, (score, evidence)) in MEASURES.iter().zip(empathy.measures()) {
            for m in evidence {
                out.push(ReviewMoment {
                    call_id: e.row.call_id.clone(),
                    call_at: e.row.call_at.clone(),
                    agent: e.row.agent.clone(),
                    measure,
                    measure_score: score,
                    call_score_pct: e.row.score_pct,
                    t_s: m.t_s,
                    what: m.what.clone(),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        let score = |m: &ReviewMoment| m.measure_score.unwrap_or(f64::INFINITY);
        score(a)
            .total_cmp(&score(b))
            .then_with(|| b.call_at.cmp(&a.call_at))
            .then_with(|| a.call_id.cmp(&b.call_id))
            .then_with(|| a.t_s.total_cmp(&b.t_s))
    });
    out.truncate(max);
    out
}

/// The coaching view of `request.subject` over its range. `may_read` says whether the viewer
/// may read a stored call of a team (None: a call without a team); the calls it refuses count
/// nowhere. See the module docs.
pub fn coaching_summary(
    store: &mut Store,
    request: &CoachingRequest,
    may_read: &dyn Fn(Option<&str>) -> bool,
) -> Result<CoachingSummary, CoachingError> {
    let (from, to) = range(request)?;
    let dated = CallQuery {
        from: Some(calendar::format_days(from)),
        to: Some(calendar::format_days(to)),
        ..CallQuery::default()
    };
    let (subject, id, query) = match &request.subject {
        CoachingSubject::Agent(agent) => (
            "agent",
            agent,
            CallQuery {
                agent: Some(agent.clone()),
                ..dated.clone()
            },
        ),
        CoachingSubject::Team(team) => (
            "team",
            team,
            CallQuery {
                team: Some(team.clone()),
                ..dated.clone()
            },
        ),
    };
    let (entries, items) = load(store, &query, may_read)?;
    let mut comparison = Vec::new();
    let mut agents = Vec::new();
    match &request.subject {
        CoachingSubject::Agent(_) => {
            let teams: BTreeSet<&str> = entries
                .iter()
                .filter_map(|e| e.row.team.as_deref())
                .collect();
            for team in teams {
                let query = CallQuery {
                    team: Some(team.to_owned()),
                    ..dated.clone()
                };
                let (team_entries, _) = load(store, &query, may_read)?;
                comparison.push(TeamSeries {
                    team: team.to_owned(),
                    series: series(&team_entries, request.period),
                });
            }
        }
        CoachingSubject::Team(_) => {
            let mut by_agent: BTreeMap<&str, Tally> = BTreeMap::new();
            for e in &entries {
                if let Some(agent) = e.row.agent.as_deref() {
                    by_agent.entry(agent).or_default().add(e);
                }
            }
            agents = by_agent
                .into_iter()
                .map(|(agent, t)| AgentFigures {
                    agent: agent.to_owned(),
                    figures: t.figures(),
                })
                .collect();
        }
    }
    Ok(CoachingSummary {
        subject,
        id: id.clone(),
        period: request.period.as_str(),
        from: calendar::format_days(from),
        to: calendar::format_days(to),
        items,
        series: series(&entries, request.period),
        comparison,
        agents,
        moments: moments(&entries, request.max_moments),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredCall;
    use serde_json::{Value, json};

    /// A result document with the fields the store and the coaching view read.
    fn document(
        score_pct: f64,
        calmness_min: f64,
        empathy: Value,
        items: &[(&str, &str)],
    ) -> Value {
        let items: Vec<Value> = items
            .iter()
            .map(|(id, result)| {
                json!({"section": "S", "id": id, "title": format!("Title of {id}"),
                       "weight": 10.0, "rule": "r", "result": result, "value": null,
                       "auto_fail": false, "evidence": []})
            })
            .collect();
        json!({
            "file": "x.wav", "duration_s": 60.0,
            "talk": {"agent_s": 20.0, "caller_s": 20.0, "overlap_s": 1.0, "silence_s": 19.0},
            "interruption_count": {"agent": 1, "caller": 0},
            "caller_emotion": [], "agent_calmness": [], "cues": [],
            "facts": {"agent_calmness_min": {"value": calmness_min, "evidence": []}},
            "empathy": empathy,
            "qa": {"score_pct": score_pct, "raw_score_pct": score_pct, "auto_fail": false,
                   "items": items},
            "versions": {"attune": "0", "model": "m", "cue_rules": "r", "rubric": "q",
                         "rubric_digest": "d"},
            "input": {"path": "/x.wav", "size_bytes": 1, "modified_unix_ms": 0}
        })
    }

    fn empathy(listening: Option<f64>, attunement: Option<f64>, moment_t_s: f64) -> Value {
        json!({
            "active_listening": {"score": listening,
                "measures": {"interruptions_while_upset": 0},
                "evidence": [{"t_s": moment_t_s, "what": "agent interrupts the upset caller"}]},
            "attunement": {"score": attunement, "measures": {},
                "evidence": [{"t_s": moment_t_s + 1.0, "what": "agent matches the caller's rise"}]},
            "de_escalation": {"score": null, "reason": "the caller was never upset",
                "measures": {}, "evidence": []}
        })
    }

    fn store(name: &str) -> Store {
        let dir =
            std::env::temp_dir().join(format!("attune-coaching-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Store::open(&dir.join("c.db").display().to_string()).unwrap()
    }

    fn save(store: &mut Store, id: &str, agent: &str, team: &str, at: &str, doc: &Value) {
        let call = StoredCall::from_document(
            doc,
            id,
            "recording",
            Some(agent.into()),
            Some(team.into()),
            at.into(),
        )
        .unwrap();
        store.save_call(&call).unwrap();
    }

    fn request(subject: CoachingSubject, period: TrendPeriod) -> CoachingRequest {
        CoachingRequest {
            subject,
            period,
            from: Some("2026-11-30".into()),
            to: Some("2026-12-13".into()),
            max_moments: DEFAULT_MAX_MOMENTS,
        }
    }

    /// ana: two calls in week 49 (Mon 2026-11-30 and Thu 2026-12-03), one in week 50; ben one
    /// in week 49, same team; cy one in another team; one of ana's calls out of range.
    fn fixture(name: &str) -> Store {
        let mut s = store(name);
        let pass_fail = [("greets", "pass"), ("no_interrupt", "fail")];
        let both_pass = [("greets", "pass"), ("no_interrupt", "pass")];
        let na = [("greets", "pass"), ("no_interrupt", "not_applicable")];
        save(
            &mut s,
            "a1",
            "ana",
            "blue",
            "2026-11-30T09:00:00.000Z",
            &document(
                80.0,
                50.0,
                empathy(Some(40.0), Some(70.0), 12.0),
                &pass_fail,
            ),
        );
        save(
            &mut s,
            "a2",
            "ana",
            "blue",
            "2026-12-03T15:00:00.000Z",
            &document(60.0, 70.0, empathy(Some(90.0), None, 30.0), &both_pass),
        );
        save(
            &mut s,
            "a3",
            "ana",
            "blue",
            "2026-12-08T10:00:00.000Z",
            &document(100.0, 65.0, empathy(None, Some(20.0), 5.0), &na),
        );
        save(
            &mut s,
            "b1",
            "ben",
            "blue",
            "2026-12-01T10:00:00.000Z",
            &document(30.0, 40.0, empathy(Some(10.0), Some(30.0), 8.0), &pass_fail),
        );
        save(
            &mut s,
            "c1",
            "cy",
            "green",
            "2026-12-02T10:00:00.000Z",
            &document(99.0, 99.0, empathy(Some(99.0), Some(99.0), 1.0), &both_pass),
        );
        save(
            &mut s,
            "old",
            "ana",
            "blue",
            "2026-11-01T10:00:00.000Z",
            &document(0.0, 0.0, empathy(Some(0.0), Some(0.0), 1.0), &pass_fail),
        );
        s
    }

    #[test]
    fn an_agents_weeks_against_their_team_are_the_means_of_the_stored_calls() {
        let mut s = fixture("agent-weeks");
        let all = |_: Option<&str>| true;
        let summary = coaching_summary(
            &mut s,
            &request(CoachingSubject::Agent("ana".into()), TrendPeriod::Week),
            &all,
        )
        .unwrap();
        assert_eq!(
            (summary.subject, summary.id.as_str(), summary.period),
            ("agent", "ana", "week")
        );
        assert_eq!(
            (summary.from.as_str(), summary.to.as_str()),
            ("2026-11-30", "2026-12-13")
        );
        let periods: Vec<&str> = summary.series.iter().map(|p| p.period.as_str()).collect();
        assert_eq!(periods, ["2026-W49", "2026-W50"]);
        let w49 = &summary.series[0].figures;
        assert_eq!(w49.calls, 2);
        assert_eq!(w49.mean_score_pct, Some(70.0)); // (80 + 60) / 2
        assert_eq!(w49.mean_active_listening, Some(65.0)); // (40 + 90) / 2
        assert_eq!(w49.mean_attunement, Some(70.0)); // a2's is unscored
        assert_eq!(w49.mean_de_escalation, None);
        assert_eq!(w49.mean_agent_calmness_min, Some(60.0)); // (50 + 70) / 2
        assert_eq!(w49.items["greets"].pass_rate_pct, Some(100.0));
        let ni = &w49.items["no_interrupt"];
        assert_eq!((ni.passed, ni.failed, ni.pass_rate_pct), (1, 1, Some(50.0)));
        let w50 = &summary.series[1].figures;
        assert_eq!(
            w50.items["no_interrupt"].pass_rate_pct, None,
            "not applicable"
        );
        assert_eq!(w50.mean_active_listening, None);
        assert_eq!(w50.mean_attunement, Some(20.0));
        let names: Vec<&str> = summary.items.iter().map(|i| i.item_id.as_str()).collect();
        assert_eq!(names, ["greets", "no_interrupt"]);
        assert_eq!(summary.items[0].title, "Title of greets");

        // The team: ana and ben, never cy (another team).
        assert_eq!(summary.comparison.len(), 1);
        let team = &summary.comparison[0];
        assert_eq!(team.team, "blue");
        let t49 = &team.series[0].figures;
        assert_eq!((team.series[0].period.as_str(), t49.calls), ("2026-W49", 3));
        assert_eq!(t49.mean_score_pct, Some(56.7)); // (80 + 60 + 30) / 3
        assert_eq!(t49.mean_active_listening, Some(46.7)); // (40 + 90 + 10) / 3
        assert_eq!(t49.items["no_interrupt"].pass_rate_pct, Some(33.3));
        assert!(summary.agents.is_empty());

        // Moments: lowest measure score first (a3's attunement 20, a1's listening 40, ...),
        // unscored measures last; never a call out of range.
        let first: Vec<(&str, &str, Option<f64>, f64)> = summary
            .moments
            .iter()
            .map(|m| (m.call_id.as_str(), m.measure, m.measure_score, m.t_s))
            .collect();
        assert_eq!(
            first,
            [
                ("a3", "attunement", Some(20.0), 6.0),
                ("a1", "active_listening", Some(40.0), 12.0),
                ("a1", "attunement", Some(70.0), 13.0),
                ("a2", "active_listening", Some(90.0), 30.0),
                ("a3", "active_listening", None, 5.0),
                ("a2", "attunement", None, 31.0),
            ]
        );
        assert_eq!(summary.moments[1].what, "agent interrupts the upset caller");
        assert_eq!(summary.moments[1].call_score_pct, Some(80.0));
        let _ = std::fs::remove_dir_all(std::path::Path::new(s.location()).parent().unwrap());
    }

    #[test]
    fn a_team_per_day_with_its_agents_and_only_the_calls_the_viewer_may_read() {
        let mut s = fixture("team-days");
        let summary = coaching_summary(
            &mut s,
            &CoachingRequest {
                max_moments: 2,
                ..request(CoachingSubject::Team("blue".into()), TrendPeriod::Day)
            },
            &|_| true,
        )
        .unwrap();
        let periods: Vec<&str> = summary.series.iter().map(|p| p.period.as_str()).collect();
        assert_eq!(
            periods,
            ["2026-11-30", "2026-12-01", "2026-12-03", "2026-12-08"]
        );
        let agents: Vec<(&str, u64, Option<f64>)> = summary
            .agents
            .iter()
            .map(|a| (a.agent.as_str(), a.figures.calls, a.figures.mean_score_pct))
            .collect();
        assert_eq!(agents, [("ana", 3, Some(80.0)), ("ben", 1, Some(30.0))]);
        assert!(summary.comparison.is_empty());
        assert_eq!(summary.moments.len(), 2);
        assert_eq!(summary.moments[0].call_id, "b1"); // ben's listening, 10

        // A viewer of green only: blue's calls count nowhere.
        let green = |team: Option<&str>| team == Some("green");
        let hidden = coaching_summary(
            &mut s,
            &request(CoachingSubject::Team("blue".into()), TrendPeriod::Day),
            &green,
        )
        .unwrap();
        assert!(hidden.series.is_empty() && hidden.agents.is_empty() && hidden.moments.is_empty());
        let _ = std::fs::remove_dir_all(std::path::Path::new(s.location()).parent().unwrap());
    }

    #[test]
    fn bad_dates_and_ranges_name_the_parameter_and_defaults_cover_whole_periods() {
        let mut s = store("dates");
        let ask = |from: Option<&str>, to: Option<&str>, period| CoachingRequest {
            subject: CoachingSubject::Agent("x".into()),
            period,
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            max_moments: 5,
        };
        let all = |_: Option<&str>| true;
        for (from, to, needle) in [
            (Some("2026-13-01"), None, "from \"2026-13-01\""),
            (None, Some("yesterday"), "to \"yesterday\""),
            (Some("2026-12-01T00:00:00Z"), None, "from "),
            (
                Some("2026-12-10"),
                Some("2026-12-01"),
                "from 2026-12-10 is after to 2026-12-01",
            ),
        ] {
            let e = coaching_summary(&mut s, &ask(from, to, TrendPeriod::Day), &all).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
        let range_of = |period| {
            let r = range(&ask(None, Some("2026-12-03"), period)).unwrap();
            (calendar::format_days(r.0), calendar::format_days(r.1))
        };
        assert_eq!(
            range_of(TrendPeriod::Day),
            ("2026-11-04".into(), "2026-12-03".into())
        );
        // 12 ISO weeks, from a Monday: 2026-W38 to 2026-W49.
        assert_eq!(range_of(TrendPeriod::Week).0, "2026-09-14");
        assert_eq!(range_of(TrendPeriod::Month).0, "2026-01-01");
        let empty = coaching_summary(&mut s, &ask(None, None, TrendPeriod::Week), &all).unwrap();
        assert!(empty.series.is_empty() && empty.moments.is_empty());
        let _ = std::fs::remove_dir_all(std::path::Path::new(s.location()).parent().unwrap());
    }
}
