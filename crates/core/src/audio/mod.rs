//! The audio input edge: decodes WAV files (PCM 8/16/24/32-bit, IEEE float, G.711 mu-law and
//! A-law) and raw telephone streams into per-channel `f32` samples in [-1, 1], streamed in
//! chunks so that a call of many hours never sits in memory whole, and resamples them to the
//! analysis rate.
//!
//! Layout: [`wav`] parses RIFF headers, [`g711`] holds the telephone codecs, [`resample`] brings
//! any supported rate to the analysis rate, and this module owns [`AudioReader`], which turns the
//! bytes of a WAV file, a headerless stream or any [`Read`] into deinterleaved samples.
//!
//! Robustness rules: hostile input never panics and never hangs. Headers that cannot be trusted
//! give a typed [`AudioError`] naming the bad value and the rule; data that ends early (a data
//! chunk announcing more bytes than the file holds, or a trailing partial frame) is read as far
//! as it goes and then ends cleanly ([`AudioReader::truncated`] tells). Non-finite float samples
//! become 0 and are counted ([`AudioReader::nonfinite_samples`]); float samples are clamped to
//! [-1, 1].

use std::io::{BufReader, Cursor, Read};

pub mod g711;
pub mod resample;
pub mod wav;

pub use resample::Resampler;

/// Lowest sample rate accepted on input.
pub(crate) const MIN_SAMPLE_RATE_HZ: u32 = 8_000;
/// Highest sample rate accepted on input.
pub(crate) const MAX_SAMPLE_RATE_HZ: u32 = 192_000;
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

impl SampleEncoding {
    /// Bytes one sample takes in a file or stream.
    pub const fn bytes_per_sample(self) -> usize {
        match self {
            Self::PcmU8 | Self::MuLaw | Self::ALaw => 1,
            Self::Pcm16 => 2,
            Self::Pcm24 => 3,
            Self::Pcm32 | Self::Float32 => 4,
            Self::Float64 => 8,
        }
    }
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
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a WAV file: {0}")]
    NotWav(String),
    #[error("malformed WAV: {0}")]
    Malformed(String),
    #[error("{0}")]
    Unsupported(String),
    /// The caller broke an API precondition (e.g. the wrong number of output channels).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Bytes read from the source per internal step (bounds memory whatever `max_frames` is).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Name used for in-memory and caller-supplied sources in error messages.
const STREAM_NAME: &str = "<stream>";

/// A streaming reader over one WAV file or raw stream.
pub struct AudioReader {
    source: Box<dyn Read + Send>,
    /// Path (or [`STREAM_NAME`]) for error messages.
    name: String,
    spec: AudioSpec,
    /// Bytes per frame (all channels).
    block_align: usize,
    /// Sample bytes still announced by the header; `None` reads to the end of the source.
    remaining_bytes: Option<u64>,
    /// Scratch for raw bytes, [`READ_BUFFER_BYTES`] long.
    bytes: Vec<u8>,
    nonfinite_samples: u64,
    truncated: bool,
    at_end: bool,
}

impl std::fmt::Debug for AudioReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioReader")
            .field("name", &self.name)
            .field("spec", &self.spec)
            .field("remaining_bytes", &self.remaining_bytes)
            .finish_non_exhaustive()
    }
}

/// Frames a WAV really holds: the header's data size capped at the bytes present after the
/// header (when the total length is known), or the header's claim.
fn frames_present(layout: &wav::WavLayout, total_len: Option<u64>) -> Option<u64> {
    let block_align = layout.block_align as u64;
    match total_len {
        Some(len) => {
            let present = len.saturating_sub(layout.data_offset);
            Some(layout.data_bytes.map_or(present, |b| b.min(present)) / block_align)
        }
        None => layout.data_bytes.map(|b| b / block_align),
    }
}

fn check_raw_format(format: &RawFormat) -> Result<(), AudioError> {
    wav::check_channels(format.channels)?;
    wav::check_sample_rate(format.sample_rate_hz)
}

impl AudioReader {
    fn new(
        source: Box<dyn Read + Send>,
        name: String,
        spec: AudioSpec,
        remaining_bytes: Option<u64>,
    ) -> Self {
        let block_align = usize::from(spec.channels) * spec.encoding.bytes_per_sample();
        Self {
            source,
            name,
            spec,
            block_align,
            remaining_bytes,
            bytes: vec![0; READ_BUFFER_BYTES],
            nonfinite_samples: 0,
            truncated: false,
            at_end: false,
        }
    }

