//! The one settings struct of the dialog tracker: every definition and threshold, units in the
//! names. The doc comment of [`DialogConfig`] is the reference text for the README.

use serde::{Deserialize, Serialize};

/// Definitions and thresholds of the two-party dialog tracker.
///
/// The tracker reads, every 10 ms frame, the voice activity (`speech` / `silence` / `noise`) and
/// loudness (dBFS) of the agent's and of the caller's channel, and derives:
///
/// 1. **Speech of a party** — a frame the channel's voice-activity detector marked as speech,
///    unless it is *crosstalk*: on real lines each channel carries a faint copy of the other
///    party (echo, crosstalk, -25..-35 dB). A frame of one channel is leakage when, within the
///    last `crosstalk_max_delay_s` (the copy lags its source), the other channel had a speech
///    frame more than `crosstalk_margin_db` louder — or, while the other party speaks, when the
///    frame is within `tail_margin_db` of the channel's noise floor (the VAD bridges the noise
///    between leaked syllables into "speech").
///    Consequence: a party speaking more than `crosstalk_margin_db` below the other while both
///    speak is not heard during that overlap.
/// 2. **Talking / turns** — a party's speech frames joined over pauses shorter than
///    `pause_bridge_s`; a run that holds less than `min_speech_s` of speech is dropped (a click
///    or a stray leak). A run goes on over the quiet frames right after it (speech tails,
///    weak final syllables the VAD leaves out) while they stay `tail_margin_db` above the
///    channel's noise floor (a minimum tracked like the VAD's, rising 3 dB/s) and are not
///    leakage, for at most `tail_max_s` after its last speech frame. Each run is a *turn*.
///    **Talk time** of a party is the total length of its turns; **overlap** is the time both
///    talk; **silence** is the time neither talks. Agent + caller − overlap + silence = duration.
/// 3. **Backchannel** — a turn that starts while the other party talks, lasts at most
///    `backchannel_max_s` ("mm-hm", "yes", "right") and lies wholly inside the other party's
///    turn (the other keeps talking until it ends). It is not an interruption, does not take the
///    floor and is not a response.
/// 4. **Interruption** — an overlap that starts when one party begins a turn while the other
///    party is mid-turn (has been talking for at least `interruption_min_other_speaking_s`),
///    whose turn is not a backchannel, and during which the other party keeps talking for at
///    least `interruption_min_overlap_s` (shorter overlaps are the next speaker starting a little
///    early at a turn boundary). It is attributed to the party who started it; its time is the
///    overlap onset and its duration that of the overlap it opened. Two turns starting within
///    `interruption_min_other_speaking_s` of each other are a simultaneous start, not an
///    interruption. Decided when the overlap has ended and the interrupter's turn has outlasted
///    `backchannel_max_s` (or ended): a bounded look-ahead of `backchannel_max_s` +
///    `pause_bridge_s` beyond the onset, or the overlap's length if longer.
/// 5. **Response latency** — when a party starts a (non-backchannel) turn in silence and the
///    last (non-backchannel) turn to end before it was the other party's: the gap between that
///    end and this start, counted for the responding party. Turn switches through an overlap
///    have no latency (they are interruptions or simultaneous starts). Medians come from a
///    histogram with 10 ms bins (exact, as turns are frame-aligned) up to
///    `response_latency_histogram_max_s`; longer gaps count in the last bin.
/// 6. **Longest monologue** — the longest (non-backchannel) turn of each party.
///
/// Which channel carries the agent is `agent_channel` (0 or 1); the other is the caller.
/// Swapped recordings are analysed correctly by setting it (CLI: `--agent-channel 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogConfig {
    /// Channel of the agent, 0 or 1; the other channel is the caller.
    pub agent_channel: u16,
    /// A frame is leakage of the other party when that party is louder by more than this (dB).
    pub crosstalk_margin_db: f32,
    /// How far back (seconds) a louder frame of the other party still explains a frame as its
    /// leakage (echo delay).
    pub crosstalk_max_delay_s: f64,
    /// Pauses of one party shorter than this stay inside its turn (seconds).
    pub pause_bridge_s: f64,
    /// A turn needs at least this much speech (seconds).
    pub min_speech_s: f64,
    /// A turn goes on over following frames this far above the channel's noise floor (dB)...
    pub tail_margin_db: f32,
    /// ...for at most this long after its last speech frame (seconds); 0 disables tails.
    pub tail_max_s: f64,
    /// A turn that starts while the other party talks, lies inside the other's turn and is at
    /// most this long is a backchannel (seconds).
    pub backchannel_max_s: f64,
    /// An overlap is an interruption only if the other party had been talking for at least
    /// this long when it started (seconds).
    pub interruption_min_other_speaking_s: f64,
    /// An overlap is an interruption only if the other party keeps talking over the
    /// interrupter for at least this long (seconds).
    pub interruption_min_overlap_s: f64,
    /// Upper end of the response-latency histogram (seconds); longer gaps count in its last bin.
    pub response_latency_histogram_max_s: f64,
}

impl Default for DialogConfig {
    fn default() -> Self {
        Self {
            agent_channel: 0,
            crosstalk_margin_db: 18.0,
            crosstalk_max_delay_s: 0.03,
            pause_bridge_s: 0.35,
            min_speech_s: 0.08,
            tail_margin_db: 4.0,
            tail_max_s: 0.5,
            backchannel_max_s: 1.0,
            interruption_min_other_speaking_s: 0.5,
            interruption_min_overlap_s: 0.4,
            response_latency_histogram_max_s: 60.0,
        }
    }
}

/// A setting out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid dialog setting {name} = {value}: {rule}")]
pub struct DialogConfigError {
    pub name: &'static str,
    pub value: f64,
    pub rule: &'static str,
}

impl DialogConfig {
    /// Checks every setting's range.
    pub(crate) fn validate(&self) -> Result<(), DialogConfigError> {
        let check = |name, value: f64, ok: bool, rule| {
            if ok {
                Ok(())
            } else {
                Err(DialogConfigError { name, value, rule })
            }
        };
        check(
            "agent_channel",
            self.agent_channel as f64,
            self.agent_channel <= 1,
            "must be 0 or 1",
        )?;
        let margin = self.crosstalk_margin_db as f64;
        check(
            "crosstalk_margin_db",
            margin,
            margin.is_finite() && margin >= 0.0,
            "must be >= 0",
        )?;
        for (name, value, max) in [
            ("crosstalk_max_delay_s", self.crosstalk_max_delay_s, 1.0),
            ("pause_bridge_s", self.pause_bridge_s, 10.0),
            ("min_speech_s", self.min_speech_s, 10.0),
            ("tail_max_s", self.tail_max_s, 5.0),
            ("tail_margin_db", self.tail_margin_db as f64, 60.0),
            ("backchannel_max_s", self.backchannel_max_s, 30.0),
            (
                "interruption_min_other_speaking_s",
                self.interruption_min_other_speaking_s,
                60.0,
            ),
            (
                "interruption_min_overlap_s",
                self.interruption_min_overlap_s,
                60.0,
            ),
        ] {
            check(
                name,
                value,
                value.is_finite() && (0.0..=max).contains(&value),
                "must be within its range (0 up to a few seconds)",
            )?;
        }
        let hist = self.response_latency_histogram_max_s;
        check(
            "response_latency_histogram_max_s",
            hist,
            hist.is_finite() && (1.0..=3600.0).contains(&hist),
            "must be within 1..=3600",
        )
    }
}
