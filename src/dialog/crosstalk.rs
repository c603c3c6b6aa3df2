//! The cross-channel crosstalk gate: a speech frame of one channel is leakage of the other party
//! (echo, crosstalk) when the other channel had a speech frame more than
//! [`super::DialogConfig::crosstalk_margin_db`] louder within the last
//! [`super::DialogConfig::crosstalk_max_delay_s`]. The per-channel voice-activity detector only
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
}

impl CrosstalkGate {
    pub(super) fn new(margin_db: f32, delay_frames: usize) -> Self {
        let ring = vec![f32::NEG_INFINITY; delay_frames + 1];
        Self {
            margin_db,
            recent_db: [ring.clone(), ring],
            position: 0,
            rejected: [0; 2],
        }
    }

    /// Takes each channel's voice-activity decision and loudness (dBFS) for the next frame;
    /// returns which channels carry their own party's speech.
    pub(super) fn push(&mut self, speech: [bool; 2], loudness_db: [f32; 2]) -> [bool; 2] {
        for channel in 0..2 {
            let level = loudness_db[channel];
            self.recent_db[channel][self.position] = if speech[channel] && level.is_finite() {
                level
            } else {
                f32::NEG_INFINITY
            };
        }
        let mut own = speech;
        for channel in 0..2 {
            if !speech[channel] {
                continue;
            }
            let other_max = self.recent_db[1 - channel]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let level = loudness_db[channel];
            let level = if level.is_finite() {
                level
            } else {
                f32::NEG_INFINITY
            };
            if level < other_max - self.margin_db {
                own[channel] = false;
                self.rejected[channel] += 1;
            }
        }
        self.position = (self.position + 1) % self.recent_db[0].len();
        own
    }

    /// Speech frames of each channel rejected as leakage so far.
    pub(super) fn rejected_frames(&self) -> [u64; 2] {
        self.rejected
    }
}
