//! Empathy you can hear: how the agent listens, attunes and de-escalates, measured from the
//! call's typed analysis (dialog turns and overlaps, per-turn prosody, caller emotion, cues) —
//! no audio, no I/O. Three measures ([`EmpathyReport`]), each a score 0–100 or None with the
//! reason, its measures, and the evidence moments that drove it:
//!
//! - [`active_listening`]: agent backchannels per minute of caller speech, interruptions of the
//!   caller while `caller_upset` is open, the pause before answering an emotional caller turn,
//!   talking over the caller;
//! - [`attunement`]: turn-level proximity, convergence and synchrony ([`entrainment`]) of the
//!   agent's pitch level and range, loudness and articulation rate with the caller turn each
//!   agent turn answers, and whether the agent stays calmly below a raised caller;
//! - [`de_escalation`]: time from `caller_upset` opening to its close and to
//!   `caller_calmed_down`, whether the call ends calmer than its peak, and the agent turns that
//!   preceded the turn-around.
//!
//! Definitions and thresholds ([`EmpathyConfig`], units in the names): `docs/empathy.md`.
//! [`assess`] runs after a call ends (the [`crate::call::CallAnalyzer`] puts the report in its
//! outcome); per-turn prosody comes from [`turns::TurnProsodyTracker`], fed during the call.

pub mod active_listening;
pub mod attunement;
pub mod de_escalation;
pub mod entrainment;
pub mod strain;
#[cfg(test)]
mod tests;
pub mod turns;

use serde::Serialize;

use crate::call::EmotionPoint;
use crate::cues::{CueEvent, CueKind, CueTransition};
use crate::dialog::{Interruption, Overlap, Speaker, TurnKind};
pub use active_listening::ActiveListeningMeasures;
pub use attunement::AttunementMeasures;
pub use de_escalation::DeEscalationMeasures;
pub use turns::{TurnProsody, TurnProsodyTracker};

/// A moment of the call that backs a measure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moment {
    /// Call time, seconds (rounded to ms).
    pub t_s: f64,
    pub what: String,
}

impl Moment {
    pub(crate) fn new(t_s: f64, what: impl Into<String>) -> Self {
        Self {
            t_s: (t_s * 1000.0).round() / 1000.0,
            what: what.into(),
        }
    }
}

/// Evidence moments kept per measure (the first in time order), so a report stays small
/// whatever the call's length.
pub const MAX_EVIDENCE: usize = 40;

/// One empathy measure: its score, its measures and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmpathyScore<M> {
    /// 0–100 (higher is better); None when the call gives no basis (see `reason`).
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub measures: M,
    /// The moments that drove the score, in time order.
    pub evidence: Vec<Moment>,
}

impl<M> EmpathyScore<M> {
    pub(crate) fn scored(score: f64, measures: M, mut evidence: Vec<Moment>) -> Self {
        evidence.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        evidence.truncate(MAX_EVIDENCE);
        Self {
            score: Some((score.clamp(0.0, 100.0) * 10.0).round() / 10.0),
            reason: None,
            measures,
            evidence,
        }
    }

    pub(crate) fn unscored(
        reason: impl Into<String>,
        measures: M,
        mut evidence: Vec<Moment>,
    ) -> Self {
        evidence.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        evidence.truncate(MAX_EVIDENCE);
        Self {
            score: None,
            reason: Some(reason.into()),
            measures,
            evidence,
        }
    }
}

/// The empathy object of a call's report (field names are a contract: `attune analyze` JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmpathyReport {
    pub active_listening: EmpathyScore<ActiveListeningMeasures>,
    pub attunement: EmpathyScore<AttunementMeasures>,
    pub de_escalation: EmpathyScore<DeEscalationMeasures>,
}

impl EmpathyReport {
    /// A report with no score at all (e.g. a mono recording), each measure giving `reason`.
    pub fn not_applicable(reason: &str) -> Self {
        Self {
            active_listening: EmpathyScore::unscored(reason, Default::default(), Vec::new()),
            attunement: EmpathyScore::unscored(reason, Default::default(), Vec::new()),
            de_escalation: EmpathyScore::unscored(reason, Default::default(), Vec::new()),
        }
    }
}

/// Every threshold of the empathy measures, units in the names (documented in
/// `docs/empathy.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmpathyConfig {
    /// Caller speech (talk time) below which active listening is not scored, seconds.
    pub min_caller_talk_s: f64,
    /// Backchannels per minute of caller speech that earn the full backchannel part.
    pub target_backchannels_per_min: f64,
    /// Interruptions of an upset caller that take the whole "room" part away.
    pub upset_interruptions_for_zero: f64,
    /// A pause before answering an emotional caller turn within this range earns the full
    /// pause part, seconds.
    pub answer_pause_good_min_s: f64,
    pub answer_pause_good_max_s: f64,
    /// The pause part falls to 0 at these pauses, seconds (negative: starting before the caller
    /// ended).
    pub answer_pause_zero_below_s: f64,
    pub answer_pause_zero_above_s: f64,
    /// Agent-started overlap (backchannels excluded) per minute of caller speech that takes the
    /// whole talk-over part away, seconds per minute.
    pub talk_over_s_per_min_for_zero: f64,
    /// Caller→agent turn pairs attunement needs.
    pub min_pairs: usize,
    /// A caller turn this much louder than the caller's median turn is "raised", dB.
    pub raised_caller_db: f64,
    /// An agent answer this much louder than its reference (its median answer to unraised caller
    /// turns) matches the rise, dB.
    pub matched_rise_db: f64,
    /// ... or this much higher in pitch level, semitones.
    pub matched_rise_st: f64,
    /// Weight of "stays calmly below a raised caller" in the attunement score (the rest is the
    /// accommodation of pitch and rate), 0–1.
    pub stays_below_weight: f64,
    /// Judged caller windows averaged for the angry trajectory.
    pub trajectory_windows: usize,
    /// The call ends calmer than its peak when its last windows' angry probability is at least
    /// this far below the peak.
    pub calmer_drop_probability: f64,
    /// Time from the upset opening to its close at which the "calmed" part has halved, seconds.
    pub calm_half_s: f64,
    /// Agent turns this long before the turn-around are the ones that preceded it, seconds.
    pub turnaround_lookback_s: f64,
}

