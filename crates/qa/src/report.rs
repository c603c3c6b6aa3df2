//! The per-call result document ([`CallReport`]): the dialog document of `attune analyze`
//! extended with the caller's emotion track, the agent's calmness track, the cues, the measured
//! facts, the QA score, the versions scored with, the input's identity and the run's
//! timestamps (the only fields whose names end in `_at`). Built from ONE pass of
//! [`attune_core::call::analyze_recording`] ([`score_recording`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::rubric::{Rubric, RubricError, fnv1a_hex};
use super::score::{CallFacts, QaScore, score_call};
use attune_core::audio::{AudioError, AudioReader};
use attune_core::call::{CallAnalysis, CallError};
use attune_core::call::{CallConfig, CallOutcome, RecordingError, analyze_recording};
use attune_core::cues::{CueEvent, CueRules, RulesError};
use attune_core::dialog::DialogConfig;
use attune_core::empathy::EmpathyReport;
use attune_core::model::emotion::{EMBEDDED_MODEL_JSON, EmotionModel, MODEL_VERSION, ModelError};

/// One point of the caller's emotion track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmotionSample {
    pub t_s: f64,
    pub emotion: &'static str,
    pub arousal: f32,
    pub valence: f32,
    pub confidence: f32,
}

/// One point of the agent's calmness track (0–100).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalmnessSample {
    pub t_s: f64,
    pub score: f32,
}

/// What a result was computed with, so it can be reproduced and disputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Versions {
    pub attune: String,
    /// `emotion-v{format}-{hash of the model file}`.
    pub model: String,
    pub cue_rules: String,
    pub rubric: String,
    /// Hash of the rubric's text.
    pub rubric_digest: String,
}

/// The recording scored: enough to tell whether a stored result is still current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputIdentity {
    pub path: String,
    pub size_bytes: u64,
    /// Modification time of the file, milliseconds since 1970 (UTC).
    pub modified_unix_ms: i64,
}

impl InputIdentity {
    /// Reads a file's size and modification time.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let modified_unix_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        Ok(Self {
            path: path.display().to_string(),
            size_bytes: meta.len(),
            modified_unix_ms,
        })
    }
}

/// The per-call result document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallReport {
    pub file: String,
    #[serde(flatten)]
    pub analysis: CallAnalysis,
    pub caller_emotion: Vec<EmotionSample>,
    pub agent_calmness: Vec<CalmnessSample>,
    pub cues: Vec<CueEvent>,
    /// Active listening, attunement and de-escalation (docs/empathy.md).
    pub empathy: EmpathyReport,
    /// Every measured fact a rubric can judge, with its evidence.
    pub facts: CallFacts,
    pub qa: QaScore,
    pub versions: Versions,
    pub input: InputIdentity,
    /// When scoring this call started and finished (RFC 3339, UTC).
    pub started_at: String,
    pub finished_at: String,
}

/// What a result is scored with: the model, the cue rules, the rubric, the agent's channel.
#[derive(Debug, Clone)]
pub struct ScoringSetup {
    pub model: Arc<EmotionModel>,
    pub rules: CueRules,
    pub rubric: Rubric,
    pub agent_channel: u16,
    pub versions: Versions,
}

/// What can go wrong setting up or scoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot read model {path}: {source}")]
    ModelRead {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Rubric(#[from] RubricError),
    #[error("{path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Dialog(#[from] CallError),
}

impl ScoringSetup {
    /// Loads the model, the cue rules and the rubric; each `None` is the shipped default (the
    /// model and rules are embedded in the binary).
    pub fn load(
        model_path: Option<&Path>,
        rules_path: Option<&Path>,
        rubric_path: Option<&Path>,
        agent_channel: u16,
    ) -> Result<Self, ScoreError> {
        let (model, model_bytes) = match model_path {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|source| ScoreError::ModelRead {
                    path: path.display().to_string(),
                    source,
                })?;
                (crate::files::load_model(path)?, bytes)
            }
            None => (
                EmotionModel::embedded(),
                EMBEDDED_MODEL_JSON.as_bytes().to_vec(),
            ),
        };
        let rules = match rules_path {
            Some(p) => crate::files::load_cue_rules(p)?,
            None => CueRules::default(),
        };
        let rubric = match rubric_path {
            Some(p) => Rubric::load(p)?,
            None => Rubric::default(),
        };
        let versions = Versions {
            attune: env!("CARGO_PKG_VERSION").to_owned(),
            model: format!("emotion-v{MODEL_VERSION}-{}", fnv1a_hex(&model_bytes)),
            cue_rules: rules.version.clone(),
            rubric: rubric.version.clone(),
            rubric_digest: rubric.digest.clone(),
        };
        Ok(Self {
            model: Arc::new(model),
            rules,
            rubric,
            agent_channel,
            versions,
        })
    }
}

/// Formats a time as RFC 3339 in UTC with milliseconds (`2026-11-22T09:17:22.123Z`).
pub fn rfc3339_utc(time: SystemTime) -> String {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    rfc3339_from_unix_ms(ms)
}

/// Formats milliseconds since 1970 as RFC 3339 in UTC.
pub fn rfc3339_from_unix_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = crate::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

