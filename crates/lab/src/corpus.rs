//! Speech corpora for training and evaluation: RAVDESS folders, EmoDB and manifest CSVs
//! (`path,label,speaker`) read into labelled [`Entry`]s, and their functionals through a channel
//! condition, extracted on two threads and cached under `target/attune-emotion-cache/` (keyed by
//! the file list, the condition, the feature set and the voice-activity thresholds) so repeated
//! runs skip extraction.

use std::path::{Path, PathBuf};

use attune_core::dsp::vad::VadConfig;
use attune_core::model::emotion::LabelledFunctionals;
use attune_core::model::labels::Label;
use attune_core::prosody::functionals::{FEATURE_COUNT, FEATURE_NAMES};
use attune_core::prosody::windows::{FileFunctionals, windowed_functionals};

use crate::eval::folds::fnv1a;
use crate::extract::{ChannelCondition, ExtractError, extract_file, load_channel};

/// Why a corpus cannot be read or analysed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// No files where the layout expects them, or a malformed manifest line.
    #[error("{0}")]
    Layout(String),
    #[error("cannot analyse {path}: {source}")]
    Extract {
        path: String,
        #[source]
        source: ExtractError,
    },
    #[error("{path}: no window of speech")]
    NoWindow { path: String },
    #[error("feature extraction thread panicked")]
    Panicked,
}

/// What the corpus functions return.
pub type Result<T> = std::result::Result<T, CorpusError>;

/// One corpus entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub label: Label,
    pub speaker: String,
}

pub fn ravdess_entries(dir: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let actors = std::fs::read_dir(dir).map_err(|source| CorpusError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut actor_dirs: Vec<PathBuf> = actors
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    actor_dirs.sort();
    for actor in actor_dirs {
        let files = wav_files_in(&actor)?;
        for path in files {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_owned();
            let parts: Vec<&str> = stem.split('-').collect();
            if parts.len() != 7 {
                continue;
            }
            let Some(label) = parts[2]
                .parse::<u8>()
                .ok()
                .and_then(Label::from_ravdess_code)
            else {
                continue;
            };
            entries.push(Entry {
                path,
                label,
                speaker: format!("ravdess-{}", parts[6]),
            });
        }
    }
    if entries.is_empty() {
        return Err(CorpusError::Layout(format!(
            "no RAVDESS files (Actor_NN/03-01-EE-II-SS-RR-AA.wav) under {}",
            dir.display()
        )));
    }
    Ok(entries)
}

/// The `.wav` files directly in `dir`, sorted by path.
fn wav_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| CorpusError::Read {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    Ok(files)
}

pub fn emodb_entries(dir: &Path) -> Result<Vec<Entry>> {
    let wav = dir.join("wav");
    let files = wav_files_in(&wav)?;
    let mut entries = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned();
        // SSTTTEV: speaker, text, emotion letter, version.
        let (Some(speaker), Some(code)) = (stem.get(0..2), stem.chars().nth(5)) else {
            continue;
        };
        let label = match code {
            'W' => Label::Anger,
            'L' => Label::Boredom,
            'E' => Label::Disgust,
            'A' => Label::Fear,
            'F' => Label::Happiness,
            'T' => Label::Sadness,
            'N' => Label::Neutral,
            _ => continue,
        };
        entries.push(Entry {
            speaker: format!("emodb-{speaker}"),
            path,
            label,
        });
    }
    if entries.is_empty() {
        return Err(CorpusError::Layout(format!(
            "no EmoDB files (wav/SSTTTEV.wav) under {}",
            dir.display()
        )));
    }
    Ok(entries)
}

pub fn manifest_entries(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if n == 0 && fields.first() == Some(&"path") {
            continue;
        }
        if fields.len() != 3 {
            return Err(CorpusError::Layout(format!(
                "{} line {}: expected path,label,speaker, found {} field(s)",
                path.display(),
                n + 1,
                fields.len()
            )));
        }
        let Some(label) = Label::parse(fields[1]) else {
            return Err(CorpusError::Layout(format!(
                "{} line {}: unknown label {:?} (use one of angry, anxious, sad, happy, neutral, \
                 or anger, disgust, fear, sadness, boredom, happiness, calm, surprised)",
                path.display(),
                n + 1,
                fields[1]
            )));
        };
        entries.push(Entry {
            path: base.join(fields[0]),
            label,
            speaker: fields[2].to_owned(),
        });
    }
    if entries.is_empty() {
        return Err(CorpusError::Layout(format!(
            "{} lists no files",
            path.display()
        )));
    }
    Ok(entries)
}

pub fn condition_name(condition: ChannelCondition) -> String {
    match condition {
        ChannelCondition::AsRecorded => "recorded".to_owned(),
        ChannelCondition::Telephone { noise_snr_db: None } => "telephone".to_owned(),
        ChannelCondition::Telephone {
            noise_snr_db: Some(snr),
        } => format!("telephone+noise{snr}dB"),
    }
}

/// Corpora smaller than this are not cached.
const MIN_CACHED_FILES: usize = 100;

/// Bump when the signal core or the functionals change in a way the feature names do not show.
const CACHE_VERSION: u32 = 1;

