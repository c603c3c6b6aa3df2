//! One live call's state on the server, without I/O: the validated call header
//! ([`CallSpec`]), chunk sequencing ([`Sequencer`]: reorders within a window, drops
//! duplicates), decoding of PCM16/F32/G.711 chunks into per-channel samples, and the call's
//! [`CallAnalyzer`] ([`SessionCore`]). The async driver around it lives in [`super::grpc`].
//!
//! Memory per call is the analyzer plus two decode buffers of one chunk each and the chunks
//! held for reordering (at most [`SessionLimits::reorder_window_chunks`]).
//!
//! A call whose team is recorded carries a [`RecordingTap`]: each chunk's bytes move to it once
//! analysed (no copy), which is how every ingest path (gRPC and the telephony adapters) is
//! recorded through one place (see [`super::recordings`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::bytes::Bytes;
use serde::Serialize;

use attune_core::audio::g711;
use attune_core::call::{CallAnalyzer, CallConfig, CallEvent, CallOutcome, CallSetupError};
use attune_core::cues::CueRules;
use attune_core::model::emotion::EmotionModel;

use super::pb;
use super::recordings::RecordingTap;

/// Lowest and highest sample rate a call may declare, Hz.
pub const SAMPLE_RATE_RANGE_HZ: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// How a call's audio is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Pcm16le,
    F32le,
    Mulaw,
    Alaw,
}

impl Encoding {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::Pcm16le => 2,
            Encoding::F32le => 4,
            Encoding::Mulaw | Encoding::Alaw => 1,
        }
    }

    pub fn to_proto(self) -> pb::AudioEncoding {
        match self {
            Encoding::Pcm16le => pb::AudioEncoding::Pcm16le,
            Encoding::F32le => pb::AudioEncoding::F32le,
            Encoding::Mulaw => pb::AudioEncoding::Mulaw,
            Encoding::Alaw => pb::AudioEncoding::Alaw,
        }
    }
}

/// How a call's two parties arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    InterleavedStereo,
    TwoMono,
}

/// A validated call header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSpec {
    pub call_id: String,
    pub agent_id: String,
    pub team: String,
    pub sample_rate_hz: u32,
    pub encoding: Encoding,
    pub layout: Layout,
    pub agent_channel: usize,
}

/// A header or chunk the server refuses; the message names the bad value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("sample rate {0} Hz is not supported (expected 8000..=48000)")]
    SampleRate(u32),
    #[error("audio encoding {0} is not supported (expected PCM16LE, F32LE, MULAW or ALAW)")]
    Encoding(i32),
    #[error("channel layout {0} is not supported (expected INTERLEAVED_STEREO or TWO_MONO)")]
    Layout(i32),
    #[error("agent channel {0} does not exist (expected 0 or 1)")]
    AgentChannel(u32),
    #[error("chunk {seq}: channel {channel} does not exist (expected 0 or 1)")]
    ChunkChannel { seq: u64, channel: u32 },
    #[error("chunk {seq}: {bytes} bytes is not a whole number of {frame_bytes}-byte sample frames")]
    ChunkSize {
        seq: u64,
        bytes: usize,
        frame_bytes: usize,
    },
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error(
        "chunk {seq} arrived while chunk {missing} is still missing: more than {window} chunks out of order"
    )]
    SequenceGap {
        seq: u64,
        missing: u64,
        window: usize,
    },
}

/// The most characters an id from a client (call id, agent id, team, upload name) may hold.
pub const MAX_CLIENT_ID_CHARS: usize = 128;

/// The one check of an id a client sends (gRPC header, Twilio, AudioHook, AudioSocket,
/// upload query): at most [`MAX_CLIENT_ID_CHARS`] characters and no control characters.
/// `field` names the field in the error, e.g. `agent_id`.
pub fn check_client_id(field: &'static str, value: &str) -> Result<(), InputError> {
    let chars = value.chars().take(MAX_CLIENT_ID_CHARS + 1).count();
    if chars > MAX_CLIENT_ID_CHARS {
        return Err(InputError::Field {
            field,
            reason: format!(
                "{} bytes is too long (at most {MAX_CLIENT_ID_CHARS} characters)",
                value.len()
            ),
        });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(InputError::Field {
            field,
            reason: format!(
                "control character U+{:04X} is not allowed (printable characters only)",
                c as u32
            ),
        });
    }
    Ok(())
}

