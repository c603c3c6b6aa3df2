//! The dialog document of a recording ([`CallAnalysis`]: conversation dynamics and each party's
//! prosody summary — what `attune analyze` prints): from the outcome of one pass of
//! [`crate::call::CallAnalyzer`] for a two-party call ([`analysis_from_outcome`]), or, for a
//! mono recording, from the signal core and the dialog tracker alone ([`analyze_dialog_only`],
//! streaming, memory bounded for calls of many hours). Both are reached through
//! [`super::analyze_recording`].
//!
//! Bad input:
//! - **mono** (one channel): two-party metrics need one channel per party. The channel is
//!   reported as an `unknown` party (its talk time, turns, silence); overlap, interruptions,
//!   backchannels and response latency are absent, and `warnings` says why.
//! - **more than two channels**: the first two are used (channel `agent_channel` is the agent,
//!   the other of channels 0 and 1 the caller) and `warnings` names the ignored ones.
//! - **one channel silent all call**: valid; all talk goes to the other party.
//! - **swapped channels**: set `agent_channel` (CLI `--agent-channel 1`).
//! - **a few milliseconds**: valid, with (near) zero figures.

use serde::Serialize;

use crate::audio::{AudioError, AudioReader};
use crate::dialog::{
    DialogConfig, DialogConfigError, DialogReport, DialogTracker, Interruption, Overlap, PerParty,
    ResponseLatency, Speaker, Turn, TurnKind,
};
use crate::features::{self, AnalyzerConfig, ChannelSummary, FrameFeatures};

/// What can go wrong analysing a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Config(#[from] DialogConfigError),
    #[error("the recording has no channel")]
    NoChannel,
}

/// A party as reported: `unknown` on a mono recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Agent,
    Caller,
    Unknown,
}

impl From<Speaker> for Party {
    fn from(s: Speaker) -> Self {
        match s {
            Speaker::Agent => Party::Agent,
            Speaker::Caller => Party::Caller,
        }
    }
}

/// Talk totals, seconds; the per-party figures are absent on a mono recording.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallTalk {
    pub agent_s: Option<f64>,
    pub caller_s: Option<f64>,
    pub overlap_s: Option<f64>,
    /// Time nobody talks (on mono: the channel is silent).
    pub silence_s: f64,
    /// Talk of the one channel of a mono recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_s: Option<f64>,
}

/// One turn as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallTurn {
    pub speaker: Party,
    pub start_s: f64,
    pub end_s: f64,
    pub kind: TurnKind,
}

/// A backchannel as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallBackchannel {
    pub speaker: Speaker,
    pub start_s: f64,
    pub end_s: f64,
}

/// The prosody summary of one party's channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartyProsody {
    pub party: Party,
    #[serde(flatten)]
    pub summary: ChannelSummary,
}

/// The conversation dynamics of one recorded call (the `attune analyze` document).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallAnalysis {
    pub duration_s: f64,
    pub sample_rate_hz: u32,
    pub channels: u16,
    /// Channel of the agent; absent on a mono recording.
    pub agent_channel: Option<u16>,
    /// Both parties have their own channel (the two-party figures are meaningful).
    pub two_party: bool,
    pub warnings: Vec<String>,
    pub talk: CallTalk,
    /// Every turn in time order, backchannels included (see `kind`).
    pub turns: Vec<CallTurn>,
    pub interruptions: Vec<Interruption>,
    pub backchannels: Vec<CallBackchannel>,
    pub overlaps: Vec<Overlap>,
    pub response_latency_s: ResponseLatency,
    pub longest_monologue_s: PerParty<Option<f64>>,
    pub turn_count: PerParty<u64>,
    pub backchannel_count: PerParty<u64>,
    pub interruption_count: PerParty<u64>,
    /// Speech of each party's channel rejected as leakage of the other, seconds.
    pub crosstalk_rejected_s: PerParty<f64>,
    /// Prosody of each used channel.
    pub prosody: Vec<PartyProsody>,
}

