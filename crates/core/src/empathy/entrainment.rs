//! Turn-level entrainment (prosodic accommodation) between adjacent turns, after Levitan &
//! Hirschberg (2011): given pairs (caller turn, the agent turn that answers it) of one feature,
//! each party's values z-scored over the call (so a louder channel or a higher voice does not
//! count as distance):
//!
//! - **proximity**: mean over pairs of (the agent turn's mean distance to the caller's *other*
//!   turns − its distance to the caller turn it answers); > 0: the agent sounds more like the
//!   turn it answers than like the caller in general;
//! - **convergence**: Pearson correlation of the pair's time with −distance; > 0: the parties
//!   grow closer over the call;
//! - **synchrony**: Pearson correlation of the agent's values with the caller's over the pairs;
//!   > 0: the agent moves the way the caller moves.
//!
//! Pure functions over slices; None when the figure is undefined (fewer than
//! [`MIN_PAIRS`] pairs, or no spread).

use serde::Serialize;

/// Pairs a measure needs.
pub const MIN_PAIRS: usize = 3;

/// One adjacent pair of one feature: the caller turn's value, the answering agent turn's
/// value, and the time of the agent turn (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub t_s: f64,
    pub caller: f64,
    pub agent: f64,
}

/// The three entrainment figures of one feature.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Entrainment {
    /// Pairs the figures rest on.
    pub pairs: usize,
    pub proximity: Option<f64>,
    pub convergence: Option<f64>,
    pub synchrony: Option<f64>,
}

/// Mean and (population) standard deviation.
pub fn mean_sd(values: impl Iterator<Item = f64> + Clone) -> Option<(f64, f64)> {
    let n = values.clone().count();
    if n == 0 {
        return None;
    }
    let mean = values.clone().sum::<f64>() / n as f64;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    Some((mean, var.sqrt()))
}

/// Pearson correlation; None with fewer than [`MIN_PAIRS`] points or no spread in either.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < MIN_PAIRS {
        return None;
    }
    let (mx, sx) = mean_sd(x[..n].iter().copied())?;
    let (my, sy) = mean_sd(y[..n].iter().copied())?;
    if sx <= 1e-12 || sy <= 1e-12 {
        return None;
    }
    let cov = x[..n]
        .iter()
        .zip(&y[..n])
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / n as f64;
    Some((cov / (sx * sy)).clamp(-1.0, 1.0))
}

/// Z-scores `values` against `reference` (mean and SD of the party's turns); None without
/// spread.
fn z_scorer(reference: &[f64]) -> Option<impl Fn(f64) -> f64> {
    let (mean, sd) = mean_sd(reference.iter().copied())?;
    (sd > 1e-12).then_some(move |v: f64| (v - mean) / sd)
}

/// Entrainment of one feature over `pairs`; `caller_turns` and `agent_turns` are every value of
/// each party's turns in the call (the z-score reference; the pairs' values among them).
pub fn entrainment(pairs: &[Pair], caller_turns: &[f64], agent_turns: &[f64]) -> Entrainment {
    let mut out = Entrainment {
        pairs: pairs.len(),
        ..Entrainment::default()
    };
    if pairs.len() < MIN_PAIRS {
        return out;
    }
    let (Some(zc), Some(za)) = (z_scorer(caller_turns), z_scorer(agent_turns)) else {
        return out;
    };
    let c: Vec<f64> = pairs.iter().map(|p| zc(p.caller)).collect();
    let a: Vec<f64> = pairs.iter().map(|p| za(p.agent)).collect();
    let distance: Vec<f64> = a.iter().zip(&c).map(|(a, c)| (a - c).abs()).collect();
    // Proximity: each agent turn's distance to the other pairs' caller turns vs its own.
    let n = pairs.len();
    let mut sum = 0.0;
    for i in 0..n {
        let others = (0..n)
            .filter(|&j| j != i)
            .map(|j| (a[i] - c[j]).abs())
            .sum::<f64>()
            / (n - 1) as f64;
        sum += others - distance[i];
    }
    out.proximity = Some(sum / n as f64);
    let t: Vec<f64> = pairs.iter().map(|p| p.t_s).collect();
    let closeness: Vec<f64> = distance.iter().map(|d| -d).collect();
    out.convergence = pearson(&t, &closeness);
    out.synchrony = pearson(&a, &c);
    out
}
