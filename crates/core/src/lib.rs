//! Attune's analysis core: from samples to what a supervisor is told, with no I/O.
//!
//! The path of a sample: [`audio`] decodes WAV/G.711/PCM bytes handed to it (a reader, a slice:
//! this crate opens no files) and resamples to the 8 kHz analysis rate; [`features`] runs the
//! per-channel prosody track frame by frame (10 ms hop) over the [`dsp`] kernels (spectrum,
//! loudness, pitch, voice activity, voice quality, syllable nuclei); [`dialog`] follows the two
//! parties (turns, overlap, interruptions, backchannels, response latency); [`prosody`] turns a
//! party's frames into window functionals judged against the speaker's baseline; [`model`] reads
//! caller emotion and agent calmness from them; [`cues`] applies the published cue rules with
//! hysteresis; [`call`] ties it all together as [`call::CallAnalyzer`] (live or recorded) and
//! [`call::analyze_recording`], the one entry point for a recording; at a call's end [`empathy`]
//! measures active listening, attunement and de-escalation from the typed results.
//!
//! The core is synchronous and deterministic: the same samples give the same frames and cues. It
//! reads no files, environment or clock (the compiler enforces it: no such dependency is in
//! its tree); loaders take `&str`/`&[u8]`/[`std::io::Read`]. All per-frame work runs on buffers
//! allocated once per channel.
#![forbid(unsafe_code)]

pub mod audio;
pub mod call;
pub mod cues;
pub mod dialog;
pub mod dsp;
pub mod empathy;
pub mod features;
pub mod model;
pub mod prosody;
pub mod rng;
