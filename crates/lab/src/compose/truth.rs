//! Exact ground truth of a composed call, computed from the placed, clean per-speaker speech
//! (before crosstalk, noise, band-pass and mu-law), in samples, then written in seconds.
//!
//! Definitions (thresholds in [`TruthConfig`]):
//! - **Activity** of a party: the union of the speech runs of its utterances (frames of the clean
//!   source above its own speech level minus 35 dB, see `source`), with pauses shorter than
//!   [`TruthConfig::bridge_pause_s`] (the VAD's `bridge_pause_s`, 0.25 s) filled in. Each
//!   maximal active stretch is a *run*.
//! - **Overlap**: both parties active. **Silence**: neither active (call start and end included).
//!   Talk totals: `agent_s + caller_s - overlap_s + silence_s = duration_s` exactly.
//! - **Backchannel**: a run of X no longer than [`TruthConfig::backchannel_max_s`] (1.0 s) that
//!   starts while the other party Y is active, with Y keeping the floor: Y is still active when
//!   the run ends, or speaks again within [`TruthConfig::backchannel_resume_max_s`] (1.0 s) after
//!   it and before X speaks again. (A short run starting in a silence is a turn.)
//! - **Interruption**: a run of X, not a backchannel, that starts while Y is active, after Y's
//!   run has lasted at least [`TruthConfig::interruption_min_prior_s`] (0.5 s), and during which
//!   Y keeps speaking at least [`TruthConfig::interruption_min_overlap_s`] (0.4 s). It is
//!   attributed to X, at the run's start (the overlap onset), with the duration of that overlap.
//!   Any other run starting inside Y's speech is a turn-boundary overlap (the next speaker
//!   starting a little early), not an interruption.
//! - **Turns**: every run that is not a backchannel, in time order.

use super::annotation::{InterruptionTruth, Span, Speaker, TalkTruth, TurnTruth, UtteranceKind};
use attune_core::dsp::vad::VadConfig;

/// Thresholds of the ground-truth definitions; units in the names.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthConfig {
    /// Pauses shorter than this inside one party's speech are speech.
    pub bridge_pause_s: f64,
    /// Longest run that can be a backchannel.
    pub backchannel_max_s: f64,
    /// A backchannel's host may pause under it: it must speak again within this long after the
    /// backchannel ends (and before the backchanneling party speaks again).
    pub backchannel_resume_max_s: f64,
    /// How long the interrupted party must already have been speaking.
    pub interruption_min_prior_s: f64,
    /// How long the interrupted party must keep speaking over the interrupter.
    pub interruption_min_overlap_s: f64,
}

impl Default for TruthConfig {
    fn default() -> Self {
        Self {
            bridge_pause_s: VadConfig::default().bridge_pause_s,
            backchannel_max_s: 1.0,
            backchannel_resume_max_s: 1.0,
            interruption_min_prior_s: 0.5,
            interruption_min_overlap_s: 0.4,
        }
    }
}

/// Speech of one placed utterance: half-open sample ranges in call time, sorted, disjoint.
#[derive(Debug, Clone, PartialEq)]
pub struct UtteranceActivity {
    pub speaker: Speaker,
    pub runs: Vec<(usize, usize)>,
}

/// The computed truth (seconds) and each utterance's role.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub turns: Vec<TurnTruth>,
    pub overlaps: Vec<Span>,
    pub interruptions: Vec<InterruptionTruth>,
    pub backchannels: Vec<Span>,
    pub silences: Vec<Span>,
    pub talk: TalkTruth,
    /// Role of each utterance: the role of the run it starts, or `Turn` when it continues a run.
    pub utterance_kinds: Vec<UtteranceKind>,
}

