//! The emotion model file, its training from labelled functionals, and prediction.
//!
//! The model holds two networks over the same [`FEATURE_NAMES`]:
//! - the *speaker* network reads z-scores against the speaker's own baseline (used when the
//!   baseline has at least [`MIN_BASELINE_SPEECH_S`] of speech);
//! - the *global* network reads z-scores against the training population (cold start, one file
//!   of an unknown speaker).
//!
//! The file is JSON: `format` ("attune-emotion"), `version` ([`MODEL_VERSION`]), feature and
//! class names, normalisation statistics, weights, the training settings and data summary.
//! [`EmotionModel::load`] checks all of it and names the file and what is wrong.
//!
//! Prediction abstains (emotion `None` with a reason) when a window has less than
//! [`MIN_SPEECH_S`] of speech or [`MIN_VOICED_S`] of voiced speech.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::calmness;
use super::labels::{CLASS_NAMES, CLASS_VALENCE, Label};
use super::mlp::{CLASS_COUNT, Example, Mlp, MlpOutput, TrainConfig};
use crate::prosody::baseline::{GlobalNorm, MIN_BASELINE_SPEECH_S, Normalisation, SpeakerBaseline};
use crate::prosody::functionals::{FEATURE_COUNT, FEATURE_NAMES};
use crate::prosody::windows::FileFunctionals;
use crate::rng::SplitMix64;

/// Name of the format in the model file.
pub(crate) const MODEL_FORMAT: &str = "attune-emotion";
/// Version of the model file this build reads and writes.
pub const MODEL_VERSION: u32 = 2;
/// Below this much speech in a window the model abstains, seconds.
pub const MIN_SPEECH_S: f64 = 1.0;
/// Below this much voiced speech in a window the model abstains, seconds.
pub(crate) const MIN_VOICED_S: f64 = 0.3;
/// Confidence is scaled down linearly below this much speech, seconds.
pub(crate) const FULL_CONFIDENCE_SPEECH_S: f64 = 2.0;

/// The shipped model's JSON (`models/emotion.json`), embedded like the cue rules.
pub const EMBEDDED_MODEL_JSON: &str = include_str!("../../../../models/emotion.json");
/// How the embedded model is named in provenance and errors.
pub(crate) const EMBEDDED_MODEL_NAME: &str = "models/emotion.json";

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {path} is missing (train one with `attune train`)")]
    Missing { path: PathBuf },
    #[error("cannot read model file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model file {path} is truncated (the JSON ends early)")]
    Truncated { path: PathBuf },
    #[error("model file {path} is not a valid model: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error(
        "model file {path} is version {found}; this build reads version {expected} (retrain with `attune train`)"
    )]
    WrongVersion {
        path: PathBuf,
        found: u64,
        expected: u32,
    },
    #[error("cannot write model file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One labelled file's functionals.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledFunctionals {
    pub features: [f32; FEATURE_COUNT],
    pub speech_s: f64,
    pub voiced_s: f64,
    pub speaker: String,
    pub label: Label,
}

/// What the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub examples: usize,
    pub speakers: usize,
    /// Channel condition(s) of the training audio, e.g. "telephone".
    pub condition: String,
    /// Examples per label.
    pub per_label: BTreeMap<String, usize>,
}

/// Inputs of the speaker network, two blocks of [`FEATURE_COUNT`]: the window's z-scores
/// against the speaker's baseline; and where the baseline itself sits in the training
/// population (z-scores of the baseline's mean, the gain-dependent ones zeroed,
/// [`GAIN_DEPENDENT_FEATURES`]). With the second block the network can tell a calm baseline
/// from an upset or a mixed one, so a window like its baseline reads calm when the baseline
/// was calm and upset when it was upset — a live baseline is the call so far, whatever the
/// caller's state.
pub(crate) const SPEAKER_INPUTS: usize = 2 * FEATURE_COUNT;

/// Mean and standard deviation of each input of a network.
#[derive(Debug, Clone, PartialEq)]
struct InputNorm {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl InputNorm {
    fn fit<'a>(rows: impl Iterator<Item = &'a [f32]>, inputs: usize) -> Self {
        let mut moments = vec![crate::prosody::functionals::Moments::default(); inputs];
        for row in rows {
            for (m, &v) in moments.iter_mut().zip(row) {
                m.add(f64::from(v));
            }
        }
        Self {
            mean: moments.iter().map(|m| m.mean() as f32).collect(),
            std: moments.iter().map(|m| m.std().max(1e-6) as f32).collect(),
        }
    }

    fn apply(&self, x: &[f32], out: &mut [f32]) {
        for (((o, &v), &m), &s) in out.iter_mut().zip(x).zip(&self.mean).zip(&self.std) {
            *o = (v - m) / s;
        }
    }
}