impl CallSpec {
    /// Checks the client-supplied ids of a spec with [`check_client_id`] and its sample rate.
    pub fn validate(&self) -> Result<(), InputError> {
        check_client_id("call_id", &self.call_id)?;
        check_client_id("agent_id", &self.agent_id)?;
        check_client_id("team", &self.team)?;
        if !SAMPLE_RATE_RANGE_HZ.contains(&self.sample_rate_hz) {
            return Err(InputError::SampleRate(self.sample_rate_hz));
        }
        if self.agent_channel > 1 {
            return Err(InputError::AgentChannel(self.agent_channel as u32));
        }
        Ok(())
    }

    /// Validates a declared header.
    pub fn from_header(h: &pb::CallHeader) -> Result<Self, InputError> {
        check_client_id("call_id", &h.call_id)?;
        check_client_id("agent_id", &h.agent_id)?;
        check_client_id("team", &h.team)?;
        if !SAMPLE_RATE_RANGE_HZ.contains(&h.sample_rate_hz) {
            return Err(InputError::SampleRate(h.sample_rate_hz));
        }
        let encoding = match pb::AudioEncoding::try_from(h.encoding) {
            Ok(pb::AudioEncoding::Pcm16le) => Encoding::Pcm16le,
            Ok(pb::AudioEncoding::F32le) => Encoding::F32le,
            Ok(pb::AudioEncoding::Mulaw) => Encoding::Mulaw,
            Ok(pb::AudioEncoding::Alaw) => Encoding::Alaw,
            _ => return Err(InputError::Encoding(h.encoding)),
        };
        let layout = match pb::ChannelLayout::try_from(h.layout) {
            Ok(pb::ChannelLayout::InterleavedStereo) => Layout::InterleavedStereo,
            Ok(pb::ChannelLayout::TwoMono) => Layout::TwoMono,
            _ => return Err(InputError::Layout(h.layout)),
        };
        if h.agent_channel > 1 {
            return Err(InputError::AgentChannel(h.agent_channel));
        }
        Ok(Self {
            call_id: h.call_id.clone(),
            agent_id: h.agent_id.clone(),
            team: h.team.clone(),
            sample_rate_hz: h.sample_rate_hz,
            encoding,
            layout,
            agent_channel: h.agent_channel as usize,
        })
    }

    /// Bytes of one sample frame of a chunk (both channels when interleaved).
    pub fn frame_bytes(&self) -> usize {
        let channels = match self.layout {
            Layout::InterleavedStereo => 2,
            Layout::TwoMono => 1,
        };
        self.encoding.bytes_per_sample() * channels
    }

    /// Checks a chunk's channel and size.
    pub fn check_chunk(&self, chunk: &pb::AudioChunk) -> Result<(), InputError> {
        if self.layout == Layout::TwoMono && chunk.channel > 1 {
            return Err(InputError::ChunkChannel {
                seq: chunk.seq,
                channel: chunk.channel,
            });
        }
        let frame_bytes = self.frame_bytes();
        if !chunk.audio.len().is_multiple_of(frame_bytes) {
            return Err(InputError::ChunkSize {
                seq: chunk.seq,
                bytes: chunk.audio.len(),
                frame_bytes,
            });
        }
        Ok(())
    }
}

/// Limits of one session (and of the calls of one token, connection or peer), applied to
/// every ingest path; see [`super::limits`].
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Chunks that may arrive ahead of a missing one before the stream is refused.
    pub reorder_window_chunks: usize,
    /// Audio may arrive at most this many times faster than real time (beyond the burst);
    /// faster, the server reads more slowly. `f64::INFINITY`: not paced.
    pub max_speed: f64,
    /// Audio a call may send ahead of `max_speed × wall time`, seconds.
    pub burst_s: f64,
    /// Messages per second a call may send (burst: one second's worth); more wait.
    /// `f64::INFINITY`: unlimited.
    pub max_messages_per_s: f64,
    /// End a call whose audio lags wall time by more than the idle timeout (the trickle-proof
    /// rule). False: only a stream without any message for the idle timeout ends (the rule
    /// before issue 17, kept for comparison).
    pub idle_counts_audio: bool,
    /// Live calls one API token (principal) may ingest at once.
    pub max_calls_per_token: usize,
    /// Live calls one gRPC connection may carry at once.
    pub max_calls_per_connection: usize,
    /// Live telephony calls (Twilio, AudioHook, AudioSocket) from one peer address at once.
    pub max_calls_per_peer: usize,
}

