//! The audio input edge: decodes WAV files (PCM 8/16/24/32-bit, IEEE float, G.711 mu-law and
//! A-law) and raw telephone streams into per-channel `f32` samples in [-1, 1], streamed in
//! chunks so that a call of many hours never sits in memory whole, and resamples them to the
//! analysis rate.
//!
//! SKELETON: the bodies are being written (audio worktree); the signatures are the contract.

use std::path::Path;

pub mod g711;
pub mod resample;

pub use resample::Resampler;

/// Lowest sample rate accepted on input.
pub const MIN_SAMPLE_RATE_HZ: u32 = 8_000;
/// Highest sample rate accepted on input.
pub const MAX_SAMPLE_RATE_HZ: u32 = 192_000;
/// Most channels accepted in one file.
pub const MAX_CHANNELS: u16 = 32;

/// How samples are stored in a file or stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleEncoding {
    /// Unsigned 8-bit PCM (WAV's only 8-bit PCM).
    PcmU8,
    /// Signed 16-bit little-endian PCM.
    Pcm16,
    /// Signed 24-bit little-endian PCM.
    Pcm24,
    /// Signed 32-bit little-endian PCM.
    Pcm32,
    /// IEEE 754 32-bit float.
    Float32,
    /// IEEE 754 64-bit float.
    Float64,
    /// G.711 mu-law, 8 bits per sample.
    MuLaw,
    /// G.711 A-law, 8 bits per sample.
    ALaw,
}

/// What a file or stream holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AudioSpec {
    pub sample_rate_hz: u32,
    pub channels: u16,
    pub encoding: SampleEncoding,
    /// Frames (one sample per channel) the header announces, when it does.
    pub total_frames: Option<u64>,
}

/// Format of a headerless stream, given by the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawFormat {
    pub encoding: SampleEncoding,
    pub sample_rate_hz: u32,
    pub channels: u16,
}

/// Everything that can go wrong reading audio. Messages name the bad value and the rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a WAV file: {0}")]
    NotWav(String),
    #[error("malformed WAV: {0}")]
    Malformed(String),
    #[error("unsupported audio: {0}")]
    Unsupported(String),
}

/// A streaming reader over one WAV file or raw stream.
pub struct AudioReader {
    _private: (),
}

impl AudioReader {
    /// Opens a WAV file (any supported encoding).
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let _ = path;
        todo!("audio worktree")
    }

    /// Opens a headerless stream of the given format.
    pub fn open_raw(path: &Path, format: RawFormat) -> Result<Self, AudioError> {
        let _ = (path, format);
        todo!("audio worktree")
    }

    /// What the file holds.
    pub fn spec(&self) -> &AudioSpec {
        todo!("audio worktree")
    }

    /// Reads up to `max_frames` frames, deinterleaved: `out[c]` is cleared and filled with channel
    /// `c`'s samples (`out.len()` must equal the channel count). Returns the number of frames
    /// read; 0 at the end.
    pub fn read_frames(
        &mut self,
        max_frames: usize,
        out: &mut [Vec<f32>],
    ) -> Result<usize, AudioError> {
        let _ = (max_frames, out);
        todo!("audio worktree")
    }
}

/// A whole decoded recording, one `Vec` per channel, at its native rate.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioBuffer {
    pub sample_rate_hz: u32,
    pub channels: Vec<Vec<f32>>,
}

/// Reads a whole WAV file (convenience for short files; streams use [`AudioReader`]).
pub fn read_audio_file(path: &Path) -> Result<AudioBuffer, AudioError> {
    let _ = path;
    todo!("audio worktree")
}