/// An ensemble of networks with the standardisation applied to their input.
#[derive(Debug, Clone, PartialEq)]
struct Head {
    input_norm: InputNorm,
    nets: Vec<Mlp>,
}

impl Head {
    fn inputs(&self) -> usize {
        self.input_norm.mean.len()
    }

    /// Standardises `input` (at most [`SPEAKER_INPUTS`] values) and averages the networks.
    fn predict(&self, input: &[f32]) -> MlpOutput {
        let mut x = [0f32; SPEAKER_INPUTS];
        let n_in = input.len().min(self.inputs()).min(SPEAKER_INPUTS);
        self.input_norm.apply(&input[..n_in], &mut x[..n_in]);
        let mut out = MlpOutput {
            probabilities: [0.0; CLASS_COUNT],
            arousal: 0.0,
        };
        let n = self.nets.len().max(1) as f32;
        for net in &self.nets {
            let o = net.predict(&x[..n_in]);
            for (a, b) in out.probabilities.iter_mut().zip(o.probabilities) {
                *a += b / n;
            }
            out.arousal += o.arousal / n;
        }
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct HeadFile {
    input_mean: Vec<f32>,
    input_std: Vec<f32>,
    nets: Vec<NetFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct NetFile {
    w1: Vec<Vec<f32>>,
    b1: Vec<f32>,
    w_class: Vec<Vec<f32>>,
    b_class: Vec<f32>,
    w_arousal: Vec<f32>,
    b_arousal: f32,
}

#[derive(Debug, Serialize, Deserialize)]
struct ModelFile {
    format: String,
    version: u32,
    feature_names: Vec<String>,
    classes: Vec<String>,
    class_valence: Vec<f32>,
    min_speech_s: f64,
    min_baseline_speech_s: f64,
    global_norm: GlobalNorm,
    speaker_head: HeadFile,
    global_head: HeadFile,
    train_config: TrainConfig,
    training: TrainingInfo,
}

/// The trained caller-emotion model.
#[derive(Debug, Clone, PartialEq)]
pub struct EmotionModel {
    pub global_norm: GlobalNorm,
    speaker_head: Head,
    global_head: Head,
    pub train_config: TrainConfig,
    pub training: TrainingInfo,
}

/// The model's judgement of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Most probable class, None when abstaining.
    pub emotion: Option<&'static str>,
    /// Why the model abstained.
    pub abstain_reason: Option<String>,
    /// Class probabilities in [`CLASS_NAMES`] order (computed even when abstaining, for
    /// evaluation; do not show them to users then).
    pub probabilities: [f32; CLASS_COUNT],
    /// Probability of high arousal, 0..1.
    pub arousal: f32,
    /// -1..1, probability-weighted class valence ([`CLASS_VALENCE`]).
    pub valence: f32,
    /// 0–100 ([`calmness`]).
    pub calmness: f32,
    /// Top probability, scaled down below [`FULL_CONFIDENCE_SPEECH_S`] of speech; 0 when
    /// abstaining.
    pub confidence: f32,
    pub normalisation: Normalisation,
    pub speech_s: f64,
}

/// Features that measure the recording's gain as much as the voice (absolute level, dBFS).
/// The cold (global) network does not see them: without a speaker baseline a loud line would
/// read as an aroused caller. Against the speaker's own baseline they are relative and kept.
pub(crate) const GAIN_DEPENDENT_FEATURES: [&str; 6] = [
    "loudness_mean_db",
    "loudness_p20_db",
    "loudness_p50_db",
    "loudness_p80_db",
    "loudness_voiced_mean_db",
    "loudness_unvoiced_mean_db",
];

/// Zeroes the gain-dependent entries of a z-score vector (0 = the population mean).
fn mask_gain(mut z: [f32; FEATURE_COUNT]) -> [f32; FEATURE_COUNT] {
    static INDICES: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    let indices = INDICES.get_or_init(|| {
        GAIN_DEPENDENT_FEATURES
            .iter()
            .filter_map(|name| crate::prosody::functionals::feature_index(name))
            .collect()
    });
    for &i in indices {
        z[i] = 0.0;
    }
    z
}

/// Trains a head on `views` (one or more input vectors per example, all of the same length;
/// with several, every epoch shows each example through one of its views drawn at random).
fn train_head(views: &[Vec<Vec<f32>>], labels: &[Label], config: &TrainConfig) -> Head {
    let inputs = views.first().and_then(|v| v.first()).map_or(0, Vec::len);
    let input_norm = InputNorm::fit(views.iter().flatten().map(Vec::as_slice), inputs);
    let standardised: Vec<Vec<Vec<f32>>> = views
        .iter()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    let mut out = vec![0f32; inputs];
                    input_norm.apply(v, &mut out);
                    out
                })
                .collect()
        })
        .collect();
    let examples: Vec<Example> = standardised
        .iter()
        .zip(labels)
        .map(|(vs, l)| Example {
            input: vs.first().cloned().unwrap_or_default(),
            class: l.class(),
            high_arousal: Some(l.high_arousal()),
        })
        .collect();
    let several = standardised.iter().any(|vs| vs.len() > 1);
    let noise = config.input_noise;
    let nets = (0..config.ensemble.max(1) as u64)
        .map(|k| {
            let seed = config.seed.wrapping_add(k * 1_000_003);
            let mut rng = SplitMix64::new(seed ^ 0x0bad_5eed);
            Mlp::train_with(&examples, &TrainConfig { seed, ..*config }, |_, x| {
                if !several && noise <= 0.0 {
                    return;
                }
                for (mut row, vs) in x.rows_mut().into_iter().zip(&standardised) {
                    let v = &vs[rng.below(vs.len())];
                    for (a, &b) in row.iter_mut().zip(v) {
                        *a = if noise > 0.0 {
                            b + noise * rng.gaussian() as f32
                        } else {
                            b
                        };
                    }
                }
            })
        })
        .collect();
    Head { input_norm, nets }
}

