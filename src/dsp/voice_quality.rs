//! Voice-quality measures over voiced frames: jitter, shimmer, harmonics-to-noise ratio.
//!
//! SKELETON: being written in the voice-quality worktree; the signatures are the contract.

/// Voice quality of one voiced frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VoiceQuality {
    /// Mean absolute difference of consecutive periods over the mean period (fraction, not %).
    pub jitter_local: f32,
    /// Mean absolute dB difference of consecutive cycle peak amplitudes.
    pub shimmer_local_db: f32,
    /// Harmonics-to-noise ratio in dB.
    pub hnr_db: f32,
}

/// Measures voice quality on a window centred on a voiced frame, given its F0.
pub struct VoiceQualityAnalyzer {
    _private: (),
}

impl VoiceQualityAnalyzer {
    pub fn new() -> Self {
        todo!("voice-quality worktree")
    }

    /// Length of the window, centred on the frame, passed to [`Self::analyze`].
    pub fn window_samples(&self) -> usize {
        todo!("voice-quality worktree")
    }

    /// Voice quality of the frame at `f0_hz`; None when the window gives no basis (too few
    /// cycles, silence).
    pub fn analyze(&mut self, window: &[f32], f0_hz: f32) -> Option<VoiceQuality> {
        let _ = (window, f0_hz);
        todo!("voice-quality worktree")
    }
}

impl Default for VoiceQualityAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}
