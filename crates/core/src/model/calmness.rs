//! Agent calmness, 0–100, from things a supervisor can check:
//!
//! ```text
//! calmness = 100 × (W_AROUSAL × (1 − arousal) + (1 − W_AROUSAL) × exp(−strain))
//! strain   = mean over the strain cues of max(0, z)  (|z| for speaking rate)
//! ```
//!
//! - `arousal` is the model's probability of high arousal (0..1);
//! - `z` are the window's functionals as z-scores against the agent's own baseline (or, before
//!   10 s of baseline speech, against the training population), so "loud" means louder than
//!   this agent usually is;
//! - the strain cues ([`STRAIN_CUES`]): raised loudness (`loudness_mean_db`), unsteady loudness
//!   (`loudness_std_db`), raised pitch (`f0_mean_st`), pitch instability (`f0_std_st`,
//!   `f0_range_p20_p80_st`), tension in the voice (`alpha_ratio_mean_db`: more high-frequency
//!   energy; `hammarberg_mean_db` enters negated, as a *lower* index means more high-frequency
//!   energy), and tempo away from the agent's habit in either direction
//!   (`speaking_rate_syl_per_s`, as |z|).
//!
//! Only raised values lower calmness: speaking more softly or more steadily than usual does not.
//! The weights are fixed a priori (not fitted), so the score is explainable: each cue's
//! contribution is `max(0, z) / cues`.

use crate::prosody::functionals::{FEATURE_COUNT, feature_index};

/// Weight of the arousal term.
pub(crate) const W_AROUSAL: f32 = 0.5;

/// How a cue enters the strain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Raised values strain: `max(0, z)`.
    Up,
    /// Lowered values strain: `max(0, -z)`.
    Down,
    /// Either way: `|z|`.
    Both,
}

/// The strain cues and their directions.
pub(crate) const STRAIN_CUES: [(&str, Direction); 8] = [
    ("loudness_mean_db", Direction::Up),
    ("loudness_std_db", Direction::Up),
    ("f0_mean_st", Direction::Up),
    ("f0_std_st", Direction::Up),
    ("f0_range_p20_p80_st", Direction::Up),
    ("alpha_ratio_mean_db", Direction::Up),
    ("hammarberg_mean_db", Direction::Down),
    ("speaking_rate_syl_per_s", Direction::Both),
];

/// Strain: the mean cue value (see the module docs); 0 for a window like the baseline.
pub(crate) fn strain(z: &[f32; FEATURE_COUNT]) -> f32 {
    static CUES: std::sync::OnceLock<Vec<(usize, Direction)>> = std::sync::OnceLock::new();
    let cues = CUES.get_or_init(|| {
        STRAIN_CUES
            .iter()
            .filter_map(|&(name, direction)| feature_index(name).map(|i| (i, direction)))
            .collect()
    });
    let mut sum = 0.0;
    for &(i, direction) in cues {
        let v = z[i];
        let v = if v.is_finite() { v } else { 0.0 };
        sum += match direction {
            Direction::Up => v.max(0.0),
            Direction::Down => (-v).max(0.0),
            Direction::Both => v.abs(),
        };
    }
    sum / STRAIN_CUES.len() as f32
}

/// Calmness 0–100 from the arousal probability and the window's z-scores.
pub fn calmness(arousal: f32, z: &[f32; FEATURE_COUNT]) -> f32 {
    let arousal = if arousal.is_finite() {
        arousal.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let score = W_AROUSAL * (1.0 - arousal) + (1.0 - W_AROUSAL) * (-strain(z)).exp();
    (100.0 * score).clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_cues_exist() {
        for (name, _) in STRAIN_CUES {
            assert!(feature_index(name).is_some(), "{name}");
        }
    }

    #[test]
    fn baseline_window_at_low_arousal_is_calm_and_raised_voice_is_not() {
        let z = [0.0; FEATURE_COUNT];
        assert!((calmness(0.0, &z) - 100.0).abs() < 1e-4);
        let mut raised = z;
        raised[feature_index("loudness_mean_db").unwrap_or(0)] = 3.0;
        raised[feature_index("f0_mean_st").unwrap_or(0)] = 3.0;
        assert!(calmness(0.9, &raised) < 50.0);
        // Speaking more softly than usual does not lower it.
        let mut soft = z;
        soft[feature_index("loudness_mean_db").unwrap_or(0)] = -3.0;
        assert!((calmness(0.0, &soft) - 100.0).abs() < 1e-4);
        assert!(calmness(f32::NAN, &z).is_finite());
    }
}
