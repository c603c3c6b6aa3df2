//! The cross-channel crosstalk gate: a speech frame of one channel is leakage of the other party
//! (echo, crosstalk) when the other channel had a speech frame more than
//! [`super::DialogConfig::crosstalk_margin_db`] louder within the last
//! [`super::DialogConfig::crosstalk_max_delay_s`], or when, while the other party speaks, it is
//! within [`super::DialogConfig::tail_margin_db`] of this channel's noise floor (the VAD
//! bridges the noise between leaked syllables into "speech"). The per-channel voice-activity detector only
//! knows its own channel: it lets through leakage at -25 dB, and any leakage before the channel's
//! own party has spoken.

/// Streaming gate over both channels. Fixed buffers, no allocation per frame.
#[derive(Debug, Clone)]
pub(super) struct CrosstalkGate {
    margin_db: f32,
    /// Loudness of each channel's recent speech frames (-inf for non-speech), a ring of
    /// `delay + 1` frames.
    recent_db: [Vec<f32>; 2],
    position: usize,
    rejected: [u64; 2],
    tail_margin_db: f32,
    floor_rise_db_per_frame: f32,
    noise_floor_db: [Option<f32>; 2],
}

/// What the gate says of one channel's frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct GateOutput {
    /// The channel's own party speaks (VAD speech, not leakage).
    pub speech: bool,
    /// Not speech, but above the channel's noise floor by the tail margin and not leakage.
    pub tail: bool,
}

/// How fast the tracked noise floor may rise (it falls at once), as the VAD's.
pub(super) const NOISE_FLOOR_RISE_DB_PER_S: f32 = 3.0;

impl CrosstalkGate {
    pub(super) fn new(margin_db: f32, delay_frames: usize, tail_margin_db: f32) -> Self {
        let ring = vec![f32::NEG_INFINITY; delay_frames + 1];
        Self {
            margin_db,
            recent_db: [ring.clone(), ring],
            position: 0,
            rejected: [0; 2],
            tail_margin_db,
            floor_rise_db_per_frame: NOISE_FLOOR_RISE_DB_PER_S * crate::dsp::FRAME_PERIOD_S as f32,
            noise_floor_db: [None; 2],
        }
    }

    /// Takes each channel's voice-activity decision and loudness (dBFS) for the next frame;
    /// returns, per channel, whether it carries its own party's speech or a tail.
    pub(super) fn push(&mut self, speech: [bool; 2], loudness_db: [f32; 2]) -> [GateOutput; 2] {
        for channel in 0..2 {
            let level = loudness_db[channel];
            self.recent_db[channel][self.position] = if speech[channel] && level.is_finite() {
                level
            } else {
                f32::NEG_INFINITY
            };
        }
        let mut out = [GateOutput::default(); 2];
        for channel in 0..2 {
            let level = loudness_db[channel];
            let level = if level.is_finite() {
                level
            } else {
                f32::NEG_INFINITY
            };
            let floor = match self.noise_floor_db[channel] {
                Some(floor) => (floor + self.floor_rise_db_per_frame).min(level),
                None => level,
            };
            self.noise_floor_db[channel] = Some(floor);
            let other_max = self.recent_db[1 - channel]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            // While the other party speaks, a frame of this channel must stand out from both
            // the other's leakage and this channel's own noise floor (a VAD-bridged frame
            // at the noise level between leaked syllables is not this party's speech).
            let leakage = level < other_max - self.margin_db
                || (other_max.is_finite() && level <= floor + self.tail_margin_db);
            if speech[channel] {
                out[channel].speech = !leakage;
                if leakage {
                    self.rejected[channel] += 1;
                }
            } else {
                out[channel].tail = !leakage && level > floor + self.tail_margin_db;
            }
        }
        self.position = (self.position + 1) % self.recent_db[0].len();
        out
    }

    /// Speech frames of each channel rejected as leakage so far.
    pub(super) fn rejected_frames(&self) -> [u64; 2] {
        self.rejected
    }
}
