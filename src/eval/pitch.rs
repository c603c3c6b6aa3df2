//! Pitch evaluation: gross pitch error, fine pitch error and voicing decision error against
//! reference F0 tracks (CSTR FDA laryngograph `.f0ref`, WORLD-resynthesised `f0/*.csv`).
//!
//! SKELETON: being written in the pitch worktree.

use std::path::Path;

use super::EvalError;

/// Figures over one set of files.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PitchEvalReport {
    pub files: usize,
    pub frames: usize,
    /// Gross pitch error, %: frames voiced in both with |error| > 20 %, among frames voiced in both.
    pub gpe_pct: f64,
    /// Fine pitch error: mean |error| in cents over frames voiced in both without gross error.
    pub fpe_cents: f64,
    /// Voicing decision error, %: frames whose voicing differs from the reference.
    pub vde_pct: f64,
}

/// Evaluates every WAV in `dir` that has a reference track.
pub fn evaluate(dir: &Path) -> Result<PitchEvalReport, EvalError> {
    let _ = dir;
    todo!("pitch worktree")
}
