//! Syllable nuclei: the loudness peaks of voiced speech that mark one syllable each, from which
//! speaking rate and articulation rate are counted.
//!
//! SKELETON: being written in the speaking-rate worktree; the signatures are the contract.

use super::vad::VoiceActivity;

/// What the detector needs to know of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyllableInput {
    pub loudness_db: f32,
    /// Energy in the 300–2500 Hz band, dBFS.
    pub vowel_band_db: f32,
    pub voiced: bool,
    pub voicing_strength: f32,
    pub activity: VoiceActivity,
}

/// Streaming syllable-nucleus detector for one channel.
pub struct SyllableDetector {
    _private: (),
}

impl SyllableDetector {
    pub fn new() -> Self {
        todo!("speaking-rate worktree")
    }

    /// Adds the next frame.
    pub fn push(&mut self, input: SyllableInput) {
        let _ = input;
        todo!("speaking-rate worktree")
    }

    /// At the end of the stream: decides every pending frame.
    pub fn finish(&mut self) {
        todo!("speaking-rate worktree")
    }

    /// Takes the next decision (true = a nucleus at that frame), in frame order.
    pub fn pop_decided(&mut self) -> Option<bool> {
        todo!("speaking-rate worktree")
    }
}

impl Default for SyllableDetector {
    fn default() -> Self {
        Self::new()
    }
}
