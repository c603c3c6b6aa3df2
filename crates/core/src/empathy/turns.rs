//! The prosody of each turn ([`TurnProsody`]): pitch level and range, loudness and articulation
//! rate of one party's speech frames inside one dialog turn — what the entrainment measures
//! compare across adjacent turns.
//!
//! [`TurnProsodyTracker`] is fed both parties' frames as the call goes and the turns the dialog
//! tracker decides (a turn is decided after its end, by up to a pause bridge plus a backchannel
//! look-ahead). It keeps, per party, a ring of [`BIN_S`] bins of the last [`RING_S`] seconds
//! (fixed size, 20 bytes a bin, 36 kB per call, allocated once), so a decided turn's frames are
//! still there; a turn longer than the ring is summarised over its last [`RING_S`] seconds.

use serde::Serialize;

use crate::dialog::{Speaker, Turn, TurnKind};
use crate::dsp::FRAME_PERIOD_S;

/// Length of one bin of the ring, seconds (10 frames).
pub const BIN_S: f64 = 0.1;
/// Call time the ring keeps per party, seconds.
pub const RING_S: f64 = 90.0;
const FRAMES_PER_BIN: u64 = 10;
const RING_BINS: usize = 900;
/// Reference of the semitone scale, Hz.
pub const SEMITONE_REFERENCE_HZ: f64 = 100.0;

/// One party's frame as the tracker needs it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProsodyFrame {
    /// The frame is speech (voice activity).
    pub speech: bool,
    /// Frame level, dBFS.
    pub loudness_db: f32,
    /// F0 of a voiced frame, Hz; 0 when unvoiced.
    pub f0_hz: f32,
    /// A syllable nucleus is marked on this frame.
    pub syllable_nucleus: bool,
}

/// The prosody of one turn. Figures are None when the turn has too little of what they need
/// (pitch: [`MIN_VOICED_S`] of voiced speech; rate and loudness: [`MIN_SPEECH_S`] of speech).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TurnProsody {
    pub speaker: Speaker,
    pub start_s: f64,
    pub end_s: f64,
    pub kind: TurnKind,
    /// Speech frames in the turn, seconds.
    pub speech_s: f64,
    /// Voiced speech frames in the turn, seconds.
    pub voiced_s: f64,
    /// Mean F0 of the voiced frames, semitones re [`SEMITONE_REFERENCE_HZ`].
    pub pitch_level_st: Option<f64>,
    /// Standard deviation of F0 over the voiced frames, semitones (the pitch range).
    pub pitch_range_st: Option<f64>,
    /// Mean level of the speech frames, dBFS.
    pub loudness_db: Option<f64>,
    /// Syllable nuclei per second of speech (articulation rate).
    pub rate_syl_per_s: Option<f64>,
}

/// Voiced speech a turn needs for its pitch figures, seconds.
pub const MIN_VOICED_S: f64 = 0.3;
/// Speech a turn needs for its loudness and rate, seconds.
pub const MIN_SPEECH_S: f64 = 0.5;

/// Sums of one bin (at most 10 frames: f32 sums and u8 counts are exact enough).
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    /// Which bin (call time / BIN_S) these sums belong to; u32::MAX when empty (13.6 years).
    index: u32,
    speech: u8,
    voiced: u8,
    nuclei: u8,
    loudness_sum_db: f32,
    st_sum: f32,
    st_sq_sum: f32,
}

impl Bin {
    fn empty() -> Self {
        Self {
            index: u32::MAX,
            ..Self::default()
        }
    }
}

/// Per-party rings of bins. See the module docs.
#[derive(Debug, Clone)]
pub struct TurnProsodyTracker {
    bins: [Vec<Bin>; 2],
    turns: Vec<TurnProsody>,
}

impl Default for TurnProsodyTracker {
    fn default() -> Self {
        Self::new()
    }
}

fn party_index(s: Speaker) -> usize {
    match s {
        Speaker::Agent => 0,
        Speaker::Caller => 1,
    }
}

impl TurnProsodyTracker {
    pub fn new() -> Self {
        Self {
            bins: [vec![Bin::empty(); RING_BINS], vec![Bin::empty(); RING_BINS]],
            turns: Vec::new(),
        }
    }

    /// Adds frame `index` (centred at `index` × 10 ms) of each party. Allocates nothing.
    pub fn push(&mut self, index: u64, agent: &ProsodyFrame, caller: &ProsodyFrame) {
        let bin_index = (index / FRAMES_PER_BIN).min(u64::from(u32::MAX - 1)) as u32;
        for (party, frame) in [agent, caller].into_iter().enumerate() {
            let bin = &mut self.bins[party][bin_index as usize % RING_BINS];
            if bin.index != bin_index {
                *bin = Bin {
                    index: bin_index,
                    ..Bin::default()
                };
            }
            if !frame.speech {
                continue;
            }
            bin.speech += 1;
            if frame.loudness_db.is_finite() {
                bin.loudness_sum_db += frame.loudness_db;
            }
            if frame.syllable_nucleus {
                bin.nuclei += 1;
            }
            if frame.f0_hz > 0.0 && frame.f0_hz.is_finite() {
                let st = (12.0 * (f64::from(frame.f0_hz) / SEMITONE_REFERENCE_HZ).log2()) as f32;
                bin.voiced += 1;
                bin.st_sum += st;
                bin.st_sq_sum += st * st;
            }
        }
    }

