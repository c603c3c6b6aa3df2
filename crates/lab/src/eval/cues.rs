//! Cue accuracy against composed calls with a scripted caller mood (see
//! [`crate::compose::random::CallerArc`]), used by `attune eval cues`.
//!
//! - **Upset calls**: the delay from the start of the sustained angry speech (the first
//!   angry/disgust caller utterance of the composed truth) to the first `caller_upset` open at
//!   or after it; a `caller_upset` opened before it is an early (false) open; none by the end of
//!   the upset stretch + [`MISS_AFTER_STRETCH_S`] is a miss.
//! - **Calm calls** (neutral/calm caller, read-speech agent with a steady voice): every cue of
//!   a kind in [`FALSE_ON_CALM`] is false (nothing in the call is an upset, anxious, escalating,
//!   calming, happy caller, nor a change in the agent's pace, loudness or calmness). Timing cues
//!   are checked against the composed truth ([`timing_cue_is_true`]): true when the truth holds
//!   the silence, overlap, interruption, slow answer or long turn they report, false otherwise.

use serde::Serialize;

use crate::compose::annotation::{CallAnnotation, Speaker, UtteranceKind};
use crate::compose::random::{UPSET_EMOTION_CODES, ravdess_emotion_code};
use attune_core::cues::{CueEvent, CueKind, CueRules, CueTransition};

/// A caller_upset open this long after the upset stretch ended no longer counts as flagging it.
pub const MISS_AFTER_STRETCH_S: f64 = 10.0;
/// The target delay from sustained angry speech to the caller_upset cue, seconds.
pub const TARGET_DELAY_S: f64 = 3.0;
/// Timing cues may differ from the truth by this much, seconds.
const TIMING_TOLERANCE_S: f64 = 1.0;

/// Cue kinds that are false whenever they open on a calm composed call.
pub const FALSE_ON_CALM: [CueKind; 10] = [
    CueKind::CallerUpset,
    CueKind::CallerAnxious,
    CueKind::CallerEscalating,
    CueKind::CallerCalmedDown,
    CueKind::PositiveInteraction,
    CueKind::AgentRaisedVoice,
    CueKind::AgentLowEnergy,
    CueKind::AgentSpeakingQuickly,
    CueKind::AgentSpeakingSlowly,
    CueKind::AgentTension,
];

/// The sustained angry stretch of a composed call: first angry/disgust caller utterance start
/// to the last one's end. None for a call without one.
pub fn upset_stretch(truth: &CallAnnotation) -> Option<(f64, f64)> {
    let upset: Vec<_> = truth
        .utterances
        .iter()
        .filter(|u| u.speaker == Speaker::Caller && u.kind != UtteranceKind::Backchannel)
        .filter(|u| {
            ravdess_emotion_code(&u.source).is_some_and(|c| UPSET_EMOTION_CODES.contains(&c))
        })
        .collect();
    let start = upset
        .iter()
        .map(|u| u.start_s)
        .fold(f64::INFINITY, f64::min);
    let end = upset
        .iter()
        .map(|u| u.end_s)
        .fold(f64::NEG_INFINITY, f64::max);
    (start.is_finite() && end >= start).then_some((start, end))
}

/// Whether a timing cue reports what the composed truth holds.
pub fn timing_cue_is_true(cue: &CueEvent, truth: &CallAnnotation, rules: &CueRules) -> bool {
    let tol = TIMING_TOLERANCE_S;
    let overlaps = |start: f64, end: f64| start <= cue.t_s + tol && end >= cue.start_s - tol;
    match cue.kind {
        CueKind::ExtendedSilence => truth.silences.iter().any(|s| {
            s.end_s - s.start_s >= rules.extended_silence_s.open - tol
                && overlaps(s.start_s, s.end_s)
        }),
        CueKind::ExtendedOverlap => truth.overlaps.iter().any(|s| {
            s.end_s - s.start_s >= rules.extended_overlap_s.open - tol
                && overlaps(s.start_s, s.end_s)
        }),
        CueKind::AgentInterrupting => truth
            .interruptions
            .iter()
            .any(|i| i.by == Speaker::Agent && (i.t_s - cue.start_s).abs() <= tol),
        CueKind::AgentSlowToRespond => truth.silences.iter().any(|s| {
            s.end_s - s.start_s >= rules.agent_slow_to_respond.latency_s - tol
                && overlaps(s.start_s, s.end_s)
        }),
        CueKind::AgentContinuousSpeaking => truth.turns.iter().any(|t| {
            t.speaker == Speaker::Agent
                && t.end_s - t.start_s >= rules.agent_continuous_speaking_s.open - 2.0 * tol
                && overlaps(t.start_s, t.end_s)
        }),
        _ => false,
    }
}

/// One evaluated call.
#[derive(Debug, Clone, Serialize)]
pub struct CallCueResult {
    pub name: String,
    pub duration_s: f64,
    /// The upset stretch (start, end) of an upset call; None for a calm call.
    pub upset_stretch_s: Option<(f64, f64)>,
    /// Delay from the stretch start to the first caller_upset open at or after it.
    pub upset_delay_s: Option<f64>,
    /// caller_upset opens before the stretch started.
    pub early_upset_opens: usize,
    /// Cues that are false on this call (calm calls: see the module docs; upset calls: the
    /// early caller_upset opens only).
    pub false_cues: Vec<(CueKind, f64)>,
    /// Timing cues the truth confirms.
    pub true_timing_cues: usize,
    /// Every cue opened, by kind.
    pub opened: Vec<(CueKind, usize)>,
}

