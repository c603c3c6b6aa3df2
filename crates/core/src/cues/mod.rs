//! The cue engine: rules over one call's analysis stream that open and close cues for
//! supervisors and agents. Owns the cue vocabulary ([`CueKind`], [`CueEvent`], [`Evidence`]),
//! the rule settings ([`CueRules`], one TOML file with units in the names; the shipped default
//! is `rules/cues.toml`, embedded) and the engine ([`CueEngine`]).
//!
//! Every rule is a condition measured against the party's own baseline, with hysteresis (an
//! open and a lower close threshold) and minimum durations, so cues do not flicker. Each cue
//! carries the values and the rule that fired it.
//!
//! Pure and synchronous: the engine sees [`CueInput`]s frame by frame and never touches I/O.

mod engine;
mod rules;
mod state;
#[cfg(test)]
mod tests;

pub use engine::{CueEngine, CueInput, guidance, party, severity};
pub use rules::{
    CueRules, DEFAULT_RULES_TOML, EventRule, Hysteresis, ONSET_WINDOW_LANES,
    PressingUpsetCallerRule, RulesError, SlowResponseRule, SpanRule, TakeAMomentRule,
    TrendHysteresis, UpsetOnsetRule, UpsetStrongRule, WindowHysteresis,
};
pub use state::PartyFrame;

use serde::Serialize;

use crate::dialog::Speaker;

/// What a cue is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CueKind {
    AgentSpeakingQuickly,
    AgentSpeakingSlowly,
    AgentLowEnergy,
    AgentRaisedVoice,
    AgentContinuousSpeaking,
    AgentInterrupting,
    AgentSlowToRespond,
    ExtendedSilence,
    ExtendedOverlap,
    CallerUpset,
    CallerAnxious,
    CallerEscalating,
    CallerCalmedDown,
    PositiveInteraction,
    AgentTension,
    AgentPressingUpsetCaller,
    /// Across calls: after a hard call, or when the shift strains the agent.
    AgentTakeAMoment,
}

impl CueKind {
    pub const ALL: [CueKind; 17] = [
        CueKind::AgentSpeakingQuickly,
        CueKind::AgentSpeakingSlowly,
        CueKind::AgentLowEnergy,
        CueKind::AgentRaisedVoice,
        CueKind::AgentContinuousSpeaking,
        CueKind::AgentInterrupting,
        CueKind::AgentSlowToRespond,
        CueKind::ExtendedSilence,
        CueKind::ExtendedOverlap,
        CueKind::CallerUpset,
        CueKind::CallerAnxious,
        CueKind::CallerEscalating,
        CueKind::CallerCalmedDown,
        CueKind::PositiveInteraction,
        CueKind::AgentTension,
        CueKind::AgentPressingUpsetCaller,
        CueKind::AgentTakeAMoment,
    ];

    /// The snake_case name used in JSON, TOML and the proto.
    pub fn as_str(self) -> &'static str {
        match self {
            CueKind::AgentSpeakingQuickly => "agent_speaking_quickly",
            CueKind::AgentSpeakingSlowly => "agent_speaking_slowly",
            CueKind::AgentLowEnergy => "agent_low_energy",
            CueKind::AgentRaisedVoice => "agent_raised_voice",
            CueKind::AgentContinuousSpeaking => "agent_continuous_speaking",
            CueKind::AgentInterrupting => "agent_interrupting",
            CueKind::AgentSlowToRespond => "agent_slow_to_respond",
            CueKind::ExtendedSilence => "extended_silence",
            CueKind::ExtendedOverlap => "extended_overlap",
            CueKind::CallerUpset => "caller_upset",
            CueKind::CallerAnxious => "caller_anxious",
            CueKind::CallerEscalating => "caller_escalating",
            CueKind::CallerCalmedDown => "caller_calmed_down",
            CueKind::PositiveInteraction => "positive_interaction",
            CueKind::AgentTension => "agent_tension",
            CueKind::AgentPressingUpsetCaller => "agent_pressing_upset_caller",
            CueKind::AgentTakeAMoment => "agent_take_a_moment",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Who a cue is about: a party, or the call as a whole (silence, overlap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CueParty {
    Agent,
    Caller,
    Both,
}

impl From<Speaker> for CueParty {
    fn from(s: Speaker) -> Self {
        match s {
            Speaker::Agent => CueParty::Agent,
            Speaker::Caller => CueParty::Caller,
        }
    }
}

impl CueParty {
    pub fn as_str(self) -> &'static str {
        match self {
            CueParty::Agent => "agent",
            CueParty::Caller => "caller",
            CueParty::Both => "both",
        }
    }
}

/// How urgently a person should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Good news or context.
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Whether a cue event opens or closes the cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CueTransition {
    Open,
    Close,
}

impl CueTransition {
    pub fn as_str(self) -> &'static str {
        match self {
            CueTransition::Open => "open",
            CueTransition::Close => "close",
        }
    }
}

/// One measured value behind a cue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceValue {
    /// Name with its unit, e.g. `loudness_above_baseline_db`.
    pub name: &'static str,
    pub value: f64,
}

/// Why a cue fired: the rule, its thresholds and the measured values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The rule as written, e.g. `loudness_above_baseline_db >= 6 for 3 s`.
    pub rule: String,
    pub values: Vec<EvidenceValue>,
}

/// A cue opening or closing, in call time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CueEvent {
    /// Numbers the cues of a call; an open and its close share it.
    pub cue_id: u64,
    pub kind: CueKind,
    pub party: CueParty,
    pub severity: Severity,
    pub event: CueTransition,
    /// When the engine decided, call time (s): the end of the audio that completed the
    /// evidence. Latency is measured from the moment this audio was sent.
    pub t_s: f64,
    /// Call-time span the cue covers: from the start of the condition to `t_s` (open) or to
    /// the end of the condition (close).
    pub start_s: f64,
    pub end_s: f64,
    pub evidence: Evidence,
    /// For agent-facing cues: what good practice suggests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance: Option<&'static str>,
}
