//! How well each empathy measure separates the scripted cases of
//! [`crate::compose::empathy`] (`attune eval empathy`): every call is composed from a caller
//! the judging model never heard (the CLI passes the fold model trained without the fold's
//! actors and a catalog of those actors only), runs through the same [`CallAnalyzer`] as any
//! call, and each [`COMPARISONS`] entry gives the ROC AUC of one measure between the better and
//! the worse behaviour: the probability that a call of the better case gets the better value
//! (ties count half). Calls where the measure has no value are counted, not ranked.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::compose::empathy::{Scenario, scripted_spec};
use crate::compose::random::Catalog;
use crate::compose::{self, ComposeError, SourceCache};
use attune_core::call::{CallAnalyzer, CallConfig, CallOutcome};
use attune_core::cues::{CueKind, CueRules, CueTransition};
use attune_core::model::emotion::EmotionModel;

/// The figures of one call that the comparisons rank.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct CallMeasures {
    pub active_listening_score: Option<f64>,
    pub interruptions_while_upset: Option<f64>,
    pub backchannels_per_min: Option<f64>,
    pub attunement_score: Option<f64>,
    pub stays_below_share: Option<f64>,
    pub de_escalation_score: Option<f64>,
    /// 1 when the call ended calmer than its peak, 0 when not.
    pub ends_calmer: Option<f64>,
    /// `agent_pressing_upset_caller` cues opened (the live empathy cue).
    pub pressing_cue_opens: Option<f64>,
    /// caller_upset opened at all (the measures that need it are None otherwise).
    pub caller_upset_opened: bool,
}

impl CallMeasures {
    pub fn of(outcome: &CallOutcome) -> Self {
        let e = &outcome.empathy;
        let upset = e.de_escalation.measures.upset_episodes > 0;
        Self {
            active_listening_score: e.active_listening.score,
            interruptions_while_upset: upset
                .then_some(e.active_listening.measures.interruptions_while_upset as f64),
            backchannels_per_min: e.active_listening.measures.backchannels_per_min,
            attunement_score: e.attunement.score,
            stays_below_share: e.attunement.measures.stays_below_share,
            de_escalation_score: e.de_escalation.score,
            ends_calmer: e
                .de_escalation
                .measures
                .ends_calmer_than_peak
                .map(|b| f64::from(u8::from(b))),
            pressing_cue_opens: Some(
                outcome
                    .cues
                    .iter()
                    .filter(|c| {
                        c.kind == CueKind::AgentPressingUpsetCaller
                            && c.event == CueTransition::Open
                    })
                    .count() as f64,
            ),
            caller_upset_opened: upset,
        }
    }

    /// The value of a measure by its name in [`COMPARISONS`].
    pub fn get(&self, measure: &str) -> Option<f64> {
        match measure {
            "active_listening.score" => self.active_listening_score,
            "active_listening.interruptions_while_upset" => self.interruptions_while_upset,
            "active_listening.backchannels_per_min" => self.backchannels_per_min,
            "attunement.score" => self.attunement_score,
            "attunement.stays_below_share" => self.stays_below_share,
            "de_escalation.score" => self.de_escalation_score,
            "de_escalation.ends_calmer_than_peak" => self.ends_calmer,
            "cue.agent_pressing_upset_caller" => self.pressing_cue_opens,
            _ => None,
        }
    }
}

/// One measure compared between the better and the worse behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// What is being told apart.
    pub behaviour: &'static str,
    pub better: Scenario,
    pub worse: Scenario,
    pub measure: &'static str,
    /// Higher values of the measure are better (else lower).
    pub higher_is_better: bool,
}

const fn cmp(
    behaviour: &'static str,
    better: Scenario,
    worse: Scenario,
    measure: &'static str,
    higher_is_better: bool,
) -> Comparison {
    Comparison {
        behaviour,
        better,
        worse,
        measure,
        higher_is_better,
    }
}

