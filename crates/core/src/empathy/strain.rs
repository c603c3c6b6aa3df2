//! Agent strain across a shift: what each ended call asked of the agent ([`CallStrain`]) and,
//! over the agent's consecutive calls ([`ShiftStrain`]), when to tell the agent and their
//! supervisor to take a moment (the `agent_take_a_moment` cue, rule [`TakeAMomentRule`] in
//! `[agent_take_a_moment]` of `rules/cues.toml`; definitions in `docs/empathy.md`).
//!
//! Pure: the caller (the service's hub) passes each call's start and end time; nothing here
//! reads a clock. A shift is a run of calls with breaks shorter than `shift_break_s`.

use std::collections::VecDeque;

use serde::Serialize;

use crate::call::{CallOutcome, EmotionPoint};
use crate::cues::{
    CueEvent, CueKind, CueTransition, Evidence, EvidenceValue, TakeAMomentRule, guidance, party,
    severity,
};

/// What one ended call asked of its agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallStrain {
    pub duration_s: f64,
    /// Mean agent calmness (0–100) over the agent's judged windows; None without any.
    pub agent_mean_calmness: Option<f64>,
    /// Mean agent arousal (0–1) over the same windows.
    pub agent_mean_arousal: Option<f64>,
    /// Call time `caller_upset` was open (an open cue without a close counts to the call's end),
    /// seconds.
    pub caller_upset_s: f64,
    /// Whether `agent_tension` opened during the call.
    pub agent_tension_opened: bool,
}

impl CallStrain {
    /// The strain of a finished call, from its outcome.
    pub fn from_outcome(outcome: &CallOutcome) -> Self {
        Self::from_parts(outcome.duration_s, &outcome.agent_emotion, &outcome.cues)
    }

    /// The strain of a call of `duration_s` with these agent windows and cue events.
    pub fn from_parts(duration_s: f64, agent_emotion: &[EmotionPoint], cues: &[CueEvent]) -> Self {
        let judged: Vec<&EmotionPoint> = agent_emotion
            .iter()
            .filter(|p| p.emotion.is_some())
            .collect();
        let mean = |f: &dyn Fn(&EmotionPoint) -> f64| {
            (!judged.is_empty())
                .then(|| judged.iter().map(|p| f(p)).sum::<f64>() / judged.len() as f64)
        };
        let mut upset_open_at: Vec<(u64, f64)> = Vec::new();
        let mut caller_upset_s = 0.0;
        let mut agent_tension_opened = false;
        for cue in cues {
            match (cue.kind, cue.event) {
                (CueKind::CallerUpset, CueTransition::Open) => {
                    upset_open_at.push((cue.cue_id, cue.start_s))
                }
                (CueKind::CallerUpset, CueTransition::Close) => {
                    if let Some(i) = upset_open_at.iter().position(|(id, _)| *id == cue.cue_id) {
                        let (_, start_s) = upset_open_at.swap_remove(i);
                        caller_upset_s += (cue.end_s - start_s).max(0.0);
                    }
                }
                (CueKind::AgentTension, CueTransition::Open) => agent_tension_opened = true,
                _ => {}
            }
        }
        for (_, start_s) in upset_open_at {
            caller_upset_s += (duration_s - start_s).max(0.0);
        }
        Self {
            duration_s,
            agent_mean_calmness: mean(&|p| f64::from(p.calmness)),
            agent_mean_arousal: mean(&|p| f64::from(p.arousal)),
            caller_upset_s,
            agent_tension_opened,
        }
    }
}

/// What [`ShiftStrain::after_call`] concluded about one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrainVerdict {
    /// Calls in the agent's current shift, this one included.
    pub shift_calls: u32,
    /// Why this call was a hard one (empty: it was not).
    pub hard_call_reasons: Vec<String>,
    /// Mean calmness of the shift's last `strain_calls` calls minus the mean of its earlier
    /// calls, points (negative: the agent sounds less calm than earlier in the shift); None
    /// until the shift has `strain_calls` calls with calmness on each side.
    pub calmness_change_points: Option<f64>,
    /// Mean agent arousal over the shift's calls so far (0–1).
    pub shift_mean_agent_arousal: Option<f64>,
    /// Whether the agent should be told to take a moment now.
    pub take_a_moment: bool,
}