    /// Decodes a WAV from a source whose total length in bytes is known when it is a regular
    /// file (`total_len`); `name` (a path) labels error messages. `spec().total_frames` is what
    /// the source really holds (the header's data size, capped at the bytes present).
    pub fn from_wav_source(
        source: Box<dyn Read + Send>,
        name: &str,
        total_len: Option<u64>,
    ) -> Result<Self, AudioError> {
        let mut source = BufReader::with_capacity(16 * 1024, source);
        let layout = wav::read_header(&mut source, name)?;
        let mut spec = layout.spec.clone();
        spec.total_frames = frames_present(&layout, total_len);
        Ok(Self::new(
            Box::new(source),
            name.to_string(),
            spec,
            layout.data_bytes,
        ))
    }

    /// Decodes a WAV held in memory (tests, network payloads).
    pub fn from_wav_bytes(bytes: Vec<u8>) -> Result<Self, AudioError> {
        let len = bytes.len() as u64;
        let mut source = Cursor::new(bytes);
        let layout = wav::read_header(&mut source, STREAM_NAME)?;
        let mut spec = layout.spec.clone();
        spec.total_frames = frames_present(&layout, Some(len));
        Ok(Self::new(
            Box::new(source),
            STREAM_NAME.into(),
            spec,
            layout.data_bytes,
        ))
    }

    /// Decodes a WAV from any byte stream (a socket, a pipe). `spec().total_frames` is the
    /// header's claim, which may exceed what the stream delivers.
    pub fn from_wav_reader(mut source: Box<dyn Read + Send>) -> Result<Self, AudioError> {
        let layout = wav::read_header(&mut source, STREAM_NAME)?;
        Ok(Self::new(
            source,
            STREAM_NAME.into(),
            layout.spec,
            layout.data_bytes,
        ))
    }

    /// Decodes a headerless stream of the given format from a source of `total_len` bytes (when
    /// known); `name` labels error messages. A trailing partial frame is ignored.
    pub fn from_raw_source(
        source: Box<dyn Read + Send>,
        name: &str,
        total_len: Option<u64>,
        format: RawFormat,
    ) -> Result<Self, AudioError> {
        check_raw_format(&format)?;
        let block_align = usize::from(format.channels) * format.encoding.bytes_per_sample();
        let spec = AudioSpec {
            sample_rate_hz: format.sample_rate_hz,
            channels: format.channels,
            encoding: format.encoding,
            total_frames: total_len.map(|len| len / block_align as u64),
        };
        Ok(Self::new(source, name.to_string(), spec, None))
    }

    /// Decodes a headerless stream of the given format from any byte stream.
    pub fn from_raw_reader(
        source: Box<dyn Read + Send>,
        format: RawFormat,
    ) -> Result<Self, AudioError> {
        check_raw_format(&format)?;
        let spec = AudioSpec {
            sample_rate_hz: format.sample_rate_hz,
            channels: format.channels,
            encoding: format.encoding,
            total_frames: None,
        };
        Ok(Self::new(source, STREAM_NAME.into(), spec, None))
    }

    /// What the file holds.
    pub fn spec(&self) -> &AudioSpec {
        &self.spec
    }

    /// Float samples that were NaN or infinite (each decoded as 0) so far.
    pub fn nonfinite_samples(&self) -> u64 {
        self.nonfinite_samples
    }

