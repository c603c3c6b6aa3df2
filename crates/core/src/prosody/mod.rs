//! Prosody above the frame: window-level functionals over one party's speech
//! ([`functionals`]), the speaker baseline they are judged against ([`baseline`]), and the
//! functionals of a recording or its consecutive speech windows ([`windows`]).

pub mod baseline;
pub mod functionals;
pub mod windows;
