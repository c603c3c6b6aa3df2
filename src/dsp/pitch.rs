//! Fundamental frequency (F0) and the voicing decision, per 10 ms frame.
//!
//! SKELETON: being written in the pitch worktree; the signatures are the contract.

/// Pitch search range and voicing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PitchConfig {
    /// Lowest F0 searched, Hz.
    pub min_f0_hz: f32,
    /// Highest F0 searched, Hz.
    pub max_f0_hz: f32,
}

impl Default for PitchConfig {
    fn default() -> Self {
        Self {
            min_f0_hz: 60.0,
            max_f0_hz: 500.0,
        }
    }
}

/// The decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PitchEstimate {
    /// F0 in Hz; 0 when unvoiced.
    pub f0_hz: f32,
    pub voiced: bool,
    /// Periodicity strength in [0, 1] (peak of the normalised autocorrelation).
    pub voicing_strength: f32,
}

/// Streaming pitch tracker at [`super::ANALYSIS_RATE_HZ`].
pub struct PitchTracker {
    _private: (),
}

impl PitchTracker {
    pub fn new(config: PitchConfig) -> Self {
        let _ = config;
        todo!("pitch worktree")
    }

    /// Length of the window, centred on the frame, passed to [`Self::push_frame`].
    pub fn window_samples(&self) -> usize {
        todo!("pitch worktree")
    }

    /// How many frames a decision lags behind the newest pushed frame.
    pub fn lookahead_frames(&self) -> usize {
        todo!("pitch worktree")
    }

    /// Analyses the next frame's window; returns the decision for frame `n - lookahead_frames()`
    /// once it is final (None while the first frames fill the look-ahead).
    pub fn push_frame(&mut self, window: &[f32]) -> Option<PitchEstimate> {
        let _ = window;
        todo!("pitch worktree")
    }

    /// At the end of the stream, emits the decisions still pending, in frame order.
    pub fn flush(&mut self, mut emit: impl FnMut(PitchEstimate)) {
        let _ = &mut emit;
        todo!("pitch worktree")
    }
}
