//! The per-frame signal core: pure functions and small stateful analysers over `f32` samples at
//! the analysis rate. Nothing here does I/O, allocates per frame, locks or logs.
//!
//! Conventions shared by every analyser:
//! - samples are `f32` in [-1, 1] (full scale = 1.0) at [`ANALYSIS_RATE_HZ`];
//! - frames are [`HOP_SAMPLES`] apart (10 ms); frame `k` is centred on sample `k * HOP_SAMPLES`,
//!   i.e. at time `k * FRAME_PERIOD_S` seconds, with zeros before the first sample;
//! - an analyser that needs a window takes a slice of its declared length centred on the frame.

pub mod loudness;
pub mod pitch;
pub mod spectrum;
pub mod syllables;
pub mod vad;
pub mod voice_quality;

/// Every channel is analysed at this rate (telephone band): 8 kHz.
pub const ANALYSIS_RATE_HZ: u32 = 8_000;
/// Distance between frames in samples at [`ANALYSIS_RATE_HZ`] (10 ms).
pub const HOP_SAMPLES: usize = 80;
/// Distance between frames in seconds.
pub const FRAME_PERIOD_S: f64 = HOP_SAMPLES as f64 / ANALYSIS_RATE_HZ as f64;
