//! Fold models for speaker-disjoint evaluations: the emotion model trained exactly as
//! `attune train` trains it (telephone copies + recorded copies, a [`TrainConfig`] from the same
//! flags), but without the fold's held-out RAVDESS actors; optionally with extra corpora and
//! augmented copies. Models are cached in a folder (`target/attune-folds/` from the CLI) keyed
//! by a hash of everything that goes into them (file lists, channel conditions, feature names,
//! model version and settings), so a rerun only judges.

use std::path::{Path, PathBuf};

use attune_core::dsp::vad::VadConfig;
use attune_core::model::emotion::{EmotionModel, LabelledFunctionals, MODEL_VERSION, ModelError};
use attune_core::model::mlp::TrainConfig;
use attune_core::prosody::functionals::FEATURE_NAMES;

use crate::corpus::{
    CorpusError, Entry, condition_name, emodb_entries, extract_all, ravdess_entries,
};
use crate::eval::folds::fnv1a;
use crate::extract::ChannelCondition;

/// Bump when fold training changes in a way the key does not show.
const FOLD_CACHE_VERSION: u32 = 1;

/// Why a fold model could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FoldModelError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("cannot create the fold-model cache {path}: {source}")]
    CacheDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// What goes into a fold model besides the RAVDESS actors it keeps.
#[derive(Debug, Clone)]
pub struct FoldTraining {
    pub config: TrainConfig,
    /// Also train on every speaker of this EmoDB folder (German; none of them is ever a test
    /// caller).
    pub emodb: Option<PathBuf>,
    /// Also train on telephone copies with white noise at this SNR (dB).
    pub noise_snr_db: Option<f64>,
}

/// One corpus, extracted under each training condition (the first is the evaluated one).
struct Extracted {
    entries: Vec<Entry>,
    /// Per condition: its name (appended to the speaker of the copies after the first) and
    /// the functionals of every entry.
    copies: Vec<(String, Vec<LabelledFunctionals>)>,
}

fn extract(entries: Vec<Entry>, noise_snr_db: Option<f64>) -> Result<Extracted, CorpusError> {
    let mut conditions = vec![
        ChannelCondition::Telephone { noise_snr_db: None },
        ChannelCondition::AsRecorded,
    ];
    if let Some(snr) = noise_snr_db {
        conditions.push(ChannelCondition::Telephone {
            noise_snr_db: Some(snr),
        });
    }
    let mut copies = Vec::new();
    for c in conditions {
        copies.push((condition_name(c), extract_all(&entries, c)?));
    }
    Ok(Extracted { entries, copies })
}

/// Where a fold model came from, for the progress line.
#[derive(Debug, Clone, PartialEq)]
pub enum FoldModelSource {
    /// Read from the cache.
    Cached { path: PathBuf },
    /// Trained now (and written to the cache).
    Trained {
        path: PathBuf,
        examples: usize,
        /// The training conditions, `+`-joined.
        condition: String,
        seconds: f64,
    },
}

impl FoldModelSource {
    /// The progress line of the fold without `held_out`.
    pub fn describe(&self, held_out: &[u32]) -> String {
        match self {
            Self::Cached { path } => format!(
                "fold without actors {held_out:?}: cached model {}",
                path.display()
            ),
            Self::Trained {
                path,
                examples,
                condition,
                seconds,
            } => format!(
                "fold without actors {held_out:?}: trained on {examples} examples ({condition}) in {seconds:.0} s -> {}",
                path.display()
            ),
        }
    }
}

/// Every corpus a fold model may train on, extracted once (the per-file features are cached
/// by `attune train`'s cache as well).
pub struct FoldCorpus {
    ravdess: Extracted,
    emodb: Option<Extracted>,
    training: FoldTraining,
    cache_dir: PathBuf,
}

/// The RAVDESS actor number of a speaker name (`ravdess-07` → 7).
pub fn ravdess_actor(speaker: &str) -> Option<u32> {
    speaker.strip_prefix("ravdess-")?.parse().ok()
}