/// Runs a call through the signal core and the dialog tracker, streaming it. `warn` receives
/// each warning as it is found (also kept in [`CallAnalysis::warnings`]).
pub(crate) fn analyze_dialog_only(
    reader: &mut AudioReader,
    analyzer: &AnalyzerConfig,
    config: &DialogConfig,
    mut warn: impl FnMut(&str),
) -> Result<CallAnalysis, CallError> {
    let spec = reader.spec().clone();
    let channels = spec.channels;
    if channels == 0 {
        return Err(CallError::NoChannel);
    }
    let mut warnings = Vec::new();
    let mut add_warning = |text: String| {
        warn(&text);
        warnings.push(text);
    };
    let two_party = channels >= 2;
    if !two_party {
        add_warning(
            "mono recording: two-party metrics (per-party talk time, overlap, interruptions, \
             backchannels, response latency) need one channel per party; channel 0 is reported \
             as an unknown party"
                .to_string(),
        );
    } else if channels > 2 {
        add_warning(format!(
            "{channels} channels: only channels 0 and 1 are analysed as the two parties \
             (agent on channel {}); channels 2..{} are ignored",
            config.agent_channel,
            channels - 1
        ));
    }
    let tracker_config = if two_party {
        config.clone()
    } else {
        DialogConfig {
            agent_channel: 0,
            ..config.clone()
        }
    };
    let mut tracker = DialogTracker::new(tracker_config)?;
    let silent = FrameFeatures::default();
    let mut first = FrameFeatures::default();
    let summaries = features::analyze_audio(reader, analyzer, |channel, frame| match channel {
        0 if two_party => first = *frame,
        0 => {
            tracker.push(frame, &silent);
        }
        1 => {
            tracker.push_channels(&first, frame);
        }
        _ => {}
    })?;
    tracker.finish();
    let report = tracker.report();
    Ok(build(
        report,
        summaries,
        spec.sample_rate_hz,
        channels,
        two_party,
        config.agent_channel,
        warnings,
    ))
}

/// The dialog document of a two-party call from the outcome of [`crate::call::CallAnalyzer`]
/// (one pass gives the dialog, the emotion and the cues). `channels` is the recording's channel
/// count (more than two adds the same warning as [`super::analyze_recording`]).
pub fn analysis_from_outcome(
    outcome: &crate::call::CallOutcome,
    sample_rate_hz: u32,
    channels: u16,
    agent_channel: u16,
) -> CallAnalysis {
    let mut warnings = Vec::new();
    if channels > 2 {
        warnings.push(format!(
            "{channels} channels: only channels 0 and 1 are analysed as the two parties \
             (agent on channel {agent_channel}); channels 2..{} are ignored",
            channels - 1
        ));
    }
    let mut summaries = vec![
        outcome.prosody.agent.clone(),
        outcome.prosody.caller.clone(),
    ];
    summaries.sort_by_key(|s| s.channel);
    build(
        outcome.dialog.clone(),
        summaries,
        sample_rate_hz,
        channels,
        true,
        agent_channel,
        warnings,
    )
}

fn build(
    report: DialogReport,
    summaries: Vec<ChannelSummary>,
    sample_rate_hz: u32,
    channels: u16,
    two_party: bool,
    agent_channel: u16,
    warnings: Vec<String>,
) -> CallAnalysis {
    let party = |s: Speaker| {
        if two_party {
            Party::from(s)
        } else {
            Party::Unknown
        }
    };
    let mut turns: Vec<CallTurn> = report
        .turns
        .iter()
        .map(|t: &Turn| CallTurn {
            speaker: party(t.speaker),
            start_s: t.start_s,
            end_s: t.end_s,
            kind: t.kind,
        })
        .collect();
    turns.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let backchannels = report
        .backchannels()
        .map(|t| CallBackchannel {
            speaker: t.speaker,
            start_s: t.start_s,
            end_s: t.end_s,
        })
        .collect();
    let mut interruptions = report.interruptions.clone();
    interruptions.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let prosody = summaries
        .into_iter()
        .filter(|s| s.channel < 2)
        .map(|summary| PartyProsody {
            party: if !two_party {
                Party::Unknown
            } else if summary.channel as u16 == agent_channel {
                Party::Agent
            } else {
                Party::Caller
            },
            summary,
        })
        .collect();
    let t = report.talk;
    let (talk, agent_channel) = if two_party {
        (
            CallTalk {
                agent_s: Some(t.agent_s),
                caller_s: Some(t.caller_s),
                overlap_s: Some(t.overlap_s),
                silence_s: t.silence_s,
                unknown_s: None,
            },
            Some(agent_channel),
        )
    } else {
        (
            CallTalk {
                agent_s: None,
                caller_s: None,
                overlap_s: None,
                silence_s: t.silence_s,
                unknown_s: Some(t.agent_s),
            },
            None,
        )
    };
    let only_two = |value: f64| two_party.then_some(value);
    CallAnalysis {
        duration_s: report.duration_s,
        sample_rate_hz,
        channels,
        agent_channel,
        two_party,
        warnings,
        talk,
        turns,
        interruptions,
        backchannels,
        overlaps: report.overlaps,
        response_latency_s: report.response_latency_s,
        longest_monologue_s: PerParty {
            agent: only_two(report.longest_monologue_s.agent),
            caller: only_two(report.longest_monologue_s.caller),
        },
        turn_count: if two_party {
            report.turn_count
        } else {
            PerParty::default()
        },
        backchannel_count: report.backchannel_count,
        interruption_count: report.interruption_count,
        crosstalk_rejected_s: report.crosstalk_rejected_s,
        prosody,
    }
}
