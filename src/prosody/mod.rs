//! Prosody above the frame: window-level functionals over one party's speech
//! ([`functionals`]), the speaker baseline they are judged against ([`baseline`]), and the
//! extraction of one file's functionals through the clean or telephone channel ([`extract`]).

pub mod baseline;
pub mod extract;
pub mod functionals;