/// Merges sorted-or-not ranges, filling gaps shorter than `bridge` samples.
pub fn merge_runs(mut runs: Vec<(usize, usize)>, bridge: usize) -> Vec<(usize, usize)> {
    runs.retain(|&(s, e)| e > s);
    runs.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
    for (s, e) in runs {
        match merged.last_mut() {
            Some(last) if s < last.1 + bridge => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Intersection of two sorted disjoint range lists.
pub fn intersect(a: &[(usize, usize)], b: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if e > s {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn total(runs: &[(usize, usize)]) -> usize {
    runs.iter().map(|&(s, e)| e - s).sum()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RunRole {
    Turn,
    Backchannel,
    Interruption { overlap: usize },
}

fn classify(
    run: (usize, usize),
    own_next_start: Option<usize>,
    other: &[(usize, usize)],
    rate: f64,
    config: &TruthConfig,
) -> RunRole {
    let samples = |s: f64| (s * rate).round() as usize;
    let Some(host_index) = other.iter().position(|&(s, e)| s <= run.0 && run.0 < e) else {
        return RunRole::Turn;
    };
    let host = other[host_index];
    // The other party holds the floor: still speaking when this run ends, or speaking again
    // soon after it, before this party speaks again.
    let holds_floor = host.1 >= run.1
        || other.get(host_index + 1).is_some_and(|&(next, _)| {
            next <= run.1 + samples(config.backchannel_resume_max_s)
                && own_next_start.is_none_or(|own| next <= own)
        });
    if run.1 - run.0 <= samples(config.backchannel_max_s) && holds_floor {
        return RunRole::Backchannel;
    }
    let overlap = run.1.min(host.1) - run.0;
    if run.0 - host.0 >= samples(config.interruption_min_prior_s)
        && overlap >= samples(config.interruption_min_overlap_s)
    {
        RunRole::Interruption { overlap }
    } else {
        RunRole::Turn
    }
}

/// Computes the truth of a call of `total_samples` samples at `sample_rate_hz`.
pub fn compute_truth(
    sample_rate_hz: u32,
    total_samples: usize,
    utterances: &[UtteranceActivity],
    config: &TruthConfig,
) -> Truth {
    let rate = f64::from(sample_rate_hz);
    let sec = |n: usize| n as f64 / rate;
    let bridge = (config.bridge_pause_s * rate).round() as usize;
    let activity = |who: Speaker| {
        merge_runs(
            utterances
                .iter()
                .filter(|u| u.speaker == who)
                .flat_map(|u| u.runs.iter().map(|&(s, e)| (s, e.min(total_samples))))
                .collect(),
            bridge,
        )
    };
    let agent = activity(Speaker::Agent);
    let caller = activity(Speaker::Caller);
    let overlap = intersect(&agent, &caller);
    let union = merge_runs(agent.iter().chain(&caller).copied().collect(), 0);
    let mut silences = Vec::new();
    let mut cursor = 0;
    for &(s, e) in &union {
        if s > cursor {
            silences.push((cursor, s));
        }
        cursor = e;
    }
    if total_samples > cursor {
        silences.push((cursor, total_samples));
    }

    let mut runs: Vec<(Speaker, (usize, usize), RunRole)> = Vec::new();
    for (who, own, other) in [
        (Speaker::Agent, &agent, &caller),
        (Speaker::Caller, &caller, &agent),
    ] {
        for (k, &run) in own.iter().enumerate() {
            let next = own.get(k + 1).map(|r| r.0);
            runs.push((who, run, classify(run, next, other, rate, config)));
        }
    }
    runs.sort_by_key(|&(who, run, _)| (run.0, who == Speaker::Caller));

    let span = |(s, e): (usize, usize)| Span {
        start_s: sec(s),
        end_s: sec(e),
    };
    let mut turns = Vec::new();
    let mut interruptions = Vec::new();
    let mut backchannels = Vec::new();
    for &(who, run, role) in &runs {
        match role {
            RunRole::Backchannel => backchannels.push(span(run)),
            RunRole::Turn | RunRole::Interruption { .. } => turns.push(TurnTruth {
                speaker: who,
                start_s: sec(run.0),
                end_s: sec(run.1),
            }),
        }
        if let RunRole::Interruption { overlap } = role {
            interruptions.push(InterruptionTruth {
                t_s: sec(run.0),
                by: who,
                overlap_s: sec(overlap),
            });
        }
    }

    let utterance_kinds = utterances
        .iter()
        .map(|u| {
            let Some(&(first, _)) = u.runs.first() else {
                return UtteranceKind::Turn;
            };
            let role = runs
                .iter()
                .find(|(who, run, _)| *who == u.speaker && run.0 <= first && first < run.1);
            match role {
                Some((_, run, role)) if run.0 == first => match role {
                    RunRole::Turn => UtteranceKind::Turn,
                    RunRole::Backchannel => UtteranceKind::Backchannel,
                    RunRole::Interruption { .. } => UtteranceKind::Interruption,
                },
                _ => UtteranceKind::Turn,
            }
        })
        .collect();

    Truth {
        turns,
        overlaps: overlap.iter().copied().map(span).collect(),
        interruptions,
        backchannels,
        silences: silences.iter().copied().map(span).collect(),
        talk: TalkTruth {
            agent_s: sec(total(&agent)),
            caller_s: sec(total(&caller)),
            overlap_s: sec(total(&overlap)),
            silence_s: sec(total(&silences)),
        },
        utterance_kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 100; // one sample per 10 ms keeps the arithmetic readable

    fn utt(speaker: Speaker, s: f64, e: f64) -> UtteranceActivity {
        UtteranceActivity {
            speaker,
            runs: vec![((s * 100.0) as usize, (e * 100.0) as usize)],
        }
    }

    #[test]
    fn backchannel_may_span_a_pause_of_its_host() {
        use Speaker::{Agent, Caller};
        let utterances = vec![
            utt(Agent, 1.0, 3.0),
            utt(Agent, 3.5, 6.0),  // pause 3.0-3.5 splits the agent's runs
            utt(Caller, 2.8, 3.3), // "mm-hm" across that pause
            utt(Caller, 5.7, 6.3), // short, but the agent stops for good: a turn
        ];
        let truth = compute_truth(RATE, 800, &utterances, &TruthConfig::default());
        assert_eq!(truth.utterance_kinds[2], UtteranceKind::Backchannel);
        assert_eq!(truth.utterance_kinds[3], UtteranceKind::Turn);
        assert!(truth.interruptions.is_empty());
    }

    #[test]
    fn merge_bridges_short_pauses_only() {
        assert_eq!(
            merge_runs(vec![(30, 40), (0, 10), (12, 20)], 5),
            vec![(0, 20), (30, 40)]
        );
        assert_eq!(
            intersect(&[(0, 10), (20, 30)], &[(5, 25)]),
            vec![(5, 10), (20, 25)]
        );
    }

    #[test]
    fn classifies_interruption_backchannel_and_boundary_overlap() {
        use Speaker::{Agent, Caller};
        let utterances = vec![
            utt(Agent, 1.0, 5.0),
            utt(Caller, 2.0, 2.5),  // backchannel inside the agent's turn
            utt(Caller, 4.8, 8.0),  // boundary overlap: agent stops 0.2 s later
            utt(Agent, 6.0, 9.0),   // interruption: caller spoke 1.2 s, keeps on 2 s
            utt(Caller, 8.1, 8.15), // continues the caller run? no: bridged into (4.8, 8.15)
        ];
        let truth = compute_truth(RATE, 1000, &utterances, &TruthConfig::default());
        assert_eq!(
            truth.utterance_kinds,
            vec![
                UtteranceKind::Turn,
                UtteranceKind::Backchannel,
                UtteranceKind::Turn,
                UtteranceKind::Interruption,
                UtteranceKind::Turn
            ]
        );
        assert_eq!(truth.interruptions.len(), 1);
        let i = truth.interruptions[0];
        assert_eq!(i.by, Agent);
        assert!((i.t_s - 6.0).abs() < 1e-9 && (i.overlap_s - 2.15).abs() < 1e-9);
        assert_eq!(truth.backchannels.len(), 1);
        assert_eq!(truth.turns.len(), 3);
        let t = truth.talk;
        assert!((t.agent_s + t.caller_s - t.overlap_s + t.silence_s - 10.0).abs() < 1e-9);
        // Overlaps: backchannel (0.5), boundary (0.2), interruption (2.15).
        assert!((t.overlap_s - 2.85).abs() < 1e-9, "{t:?}");
        assert_eq!(truth.silences.first().unwrap().start_s, 0.0);
        assert_eq!(truth.silences.last().unwrap().end_s, 10.0);
    }
}
