//! The empathy measures per agent and period ([`agent_empathy_trends`], `attune calls --trend`):
//! computed from the stored result documents (the store keeps each call's report JSON), so the
//! store's schema does not change. Calls stored before the empathy measures existed, and calls
//! where a measure has no score, do not count in that measure's mean.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::{CallQuery, Store, StoreError, TrendPeriod};

/// One agent's empathy figures over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmpathyTrendRow {
    pub agent: String,
    /// `YYYY-MM-DD`, `YYYY-Www` or `YYYY-MM`, as in [`super::store::TrendRow`].
    pub period: String,
    /// Mean score of the calls where each measure was scored (None: none was).
    pub mean_active_listening: Option<f64>,
    pub mean_attunement: Option<f64>,
    pub mean_de_escalation: Option<f64>,
    /// Calls scored per measure.
    pub active_listening_calls: u64,
    pub attunement_calls: u64,
    pub de_escalation_calls: u64,
    /// Agent interruptions while caller_upset was open, summed over the period's calls.
    pub interruptions_while_upset: u64,
}

/// The part of a stored document these trends and the coaching view read.
#[derive(Debug, Deserialize)]
pub(crate) struct StoredDocument {
    #[serde(default)]
    pub empathy: Option<StoredEmpathy>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StoredEmpathy {
    pub active_listening: StoredListeningScore,
    pub attunement: StoredScore,
    pub de_escalation: StoredScore,
}

impl StoredEmpathy {
    /// The three measures' scores and evidence, in [`crate::coaching::MEASURES`] order.
    pub fn measures(&self) -> [(Option<f64>, &[StoredMoment]); 3] {
        [
            (self.active_listening.score, &self.active_listening.evidence),
            (self.attunement.score, &self.attunement.evidence),
            (self.de_escalation.score, &self.de_escalation.evidence),
        ]
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StoredScore {
    pub score: Option<f64>,
    #[serde(default)]
    pub evidence: Vec<StoredMoment>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StoredListeningScore {
    pub score: Option<f64>,
    pub measures: StoredListening,
    #[serde(default)]
    pub evidence: Vec<StoredMoment>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StoredListening {
    #[serde(default)]
    pub interruptions_while_upset: u64,
}

/// An evidence moment as stored (see [`attune_core::empathy::Moment`]).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StoredMoment {
    pub t_s: f64,
    pub what: String,
}

#[derive(Default)]
struct Sums {
    sums: [f64; 3],
    counts: [u64; 3],
    upset_interruptions: u64,
}

/// Per agent and period, the mean empathy scores of the calls matching `query` (its `limit`
/// is ignored: every matching call counts), in agent then period order.
pub fn agent_empathy_trends(
    store: &mut Store,
    query: &CallQuery,
    period: TrendPeriod,
) -> Result<Vec<EmpathyTrendRow>, StoreError> {
    let query = CallQuery {
        limit: None,
        ..query.clone()
    };
    let mut groups: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for call in store.calls(&query)? {
        let Some(agent) = call.agent.clone() else {
            continue;
        };
        let period = period.label(&call.call_at);
        let sums = groups.entry((agent, period)).or_default();
        let Some(json) = store.report_json(&call.call_id)? else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<StoredDocument>(&json) else {
            continue;
        };
        let Some(e) = doc.empathy else {
            continue;
        };
        let scores = [
            e.active_listening.score,
            e.attunement.score,
            e.de_escalation.score,
        ];
        for (i, s) in scores.into_iter().enumerate() {
            if let Some(s) = s {
                sums.sums[i] += s;
                sums.counts[i] += 1;
            }
        }
        sums.upset_interruptions += e.active_listening.measures.interruptions_while_upset;
    }
    Ok(groups
        .into_iter()
        .map(|((agent, period), s)| {
            let mean = |i: usize| {
                (s.counts[i] > 0).then(|| (s.sums[i] / s.counts[i] as f64 * 10.0).round() / 10.0)
            };
            EmpathyTrendRow {
                agent,
                period,
                mean_active_listening: mean(0),
                mean_attunement: mean(1),
                mean_de_escalation: mean(2),
                active_listening_calls: s.counts[0],
                attunement_calls: s.counts[1],
                de_escalation_calls: s.counts[2],
                interruptions_while_upset: s.upset_interruptions,
            }
        })
        .collect())
}