/// The speaker network's input for `features` against `baseline` (see [`SPEAKER_INPUTS`]).
fn speaker_input(
    features: &[f32; FEATURE_COUNT],
    baseline: &SpeakerBaseline,
    global_norm: &GlobalNorm,
    level_blind: bool,
) -> [f32; SPEAKER_INPUTS] {
    let mut out = [0f32; SPEAKER_INPUTS];
    let (mut speaker_z, normalisation) = baseline.normalise(features, global_norm);
    if level_blind {
        speaker_z = mask_gain(speaker_z);
    }
    out[..FEATURE_COUNT].copy_from_slice(&speaker_z);
    let position = if normalisation == Normalisation::Speaker {
        global_norm.z(&baseline.mean())
    } else {
        global_norm.z(features)
    };
    out[FEATURE_COUNT..].copy_from_slice(&mask_gain(position));
    out
}

/// Baselines drawn from one speaker's files for training the speaker network, so it learns
/// that a baseline may itself be calm, upset, of one emotion or mixed: kinds in turn — all
/// files; a random subset; the files of one label; mostly low-arousal files (every one, plus
/// each high-arousal file with probability 0.15); mostly high-arousal files (each with
/// probability 0.6, each low-arousal one with 0.15). A draw short of
/// [`MIN_BASELINE_SPEECH_S`] is topped up with the speaker's other files in random order.
fn draw_baselines(
    files: &[&LabelledFunctionals],
    draws: usize,
    rng: &mut SplitMix64,
) -> Vec<SpeakerBaseline> {
    let n = files.len();
    let labels: Vec<Label> = {
        let mut l: Vec<Label> = files.iter().map(|f| f.label).collect();
        l.sort_by_key(|l| l.as_str());
        l.dedup();
        l
    };
    (0..draws.max(1))
        .map(|k| {
            let mut chosen = vec![false; n];
            match k % 5 {
                0 => chosen.iter_mut().for_each(|c| *c = true),
                1 => {
                    let p = rng.next_f64();
                    chosen.iter_mut().for_each(|c| *c = rng.chance(p));
                }
                2 => {
                    let label = labels[rng.below(labels.len())];
                    for (c, f) in chosen.iter_mut().zip(files) {
                        *c = f.label == label;
                    }
                }
                3 => {
                    for (c, f) in chosen.iter_mut().zip(files) {
                        *c = !f.label.high_arousal() || rng.chance(0.15);
                    }
                }
                _ => {
                    for (c, f) in chosen.iter_mut().zip(files) {
                        *c = rng.chance(if f.label.high_arousal() { 0.6 } else { 0.15 });
                    }
                }
            }
            let mut baseline = SpeakerBaseline::new();
            for (c, f) in chosen.iter().zip(files) {
                if *c {
                    baseline.add(&f.features, f.speech_s);
                }
            }
            let mut rest: Vec<usize> = (0..n).filter(|&i| !chosen[i]).collect();
            while !baseline.is_sufficient() && !rest.is_empty() {
                let i = rest.swap_remove(rng.below(rest.len()));
                baseline.add(&files[i].features, files[i].speech_s);
            }
            baseline
        })
        .collect()
}