fn cache_path(
    entries: &[Entry],
    condition: ChannelCondition,
    window_speech_s: Option<f64>,
) -> PathBuf {
    // The functionals depend on the voice-activity thresholds (which frames are speech).
    let mut key = format!(
        "{CACHE_VERSION}|{}|{}|vad {}",
        condition_name(condition),
        FEATURE_NAMES.join(","),
        serde_json::to_string(&VadConfig::default()).unwrap_or_default()
    );
    if let Some(w) = window_speech_s {
        key.push_str(&format!("|first {w} s of speech"));
    }
    for e in entries {
        key.push('|');
        key.push_str(&e.path.to_string_lossy());
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target
        .join("attune-emotion-cache")
        .join(format!("{:016x}.json", fnv1a(&key)))
}

/// Functionals of every entry through `condition` (two threads; cached).
pub fn extract_all(
    entries: &[Entry],
    condition: ChannelCondition,
) -> Result<Vec<LabelledFunctionals>> {
    extract_all_windowed(entries, condition, None)
}

/// Functionals of the first window of `e`'s speech (`window_speech_s` of it; the whole file
/// when it holds less).
fn extract_first_window(
    e: &Entry,
    condition: ChannelCondition,
    window_speech_s: f64,
) -> Result<FileFunctionals> {
    let samples = load_channel(&e.path, 0, condition).map_err(|source| CorpusError::Extract {
        path: e.path.display().to_string(),
        source,
    })?;
    windowed_functionals(&samples, window_speech_s)
        .into_iter()
        .next()
        .ok_or_else(|| CorpusError::NoWindow {
            path: e.path.display().to_string(),
        })
}

/// [`extract_all`], each file cut to its first `window_speech_s` of speech when given.
pub fn extract_all_windowed(
    entries: &[Entry],
    condition: ChannelCondition,
    window_speech_s: Option<f64>,
) -> Result<Vec<LabelledFunctionals>> {
    // Small corpora (tests, quick retraining) are not worth a cache file.
    let cache = (entries.len() >= MIN_CACHED_FILES)
        .then(|| cache_path(entries, condition, window_speech_s));
    let cached: Option<Vec<(Vec<f32>, f64, f64)>> = cache
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|v: &Vec<(Vec<f32>, f64, f64)>| {
            v.len() == entries.len() && v.iter().all(|r| r.0.len() == FEATURE_COUNT)
        });
    let rows: Vec<(Vec<f32>, f64, f64)> = if let Some(rows) = cached {
        eprintln!(
            "features: {} files from cache {}",
            rows.len(),
            cache
                .as_ref()
                .map_or(String::new(), |c| c.display().to_string())
        );
        rows
    } else {
        let started = std::time::Instant::now();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(2);
        let chunk = entries.len().div_ceil(threads).max(1);
        let results: Vec<Result<Vec<FileFunctionals>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = entries
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|e| match window_speech_s {
                                Some(w) => extract_first_window(e, condition, w),
                                None => extract_file(&e.path, 0, condition).map_err(|source| {
                                    CorpusError::Extract {
                                        path: e.path.display().to_string(),
                                        source,
                                    }
                                }),
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(CorpusError::Panicked)))
                .collect()
        });
        let mut rows = Vec::with_capacity(entries.len());
        for part in results {
            for f in part? {
                rows.push((f.features.to_vec(), f.speech_s, f.voiced_s));
            }
        }
        eprintln!(
            "features: {} files ({}) extracted in {:.1} s",
            rows.len(),
            condition_name(condition),
            started.elapsed().as_secs_f64()
        );
        if let Some(cache) = &cache {
            if let Some(dir) = cache.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(text) = serde_json::to_string(&rows) {
                let _ = std::fs::write(cache, text);
            }
        }
        rows
    };
    Ok(entries
        .iter()
        .zip(rows)
        .map(|(e, (f, speech_s, voiced_s))| {
            let mut features = [0f32; FEATURE_COUNT];
            features.copy_from_slice(&f);
            LabelledFunctionals {
                features,
                speech_s,
                voiced_s,
                speaker: e.speaker.clone(),
                label: e.label,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("attune-corpus-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn manifest_lines_are_read_and_bad_ones_named() {
        let dir = temp_dir("manifest");
        let good = dir.join("good.csv");
        std::fs::write(
            &good,
            "path,label,speaker\n# comment\na.wav, angry, s1\nb.wav,calm,s2\n",
        )
        .unwrap();
        let entries = manifest_entries(&good).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].path, dir.join("a.wav"));
        assert_eq!(entries[1].speaker, "s2");
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "a.wav,furious,s1\n").unwrap();
        let e = manifest_entries(&bad).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("furious"), "{e}");
        let short = dir.join("short.csv");
        std::fs::write(&short, "a.wav,angry\n").unwrap();
        assert!(
            manifest_entries(&short)
                .unwrap_err()
                .to_string()
                .contains("2 field(s)")
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn ravdess_names_give_labels_and_speakers() {
        let dir = temp_dir("ravdess");
        let actor = dir.join("Actor_07");
        std::fs::create_dir_all(&actor).unwrap();
        for name in [
            "03-01-05-01-01-01-07.wav",
            "03-01-02-01-01-01-07.wav",
            "notes.wav",
        ] {
            std::fs::write(actor.join(name), b"").unwrap();
        }
        let entries = ravdess_entries(&dir).unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries.iter().all(|e| e.speaker == "ravdess-07"));
        let empty = temp_dir("empty");
        assert!(matches!(
            ravdess_entries(&empty),
            Err(CorpusError::Layout(_))
        ));
        assert!(matches!(
            ravdess_entries(&empty.join("missing")),
            Err(CorpusError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::remove_dir_all(&empty).ok();
    }
}
