//! Test calls with exact ground truth: builds two-party stereo calls from real utterances of two
//! speakers following a timeline spec, through a telephone channel, and writes the ground-truth
//! annotation beside the audio.
//!
//! SKELETON: the composer is being written in the compose worktree; [`annotation`] is the
//! shared contract between the composer (writes it) and `attune eval dialog` (reads it).

pub mod annotation;
