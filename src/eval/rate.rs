//! Speaking-rate evaluation against EmoDB syllable labels (`labsilb/`).
//!
//! SKELETON: being written in the speaking-rate worktree.

use std::path::Path;

use super::EvalError;

/// Figures over one set of files.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RateEvalReport {
    pub files: usize,
    /// Pearson correlation of estimated and reference speaking rate.
    pub pearson_r: f64,
    /// Mean absolute error, syllables per second.
    pub mae_syl_per_s: f64,
}

/// Evaluates the speaking rate of every labelled file under `corpus_dir` (with `wav/` and
/// `labsilb/`).
pub fn evaluate(corpus_dir: &Path) -> Result<RateEvalReport, EvalError> {
    let _ = corpus_dir;
    todo!("speaking-rate worktree")
}