/// Baselines of every speaker from all their files (unlabelled statistics).
#[cfg(test)]
pub(crate) fn speaker_baselines(
    samples: &[LabelledFunctionals],
) -> BTreeMap<String, SpeakerBaseline> {
    let mut baselines: BTreeMap<String, SpeakerBaseline> = BTreeMap::new();
    for s in samples {
        baselines
            .entry(s.speaker.clone())
            .or_default()
            .add(&s.features, s.speech_s);
    }
    baselines
}

impl EmotionModel {
    /// Trains both networks on `samples` (files with less than [`MIN_SPEECH_S`] of speech are
    /// left out of the training set, but still count in their speaker's baseline).
    pub fn train(samples: &[LabelledFunctionals], config: &TrainConfig, condition: &str) -> Self {
        let used: Vec<&LabelledFunctionals> = samples
            .iter()
            .filter(|s| s.speech_s >= MIN_SPEECH_S && s.voiced_s >= MIN_VOICED_S)
            .collect();
        let raw: Vec<[f32; FEATURE_COUNT]> = used.iter().map(|s| s.features).collect();
        let labels: Vec<Label> = used.iter().map(|s| s.label).collect();
        let global_norm = GlobalNorm::fit(&raw);
        let mut by_speaker: BTreeMap<&str, Vec<&LabelledFunctionals>> = BTreeMap::new();
        for s in samples {
            by_speaker.entry(s.speaker.as_str()).or_default().push(s);
        }
        let mut rng = SplitMix64::new(config.seed ^ 0xba5e_11e5);
        let pools: BTreeMap<&str, Vec<SpeakerBaseline>> = by_speaker
            .iter()
            .map(|(&speaker, files)| {
                (
                    speaker,
                    draw_baselines(files, config.baseline_draws, &mut rng),
                )
            })
            .collect();
        let global_views: Vec<Vec<Vec<f32>>> = raw
            .iter()
            .map(|r| vec![mask_gain(global_norm.z(r)).to_vec()])
            .collect();
        let global_head = train_head(&global_views, &labels, config);
        let speaker_views: Vec<Vec<Vec<f32>>> = used
            .iter()
            .map(|s| {
                pools[s.speaker.as_str()]
                    .iter()
                    .map(|b| {
                        speaker_input(&s.features, b, &global_norm, config.level_blind_baseline)
                            .to_vec()
                    })
                    .collect()
            })
            .collect();
        let speaker_head = train_head(&speaker_views, &labels, config);
        let mut per_label = BTreeMap::new();
        for l in &labels {
            *per_label.entry(l.as_str().to_owned()).or_insert(0) += 1;
        }
        let speakers = used
            .iter()
            .map(|s| s.speaker.split('/').next().unwrap_or(&s.speaker))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        Self {
            global_norm,
            speaker_head,
            global_head,
            train_config: *config,
            training: TrainingInfo {
                examples: used.len(),
                speakers,
                condition: condition.to_owned(),
                per_label,
            },
        }
    }

    /// Judges one window with `speech_s` of speech (`voiced_s` voiced). With a `baseline` of
    /// enough speech the speaker network is used, otherwise the global one.
    pub fn predict(
        &self,
        features: &[f32; FEATURE_COUNT],
        speech_s: f64,
        voiced_s: f64,
        baseline: Option<&SpeakerBaseline>,
    ) -> Prediction {
        let (z, normalisation) = match baseline {
            Some(b) => b.normalise(features, &self.global_norm),
            None => (self.global_norm.z(features), Normalisation::Global),
        };
        let out = match (normalisation, baseline) {
            (Normalisation::Speaker, Some(b)) => self.speaker_head.predict(&speaker_input(
                features,
                b,
                &self.global_norm,
                self.train_config.level_blind_baseline,
            )),
            _ => self
                .global_head
                .predict(&mask_gain(self.global_norm.z(features))),
        };
        let (best, top) = most_probable(&out.probabilities);
        let valence = out
            .probabilities
            .iter()
            .zip(CLASS_VALENCE)
            .map(|(p, v)| p * v)
            .sum::<f32>()
            .clamp(-1.0, 1.0);
        let abstain_reason = if speech_s < MIN_SPEECH_S {
            Some(format!(
                "not enough speech: {speech_s:.2} s, at least {MIN_SPEECH_S} s needed"
            ))
        } else if voiced_s < MIN_VOICED_S {
            Some(format!(
                "not enough voiced speech: {voiced_s:.2} s, at least {MIN_VOICED_S} s needed"
            ))
        } else {
            None
        };
        let confidence = if abstain_reason.is_some() {
            0.0
        } else {
            top * (speech_s / FULL_CONFIDENCE_SPEECH_S).min(1.0) as f32
        };
        Prediction {
            emotion: if abstain_reason.is_some() {
                None
            } else {
                Some(CLASS_NAMES[best])
            },
            abstain_reason,
            probabilities: out.probabilities,
            arousal: out.arousal,
            valence,
            calmness: calmness::calmness(out.arousal, &z),
            confidence,
            normalisation,
            speech_s,
        }
    }