impl CallReport {
    /// The document of a two-party call from its outcome (used for recordings, and by the
    /// service for live calls at their end).
    #[allow(clippy::too_many_arguments)] // each is one independent part of the document
    pub fn from_outcome(
        file: String,
        outcome: &CallOutcome,
        sample_rate_hz: u32,
        channels: u16,
        setup: &ScoringSetup,
        input: InputIdentity,
        started_at: String,
        finished_at: String,
    ) -> Self {
        let analysis = attune_core::call::analysis_from_outcome(
            outcome,
            sample_rate_hz,
            channels,
            setup.agent_channel,
        );
        let facts = CallFacts::measure(outcome);
        let qa = score_call(&setup.rubric, &facts);
        Self {
            file,
            analysis,
            caller_emotion: outcome
                .caller_emotion
                .iter()
                .filter_map(|p| {
                    Some(EmotionSample {
                        t_s: p.t_s,
                        emotion: p.emotion?,
                        arousal: p.arousal,
                        valence: p.valence,
                        confidence: p.confidence,
                    })
                })
                .collect(),
            agent_calmness: outcome
                .agent_emotion
                .iter()
                .filter(|p| p.emotion.is_some())
                .map(|p| CalmnessSample {
                    t_s: p.t_s,
                    score: p.calmness,
                })
                .collect(),
            cues: outcome.cues.clone(),
            empathy: outcome.empathy.clone(),
            facts,
            qa,
            versions: setup.versions.clone(),
            input,
            started_at,
            finished_at,
        }
    }
}

/// What the decoder noticed about the file (truncation, bad samples).
fn reader_warnings(reader: &AudioReader) -> Vec<String> {
    let mut warnings = Vec::new();
    if reader.truncated() {
        warnings.push(
            "truncated file: the data ends before the size its header announces; \
             what was there was scored"
                .to_owned(),
        );
    }
    if reader.nonfinite_samples() > 0 {
        warnings.push(format!(
            "{} NaN or infinite samples were read as silence",
            reader.nonfinite_samples()
        ));
    }
    warnings
}

/// Scores one recording: a stereo call goes once through [`analyze_recording`]; a mono one gets
/// the dialog-only document (with its warning) and every QA item "not applicable".
/// `warn` receives warnings as they are found.
pub fn score_recording(
    path: &Path,
    setup: &ScoringSetup,
    warn: impl FnMut(&str),
) -> Result<CallReport, ScoreError> {
    let started_at = rfc3339_utc(SystemTime::now());
    let input = InputIdentity::of(path).map_err(|source| ScoreError::Input {
        path: path.display().to_string(),
        source,
    })?;
    let file = path.display().to_string();
    let mut reader = crate::files::open_wav(path)?;
    score_reader(&mut reader, file, input, started_at, setup, warn)
}

/// Scores a recording held in memory (a WAV file's bytes, e.g. uploaded from the browser)
/// exactly as [`score_recording`] scores the same file; `name` stands for its path in the
/// document. Returns the report and whether the data ended before the size its header
/// announced (what was there was scored, with a warning).
pub fn score_wav_bytes(
    name: &str,
    bytes: Vec<u8>,
    setup: &ScoringSetup,
    warn: impl FnMut(&str),
) -> Result<(CallReport, bool), ScoreError> {
    let started_at = rfc3339_utc(SystemTime::now());
    let input = InputIdentity {
        path: name.to_owned(),
        size_bytes: bytes.len() as u64,
        modified_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    let mut reader = AudioReader::from_wav_bytes(bytes)?;
    let report = score_reader(&mut reader, name.to_owned(), input, started_at, setup, warn)?;
    Ok((report, reader.truncated()))
}

/// The scoring behind [`score_recording`] and [`score_wav_bytes`], from an opened reader.
fn score_reader(
    reader: &mut AudioReader,
    file: String,
    input: InputIdentity,
    started_at: String,
    setup: &ScoringSetup,
    mut warn: impl FnMut(&str),
) -> Result<CallReport, ScoreError> {
    let spec = reader.spec().clone();
    let config = CallConfig {
        agent_channel: usize::from(setup.agent_channel),
        rules: setup.rules.clone(),
        dialog: DialogConfig {
            agent_channel: setup.agent_channel,
            ..DialogConfig::default()
        },
        ..CallConfig::default()
    };
    let recording = analyze_recording(reader, config, setup.model.clone(), |_| {}, |_| {})?;
    let Some(outcome) = recording.outcome else {
        let mut analysis = recording.dialog;
        analysis.warnings.extend(reader_warnings(reader));
        for w in &analysis.warnings {
            warn(w);
        }
        let why = "mono recording: QA items need one channel per party (agent and caller)";
        let facts = CallFacts::not_applicable(why);
        let qa = score_call(&setup.rubric, &facts);
        return Ok(CallReport {
            file,
            analysis,
            caller_emotion: Vec::new(),
            agent_calmness: Vec::new(),
            cues: Vec::new(),
            empathy: EmpathyReport::not_applicable(why),
            facts,
            qa,
            versions: setup.versions.clone(),
            input,
            started_at,
            finished_at: rfc3339_utc(SystemTime::now()),
        });
    };
    let mut report = CallReport::from_outcome(
        file,
        &outcome,
        spec.sample_rate_hz,
        spec.channels,
        setup,
        input,
        started_at,
        rfc3339_utc(SystemTime::now()),
    );
    report.analysis.warnings.extend(reader_warnings(reader));
    for w in &report.analysis.warnings {
        warn(w);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_from_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_from_unix_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            rfc3339_from_unix_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
