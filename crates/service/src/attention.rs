//! How much a live call needs a supervisor's attention: the one rule (open critical cues, then
//! warnings, an upset caller, a tense agent). The hub keeps each call's [`AttentionInputs`] as
//! its events arrive and carries the score with every event ([`crate::hub::HubEvent`]) and call
//! view ([`crate::hub::CallView`]); the console ranks `/api/calls` by it and the wall orders and
//! marks its cards by it, computing none of its own.

use attune_core::call::{CallSnapshot, EmotionPoint};
use attune_core::cues::{CueEvent, Severity};
use attune_core::dialog::Speaker;

/// Points of each open critical cue.
pub const CRITICAL_CUE_POINTS: u32 = 1_000;
/// Points of each open warning cue.
pub const WARNING_CUE_POINTS: u32 = 100;
/// Points of an angry caller.
pub const ANGRY_CALLER_POINTS: u32 = 300;
/// Points of an anxious or sad caller.
pub const DISTRESSED_CALLER_POINTS: u32 = 100;
/// Points of a tense agent (calmness below [`TENSE_BELOW_CALMNESS`]).
pub const TENSE_AGENT_POINTS: u32 = 200;
/// Points of a somewhat tense agent (calmness below [`A_BIT_TENSE_BELOW_CALMNESS`]).
pub const A_BIT_TENSE_AGENT_POINTS: u32 = 80;
/// Agent calmness (0–100) below which the agent is tense.
pub const TENSE_BELOW_CALMNESS: f32 = 40.0;
/// Agent calmness (0–100) below which the agent is a bit tense.
pub const A_BIT_TENSE_BELOW_CALMNESS: f32 = 60.0;

/// What the rule reads of a call besides its open cues, as the latest events left it: a
/// snapshot sets both; between snapshots, an emotion point of the caller sets the caller's
/// label (none while the model abstains) and a judged one of the agent the agent's calmness.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AttentionInputs {
    /// The caller's latest emotion label (none: not judged yet, or abstaining).
    pub caller_emotion: Option<&'static str>,
    /// The agent's latest calmness, 0–100 (none: not judged yet).
    pub agent_calmness: Option<f32>,
}

impl AttentionInputs {
    /// Takes the call's state from a snapshot.
    pub fn apply_snapshot(&mut self, snapshot: &CallSnapshot) {
        self.caller_emotion = snapshot.caller_emotion.as_ref().and_then(|p| p.emotion);
        self.agent_calmness = snapshot.agent_calmness;
    }

    /// Takes a party's newest emotion point.
    pub fn apply_emotion(&mut self, point: &EmotionPoint) {
        match point.party {
            Speaker::Caller => self.caller_emotion = point.emotion,
            Speaker::Agent => {
                if point.emotion.is_some() {
                    self.agent_calmness = Some(point.calmness);
                }
            }
        }
    }
}

/// The attention score (higher first) of a call with these open cues and inputs.
pub fn attention_score(open_cues: &[CueEvent], inputs: &AttentionInputs) -> u32 {
    let cues: u32 = open_cues
        .iter()
        .map(|cue| match cue.severity {
            Severity::Critical => CRITICAL_CUE_POINTS,
            Severity::Warning => WARNING_CUE_POINTS,
            Severity::Info => 0,
        })
        .sum();
    let caller = match inputs.caller_emotion {
        Some("angry") => ANGRY_CALLER_POINTS,
        Some("anxious" | "sad") => DISTRESSED_CALLER_POINTS,
        _ => 0,
    };
    let agent = match inputs.agent_calmness {
        Some(calmness) if calmness < TENSE_BELOW_CALMNESS => TENSE_AGENT_POINTS,
        Some(calmness) if calmness < A_BIT_TENSE_BELOW_CALMNESS => A_BIT_TENSE_AGENT_POINTS,
        _ => 0,
    };
    cues + caller + agent
}