/// Every comparison `attune eval empathy` prints.
pub const COMPARISONS: [Comparison; 10] = [
    cmp(
        "lets an upset caller finish vs interrupts",
        Scenario::LetsUpsetCallerFinish,
        Scenario::InterruptsUpsetCaller,
        "active_listening.interruptions_while_upset",
        false,
    ),
    cmp(
        "lets an upset caller finish vs interrupts",
        Scenario::LetsUpsetCallerFinish,
        Scenario::InterruptsUpsetCaller,
        "active_listening.score",
        true,
    ),
    cmp(
        "lets an upset caller finish vs interrupts",
        Scenario::LetsUpsetCallerFinish,
        Scenario::InterruptsUpsetCaller,
        "cue.agent_pressing_upset_caller",
        false,
    ),
    cmp(
        "stays slow and soft vs mirrors a loud caller",
        Scenario::StaysSlowAndSoft,
        Scenario::MirrorsLoudCaller,
        "attunement.score",
        true,
    ),
    cmp(
        "stays slow and soft vs mirrors a loud caller",
        Scenario::StaysSlowAndSoft,
        Scenario::MirrorsLoudCaller,
        "attunement.stays_below_share",
        true,
    ),
    cmp(
        "stays slow and soft vs mirrors a loud caller",
        Scenario::StaysSlowAndSoft,
        Scenario::MirrorsLoudCaller,
        "cue.agent_pressing_upset_caller",
        false,
    ),
    cmp(
        "caller calms (agent slow, soft) vs stays upset (agent mirrors)",
        Scenario::StaysSlowAndSoft,
        Scenario::MirrorsCallerStaysUpset,
        "de_escalation.score",
        true,
    ),
    cmp(
        "caller calms (agent slow, soft) vs stays upset (agent mirrors)",
        Scenario::StaysSlowAndSoft,
        Scenario::MirrorsCallerStaysUpset,
        "de_escalation.ends_calmer_than_peak",
        true,
    ),
    cmp(
        "backchannels vs silent listener",
        Scenario::Backchannels,
        Scenario::LetsUpsetCallerFinish,
        "active_listening.backchannels_per_min",
        true,
    ),
    cmp(
        "backchannels vs silent listener",
        Scenario::Backchannels,
        Scenario::LetsUpsetCallerFinish,
        "active_listening.score",
        true,
    ),
];

