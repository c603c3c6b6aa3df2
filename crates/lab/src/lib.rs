//! Attune's lab: where the figures come from. Test calls composed from real speech with exact
//! ground truth ([`compose`]), one file's functionals through a clean or telephone channel for
//! training ([`extract`]), and the evaluations behind `attune eval ...` ([`eval`]): pitch,
//! speaking rate, dialog tracking, caller emotion and cues.
#![forbid(unsafe_code)]

pub mod compose;
pub mod eval;
pub mod extract;
