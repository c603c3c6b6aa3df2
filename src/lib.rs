//! Attune: a self-hosted, real-time call-center audio analyzer.
//!
//! Attune listens to each party of a phone call and measures, from the sound alone, how the call is
//! going: pitch, loudness, voicing, speaking rate and voice quality per party (this crate's signal
//! core), and on top of them the conversation's dynamics, the caller's emotional state and the
//! agent's calmness.
//!
//! # Layout
//! - [`audio`]: the input edge. WAV (PCM 8/16/24/32-bit, float, G.711 mu-law/A-law) and raw
//!   G.711/PCM streams, decoded into per-channel `f32` samples and resampled to the analysis rate.
//! - [`dsp`]: the pure per-frame signal core (no I/O): framing, the shared windowed spectrum,
//!   loudness, pitch, voice activity, voice quality, syllable nuclei.
//! - [`features`]: [`features::ChannelAnalyzer`] runs the whole per-channel prosody track, frame
//!   by frame (10 ms hop), and summarises a channel (speech time, syllables, speaking rate, F0).
//! - [`dialog`]: the two-party conversation dynamics over both channels' frames: turns, talk,
//!   overlap and silence time, interruptions, backchannels, response latency.
//! - [`model`]: caller emotion (5 classes, arousal, valence, confidence) and agent calmness
//!   from window functionals ([`prosody`]) against each speaker's own baseline.
//! - [`cues`]: the cue engine — rules with hysteresis over a call's analysis, each cue with its
//!   evidence; thresholds in `rules/cues.toml`.
//! - [`call`]: [`call::CallAnalyzer`], one call's whole pipeline (live or recorded):
//!   `push(channel, samples)` → snapshots, emotion points, dialog events and cues.
//! - [`qa`]: QA scoring of recorded calls — the rubric (`rules/qa.toml`), measured facts, the
//!   score with its evidence, the per-call result document, HTML/CSV reports, batch helpers.
//! - [`store`]: stored calls, cues and QA results (SQLite; PostgreSQL with feature `postgres`),
//!   with migrations and the queries the CLI and console use.
//! - [`service`]: the live edge — the call hub, gRPC ingest/monitor, HTTP.
//! - [`eval`]: evaluation against reference corpora (pitch GPE/VDE, speaking rate), used by
//!   `attune eval ...`.
//!
//! The `attune` binary (`src/main.rs`, `src/cli/`) is the command-line edge: it parses
//! arguments, opens files and prints; everything it reports is computed here.
//!
//! The analysis core is synchronous and deterministic: the same samples always give the same
//! frames. All per-frame work runs on buffers allocated once per channel.
#![forbid(unsafe_code)]

pub mod audio;
pub mod call;
pub mod compose;
pub mod cues;
pub mod dialog;
pub mod dsp;
pub mod eval;
pub mod features;
pub mod model;
pub mod prosody;
pub mod qa;
pub mod service;
pub mod store;