/// ROC AUC of `better` over `worse` (Mann-Whitney: ties count half); NaN when either is empty.
pub fn auc(better: &[f64], worse: &[f64]) -> f64 {
    if better.is_empty() || worse.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for b in better {
        for w in worse {
            wins += if b > w {
                1.0
            } else if b == w {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (better.len() * worse.len()) as f64
}

/// One evaluated call.
#[derive(Debug, Clone, Serialize)]
pub struct EmpathyCall {
    pub name: String,
    pub fold: usize,
    pub scenario: Scenario,
    pub measures: CallMeasures,
}

/// One comparison's result.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonResult {
    #[serde(flatten)]
    pub comparison: Comparison,
    /// Calls of each case with a value.
    pub better_n: usize,
    pub worse_n: usize,
    /// Calls of each case where the measure had no value (e.g. caller_upset never opened).
    pub better_missing: usize,
    pub worse_missing: usize,
    pub auc: f64,
    /// Mean value of each case.
    pub better_mean: f64,
    pub worse_mean: f64,
}

/// Every comparison over `calls`.
pub fn compare(calls: &[EmpathyCall]) -> Vec<ComparisonResult> {
    COMPARISONS
        .iter()
        .map(|c| {
            let values = |s: Scenario| -> (Vec<f64>, usize) {
                let of: Vec<_> = calls.iter().filter(|x| x.scenario == s).collect();
                let v: Vec<f64> = of
                    .iter()
                    .filter_map(|x| x.measures.get(c.measure))
                    .collect();
                let missing = of.len() - v.len();
                (v, missing)
            };
            let (better, better_missing) = values(c.better);
            let (worse, worse_missing) = values(c.worse);
            let sign = if c.higher_is_better { 1.0 } else { -1.0 };
            let signed = |v: &[f64]| v.iter().map(|x| sign * x).collect::<Vec<_>>();
            let mean = |v: &[f64]| {
                if v.is_empty() {
                    f64::NAN
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            };
            ComparisonResult {
                comparison: *c,
                better_n: better.len(),
                worse_n: worse.len(),
                better_missing,
                worse_missing,
                auc: auc(&signed(&better), &signed(&worse)),
                better_mean: mean(&better),
                worse_mean: mean(&worse),
            }
        })
        .collect()
}

/// Reading chunk when feeding a composed call to the analyzer, samples (3 s at 8 kHz, as
/// [`attune_core::call::analyze_recording`] reads).
const CHUNK: usize = 24_000;

/// Composes `calls` scripted calls (cycling through [`Scenario::ALL`]) with callers of
/// `catalog`, judges them with `model` and measures them. `index_base` keeps the calls of
/// different folds apart; `keep_dir` writes each call's WAV and spec there.
#[allow(clippy::too_many_arguments)] // each is one independent input of the fold
pub fn evaluate_calls(
    model: &Arc<EmotionModel>,
    rules: &CueRules,
    catalog: &Catalog,
    cache: &mut SourceCache,
    seed: u64,
    fold: usize,
    calls: usize,
    keep_dir: Option<&Path>,
) -> Result<Vec<EmpathyCall>, ComposeError> {
    let mut out = Vec::with_capacity(calls);
    for i in 0..calls {
        let scenario = Scenario::ALL[i % Scenario::ALL.len()];
        let index = fold as u64 * 1000 + i as u64;
        let name = format!("fold{fold}_{i:03}_{}", scenario.as_str());
        let spec = scripted_spec(scenario.script(), seed, index, catalog, cache)?;
        let call = compose::compose_with(&spec, cache)?;
        if let Some(dir) = keep_dir {
            compose::write_call(&call, &dir.join(format!("{name}.wav")))?;
            let path = dir.join(format!("{name}.spec.json"));
            let text = serde_json::to_string_pretty(&spec).unwrap_or_default() + "\n";
            std::fs::write(&path, text).map_err(|source| ComposeError::Write { path, source })?;
        }
        let config = CallConfig {
            agent_channel: usize::from(spec.agent_channel),
            rules: rules.clone(),
            ..CallConfig::default()
        };
        let mut analyzer = CallAnalyzer::new(config, Arc::clone(model))
            .map_err(|e| ComposeError::Spec(e.to_string()))?;
        let mut events = Vec::new();
        let len = call.channels.iter().map(Vec::len).min().unwrap_or(0);
        let mut pos = 0;
        while pos < len {
            let end = (pos + CHUNK).min(len);
            analyzer.push(0, &call.channels[0][pos..end], &mut events);
            analyzer.push(1, &call.channels[1][pos..end], &mut events);
            events.clear();
            pos = end;
        }
        let outcome = analyzer.finish(&mut events);
        out.push(EmpathyCall {
            name,
            fold,
            scenario,
            measures: CallMeasures::of(&outcome),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_known_rankings() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(auc(&[1.0], &[1.0]), 0.5);
        assert!((auc(&[1.0, 3.0], &[2.0]) - 0.5).abs() < 1e-12);
        assert!(auc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn every_comparison_names_a_known_measure() {
        let m = CallMeasures {
            active_listening_score: Some(1.0),
            interruptions_while_upset: Some(1.0),
            backchannels_per_min: Some(1.0),
            attunement_score: Some(1.0),
            stays_below_share: Some(1.0),
            de_escalation_score: Some(1.0),
            ends_calmer: Some(1.0),
            pressing_cue_opens: Some(1.0),
            caller_upset_opened: true,
        };
        for c in COMPARISONS {
            assert!(m.get(c.measure).is_some(), "{}", c.measure);
        }
    }
}