    /// Summarises a turn the dialog tracker decided (its frames must have been pushed).
    pub fn add_turn(&mut self, turn: &Turn) {
        let ring = &self.bins[party_index(turn.speaker)];
        let first = (turn.start_s / BIN_S).floor().max(0.0) as u64;
        let last = ((turn.end_s / BIN_S).ceil().max(0.0) as u64).max(first + 1);
        let first = first.max(last.saturating_sub(RING_BINS as u64));
        let (mut speech, mut voiced, mut nuclei) = (0u64, 0u64, 0u64);
        let (mut loud, mut st, mut st_sq) = (0.0, 0.0, 0.0);
        for i in first..last {
            let bin = &ring[(i % RING_BINS as u64) as usize];
            if u64::from(bin.index) != i {
                continue;
            }
            speech += u64::from(bin.speech);
            voiced += u64::from(bin.voiced);
            nuclei += u64::from(bin.nuclei);
            loud += f64::from(bin.loudness_sum_db);
            st += f64::from(bin.st_sum);
            st_sq += f64::from(bin.st_sq_sum);
        }
        self.turns
            .push(summarise(turn, speech, voiced, nuclei, loud, st, st_sq));
    }

    /// Every turn summarised so far, in the order the tracker decided them.
    pub fn turns(&self) -> &[TurnProsody] {
        &self.turns
    }

    /// Moves the turns out (the tracker keeps none).
    pub fn take_turns(&mut self) -> Vec<TurnProsody> {
        std::mem::take(&mut self.turns)
    }
}

/// A turn's figures from its frame sums.
fn summarise(
    turn: &Turn,
    speech: u64,
    voiced: u64,
    nuclei: u64,
    loudness_sum_db: f64,
    st_sum: f64,
    st_sq_sum: f64,
) -> TurnProsody {
    let speech_s = speech as f64 * FRAME_PERIOD_S;
    let voiced_s = voiced as f64 * FRAME_PERIOD_S;
    let (pitch_level_st, pitch_range_st) = if voiced_s + 1e-9 >= MIN_VOICED_S {
        let n = voiced as f64;
        let mean = st_sum / n;
        let var = (st_sq_sum / n - mean * mean).max(0.0);
        (Some(mean), Some(var.sqrt()))
    } else {
        (None, None)
    };
    let enough = speech_s + 1e-9 >= MIN_SPEECH_S;
    TurnProsody {
        speaker: turn.speaker,
        start_s: turn.start_s,
        end_s: turn.end_s,
        kind: turn.kind,
        speech_s,
        voiced_s,
        pitch_level_st,
        pitch_range_st,
        loudness_db: enough.then(|| loudness_sum_db / speech as f64),
        rate_syl_per_s: enough.then(|| nuclei as f64 / speech_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_summarises_its_frames() {
        let mut tracker = TurnProsodyTracker::new();
        // Agent speaks 1.0..2.0 s at 200 Hz, -20 dBFS, a nucleus every 20 frames; caller silent.
        for k in 0..300u64 {
            let speaking = (100..200).contains(&k);
            let agent = ProsodyFrame {
                speech: speaking,
                loudness_db: if speaking { -20.0 } else { -90.0 },
                f0_hz: if speaking { 200.0 } else { 0.0 },
                syllable_nucleus: speaking && k % 20 == 0,
            };
            tracker.push(k, &agent, &ProsodyFrame::default());
        }
        tracker.add_turn(&Turn {
            speaker: Speaker::Agent,
            start_s: 1.0,
            end_s: 2.0,
            kind: TurnKind::Turn,
        });
        let t = tracker.turns()[0];
        assert!((t.speech_s - 1.0).abs() < 1e-9);
        assert!((t.pitch_level_st.unwrap() - 12.0).abs() < 1e-5);
        assert!(t.pitch_range_st.unwrap() < 1e-2);
        assert!((t.loudness_db.unwrap() + 20.0).abs() < 1e-6);
        assert!((t.rate_syl_per_s.unwrap() - 5.0).abs() < 1e-9);
    }

    #[test]
    fn old_bins_are_overwritten_not_counted() {
        let mut tracker = TurnProsodyTracker::new();
        let on = ProsodyFrame {
            speech: true,
            loudness_db: -30.0,
            f0_hz: 100.0,
            syllable_nucleus: false,
        };
        let frames = (RING_S / FRAME_PERIOD_S) as u64 + 500;
        for k in 0..frames {
            tracker.push(k, &on, &on);
        }
        // A turn from the very start: only the ring's last RING_S seconds are there.
        tracker.add_turn(&Turn {
            speaker: Speaker::Caller,
            start_s: 0.0,
            end_s: frames as f64 * FRAME_PERIOD_S,
            kind: TurnKind::Turn,
        });
        let t = tracker.turns()[0];
        assert!((t.speech_s - RING_S).abs() < 0.2, "{}", t.speech_s);
        assert!((t.pitch_level_st.unwrap()).abs() < 1e-5);
    }
}
