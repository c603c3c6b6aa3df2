//! Attune's lab: where the figures come from. Test calls composed from real speech with exact
//! ground truth ([`compose`]), speech corpora and their cached functionals ([`corpus`]), one file's functionals through a clean or telephone channel for
//! training ([`extract`]), and the evaluations behind `attune eval ...` ([`eval`]): pitch,
//! speaking rate, dialog tracking, caller emotion and cues.
#![forbid(unsafe_code)]

pub mod compose;
pub mod corpus;
pub mod eval;
pub mod extract;
pub mod model_card;