impl Default for EmpathyConfig {
    fn default() -> Self {
        Self {
            min_caller_talk_s: 20.0,
            target_backchannels_per_min: 2.0,
            upset_interruptions_for_zero: 3.0,
            answer_pause_good_min_s: 0.3,
            answer_pause_good_max_s: 2.0,
            answer_pause_zero_below_s: -0.5,
            answer_pause_zero_above_s: 5.0,
            talk_over_s_per_min_for_zero: 6.0,
            min_pairs: 4,
            raised_caller_db: 3.0,
            matched_rise_db: 3.0,
            matched_rise_st: 2.0,
            stays_below_weight: 0.6,
            trajectory_windows: 4,
            calmer_drop_probability: 0.25,
            calm_half_s: 120.0,
            turnaround_lookback_s: 20.0,
        }
    }
}

/// What the measures read: the call's typed analysis.
#[derive(Debug, Clone, Copy)]
pub struct EmpathyInput<'a> {
    pub duration_s: f64,
    /// Every turn with its prosody (backchannels included), any order.
    pub turns: &'a [TurnProsody],
    pub interruptions: &'a [Interruption],
    pub overlaps: &'a [Overlap],
    /// The caller's talk time, seconds.
    pub caller_talk_s: f64,
    /// The caller's judged windows in time order.
    pub caller_emotion: &'a [EmotionPoint],
    /// Every cue event in time order.
    pub cues: &'a [CueEvent],
}

/// Assesses a call. See the module docs.
pub fn assess(input: &EmpathyInput, config: &EmpathyConfig) -> EmpathyReport {
    let mut turns: Vec<TurnProsody> = input.turns.to_vec();
    turns.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let ctx = Context {
        input,
        turns,
        upset: cue_spans(input.cues, CueKind::CallerUpset, input.duration_s),
        anxious: cue_spans(input.cues, CueKind::CallerAnxious, input.duration_s),
    };
    EmpathyReport {
        active_listening: active_listening::measure(&ctx, config),
        attunement: attunement::measure(&ctx, config),
        de_escalation: de_escalation::measure(&ctx, config),
    }
}

/// What the three measures share.
pub(crate) struct Context<'a> {
    pub input: &'a EmpathyInput<'a>,
    /// Turns sorted by start.
    pub turns: Vec<TurnProsody>,
    /// Spans (start, end) where caller_upset was open.
    pub upset: Vec<(f64, f64)>,
    /// The same for caller_anxious.
    pub anxious: Vec<(f64, f64)>,
}

impl Context<'_> {
    /// Ordinary (non-backchannel) turns of a party, by start.
    pub fn main_turns(&self, who: Speaker) -> impl Iterator<Item = &TurnProsody> {
        self.turns
            .iter()
            .filter(move |t| t.speaker == who && t.kind != TurnKind::Backchannel)
    }

    /// Adjacent pairs: each ordinary agent turn with the latest ordinary caller turn that
    /// started before it (each caller turn answered once: by the first agent turn after it).
    pub fn answer_pairs(&self) -> Vec<(&TurnProsody, &TurnProsody)> {
        let mut pairs = Vec::new();
        let mut last_caller: Option<&TurnProsody> = None;
        let mut answered = true;
        for t in self
            .turns
            .iter()
            .filter(|t| t.kind != TurnKind::Backchannel)
        {
            match t.speaker {
                Speaker::Caller => {
                    last_caller = Some(t);
                    answered = false;
                }
                Speaker::Agent => {
                    if let (Some(c), false) = (last_caller, answered) {
                        pairs.push((c, t));
                        answered = true;
                    }
                }
            }
        }
        pairs
    }
}

/// Whether `t_s` lies in one of `spans`.
pub(crate) fn in_spans(spans: &[(f64, f64)], t_s: f64) -> bool {
    spans.iter().any(|&(s, e)| t_s >= s && t_s <= e)
}

/// Whether [start, end] overlaps one of `spans`.
pub(crate) fn overlaps_spans(spans: &[(f64, f64)], start_s: f64, end_s: f64) -> bool {
    spans.iter().any(|&(s, e)| start_s <= e && end_s >= s)
}

/// The spans a cue kind was open: from its open's `start_s` to its close's `end_s` (the end of
/// the call when it never closed).
pub fn cue_spans(cues: &[CueEvent], kind: CueKind, duration_s: f64) -> Vec<(f64, f64)> {
    let mut spans = Vec::new();
    for open in cues
        .iter()
        .filter(|c| c.kind == kind && c.event == CueTransition::Open)
    {
        let end = cues
            .iter()
            .find(|c| c.cue_id == open.cue_id && c.event == CueTransition::Close)
            .map_or(duration_s, |c| c.end_s);
        spans.push((open.start_s, end.max(open.start_s)));
    }
    spans
}

/// Median of `values` (sorted copy); None when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// Linear ramp: 0 at `zero`, 1 at `full` (either order), clamped.
pub(crate) fn ramp(x: f64, zero: f64, full: f64) -> f64 {
    if (full - zero).abs() < 1e-12 {
        return f64::from(u8::from(x >= full));
    }
    ((x - zero) / (full - zero)).clamp(0.0, 1.0)
}

/// Rounds to 3 decimals for the report.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