impl FoldCorpus {
    /// Extracts RAVDESS (and EmoDB when `training` names it); fold models are cached in
    /// `cache_dir`.
    pub fn load(
        ravdess_dir: &Path,
        training: FoldTraining,
        cache_dir: PathBuf,
    ) -> Result<Self, FoldModelError> {
        let ravdess = extract(ravdess_entries(ravdess_dir)?, training.noise_snr_db)?;
        let emodb = match &training.emodb {
            Some(dir) => Some(extract(emodb_entries(dir)?, training.noise_snr_db)?),
            None => None,
        };
        Ok(Self {
            ravdess,
            emodb,
            training,
            cache_dir,
        })
    }

    /// The training samples of a model that has not heard `held_out`, with the cache key.
    fn training_set(&self, held_out: &[u32]) -> (Vec<LabelledFunctionals>, String, String) {
        // The training functionals depend on the voice-activity thresholds as well.
        let mut key = format!(
            "fold-model {FOLD_CACHE_VERSION}|model {MODEL_VERSION}|{}|{}|vad {}",
            FEATURE_NAMES.join(","),
            serde_json::to_string(&self.training.config).unwrap_or_default(),
            serde_json::to_string(&VadConfig::default()).unwrap_or_default()
        );
        let mut samples = Vec::new();
        let mut conditions = Vec::new();
        let keep = |e: &Entry| ravdess_actor(&e.speaker).is_none_or(|a| !held_out.contains(&a));
        for corpus in std::iter::once(&self.ravdess).chain(&self.emodb) {
            for (i, (condition, rows)) in corpus.copies.iter().enumerate() {
                if !conditions.contains(condition) {
                    conditions.push(condition.clone());
                }
                key.push_str(&format!("|{condition}:"));
                for (e, s) in corpus.entries.iter().zip(rows) {
                    if !keep(e) {
                        continue;
                    }
                    key.push_str(&e.path.to_string_lossy());
                    key.push(',');
                    let mut s = s.clone();
                    if i > 0 {
                        s.speaker = format!("{}/{condition}", s.speaker);
                    }
                    samples.push(s);
                }
            }
        }
        (samples, key, conditions.join("+"))
    }

    /// The model trained without the RAVDESS actors `held_out`, from the cache when it holds it.
    pub fn model_without(
        &self,
        held_out: &[u32],
    ) -> Result<(EmotionModel, FoldModelSource), FoldModelError> {
        let (samples, key, condition) = self.training_set(held_out);
        let path = self.cache_dir.join(format!("{:016x}.json", fnv1a(&key)));
        if let Ok(model) = attune_qa::files::load_model(&path) {
            return Ok((model, FoldModelSource::Cached { path }));
        }
        let started = std::time::Instant::now();
        let model = EmotionModel::train(&samples, &self.training.config, &condition);
        std::fs::create_dir_all(&self.cache_dir).map_err(|source| FoldModelError::CacheDir {
            path: self.cache_dir.display().to_string(),
            source,
        })?;
        attune_qa::files::save_model(&model, &path)?;
        let source = FoldModelSource::Trained {
            path,
            examples: samples.len(),
            condition,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok((model, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_numbers_of_speaker_names() {
        assert_eq!(ravdess_actor("ravdess-07"), Some(7));
        assert_eq!(ravdess_actor("ravdess-24/tel"), None);
        assert_eq!(ravdess_actor("emodb-03"), None);
    }

    #[test]
    fn progress_lines_name_the_fold_and_the_file() {
        let cached = FoldModelSource::Cached {
            path: PathBuf::from("target/attune-folds/00.json"),
        };
        assert_eq!(
            cached.describe(&[1, 2]),
            "fold without actors [1, 2]: cached model target/attune-folds/00.json"
        );
        let trained = FoldModelSource::Trained {
            path: PathBuf::from("f.json"),
            examples: 10,
            condition: "tel+rec".into(),
            seconds: 3.4,
        };
        assert_eq!(
            trained.describe(&[5]),
            "fold without actors [5]: trained on 10 examples (tel+rec) in 3 s -> f.json"
        );
    }
}