    /// Judges a recording cut into windows (see
    /// [`crate::prosody::windows::windowed_functionals`]): each window with enough speech is
    /// judged, and probabilities, arousal, valence and calmness are averaged weighted by speech
    /// time. Abstains when the whole recording holds too little speech.
    pub fn predict_windows(
        &self,
        windows: &[FileFunctionals],
        baseline: Option<&SpeakerBaseline>,
    ) -> Prediction {
        let speech_s: f64 = windows.iter().map(|w| w.speech_s).sum();
        let voiced_s: f64 = windows.iter().map(|w| w.voiced_s).sum();
        let judged: Vec<(f64, Prediction)> = windows
            .iter()
            .filter(|w| w.speech_s >= MIN_SPEECH_S && w.voiced_s >= MIN_VOICED_S)
            .map(|w| {
                (
                    w.speech_s,
                    self.predict(&w.features, w.speech_s, w.voiced_s, baseline),
                )
            })
            .collect();
        let Some(first) = judged.first() else {
            // Nothing judgeable: judge everything as one window (it abstains).
            let mut acc = windows.first().map_or([0.0; FEATURE_COUNT], |w| w.features);
            if windows.is_empty() {
                acc = [0.0; FEATURE_COUNT];
            }
            let mut p = self.predict(&acc, speech_s, voiced_s, baseline);
            if p.emotion.is_some() {
                p.emotion = None;
                p.confidence = 0.0;
                p.abstain_reason = Some(format!(
                    "not enough speech in any window: {speech_s:.2} s in all, at least \
                     {MIN_SPEECH_S} s per window needed"
                ));
            }
            return p;
        };
        let judged_refs: Vec<(f64, &Prediction)> = judged.iter().map(|(w, p)| (*w, p)).collect();
        aggregate_windows(&judged_refs, &first.1, speech_s)
    }

    /// Judges a recording's windows in order with a *live* speaker baseline: each window is
    /// judged against the windows before it (global normalisation until they hold
    /// [`MIN_BASELINE_SPEECH_S`] of speech), then added to the baseline — what a live call sees.
    /// Returns the per-window judgements and their speech-weighted aggregate.
    pub fn predict_windows_live(
        &self,
        windows: &[FileFunctionals],
    ) -> (Vec<Prediction>, Prediction) {
        let mut baseline = SpeakerBaseline::new();
        let mut per_window = Vec::with_capacity(windows.len());
        for w in windows {
            per_window.push(self.predict(&w.features, w.speech_s, w.voiced_s, Some(&baseline)));
            baseline.add(&w.features, w.speech_s);
        }
        // Aggregate the judged windows as predict_windows does.
        let speech_s: f64 = windows.iter().map(|w| w.speech_s).sum();
        let judged: Vec<(f64, &Prediction)> = windows
            .iter()
            .zip(&per_window)
            .filter(|(_, p)| p.emotion.is_some())
            .map(|(w, p)| (w.speech_s, p))
            .collect();
        if judged.is_empty() {
            return (per_window, self.predict_windows(windows, None));
        }
        let out = aggregate_windows(&judged, judged[judged.len() - 1].1, speech_s);
        (per_window, out)
    }

    fn head_file(head: &Head) -> HeadFile {
        HeadFile {
            input_mean: head.input_norm.mean.clone(),
            input_std: head.input_norm.std.clone(),
            nets: head
                .nets
                .iter()
                .map(|net| NetFile {
                    w1: net.w1.rows().into_iter().map(|r| r.to_vec()).collect(),
                    b1: net.b1.to_vec(),
                    w_class: net.w_class.rows().into_iter().map(|r| r.to_vec()).collect(),
                    b_class: net.b_class.to_vec(),
                    w_arousal: net.w_arousal.to_vec(),
                    b_arousal: net.b_arousal,
                })
                .collect(),
        }
    }

