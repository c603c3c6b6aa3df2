//! A speaker baseline: running mean and standard deviation of every functional over one
//! party's own speech windows, so features are judged against the speaker's own habits (a loud
//! voice is only "loud" against how loud this speaker usually is).
//!
//! - Live: feed each window of the party as the call goes ([`SpeakerBaseline::add`]); the
//!   baseline is the call so far. It is unlabelled statistics only, so a call that starts upset
//!   shifts the baseline toward upset; windows are weighted equally so a long angry stretch does
//!   not dominate more than its share.
//! - Offline: feed every file of one speaker (`attune classify --same-speaker`, the speaker-
//!   normalised evaluation).
//!
//! With less than [`MIN_BASELINE_SPEECH_S`] of speech the baseline is not trusted and
//! [`SpeakerBaseline::normalise`] falls back to speaker-independent (global, training-set)
//! statistics, reporting [`Normalisation::Global`].
//!
//! The speaker's standard deviation is shrunk toward the global one with a prior weight of
//! [`STD_PRIOR_WINDOWS`] windows: a baseline of a few windows has an unreliable spread, and a
//! feature that barely moves for this speaker must not explode into huge z-scores.

use serde::{Deserialize, Serialize};

use super::functionals::{FEATURE_COUNT, Moments};

/// Speech needed before the speaker baseline is used, seconds.
pub const MIN_BASELINE_SPEECH_S: f64 = 10.0;
/// Prior weight of the global standard deviation, in windows.
pub(crate) const STD_PRIOR_WINDOWS: f64 = 8.0;
/// Smallest standard deviation used to divide (guards constant features).
const MIN_STD: f64 = 1e-6;

/// Speaker-independent statistics of each feature (from the training set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalNorm {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl GlobalNorm {
    /// Mean and std of each column of `rows` (std floored at a tiny value).
    pub(crate) fn fit(rows: &[[f32; FEATURE_COUNT]]) -> Self {
        let mut moments = [Moments::default(); FEATURE_COUNT];
        for row in rows {
            for (m, &v) in moments.iter_mut().zip(row) {
                m.add(f64::from(v));
            }
        }
        Self {
            mean: moments.iter().map(|m| m.mean() as f32).collect(),
            std: moments
                .iter()
                .map(|m| m.std().max(MIN_STD) as f32)
                .collect(),
        }
    }

    /// z-scores of `x` against these statistics.
    pub fn z(&self, x: &[f32; FEATURE_COUNT]) -> [f32; FEATURE_COUNT] {
        let mut out = [0.0; FEATURE_COUNT];
        for i in 0..FEATURE_COUNT {
            let std = f64::from(self.std.get(i).copied().unwrap_or(1.0)).max(MIN_STD);
            let mean = f64::from(self.mean.get(i).copied().unwrap_or(0.0));
            out[i] = ((f64::from(x[i]) - mean) / std) as f32;
        }
        out
    }
}

/// How a vector was normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// Against the speaker's own baseline.
    Speaker,
    /// Against speaker-independent statistics (not enough baseline speech).
    Global,
}

/// Running per-feature statistics of one speaker. No heap memory.
#[derive(Debug, Clone)]
pub struct SpeakerBaseline {
    moments: [Moments; FEATURE_COUNT],
    speech_s: f64,
}

impl Default for SpeakerBaseline {
    fn default() -> Self {
        Self {
            moments: [Moments::default(); FEATURE_COUNT],
            speech_s: 0.0,
        }
    }
}

