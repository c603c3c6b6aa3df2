//! Streaming resampling of one channel to the analysis rate.
//!
//! SKELETON: being written in the audio worktree.

use super::AudioError;

/// Streaming resampler for one channel from `input_rate_hz` to `output_rate_hz`.
pub struct Resampler {
    _private: (),
}

impl Resampler {
    /// Builds a resampler; errors on rates outside the supported range.
    pub fn try_new(input_rate_hz: u32, output_rate_hz: u32) -> Result<Self, AudioError> {
        let _ = (input_rate_hz, output_rate_hz);
        todo!("audio worktree")
    }

    /// Resamples `input`, appending the output samples to `output`.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        let _ = (input, output);
        todo!("audio worktree")
    }

    /// Flushes the samples still held in the filter, appending them to `output`. Output length
    /// over the whole stream is `round(input_len * output_rate / input_rate)`.
    pub fn finish(&mut self, output: &mut Vec<f32>) {
        let _ = output;
        todo!("audio worktree")
    }
}