    /// True once the source ended before the data size its header announced (the samples that
    /// were there have been returned).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Reads up to `max_frames` frames, deinterleaved: `out[c]` is cleared and filled with channel
    /// `c`'s samples (`out.len()` must equal the channel count). Returns the number of frames
    /// read; 0 at the end.
    pub fn read_frames(
        &mut self,
        max_frames: usize,
        out: &mut [Vec<f32>],
    ) -> Result<usize, AudioError> {
        let channels = usize::from(self.spec.channels);
        if out.len() != channels {
            return Err(AudioError::InvalidArgument(format!(
                "{} output channels for a {channels}-channel source (expected {channels})",
                out.len()
            )));
        }
        out.iter_mut().for_each(Vec::clear);
        let block_align = self.block_align;
        let mut total = 0;
        while total < max_frames && !self.at_end {
            let mut frames = (max_frames - total).min(READ_BUFFER_BYTES / block_align);
            if let Some(remaining) = self.remaining_bytes {
                let left = usize::try_from(remaining / block_align as u64).unwrap_or(usize::MAX);
                frames = frames.min(left);
                if frames == 0 {
                    // The data chunk is done (a partial frame at its end is dropped).
                    self.at_end = true;
                    break;
                }
            }
            let want = frames * block_align;
            let got = wav::read_full(&mut self.source, &mut self.bytes[..want]).map_err(|e| {
                AudioError::Io {
                    path: self.name.clone(),
                    source: e,
                }
            })?;
            if let Some(remaining) = self.remaining_bytes.as_mut() {
                *remaining -= got as u64;
            }
            let whole = got / block_align;
            self.decode(whole * block_align, out);
            total += whole;
            if got < want {
                self.at_end = true;
                self.truncated = self.remaining_bytes.is_some_and(|r| r > 0);
            }
        }
        Ok(total)
    }

    /// Decodes the first `len` bytes of the scratch buffer (whole frames) into `out`.
    fn decode(&mut self, len: usize, out: &mut [Vec<f32>]) {
        let bytes = &self.bytes[..len];
        let channels = out.len();
        let width = self.spec.encoding.bytes_per_sample();
        let mut nonfinite = 0u64;
        let mut sanitize = |v: f64| -> f32 {
            if v.is_finite() {
                v.clamp(-1.0, 1.0) as f32
            } else {
                nonfinite += 1;
                0.0
            }
        };
        for frame in bytes.chunks_exact(channels * width) {
            for (samples, s) in out.iter_mut().zip(frame.chunks_exact(width)) {
                let value = match self.spec.encoding {
                    SampleEncoding::PcmU8 => (f32::from(s[0]) - 128.0) / 128.0,
                    SampleEncoding::Pcm16 => f32::from(i16::from_le_bytes([s[0], s[1]])) / 32_768.0,
                    SampleEncoding::Pcm24 => {
                        (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0
                    }
                    SampleEncoding::Pcm32 => {
                        (f64::from(i32::from_le_bytes([s[0], s[1], s[2], s[3]])) / 2_147_483_648.0)
                            as f32
                    }
                    SampleEncoding::Float32 => {
                        sanitize(f64::from(f32::from_le_bytes([s[0], s[1], s[2], s[3]])))
                    }
                    SampleEncoding::Float64 => sanitize(f64::from_le_bytes([
                        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
                    ])),
                    SampleEncoding::MuLaw => f32::from(g711::decode_mulaw(s[0])) / 32_768.0,
                    SampleEncoding::ALaw => f32::from(g711::decode_alaw(s[0])) / 32_768.0,
                };
                samples.push(value);
            }
        }
        self.nonfinite_samples += nonfinite;
    }
}

/// A whole decoded recording, one `Vec` per channel, at its native rate.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioBuffer {
    pub sample_rate_hz: u32,
    pub channels: Vec<Vec<f32>>,
}

/// Reads every remaining frame of `reader` into memory.
pub fn read_all(mut reader: AudioReader) -> Result<AudioBuffer, AudioError> {
    const CHUNK_FRAMES: usize = 1 << 16;
    let channels = usize::from(reader.spec().channels);
    // The header's frame count is capped at the bytes present for files, but a stream's header
    // may lie: reserve at most 4 Mi samples (16 MiB) up front and let the rest grow on demand.
    const MAX_RESERVED_SAMPLES: u64 = 1 << 22;
    let hint = reader
        .spec()
        .total_frames
        .unwrap_or(0)
        .min(MAX_RESERVED_SAMPLES / channels as u64) as usize;
    let mut all: Vec<Vec<f32>> = (0..channels).map(|_| Vec::with_capacity(hint)).collect();
    let mut chunk = vec![Vec::with_capacity(CHUNK_FRAMES); channels];
    while reader.read_frames(CHUNK_FRAMES, &mut chunk)? > 0 {
        for (dst, src) in all.iter_mut().zip(&chunk) {
            dst.extend_from_slice(src);
        }
    }
    Ok(AudioBuffer {
        sample_rate_hz: reader.spec().sample_rate_hz,
        channels: all,
    })
}