/// Scores one call's cues against its truth.
pub fn score_call(
    name: &str,
    truth: &CallAnnotation,
    cues: &[CueEvent],
    rules: &CueRules,
) -> CallCueResult {
    let opens: Vec<&CueEvent> = cues
        .iter()
        .filter(|c| c.event == CueTransition::Open)
        .collect();
    let stretch = upset_stretch(truth);
    let mut opened: Vec<(CueKind, usize)> = Vec::new();
    for cue in &opens {
        match opened.iter_mut().find(|(k, _)| *k == cue.kind) {
            Some((_, n)) => *n += 1,
            None => opened.push((cue.kind, 1)),
        }
    }
    opened.sort();
    let mut result = CallCueResult {
        name: name.to_owned(),
        duration_s: truth.duration_s,
        upset_stretch_s: stretch,
        upset_delay_s: None,
        early_upset_opens: 0,
        false_cues: Vec::new(),
        true_timing_cues: 0,
        opened,
    };
    let upset_opens = opens.iter().filter(|c| c.kind == CueKind::CallerUpset);
    match stretch {
        Some((start, end)) => {
            for cue in upset_opens {
                if cue.t_s < start {
                    result.early_upset_opens += 1;
                    result.false_cues.push((cue.kind, cue.t_s));
                } else if result.upset_delay_s.is_none() && cue.t_s <= end + MISS_AFTER_STRETCH_S {
                    result.upset_delay_s = Some(cue.t_s - start);
                }
            }
        }
        None => {
            for cue in &opens {
                if FALSE_ON_CALM.contains(&cue.kind) {
                    result.false_cues.push((cue.kind, cue.t_s));
                } else if timing_cue_is_true(cue, truth, rules) {
                    result.true_timing_cues += 1;
                } else {
                    result.false_cues.push((cue.kind, cue.t_s));
                }
            }
        }
    }
    for cue in opens.iter().filter(|c| !FALSE_ON_CALM.contains(&c.kind)) {
        if stretch.is_some() && timing_cue_is_true(cue, truth, rules) {
            result.true_timing_cues += 1;
        }
    }
    result
}

/// Figures over a set of calls.
#[derive(Debug, Clone, Serialize)]
pub struct CueEvalReport {
    pub rules_version: String,
    pub upset_calls: usize,
    /// Upset calls whose caller_upset opened within [`TARGET_DELAY_S`].
    pub upset_flagged_within_target: usize,
    /// Upset calls flagged at all (within the stretch + [`MISS_AFTER_STRETCH_S`]).
    pub upset_flagged: usize,
    pub upset_missed: usize,
    pub upset_delay_median_s: Option<f64>,
    pub upset_delay_p90_s: Option<f64>,
    pub upset_delay_max_s: Option<f64>,
    /// caller_upset opens before the angry stretch of upset calls.
    pub upset_early_opens: usize,
    pub calm_calls: usize,
    pub calm_minutes: f64,
    /// False cues on calm calls, by kind (kinds with none are left out).
    pub calm_false_by_kind: Vec<(CueKind, usize)>,
    pub calm_false_total: usize,
    pub calm_false_per_10_min: f64,
    /// Timing cues on calm calls that the truth confirms.
    pub calm_true_timing_cues: usize,
    pub calls: Vec<CallCueResult>,
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Condenses per-call results.
pub fn report(calls: Vec<CallCueResult>, rules: &CueRules) -> CueEvalReport {
    let upset: Vec<&CallCueResult> = calls
        .iter()
        .filter(|c| c.upset_stretch_s.is_some())
        .collect();
    let calm: Vec<&CallCueResult> = calls
        .iter()
        .filter(|c| c.upset_stretch_s.is_none())
        .collect();
    let mut delays: Vec<f64> = upset.iter().filter_map(|c| c.upset_delay_s).collect();
    delays.sort_by(f64::total_cmp);
    let mut by_kind: Vec<(CueKind, usize)> = Vec::new();
    for (kind, _) in calm.iter().flat_map(|c| &c.false_cues) {
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => by_kind.push((*kind, 1)),
        }
    }
    by_kind.sort();
    let calm_minutes = calm.iter().map(|c| c.duration_s).sum::<f64>() / 60.0;
    let calm_false_total = by_kind.iter().map(|(_, n)| n).sum();
    CueEvalReport {
        rules_version: rules.version.clone(),
        upset_calls: upset.len(),
        upset_flagged_within_target: delays.iter().filter(|d| **d <= TARGET_DELAY_S).count(),
        upset_flagged: delays.len(),
        upset_missed: upset.len() - delays.len(),
        upset_delay_median_s: quantile(&delays, 0.5),
        upset_delay_p90_s: quantile(&delays, 0.9),
        upset_delay_max_s: delays.last().copied(),
        upset_early_opens: upset.iter().map(|c| c.early_upset_opens).sum(),
        calm_calls: calm.len(),
        calm_minutes,
        calm_false_per_10_min: if calm_minutes > 0.0 {
            calm_false_total as f64 / calm_minutes * 10.0
        } else {
            0.0
        },
        calm_false_by_kind: by_kind,
        calm_false_total,
        calm_true_timing_cues: calm.iter().map(|c| c.true_timing_cues).sum(),
        calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile(&v, 0.5), Some(5.0));
        assert_eq!(quantile(&v, 0.9), Some(9.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