    /// The model as JSON text.
    pub fn to_json(&self) -> String {
        let file = ModelFile {
            format: MODEL_FORMAT.to_owned(),
            version: MODEL_VERSION,
            feature_names: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            classes: CLASS_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            class_valence: CLASS_VALENCE.to_vec(),
            min_speech_s: MIN_SPEECH_S,
            min_baseline_speech_s: MIN_BASELINE_SPEECH_S,
            global_norm: self.global_norm.clone(),
            speaker_head: Self::head_file(&self.speaker_head),
            global_head: Self::head_file(&self.global_head),
            train_config: self.train_config,
            training: self.training.clone(),
        };
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// The model shipped with Attune (`models/emotion.json`, embedded at build time; a test
    /// checks that it parses).
    pub fn embedded() -> Self {
        Self::from_json(EMBEDDED_MODEL_JSON, Path::new(EMBEDDED_MODEL_NAME))
            .expect("the embedded model parses (checked by a unit test)")
    }

    /// Parses and checks model JSON; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, ModelError> {
        let malformed = |detail: String| ModelError::Malformed {
            path: path.to_owned(),
            detail,
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            if e.is_eof() {
                ModelError::Truncated {
                    path: path.to_owned(),
                }
            } else {
                malformed(e.to_string())
            }
        })?;
        let format = value.get("format").and_then(|v| v.as_str());
        if format != Some(MODEL_FORMAT) {
            return Err(malformed(format!(
                "format is {}, expected \"{MODEL_FORMAT}\"",
                format.map_or("missing".to_owned(), |f| format!("\"{f}\""))
            )));
        }
        let version = value.get("version").and_then(|v| v.as_u64());
        match version {
            Some(v) if v == u64::from(MODEL_VERSION) => {}
            Some(found) => {
                return Err(ModelError::WrongVersion {
                    path: path.to_owned(),
                    found,
                    expected: MODEL_VERSION,
                });
            }
            None => return Err(malformed("version is missing".to_owned())),
        }
        let file: ModelFile =
            serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
        if file.feature_names != FEATURE_NAMES {
            return Err(malformed(format!(
                "its {} features differ from this build's {} (retrain with `attune train`)",
                file.feature_names.len(),
                FEATURE_COUNT
            )));
        }
        if file.classes != CLASS_NAMES {
            return Err(malformed(format!("classes {:?} differ", file.classes)));
        }
        let check_norm = |n: &GlobalNorm, what: &str| {
            if n.mean.len() != FEATURE_COUNT || n.std.len() != FEATURE_COUNT {
                Err(malformed(format!("{what} has the wrong length")))
            } else if n.mean.iter().chain(&n.std).any(|v| !v.is_finite()) {
                Err(malformed(format!("{what} holds non-finite values")))
            } else {
                Ok(())
            }
        };
        check_norm(&file.global_norm, "global_norm")?;
        let speaker_head =
            head_from_file(file.speaker_head, SPEAKER_INPUTS, "speaker_head").map_err(malformed)?;
        let global_head =
            head_from_file(file.global_head, FEATURE_COUNT, "global_head").map_err(malformed)?;
        Ok(Self {
            global_norm: file.global_norm,
            speaker_head,
            global_head,
            train_config: file.train_config,
            training: file.training,
        })
    }
}

fn matrix(rows: Vec<Vec<f32>>, cols: usize, what: &str) -> Result<ndarray::Array2<f32>, String> {
    let n = rows.len();
    if rows.iter().any(|r| r.len() != cols) {
        return Err(format!("{what} rows must have {cols} values"));
    }
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    if flat.iter().any(|v| !v.is_finite()) {
        return Err(format!("{what} holds non-finite values"));
    }
    ndarray::Array2::from_shape_vec((n, cols), flat).map_err(|e| format!("{what}: {e}"))
}