impl SpeakerBaseline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one window's features and the speech it held. Windows without speech are ignored.
    pub fn add(&mut self, features: &[f32; FEATURE_COUNT], speech_s: f64) {
        if speech_s <= 0.0 || features.iter().any(|v| !v.is_finite()) {
            return;
        }
        for (m, &v) in self.moments.iter_mut().zip(features) {
            m.add(f64::from(v));
        }
        self.speech_s += speech_s;
    }

    /// Speech accumulated, seconds.
    pub fn speech_s(&self) -> f64 {
        self.speech_s
    }

    /// Windows accumulated.
    pub fn windows(&self) -> u64 {
        self.moments[0].count()
    }

    /// Enough speech for the baseline to be used.
    pub fn is_sufficient(&self) -> bool {
        self.speech_s >= MIN_BASELINE_SPEECH_S
    }

    /// Speaker mean of each feature.
    pub fn mean(&self) -> [f32; FEATURE_COUNT] {
        self.moments.map(|m| m.mean() as f32)
    }

    /// z-scores of `x`: against this baseline when it is sufficient, else against `global`.
    pub(crate) fn normalise(
        &self,
        x: &[f32; FEATURE_COUNT],
        global: &GlobalNorm,
    ) -> ([f32; FEATURE_COUNT], Normalisation) {
        if !self.is_sufficient() {
            return (global.z(x), Normalisation::Global);
        }
        let mut out = [0.0; FEATURE_COUNT];
        for i in 0..FEATURE_COUNT {
            let std = self.shrunk_std(i, global);
            out[i] = ((f64::from(x[i]) - self.moments[i].mean()) / std) as f32;
        }
        (out, Normalisation::Speaker)
    }

    /// The standard deviation of feature `i` used to normalise: the speaker's, shrunk toward
    /// the global one with a prior weight of [`STD_PRIOR_WINDOWS`] windows.
    fn shrunk_std(&self, i: usize, global: &GlobalNorm) -> f64 {
        let n = self.windows() as f64;
        let global_std = f64::from(global.std.get(i).copied().unwrap_or(1.0));
        let var = (n * self.moments[i].std().powi(2) + STD_PRIOR_WINDOWS * global_std.powi(2))
            / (n + STD_PRIOR_WINDOWS);
        var.sqrt().max(MIN_STD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(value: f32) -> [f32; FEATURE_COUNT] {
        [value; FEATURE_COUNT]
    }

    #[test]
    fn global_z_scores() {
        let rows = [vector(1.0), vector(3.0)];
        let g = GlobalNorm::fit(&rows);
        assert!((g.mean[0] - 2.0).abs() < 1e-6);
        assert!((g.std[0] - 1.0).abs() < 1e-6);
        assert!((g.z(&vector(4.0))[5] - 2.0).abs() < 1e-6);
    }

    #[test]
    fn too_little_speech_falls_back_to_global() {
        let global = GlobalNorm {
            mean: vec![0.0; FEATURE_COUNT],
            std: vec![2.0; FEATURE_COUNT],
        };
        let mut b = SpeakerBaseline::new();
        b.add(&vector(10.0), 3.0);
        b.add(&vector(12.0), 3.0);
        let (z, how) = b.normalise(&vector(11.0), &global);
        assert_eq!(how, Normalisation::Global);
        assert!((z[0] - 5.5).abs() < 1e-6);
    }

    #[test]
    fn sufficient_speech_uses_the_speaker() {
        let global = GlobalNorm {
            mean: vec![0.0; FEATURE_COUNT],
            std: vec![1.0; FEATURE_COUNT],
        };
        let mut b = SpeakerBaseline::new();
        // 1000 windows alternating 9 and 11: mean 10, std 1; the prior barely matters.
        for k in 0..1000 {
            b.add(&vector(if k % 2 == 0 { 9.0 } else { 11.0 }), 2.0);
        }
        assert!(b.is_sufficient());
        let (z, how) = b.normalise(&vector(12.0), &global);
        assert_eq!(how, Normalisation::Speaker);
        assert!((z[3] - 2.0).abs() < 0.01, "{}", z[3]);
        // A speaker with no spread: the global spread keeps the z-scores bounded.
        let mut flat = SpeakerBaseline::new();
        for _ in 0..8 {
            flat.add(&vector(5.0), 2.0);
        }
        let (z, _) = flat.normalise(&vector(6.0), &global);
        assert!((z[0] - 2f32.sqrt()).abs() < 1e-4, "{}", z[0]);
    }

    #[test]
    fn windows_without_speech_or_nan_are_ignored() {
        let mut b = SpeakerBaseline::new();
        b.add(&vector(1.0), 0.0);
        b.add(&vector(f32::NAN), 2.0);
        assert_eq!(b.windows(), 0);
        assert_eq!(b.speech_s(), 0.0);
    }
}