/// Default of [`SessionLimits::max_speed`]: twice real time.
pub const DEFAULT_MAX_SPEED: f64 = 2.0;
/// Default of [`SessionLimits::burst_s`].
pub const DEFAULT_BURST_S: f64 = 10.0;
/// Default of [`SessionLimits::max_messages_per_s`].
pub const DEFAULT_MAX_MESSAGES_PER_S: f64 = 200.0;

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            reorder_window_chunks: 16,
            max_speed: DEFAULT_MAX_SPEED,
            burst_s: DEFAULT_BURST_S,
            max_messages_per_s: DEFAULT_MAX_MESSAGES_PER_S,
            idle_counts_audio: true,
            max_calls_per_token: usize::MAX,
            max_calls_per_connection: usize::MAX,
            max_calls_per_peer: usize::MAX,
        }
    }
}

impl SessionLimits {
    /// No pacing and no message rate (tests and tools that replay faster than 2×).
    pub fn unpaced(self) -> Self {
        Self {
            max_speed: f64::INFINITY,
            max_messages_per_s: f64::INFINITY,
            ..self
        }
    }
}

impl CallSpec {
    /// Seconds of audio in `bytes` of one chunk (per channel: a two-mono chunk is one party).
    pub fn chunk_seconds(&self, bytes: usize) -> f64 {
        (bytes / self.frame_bytes()) as f64 / f64::from(self.sample_rate_hz)
    }
}

/// Puts chunks back in sequence order: holds chunks that arrive early (up to a window), drops
/// duplicates, and refuses a gap that the window cannot bridge.
#[derive(Debug)]
pub struct Sequencer {
    next_seq: u64,
    held: BTreeMap<u64, pb::AudioChunk>,
    window: usize,
    pub out_of_order: u64,
    pub duplicates: u64,
}

impl Sequencer {
    pub fn new(window: usize) -> Self {
        Self {
            next_seq: 0,
            held: BTreeMap::new(),
            window,
            out_of_order: 0,
            duplicates: 0,
        }
    }

    /// The next sequence number expected.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Accepts a chunk; chunks now in order are appended to `ready`. Returns whether the chunk
    /// was new (false for a duplicate).
    pub fn accept(
        &mut self,
        chunk: pb::AudioChunk,
        ready: &mut Vec<pb::AudioChunk>,
    ) -> Result<bool, InputError> {
        let seq = chunk.seq;
        if seq < self.next_seq || self.held.contains_key(&seq) {
            self.duplicates += 1;
            return Ok(false);
        }
        if seq == self.next_seq {
            ready.push(chunk);
            self.next_seq += 1;
            while let Some(next) = self.held.remove(&self.next_seq) {
                ready.push(next);
                self.next_seq += 1;
            }
            return Ok(true);
        }
        if seq - self.next_seq > self.window as u64 || self.held.len() >= self.window {
            return Err(InputError::SequenceGap {
                seq,
                missing: self.next_seq,
                window: self.window,
            });
        }
        self.out_of_order += 1;
        self.held.insert(seq, chunk);
        Ok(true)
    }
}