fn head_from_file(f: HeadFile, inputs: usize, what: &str) -> Result<Head, String> {
    if f.input_mean.len() != inputs || f.input_std.len() != inputs {
        return Err(format!(
            "{what}: input statistics must have {inputs} values"
        ));
    }
    if f.input_mean
        .iter()
        .chain(&f.input_std)
        .any(|v| !v.is_finite())
        || f.input_std.iter().any(|&v| v <= 0.0)
    {
        return Err(format!(
            "{what}: input statistics hold non-finite or non-positive values"
        ));
    }
    if f.nets.is_empty() || f.nets.len() > 64 {
        return Err(format!(
            "{what}: {} networks (1..=64 allowed)",
            f.nets.len()
        ));
    }
    let nets = f
        .nets
        .into_iter()
        .enumerate()
        .map(|(k, n)| net_from_file(n, inputs, &format!("{what}.nets[{k}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Head {
        input_norm: InputNorm {
            mean: f.input_mean,
            std: f.input_std,
        },
        nets,
    })
}

fn net_from_file(f: NetFile, inputs: usize, what: &str) -> Result<Mlp, String> {
    let hidden = f.b1.len();
    if hidden == 0 || hidden > 256 {
        return Err(format!(
            "{what}: hidden layer of {hidden} units (1..=256 allowed)"
        ));
    }
    if f.w1.len() != inputs {
        return Err(format!(
            "{what}: w1 has {} rows, expected {inputs}",
            f.w1.len()
        ));
    }
    let w1 = matrix(f.w1, hidden, &format!("{what}.w1"))?;
    if f.w_class.len() != hidden {
        return Err(format!(
            "{what}: w_class has {} rows, expected {hidden}",
            f.w_class.len()
        ));
    }
    let w_class = matrix(f.w_class, CLASS_COUNT, &format!("{what}.w_class"))?;
    if f.b_class.len() != CLASS_COUNT || f.w_arousal.len() != hidden {
        return Err(format!("{what}: output layer has the wrong shape"));
    }
    let finite =
        f.b1.iter()
            .chain(&f.b_class)
            .chain(&f.w_arousal)
            .all(|v| v.is_finite())
            && f.b_arousal.is_finite();
    if !finite {
        return Err(format!("{what}: non-finite biases"));
    }
    Ok(Mlp {
        w1,
        b1: ndarray::Array1::from(f.b1),
        w_class,
        b_class: ndarray::Array1::from(f.b_class),
        w_arousal: ndarray::Array1::from(f.w_arousal),
        b_arousal: f.b_arousal,
    })
}

/// Index and value of the highest class probability (the first on ties).
fn most_probable(probabilities: &[f32; CLASS_COUNT]) -> (usize, f32) {
    probabilities
        .iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc },
        )
}

