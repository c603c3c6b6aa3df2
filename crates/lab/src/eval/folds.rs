//! Speaker-disjoint folds: which speakers a fold holds out, and the spread of a figure over
//! folds. Every evaluation that judges audio with the emotion model trains one model per fold
//! without the fold's speakers and tests it on those speakers only (`attune eval cues`), so the
//! model has never heard the voices it is judged on — as with every real caller.

use serde::Serialize;

/// Default number of folds (20 RAVDESS actors: 4 per fold).
pub const DEFAULT_FOLDS: usize = 5;

/// Splits `speakers` into `k` folds, deterministically and stratified by `group` (e.g. sex):
/// sorted by (group, speaker), then dealt round-robin (sorted index `i` goes to fold `i % k`), so
/// each group is spread evenly over the folds — with RAVDESS's 10 male (odd) and 10 female
/// actors here, every fold of 4 holds 2 men and 2 women. `k` is clamped to 1..=speakers.len().
pub fn speaker_folds<T: Ord + Clone, G: Ord>(
    speakers: &[T],
    k: usize,
    group: impl Fn(&T) -> G,
) -> Vec<Vec<T>> {
    let mut sorted = speakers.to_vec();
    sorted.sort_by(|a, b| group(a).cmp(&group(b)).then_with(|| a.cmp(b)));
    sorted.dedup();
    let k = k.clamp(1, sorted.len().max(1));
    let mut folds = vec![Vec::new(); k];
    for (i, s) in sorted.into_iter().enumerate() {
        folds[i % k].push(s);
    }
    for f in &mut folds {
        f.sort();
    }
    folds
}

/// The group of a RAVDESS actor for [`speaker_folds`]: odd numbers are men.
pub fn ravdess_sex(actor: &u32) -> u32 {
    actor % 2
}

/// FNV-1a of `text`: the key of a cached fold model (stable across runs and platforms).
pub fn fnv1a(text: &str) -> u64 {
    attune_qa::fnv1a_64(text.as_bytes())
}

/// A figure over folds: pooled (computed from the pooled counts, not a mean of the folds'
/// figures), and the folds' spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub pooled: f64,
    pub fold_min: f64,
    pub fold_max: f64,
    /// Standard deviation over folds (population, n).
    pub fold_sd: f64,
}

impl Spread {
    /// `pooled` with the spread of `per_fold` (NaN entries, folds where the figure is
    /// undefined, are left out).
    pub fn new(pooled: f64, per_fold: &[f64]) -> Self {
        let v: Vec<f64> = per_fold.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self {
                pooled,
                fold_min: f64::NAN,
                fold_max: f64::NAN,
                fold_sd: f64::NAN,
            };
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        Self {
            pooled,
            fold_min: v.iter().copied().fold(f64::INFINITY, f64::min),
            fold_max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            fold_sd: var.sqrt(),
        }
    }
}

/// `100 * part / whole`, NaN when `whole` is 0.
pub fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        f64::NAN
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// `n` events per 10 minutes of `minutes`, NaN when there are none.
pub fn per_10_min(n: usize, minutes: f64) -> f64 {
    if minutes > 0.0 {
        n as f64 / minutes * 10.0
    } else {
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_actors_in_five_folds_of_four_mixed_sexes() {
        // The 20 actors in ../shared/data (3, 10, 17 and 22 are held back).
        let actors: Vec<u32> = (1..=24)
            .rev()
            .filter(|a| ![3, 10, 17, 22].contains(a))
            .collect();
        let folds = speaker_folds(&actors, 5, ravdess_sex);
        assert_eq!(folds.len(), 5);
        assert_eq!(folds[0], vec![1, 2, 13, 14]);
        for f in &folds {
            assert_eq!(f.len(), 4);
            assert_eq!(f.iter().filter(|a| *a % 2 == 1).count(), 2);
        }
        let mut all: Vec<u32> = folds.concat();
        all.sort();
        all.reverse();
        assert_eq!(all, actors);
    }

    #[test]
    fn fold_count_is_clamped() {
        assert_eq!(speaker_folds(&[3, 1, 2], 10, |_| 0).len(), 3);
        assert_eq!(speaker_folds(&[3, 1, 2], 0, |_| 0), vec![vec![1, 2, 3]]);
    }

    #[test]
    fn spread_of_known_values() {
        let s = Spread::new(2.5, &[1.0, 3.0, f64::NAN]);
        assert_eq!(s.pooled, 2.5);
        assert_eq!((s.fold_min, s.fold_max), (1.0, 3.0));
        assert!((s.fold_sd - 1.0).abs() < 1e-12);
        assert!(pct(1, 0).is_nan());
        assert_eq!(pct(1, 4), 25.0);
        assert_eq!(per_10_min(3, 30.0), 1.0);
    }
}
