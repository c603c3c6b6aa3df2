//! Fold models for speaker-disjoint evaluations: the emotion model trained exactly as
//! `attune train` trains it (telephone copies + recorded copies, [`TrainConfig`] from the same
//! flags), but without the fold's held-out RAVDESS actors; optionally with extra corpora and
//! augmented copies. Models are cached under `target/attune-folds/` keyed by a hash of
//! everything that goes into them (file lists, channel conditions, feature names, model version
//! and settings), so a rerun only judges.

use std::path::{Path, PathBuf};

use anyhow::Context;

use attune_core::model::emotion::{EmotionModel, LabelledFunctionals, MODEL_VERSION};
use attune_core::model::mlp::TrainConfig;
use attune_core::prosody::functionals::FEATURE_NAMES;
use attune_lab::eval::folds::fnv1a;
use attune_lab::extract::ChannelCondition;

use attune_lab::corpus::{Entry, condition_name, emodb_entries, extract_all, ravdess_entries};

/// Bump when fold training changes in a way the key does not show.
const FOLD_CACHE_VERSION: u32 = 1;

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

fn extract(entries: Vec<Entry>, noise_snr_db: Option<f64>) -> anyhow::Result<Extracted> {
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

/// Every corpus a fold model may train on, extracted once (the per-file features are cached
/// by `attune train`'s cache as well).
pub struct FoldCorpus {
    ravdess: Extracted,
    emodb: Option<Extracted>,
    training: FoldTraining,
}

/// The RAVDESS actor number of a speaker name (`ravdess-07` → 7).
pub fn ravdess_actor(speaker: &str) -> Option<u32> {
    speaker.strip_prefix("ravdess-")?.parse().ok()
}

impl FoldCorpus {
    pub fn load(ravdess_dir: &Path, training: FoldTraining) -> anyhow::Result<Self> {
        let ravdess = extract(ravdess_entries(ravdess_dir)?, training.noise_snr_db)?;
        let emodb = match &training.emodb {
            Some(dir) => Some(extract(emodb_entries(dir)?, training.noise_snr_db)?),
            None => None,
        };
        Ok(Self {
            ravdess,
            emodb,
            training,
        })
    }

    /// The training samples of a model that has not heard `held_out`, with the cache key.
    fn training_set(&self, held_out: &[u32]) -> (Vec<LabelledFunctionals>, String, String) {
        let mut key = format!(
            "fold-model {FOLD_CACHE_VERSION}|model {MODEL_VERSION}|{}|{}",
            FEATURE_NAMES.join(","),
            serde_json::to_string(&self.training.config).unwrap_or_default()
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
    pub fn model_without(&self, held_out: &[u32]) -> anyhow::Result<EmotionModel> {
        let (samples, key, condition) = self.training_set(held_out);
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from);
        let path = target
            .join("attune-folds")
            .join(format!("{:016x}.json", fnv1a(&key)));
        if let Ok(model) = attune_qa::files::load_model(&path) {
            eprintln!(
                "fold without actors {held_out:?}: cached model {}",
                path.display()
            );
            return Ok(model);
        }
        let started = std::time::Instant::now();
        let model = EmotionModel::train(&samples, &self.training.config, &condition);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        attune_qa::files::save_model(&model, &path)?;
        eprintln!(
            "fold without actors {held_out:?}: trained on {} examples ({condition}) in {:.0} s -> {}",
            samples.len(),
            started.elapsed().as_secs_f64(),
            path.display()
        );
        Ok(model)
    }
}
