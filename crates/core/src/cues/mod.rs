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

pub use engine::{CueEngine, CueInput, EarlySilenceCloses, guidance, party, severity};
pub use rules::{
    CueRules, DEFAULT_RULES_TOML, EventRule, Hysteresis, ONSET_WINDOW_LANES,
    PressingUpsetCallerRule, RulesError, SlowResponseRule, SpanRule, TakeAMomentRule,
    TrendHysteresis, UpsetOnsetRule, UpsetStrongRule, WindowHysteresis,
};
pub use state::PartyFrame;

use serde::{Deserialize, Serialize};

use crate::dialog::Speaker;

/// What a cue is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Name with its unit, e.g. `loudness_above_baseline_db`. Read back, names are interned
    /// (at most [`MAX_INTERNED_NAMES`] distinct ones; past that `unknown`).
    pub name: &'static str,
    pub value: f64,
}

/// Why a cue fired: the rule, its thresholds and the measured values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The rule as written, e.g. `loudness_above_baseline_db >= 6 for 3 s`.
    pub rule: String,
    pub values: Vec<EvidenceValue>,
}

/// A cue opening or closing, in call time. Read back (a cluster peer's event) its guidance
/// is the shipped guidance of its kind, whatever the text said.
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

/// Distinct evidence names interned when events are read back; past it a name reads `unknown`.
pub const MAX_INTERNED_NAMES: usize = 512;

/// [`EvidenceValue`] as read back, its name as text.
#[derive(Deserialize)]
struct EvidenceValueRead {
    name: String,
    value: f64,
}

impl<'de> Deserialize<'de> for EvidenceValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EvidenceValueRead::deserialize(deserializer).map(Into::into)
    }
}

impl<'de> Deserialize<'de> for CueEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CueEventRead::deserialize(deserializer).map(Into::into)
    }
}

impl From<EvidenceValueRead> for EvidenceValue {
    fn from(v: EvidenceValueRead) -> Self {
        EvidenceValue {
            name: interned_name(v.name),
            value: v.value,
        }
    }
}

fn interned_name(name: String) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(known) = names.get(name.as_str()) {
        return known;
    }
    if names.len() >= MAX_INTERNED_NAMES || name.len() > 64 {
        return "unknown";
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.insert(leaked);
    leaked
}

/// [`CueEvent`] as read back: everything but the guidance.
#[derive(Deserialize)]
struct CueEventRead {
    cue_id: u64,
    kind: CueKind,
    party: CueParty,
    severity: Severity,
    event: CueTransition,
    t_s: f64,
    start_s: f64,
    end_s: f64,
    evidence: Evidence,
}

impl From<CueEventRead> for CueEvent {
    fn from(c: CueEventRead) -> Self {
        CueEvent {
            cue_id: c.cue_id,
            kind: c.kind,
            party: c.party,
            severity: c.severity,
            event: c.event,
            t_s: c.t_s,
            start_s: c.start_s,
            end_s: c.end_s,
            evidence: c.evidence,
            guidance: engine::guidance(c.kind),
        }
    }
}

#[cfg(test)]
mod read_back_tests {
    use super::*;

    #[test]
    fn a_cue_event_reads_back_as_written_with_the_shipped_guidance() {
        let cue = CueEvent {
            cue_id: 7,
            kind: CueKind::AgentSpeakingQuickly,
            party: CueParty::Agent,
            severity: Severity::Warning,
            event: CueTransition::Open,
            t_s: 12.5,
            start_s: 9.0,
            end_s: 12.5,
            evidence: Evidence {
                rule: "rate >= 5.5 syl/s for 6 s".into(),
                values: vec![EvidenceValue {
                    name: "agent_rate_syl_per_s",
                    value: 6.1,
                }],
            },
            guidance: guidance(CueKind::AgentSpeakingQuickly),
        };
        let json = serde_json::to_string(&cue).unwrap();
        let back: CueEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cue);
        // Whatever guidance a peer sends, the shipped text is shown.
        let forged = json.replace("Slow down", "Hang up");
        let back: CueEvent = serde_json::from_str(&forged).unwrap();
        assert_eq!(back.guidance, cue.guidance);
        // Names past the interner's bound read `unknown`; a long one too.
        let long = json.replace("agent_rate_syl_per_s", &"x".repeat(100));
        let back: CueEvent = serde_json::from_str(&long).unwrap();
        assert_eq!(back.evidence.values[0].name, "unknown");
        assert!(serde_json::from_str::<CueEvent>(r#"{"cue_id": 1}"#).is_err());
    }
}
