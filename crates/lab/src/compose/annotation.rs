//! The ground-truth annotation of a composed call (`CALL.truth.json` beside `CALL.wav`). All
//! times are call time in seconds from the first sample.

use serde::{Deserialize, Serialize};

pub use attune_core::dialog::Speaker;

/// What role an utterance plays in the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UtteranceKind {
    /// An ordinary turn.
    Turn,
    /// A short acknowledgement ("mm-hm") inside the other party's turn: not an interruption.
    Backchannel,
    /// Starts while the other party is mid-turn and is not a backchannel.
    Interruption,
}

/// One utterance placed in the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedUtterance {
    pub speaker: Speaker,
    /// Channel it was written to.
    pub channel: u16,
    /// Speech start and end (the source's own speech, leading/trailing silence trimmed).
    pub start_s: f64,
    pub end_s: f64,
    pub kind: UtteranceKind,
    /// Source file (relative to the data folder) and the level it was placed at.
    pub source: String,
    pub level_dbfs: f64,
}

/// A span of time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
}

/// A turn of one party (its speech, pauses shorter than the tracker's bridge included).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TurnTruth {
    pub speaker: Speaker,
    pub start_s: f64,
    pub end_s: f64,
}

/// An interruption: the interrupter starts speaking while the other party is mid-turn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InterruptionTruth {
    /// Onset of the overlap.
    pub t_s: f64,
    pub by: Speaker,
    pub overlap_s: f64,
}

/// Talk-time totals.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TalkTruth {
    pub agent_s: f64,
    pub caller_s: f64,
    pub overlap_s: f64,
    pub silence_s: f64,
}

/// Everything known about a composed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallAnnotation {
    pub sample_rate_hz: u32,
    pub duration_s: f64,
    /// Channel carrying the agent (the other carries the caller).
    pub agent_channel: u16,
    /// Leakage of each party into the other's channel, dB (e.g. -30).
    pub crosstalk_db: Option<f64>,
    /// Line noise level, dBFS, if any.
    pub noise_dbfs: Option<f64>,
    pub utterances: Vec<PlacedUtterance>,
    pub turns: Vec<TurnTruth>,
    /// Spans where both parties speak.
    pub overlaps: Vec<Span>,
    pub interruptions: Vec<InterruptionTruth>,
    pub backchannels: Vec<Span>,
    /// Spans where neither party speaks.
    pub silences: Vec<Span>,
    pub talk: TalkTruth,
}