impl StrainVerdict {
    /// The cue to publish for this verdict on the call that just ended (`cue_id` unused by
    /// that call's other cues), when [`Self::take_a_moment`] is set.
    pub fn cue(&self, call: &CallStrain, rule: &TakeAMomentRule, cue_id: u64) -> Option<CueEvent> {
        if !self.take_a_moment {
            return None;
        }
        let kind = CueKind::AgentTakeAMoment;
        let mut values = vec![
            EvidenceValue {
                name: "shift_calls",
                value: f64::from(self.shift_calls),
            },
            EvidenceValue {
                name: "caller_upset_s",
                value: round1(call.caller_upset_s),
            },
        ];
        if let Some(c) = call.agent_mean_calmness {
            values.push(EvidenceValue {
                name: "agent_mean_calmness_points",
                value: round1(c),
            });
        }
        if let Some(c) = self.calmness_change_points {
            values.push(EvidenceValue {
                name: "shift_calmness_change_points",
                value: round1(c),
            });
        }
        let why = if self.hard_call_reasons.is_empty() {
            format!(
                "strain across the shift: calmness of the last {} calls {} points below earlier",
                rule.strain_calls, rule.strain_drop_points
            )
        } else {
            format!("a hard call: {}", self.hard_call_reasons.join("; "))
        };
        Some(CueEvent {
            cue_id,
            kind,
            party: party(kind),
            severity: severity(kind),
            event: CueTransition::Open,
            t_s: call.duration_s,
            start_s: 0.0,
            end_s: call.duration_s,
            evidence: Evidence {
                rule: format!(
                    "{why} (caller_upset >= {} s, or agent_tension, or mean calmness >= {} points \
                     below the agent's shift so far, or the last {} calls' calmness >= {} points \
                     below the shift's earlier calls; at most one per {} s)",
                    rule.hard_call_upset_s,
                    rule.hard_call_calmness_drop_points,
                    rule.strain_calls,
                    rule.strain_drop_points,
                    rule.min_gap_s
                ),
                values,
            },
            guidance: guidance(kind),
        })
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Calls whose calmness the rolling "recent" part of a shift holds at most (the rule's
/// `strain_calls` is validated against it).
pub const MAX_STRAIN_CALLS: usize = 20;

/// One agent's shift so far. Memory is bounded: running sums, and the last `strain_calls`
/// calls' calmness.
#[derive(Debug, Clone)]
pub struct ShiftStrain {
    rule: TakeAMomentRule,
    last_end_unix_s: Option<f64>,
    shift_calls: u32,
    /// Calmness of the shift's calls before the recent ones: sum and count.
    earlier_calmness: (f64, u32),
    recent_calmness: VecDeque<f64>,
    arousal: (f64, u32),
    last_cue_unix_s: Option<f64>,
}

impl ShiftStrain {
    pub fn new(rule: TakeAMomentRule) -> Self {
        Self {
            rule,
            last_end_unix_s: None,
            shift_calls: 0,
            earlier_calmness: (0.0, 0),
            recent_calmness: VecDeque::with_capacity(MAX_STRAIN_CALLS + 1),
            arousal: (0.0, 0),
            last_cue_unix_s: None,
        }
    }

    /// When the agent's last call ended (Unix seconds).
    pub fn last_end_unix_s(&self) -> Option<f64> {
        self.last_end_unix_s
    }

    /// Takes the agent's next ended call (started and ended at these Unix times, seconds).
    pub fn after_call(
        &mut self,
        started_unix_s: f64,
        ended_unix_s: f64,
        call: &CallStrain,
    ) -> StrainVerdict {
        let rule = self.rule;
        if self
            .last_end_unix_s
            .is_some_and(|end| started_unix_s - end >= rule.shift_break_s)
        {
            *self = Self::new(rule);
        }
        self.last_end_unix_s = Some(ended_unix_s);
        self.shift_calls = self.shift_calls.saturating_add(1);
        if let Some(a) = call.agent_mean_arousal {
            self.arousal.0 += a;
            self.arousal.1 += 1;
        }
        let strain_calls = rule.strain_calls as usize;
        // The agent's own level: its mean calmness over the shift's calls before this one.
        let before = (
            self.earlier_calmness.0 + self.recent_calmness.iter().sum::<f64>(),
            self.earlier_calmness.1 as usize + self.recent_calmness.len(),
        );
        let calmness_vs_shift_points = call
            .agent_mean_calmness
            .filter(|_| before.1 >= rule.baseline_calls as usize && before.1 > 0)
            .map(|c| c - before.0 / before.1 as f64);
        if let Some(c) = call.agent_mean_calmness {
            self.recent_calmness.push_back(c);
            if self.recent_calmness.len() > strain_calls
                && let Some(old) = self.recent_calmness.pop_front()
            {
                self.earlier_calmness.0 += old;
                self.earlier_calmness.1 += 1;
            }
        }
        let calmness_change_points = (self.recent_calmness.len() == strain_calls
            && self.earlier_calmness.1 as usize >= strain_calls)
            .then(|| {
                let recent = self.recent_calmness.iter().sum::<f64>() / strain_calls as f64;
                recent - self.earlier_calmness.0 / f64::from(self.earlier_calmness.1)
            });

        let mut hard_call_reasons = Vec::new();
        if call.caller_upset_s >= rule.hard_call_upset_s {
            hard_call_reasons.push(format!("caller upset for {:.0} s", call.caller_upset_s));
        }
        if call.agent_tension_opened {
            hard_call_reasons.push("agent_tension opened".to_owned());
        }
        if let Some(d) = calmness_vs_shift_points
            && d <= -rule.hard_call_calmness_drop_points
        {
            hard_call_reasons.push(format!(
                "agent calmness {:.0} points below its shift so far",
                -d
            ));
        }
        let strained = calmness_change_points.is_some_and(|d| d <= -rule.strain_drop_points);
        let due = self
            .last_cue_unix_s
            .is_none_or(|t| ended_unix_s - t >= rule.min_gap_s);
        let take_a_moment = (strained || !hard_call_reasons.is_empty()) && due;
        if take_a_moment {
            self.last_cue_unix_s = Some(ended_unix_s);
        }
        StrainVerdict {
            shift_calls: self.shift_calls,
            hard_call_reasons,
            calmness_change_points: calmness_change_points.map(round1),
            shift_mean_agent_arousal: (self.arousal.1 > 0)
                .then(|| (self.arousal.0 / f64::from(self.arousal.1) * 1000.0).round() / 1000.0),
            take_a_moment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cues::{CueParty, CueRules, Severity};
    use crate::dialog::Speaker;
    use crate::prosody::baseline::Normalisation;

    fn rule() -> TakeAMomentRule {
        CueRules::default()
            .agent_take_a_moment
            .expect("the embedded rules have [agent_take_a_moment]")
    }

    fn agent_point(t_s: f64, calmness: f32, judged: bool) -> EmotionPoint {
        EmotionPoint {
            t_s,
            party: Speaker::Agent,
            emotion: judged.then_some("neutral"),
            abstain_reason: None,
            probabilities: [0.0, 0.0, 0.0, 0.0, 1.0],
            arousal: 1.0 - calmness / 100.0,
            valence: 0.0,
            confidence: 0.8,
            calmness,
            normalisation: Normalisation::Global,
            speech_s: 2.5,
        }
    }

    fn cue(id: u64, kind: CueKind, event: CueTransition, start_s: f64, end_s: f64) -> CueEvent {
        CueEvent {
            cue_id: id,
            kind,
            party: CueParty::Caller,
            severity: Severity::Critical,
            event,
            t_s: end_s,
            start_s,
            end_s,
            evidence: Evidence {
                rule: String::new(),
                values: Vec::new(),
            },
            guidance: None,
        }
    }

    /// A call of 120 s whose agent windows all read `calmness`, with no cues.
    fn plain(calmness: f64) -> CallStrain {
        CallStrain {
            duration_s: 120.0,
            agent_mean_calmness: Some(calmness),
            agent_mean_arousal: Some(1.0 - calmness / 100.0),
            caller_upset_s: 0.0,
            agent_tension_opened: false,
        }
    }

    #[test]
    fn call_strain_sums_upset_spans_and_means_only_judged_windows() {
        let points = [
            agent_point(3.0, 80.0, true),
            agent_point(6.0, 0.0, false),
            agent_point(9.0, 60.0, true),
        ];
        let cues = [
            cue(1, CueKind::CallerUpset, CueTransition::Open, 10.0, 12.0),
            cue(1, CueKind::CallerUpset, CueTransition::Close, 10.0, 25.0),
            cue(2, CueKind::AgentTension, CueTransition::Open, 30.0, 33.0),
            // Still open at the end: counts to the call's end (100 s).
            cue(3, CueKind::CallerUpset, CueTransition::Open, 80.0, 82.0),
        ];
        let s = CallStrain::from_parts(100.0, &points, &cues);
        assert_eq!(s.agent_mean_calmness, Some(70.0));
        assert!((s.agent_mean_arousal.unwrap() - 0.3).abs() < 1e-6);
        assert!((s.caller_upset_s - (15.0 + 20.0)).abs() < 1e-9);
        assert!(s.agent_tension_opened);
        let quiet = CallStrain::from_parts(10.0, &[agent_point(1.0, 0.0, false)], &[]);
        assert_eq!(quiet.agent_mean_calmness, None);
        assert_eq!(quiet.caller_upset_s, 0.0);
    }

    #[test]
    fn a_hard_call_opens_take_a_moment_once_per_gap_and_a_break_starts_a_new_shift() {
        let r = rule();
        let mut shift = ShiftStrain::new(r);
        let mut t = 0.0;
        let mut next = |shift: &mut ShiftStrain, call: &CallStrain, break_s: f64| {
            t += break_s;
            let started = t;
            t += call.duration_s;
            shift.after_call(started, t, call)
        };
        let v = next(&mut shift, &plain(75.0), 0.0);
        assert!(!v.take_a_moment && v.hard_call_reasons.is_empty());
        let hard = CallStrain {
            caller_upset_s: r.hard_call_upset_s + 5.0,
            ..plain(70.0)
        };
        let v = next(&mut shift, &hard, 10.0);
        assert!(v.take_a_moment, "{v:?}");
        assert_eq!(v.shift_calls, 2);
        assert!(v.hard_call_reasons[0].contains("caller upset"));
        let event = v.cue(&hard, &r, 9).expect("a cue");
        assert_eq!(event.kind, CueKind::AgentTakeAMoment);
        assert_eq!((event.cue_id, event.t_s), (9, 120.0));
        assert!(event.guidance.is_some_and(|g| g.contains("moment")));
        // Another hard call within min_gap_s: no second cue.
        let tense = CallStrain {
            agent_tension_opened: true,
            ..plain(70.0)
        };
        let v = next(&mut shift, &tense, 10.0);
        assert!(!v.take_a_moment && !v.hard_call_reasons.is_empty());
        assert!(v.cue(&tense, &r, 1).is_none());
        // A call far below the agent's own calmness so far (75, 70, 70), after the gap: a cue
        // again; the same absolute level is not hard for an agent who always sounds like it.
        let low = 70.0 - r.hard_call_calmness_drop_points - 5.0;
        let v = next(&mut shift, &plain(low), r.min_gap_s);
        assert!(
            v.take_a_moment && v.hard_call_reasons[0].contains("calmness"),
            "{v:?}"
        );
        let mut steady = ShiftStrain::new(r);
        for i in 0..4 {
            let start = f64::from(i) * 200.0;
            let v = steady.after_call(start, start + 120.0, &plain(low));
            assert!(!v.take_a_moment, "{v:?}");
        }
        // A break of shift_break_s: a new shift.
        let v = next(&mut shift, &plain(75.0), r.shift_break_s);
        assert_eq!(v.shift_calls, 1);
    }

    #[test]
    fn calmness_falling_across_the_shift_opens_take_a_moment_without_a_hard_call() {
        let r = rule();
        let n = r.strain_calls as usize;
        let high = 70.0;
        let low = high - r.strain_drop_points - 1.0;
        assert!(
            high - low < r.hard_call_calmness_drop_points,
            "no call is hard by itself"
        );
        let mut shift = ShiftStrain::new(r);
        let mut verdicts = Vec::new();
        for i in 0..2 * n {
            let c = if i < n { high } else { low };
            let start = i as f64 * 200.0;
            verdicts.push(shift.after_call(start, start + 120.0, &plain(c)));
        }
        for v in &verdicts[..2 * n - 1] {
            assert!(!v.take_a_moment, "{v:?}");
        }
        let last = verdicts.last().unwrap();
        assert!(
            last.take_a_moment && last.hard_call_reasons.is_empty(),
            "{last:?}"
        );
        let expected = low - high;
        assert!((last.calmness_change_points.unwrap() - expected).abs() < 0.05);
        // The same shift with a smaller fall stays quiet.
        let mut shift = ShiftStrain::new(r);
        let small = high - r.strain_drop_points + 1.0;
        for i in 0..2 * n {
            let c = if i < n { high } else { small };
            let start = i as f64 * 200.0;
            assert!(
                !shift
                    .after_call(start, start + 120.0, &plain(c))
                    .take_a_moment
            );
        }
    }

    #[test]
    fn take_a_moment_rule_values_are_checked() {
        let text = crate::cues::DEFAULT_RULES_TOML.replace("strain_calls = 3", "strain_calls = 0");
        let e = CueRules::from_toml(&text, "test").unwrap_err().to_string();
        assert!(e.contains("agent_take_a_moment.strain_calls"), "{e}");
        let off = crate::cues::DEFAULT_RULES_TOML
            .split("[agent_take_a_moment]")
            .next()
            .unwrap()
            .to_owned();
        assert!(
            CueRules::from_toml(&off, "test")
                .unwrap()
                .agent_take_a_moment
                .is_none()
        );
    }
}
