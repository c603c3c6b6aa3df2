//! Loudness: the level of each frame in dB relative to digital full scale (dBFS).
//!
//! Reference: the mean square of the frame's 32 ms Hann-weighted samples (weights normalised to
//! unit power), so a full-scale sine reads -3.01 dBFS, full-scale white noise ~-4.8 dBFS and
//! digital silence [`SILENCE_DBFS`]. Typical telephone speech sits between -35 and -15 dBFS.
//! The value is computed in the same pass that windows the shared spectrum
//! ([`super::spectrum::SpectrumAnalyzer::analyze`]).

/// Level reported for digital silence (the energy floor of 1e-12).
pub const SILENCE_DBFS: f32 = -120.0;

/// Converts a mean square (full scale = 1.0) to dBFS, floored at [`SILENCE_DBFS`].
pub(crate) fn mean_square_to_dbfs(mean_square: f32) -> f32 {
    10.0 * (mean_square.max(0.0) + 1e-12).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_is_minus_3_dbfs() {
        let mean_square = 0.5;
        assert!((mean_square_to_dbfs(mean_square) + 3.0103).abs() < 1e-3);
        assert!((mean_square_to_dbfs(0.0) - SILENCE_DBFS).abs() < 1e-3);
    }
}