/// Decodes `audio` (whole frames of `channels` interleaved channels) into `out[c]`, replacing
/// their contents. Non-finite float samples are read as silence.
pub fn decode_chunk(encoding: Encoding, channels: usize, audio: &[u8], out: &mut [Vec<f32>]) {
    for buf in out.iter_mut().take(channels) {
        buf.clear();
    }
    let bytes_per_sample = encoding.bytes_per_sample();
    let frame_bytes = bytes_per_sample * channels;
    for frame in audio.chunks_exact(frame_bytes) {
        for (c, s) in frame.chunks_exact(bytes_per_sample).enumerate() {
            let value = match encoding {
                Encoding::Pcm16le => f32::from(i16::from_le_bytes([s[0], s[1]])) / 32_768.0,
                Encoding::F32le => {
                    let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                    if v.is_finite() {
                        v.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                }
                Encoding::Mulaw => f32::from(g711::MULAW_TO_LINEAR[s[0] as usize]) / 32_768.0,
                Encoding::Alaw => f32::from(g711::ALAW_TO_LINEAR[s[0] as usize]) / 32_768.0,
            };
            out[c].push(value);
        }
    }
}

/// Encodes samples (in -1..=1) into `out` (appended), interleaving the given channels.
/// The inverse of [`decode_chunk`]: what replay and capture clients send.
pub fn encode_chunk(encoding: Encoding, channels: &[&[f32]], out: &mut Vec<u8>) {
    let frames = channels.iter().map(|c| c.len()).min().unwrap_or(0);
    let to_i16 = |v: f32| (v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
    for i in 0..frames {
        for channel in channels {
            let v = channel[i];
            match encoding {
                Encoding::Pcm16le => out.extend_from_slice(&to_i16(v).to_le_bytes()),
                Encoding::F32le => out.extend_from_slice(&v.to_le_bytes()),
                Encoding::Mulaw => out.push(g711::encode_mulaw(to_i16(v))),
                Encoding::Alaw => out.push(g711::encode_alaw(to_i16(v))),
            }
        }
    }
}

/// How a call ended and what it amounted to (published to the hub and sent to the ingest client).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// "ended" (EndCall), "timeout", "disconnected" (stream closed or broken without EndCall),
    /// "shutdown", "error".
    pub reason: String,
    pub duration_s: f64,
    pub chunks_received: u64,
    pub bytes_received: u64,
    pub chunks_out_of_order: u64,
    pub chunks_duplicate: u64,
    /// None when the analysis could not finish (the server is shutting down).
    pub outcome: Option<CallOutcome>,
    /// Set when this call continues another node's (cluster): where the gap was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continued: Option<crate::hub::Continuation>,
}

/// A call's analysis state: the analyzer and its decode buffers. Moves into an analysis job
/// and back (see [`super::analysis`]).
pub struct SessionCore {
    spec: Arc<CallSpec>,
    analyzer: CallAnalyzer,
    decoded: [Vec<f32>; 2],
    /// Events of the last call to [`Self::push_chunks`] or [`Self::finish`].
    pub events: Vec<CallEvent>,
    /// Where the call's audio is recorded (its team opted in), if anywhere.
    recording: Option<RecordingTap>,
}

impl SessionCore {
    pub fn new(
        spec: Arc<CallSpec>,
        rules: CueRules,
        model: Arc<EmotionModel>,
        snapshot_period_s: f64,
    ) -> Result<Self, CallSetupError> {
        let config = CallConfig {
            sample_rate_hz: spec.sample_rate_hz,
            agent_channel: spec.agent_channel,
            rules,
            snapshot_period_s,
            ..CallConfig::default()
        };
        Ok(Self {
            analyzer: CallAnalyzer::new(config, model)?,
            decoded: [Vec::new(), Vec::new()],
            events: Vec::with_capacity(16),
            spec,
            recording: None,
        })
    }

    /// Records the call's audio through `tap` from now on (None: not recorded).
    pub fn set_recording(&mut self, tap: Option<RecordingTap>) {
        self.recording = tap;
    }

    /// Ends the call's recording (the writer finishes its file); also done when dropped.
    pub fn end_recording(&mut self) {
        self.recording = None;
    }

    /// Decodes and analyses chunks (already checked and in order); events land in `self.events`.
    /// A recorded call's chunks give their bytes to the recording once analysed (left empty).
    pub fn push_chunks(&mut self, chunks: &mut [pb::AudioChunk]) {
        self.events.clear();
        for chunk in chunks {
            self.push_bytes(chunk.channel as usize, &chunk.audio);
            if let Some(tap) = &mut self.recording {
                tap.push(chunk.channel as usize, std::mem::take(&mut chunk.audio));
            }
        }
    }

    fn push_bytes(&mut self, channel: usize, audio: &Bytes) {
        match self.spec.layout {
            Layout::InterleavedStereo => {
                decode_chunk(self.spec.encoding, 2, audio, &mut self.decoded);
                self.analyzer.push(0, &self.decoded[0], &mut self.events);
                self.analyzer.push(1, &self.decoded[1], &mut self.events);
            }
            Layout::TwoMono => {
                decode_chunk(self.spec.encoding, 1, audio, &mut self.decoded[..1]);
                self.analyzer
                    .push(channel, &self.decoded[0], &mut self.events);
            }
        }
    }

    /// Call time analysed, seconds.
    pub fn analysed_s(&self) -> f64 {
        self.analyzer.analysed_s()
    }

    /// Ends the analysis; the final events land in `self.events`.
    pub fn finish(&mut self) -> CallOutcome {
        self.events.clear();
        self.analyzer.finish(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seq: u64) -> pb::AudioChunk {
        pb::AudioChunk {
            seq,
            channel: 0,
            audio: Bytes::from_static(&[0, 0, 0, 0]),
        }
    }

    #[test]
    fn sequencer_reorders_drops_duplicates_and_refuses_wide_gaps() {
        let mut s = Sequencer::new(2);
        let mut ready = Vec::new();
        assert!(s.accept(chunk(0), &mut ready).unwrap());
        assert!(s.accept(chunk(2), &mut ready).unwrap());
        assert!(!s.accept(chunk(0), &mut ready).unwrap());
        assert!(!s.accept(chunk(2), &mut ready).unwrap());
        assert!(s.accept(chunk(1), &mut ready).unwrap());
        let order: Vec<u64> = ready.iter().map(|c| c.seq).collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!((s.out_of_order, s.duplicates), (1, 2));
        assert_eq!(
            s.accept(chunk(9), &mut ready),
            Err(InputError::SequenceGap {
                seq: 9,
                missing: 3,
                window: 2
            })
        );
    }

    #[test]
    fn codecs_round_trip() {
        let left: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.3).sin() * 0.5).collect();
        let right: Vec<f32> = left.iter().map(|v| -v).collect();
        for encoding in [
            Encoding::Pcm16le,
            Encoding::F32le,
            Encoding::Mulaw,
            Encoding::Alaw,
        ] {
            let mut bytes = Vec::new();
            encode_chunk(encoding, &[&left, &right], &mut bytes);
            assert_eq!(bytes.len(), 64 * 2 * encoding.bytes_per_sample());
            let mut out = [Vec::new(), Vec::new()];
            decode_chunk(encoding, 2, &bytes, &mut out);
            let tolerance = if matches!(encoding, Encoding::Mulaw | Encoding::Alaw) {
                0.02
            } else {
                1e-4
            };
            for (a, b) in left.iter().zip(&out[0]) {
                assert!((a - b).abs() < tolerance, "{encoding:?} {a} {b}");
            }
            for (a, b) in right.iter().zip(&out[1]) {
                assert!((a - b).abs() < tolerance, "{encoding:?} {a} {b}");
            }
        }
        // G.711 codes survive decode → encode unchanged (what replay relies on).
        let codes: Vec<u8> = (0..=255u8).filter(|&c| c != 0x7F).collect();
        let mut out = [Vec::new()];
        decode_chunk(Encoding::Mulaw, 1, &codes, &mut out);
        let mut back = Vec::new();
        encode_chunk(Encoding::Mulaw, &[&out[0]], &mut back);
        let mut again = [Vec::new()];
        decode_chunk(Encoding::Mulaw, 1, &back, &mut again);
        assert_eq!(out[0], again[0]);
    }

    #[test]
    fn headers_are_validated() {
        let good = pb::CallHeader {
            call_id: "c".into(),
            sample_rate_hz: 8000,
            encoding: pb::AudioEncoding::Mulaw as i32,
            layout: pb::ChannelLayout::InterleavedStereo as i32,
            ..Default::default()
        };
        assert!(CallSpec::from_header(&good).is_ok());
        let bad_rate = pb::CallHeader {
            sample_rate_hz: 1_000_000,
            ..good.clone()
        };
        assert_eq!(
            CallSpec::from_header(&bad_rate),
            Err(InputError::SampleRate(1_000_000))
        );
        let mut long = good.clone();
        long.agent_id = "a".repeat(1 << 20);
        let e = CallSpec::from_header(&long).unwrap_err().to_string();
        assert!(e.starts_with("agent_id: 1048576 bytes is too long"), "{e}");
        let mut ctl = good.clone();
        ctl.team = "t\x1b[2J".into();
        let e = CallSpec::from_header(&ctl).unwrap_err().to_string();
        assert!(e.starts_with("team: control character U+001B"), "{e}");
        let mut ok = good.clone();
        ok.call_id = "é".repeat(MAX_CLIENT_ID_CHARS);
        assert!(CallSpec::from_header(&ok).is_ok());
        assert_eq!(
            check_client_id("x", &"b".repeat(MAX_CLIENT_ID_CHARS + 1)).map_err(|e| e.to_string()),
            Err("x: 129 bytes is too long (at most 128 characters)".to_string())
        );
        let bad_encoding = pb::CallHeader {
            encoding: 0,
            ..good.clone()
        };
        assert!(CallSpec::from_header(&bad_encoding).is_err());
        let spec = CallSpec::from_header(&good).unwrap();
        let odd = pb::AudioChunk {
            seq: 3,
            channel: 0,
            audio: Bytes::from_static(&[1, 2, 3]),
        };
        assert!(matches!(
            spec.check_chunk(&odd),
            Err(InputError::ChunkSize { seq: 3, .. })
        ));
    }
}
