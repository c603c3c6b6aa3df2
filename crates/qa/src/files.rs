//! The file edge of the analysis: opening recordings, reading and writing the emotion model and
//! reading cue rules. The core takes bytes and readers; these functions are the only place a
//! path becomes one.

use std::fs::File;
use std::path::Path;

use attune_core::audio::{AudioBuffer, AudioError, AudioReader, RawFormat, read_all};
use attune_core::cues::{CueRules, RulesError};
use attune_core::model::emotion::{EmotionModel, ModelError};

/// Opens a file and returns its length when it is a regular file (not a pipe or a device).
fn open_file(path: &Path) -> Result<(File, Option<u64>), AudioError> {
    let io_error = |source| AudioError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    Ok((file, metadata.is_file().then_some(metadata.len())))
}

/// Opens a WAV file (any supported encoding) for streaming. `spec().total_frames` is what the
/// file really holds (the header's data size, capped at the bytes present).
pub fn open_wav(path: &Path) -> Result<AudioReader, AudioError> {
    let (file, len) = open_file(path)?;
    AudioReader::from_wav_source(Box::new(file), &path.display().to_string(), len)
}

/// Opens a headerless stream of the given format. A trailing partial frame is ignored.
pub fn open_raw(path: &Path, format: RawFormat) -> Result<AudioReader, AudioError> {
    let (file, len) = open_file(path)?;
    AudioReader::from_raw_source(Box::new(file), &path.display().to_string(), len, format)
}

/// Reads a whole WAV file into memory (short files; streams use [`open_wav`]).
pub fn read_wav(path: &Path) -> Result<AudioBuffer, AudioError> {
    read_all(open_wav(path)?)
}

/// Reads and checks a model file.
pub fn load_model(path: &Path) -> Result<EmotionModel, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::Missing {
                path: path.to_owned(),
            }
        } else {
            ModelError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    EmotionModel::from_json(&text, path)
}

/// The model at `path`, or the embedded shipped model when there is none: the one model-path
/// policy of every command (`--model` overrides the default).
pub fn model_or_embedded(path: Option<&Path>) -> Result<EmotionModel, ModelError> {
    match path {
        Some(path) => load_model(path),
        None => Ok(EmotionModel::embedded()),
    }
}

/// Writes the model to `path`.
pub fn save_model(model: &EmotionModel, path: &Path) -> Result<(), ModelError> {
    std::fs::write(path, model.to_json()).map_err(|source| ModelError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Reads and checks a cue rules file.
pub fn load_cue_rules(path: &Path) -> Result<CueRules, RulesError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
        path: path.display().to_string(),
        source,
    })?;
    CueRules::from_toml(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_errors_name_the_file() {
        let path = Path::new("/nonexistent/attune/emotion.json");
        let e = load_model(path).expect_err("missing");
        assert!(matches!(e, ModelError::Missing { .. }));
        assert!(e.to_string().contains("/nonexistent/attune/emotion.json"));
        let e = open_wav(Path::new("/nonexistent/a.wav")).expect_err("missing wav");
        assert!(e.to_string().contains("/nonexistent/a.wav"), "{e}");
        let e = load_cue_rules(Path::new("/nonexistent/cues.toml")).expect_err("missing rules");
        assert!(e.to_string().contains("/nonexistent/cues.toml"), "{e}");
    }

    #[test]
    fn save_then_load_gives_the_same_model() {
        let dir = std::env::temp_dir().join(format!("attune-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.json");
        let model = EmotionModel::embedded();
        save_model(&model, &path).unwrap();
        assert_eq!(load_model(&path).unwrap().to_json(), model.to_json());
        std::fs::remove_dir_all(&dir).ok();
    }
}
