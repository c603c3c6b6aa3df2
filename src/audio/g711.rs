//! G.711 mu-law and A-law: decode tables for all 256 codes, and encoders (used to build
//! telephone-channel test audio).
//!
//! SKELETON: being written in the audio worktree.

/// Decodes one mu-law byte to a linear 16-bit sample.
pub fn decode_mulaw(code: u8) -> i16 {
    let _ = code;
    todo!("audio worktree")
}

/// Decodes one A-law byte to a linear 16-bit sample.
pub fn decode_alaw(code: u8) -> i16 {
    let _ = code;
    todo!("audio worktree")
}

/// Encodes a linear 16-bit sample to mu-law.
pub fn encode_mulaw(sample: i16) -> u8 {
    let _ = sample;
    todo!("audio worktree")
}

/// Encodes a linear 16-bit sample to A-law.
pub fn encode_alaw(sample: i16) -> u8 {
    let _ = sample;
    todo!("audio worktree")
}