/// Speech-weighted average of judged windows (`(speech_s, prediction)`), with the class of the
/// highest mean probability and a confidence scaled by the total speech.
fn aggregate_windows(
    judged: &[(f64, &Prediction)],
    template: &Prediction,
    speech_s: f64,
) -> Prediction {
    let total: f64 = judged.iter().map(|(w, _)| w).sum();
    let mut out = template.clone();
    out.probabilities = [0.0; CLASS_COUNT];
    out.arousal = 0.0;
    out.valence = 0.0;
    out.calmness = 0.0;
    for (w, p) in judged {
        let w = (*w / total) as f32;
        for (a, b) in out.probabilities.iter_mut().zip(p.probabilities) {
            *a += w * b;
        }
        out.arousal += w * p.arousal;
        out.valence += w * p.valence;
        out.calmness += w * p.calmness;
    }
    let (best, top) = most_probable(&out.probabilities);
    out.emotion = Some(CLASS_NAMES[best]);
    out.abstain_reason = None;
    out.speech_s = speech_s;
    out.confidence = top * (speech_s / FULL_CONFIDENCE_SPEECH_S).min(1.0) as f32;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Toy corpus: 4 speakers with their own offsets; each class moves a few features.
    fn toy_corpus() -> Vec<LabelledFunctionals> {
        let mut rng = SplitMix64::new(3);
        let labels = [
            Label::Anger,
            Label::Fear,
            Label::Sadness,
            Label::Happiness,
            Label::Neutral,
            Label::Surprise,
        ];
        let mut out = Vec::new();
        for speaker in 0..4 {
            let offset = speaker as f64 * 2.0;
            for (k, &label) in labels.iter().enumerate() {
                for _ in 0..10 {
                    let mut features = [0f32; FEATURE_COUNT];
                    for (d, f) in features.iter_mut().enumerate() {
                        let signal = if d % 6 == k { 3.0 } else { 0.0 };
                        *f = (offset + signal + 0.3 * rng.gaussian()) as f32;
                    }
                    out.push(LabelledFunctionals {
                        features,
                        speech_s: 2.0,
                        voiced_s: 1.5,
                        speaker: format!("s{speaker}"),
                        label,
                    });
                }
            }
        }
        out
    }

    fn quick() -> TrainConfig {
        TrainConfig {
            epochs: 200,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn json_round_trip_predicts_the_same() {
        let corpus = toy_corpus();
        let model = EmotionModel::train(&corpus, &quick(), "toy");
        let loaded = EmotionModel::from_json(&model.to_json(), Path::new("m.json")).expect("parse");
        let a = model.predict(&corpus[0].features, 2.0, 1.5, None);
        let b = loaded.predict(&corpus[0].features, 2.0, 1.5, None);
        assert_eq!(a, b);
        assert_eq!(a.emotion, Some("angry"));
    }

    #[test]
    fn the_embedded_model_parses() {
        let model = EmotionModel::embedded();
        let features = [0.0f32; crate::prosody::functionals::FEATURE_COUNT];
        let p = model.predict(&features, 2.0, 1.5, None);
        assert!(p.emotion.is_some());
    }

    #[test]
    fn loader_errors_name_the_file_and_the_problem() {
        let model = EmotionModel::train(&toy_corpus(), &quick(), "toy");
        let json = model.to_json();
        let e = EmotionModel::from_json(&json[..json.len() / 2], Path::new("m.json"))
            .expect_err("truncated");
        assert!(matches!(e, ModelError::Truncated { .. }), "{e}");
        assert!(e.to_string().contains("m.json"));

        let other = json.replacen("\"version\":2", "\"version\":99", 1);
        let e = EmotionModel::from_json(&other, Path::new("m.json")).expect_err("version");
        assert!(
            matches!(e, ModelError::WrongVersion { found: 99, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("version 99"));

        let e =
            EmotionModel::from_json("{\"format\":\"x\"}", Path::new("m.json")).expect_err("format");
        assert!(matches!(e, ModelError::Malformed { .. }));
        let e = EmotionModel::from_json("[1,2", Path::new("m.json")).expect_err("eof");
        assert!(matches!(e, ModelError::Truncated { .. }));
    }

    #[test]
    fn training_baselines_are_sufficient_and_varied() {
        let corpus = toy_corpus();
        let files: Vec<&LabelledFunctionals> =
            corpus.iter().filter(|s| s.speaker == "s1").collect();
        let mut rng = SplitMix64::new(1);
        let pool = draw_baselines(&files, 10, &mut rng);
        assert_eq!(pool.len(), 10);
        assert!(pool.iter().all(SpeakerBaseline::is_sufficient));
        // All files, then subsets of them.
        assert_eq!(pool[0].windows(), files.len() as u64);
        assert!(pool.iter().any(|b| b.windows() < files.len() as u64));
    }

    /// A speaker who stays calm, judged live against their own earlier (calm) windows, stays
    /// calm: the speaker network knows the baseline itself is calm.
    #[test]
    fn a_calm_live_baseline_does_not_make_calm_speech_aroused() {
        let corpus = toy_corpus();
        let train: Vec<LabelledFunctionals> = corpus
            .iter()
            .filter(|s| s.speaker != "s3")
            .cloned()
            .collect();
        let model = EmotionModel::train(&train, &quick(), "toy");
        let calm: Vec<FileFunctionals> = corpus
            .iter()
            .filter(|s| s.speaker == "s3" && s.label == Label::Neutral)
            .map(|s| FileFunctionals {
                features: s.features,
                speech_s: 2.5,
                voiced_s: 2.0,
                duration_s: 3.0,
            })
            .collect();
        let (each, _) = model.predict_windows_live(&calm);
        let live: Vec<&Prediction> = each
            .iter()
            .filter(|p| p.normalisation == Normalisation::Speaker)
            .collect();
        assert!(!live.is_empty());
        for p in live {
            assert!(p.arousal < 0.5, "arousal {}", p.arousal);
            assert_eq!(p.emotion, Some("neutral"));
        }
    }

    #[test]
    fn abstains_without_enough_speech_and_uses_the_baseline_when_it_can() {
        let corpus = toy_corpus();
        let model = EmotionModel::train(&corpus, &quick(), "toy");
        let p = model.predict(&corpus[0].features, 0.4, 0.2, None);
        assert_eq!(p.emotion, None);
        assert!(
            p.abstain_reason
                .as_deref()
                .unwrap_or("")
                .contains("not enough speech")
        );
        assert_eq!(p.confidence, 0.0);

        let baselines = speaker_baselines(&corpus);
        let b = &baselines["s3"];
        let p = model.predict(&corpus[150].features, 2.0, 1.5, Some(b));
        assert_eq!(p.normalisation, Normalisation::Speaker);
        assert!(p.probabilities.iter().all(|v| v.is_finite()));
        assert!((-1.0..=1.0).contains(&p.valence));
        assert!((0.0..=100.0).contains(&p.calmness));
        // Live: the first windows are judged cold, later ones against the windows before them.
        let windows: Vec<FileFunctionals> = corpus[150..160]
            .iter()
            .map(|s| FileFunctionals {
                features: s.features,
                speech_s: 2.0,
                voiced_s: 1.5,
                duration_s: 3.0,
            })
            .collect();
        let (each, all) = model.predict_windows_live(&windows);
        assert_eq!(each.len(), 10);
        assert_eq!(each[4].normalisation, Normalisation::Global);
        assert_eq!(each[5].normalisation, Normalisation::Speaker);
        assert!(all.emotion.is_some());
        let mut short = SpeakerBaseline::new();
        short.add(&corpus[0].features, 2.0);
        let p = model.predict(&corpus[0].features, 2.0, 1.5, Some(&short));
        assert_eq!(p.normalisation, Normalisation::Global);
    }
}
