//! Evaluation against reference corpora: the figures the README publishes come from here, via
//! `attune eval ...`, so anyone can rerun them.

pub mod caller;
pub mod cue_folds;
pub mod cues;
pub mod dialog;
pub mod emotion;
pub mod empathy;
pub mod fold_models;
pub mod folds;
pub mod pitch;
pub mod rate;
pub mod telephone;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("{path}")]
    Audio {
        path: String,
        #[source]
        source: attune_core::audio::AudioError,
    },
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadReference { path: String, message: String },
    #[error("no evaluable files in {0}")]
    Empty(String),
}
