//! `attune train`, `attune classify` and `attune eval emotion`: the caller-emotion and
//! agent-calmness model from the command line. Corpora are read from a manifest CSV
//! (`path,label,speaker`) or a RAVDESS folder; per-file functionals are cached under
//! `target/attune-emotion-cache/` (keyed by file list, channel condition and feature set) so
//! repeated runs skip extraction.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

use attune_core::model::emotion::{EmotionModel, LabelledFunctionals, MIN_SPEECH_S};
use attune_core::model::labels::{CLASS_NAMES, Label};
use attune_core::model::mlp::TrainConfig;
use attune_core::prosody::baseline::{MIN_BASELINE_SPEECH_S, SpeakerBaseline};
use attune_core::prosody::functionals::{FEATURE_COUNT, FEATURE_NAMES};
use attune_core::prosody::windows::{FileFunctionals, WINDOW_SPEECH_S, windowed_functionals};
use attune_lab::eval::emotion::{
    cross_corpus, format_report, leave_one_speaker_out_augmented, leave_one_speaker_out_split,
};
use attune_lab::extract::{ChannelCondition, extract_file, load_channel};

/// Default model path.
const DEFAULT_MODEL: &str = "models/emotion.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainChannel {
    /// Simulated telephone channel only (8 kHz, 300–3400 Hz, mu-law).
    Telephone,
    /// As recorded (resampled to 8 kHz).
    Recorded,
    /// Both: every file twice; the telephone copies are the ones evaluated (default).
    Both,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Manifest CSV with columns path,label,speaker (a header line is allowed; paths relative
    /// to the manifest's folder).
    #[arg(long, conflicts_with = "ravdess", required_unless_present = "ravdess")]
    manifest: Option<PathBuf>,
    /// A RAVDESS speech folder (Actor_NN/03-01-EE-...wav).
    #[arg(long)]
    ravdess: Option<PathBuf>,
    /// Channel the training audio is passed through.
    #[arg(long, value_enum, default_value_t = TrainChannel::Both)]
    channel: TrainChannel,
    /// Add white noise at this SNR (dB) to the telephone copies.
    #[arg(long)]
    noise_snr_db: Option<f64>,
    /// Where to write the model (MODEL_CARD.md is written beside it).
    #[arg(long, default_value = DEFAULT_MODEL)]
    out: PathBuf,
    /// Also run leave-one-speaker-out on the training data and put the figures in the card.
    #[arg(long)]
    evaluate: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Model settings shared by `train` and `eval emotion` (defaults: [`TrainConfig::default`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Units of the hidden layer.
    #[arg(long)]
    hidden: Option<usize>,
    /// Networks per head (averaged).
    #[arg(long)]
    ensemble: Option<usize>,
    /// Gaussian noise (in standard deviations) added to the network inputs while training.
    #[arg(long)]
    input_noise: Option<f32>,
    /// The speaker network ignores the window's level against the baseline (for recordings
    /// whose level was normalised file by file, e.g. the EmoDB copy in ../shared/data).
    #[arg(long)]
    level_blind_baseline: bool,
}

impl ModelArgs {
    pub(super) fn config(&self) -> TrainConfig {
        let d = TrainConfig::default();
        TrainConfig {
            hidden: self.hidden.unwrap_or(d.hidden).clamp(1, 256),
            ensemble: self.ensemble.unwrap_or(d.ensemble).clamp(1, 64),
            input_noise: self.input_noise.unwrap_or(d.input_noise).max(0.0),
            level_blind_baseline: self.level_blind_baseline,
            ..d
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClassifyFormat {
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// WAV files; each is one window of one speaker (see --channel).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// All files are the same speaker: judge each against a baseline from all of them
    /// (unlabelled statistics only). Without it each file is judged cold.
    #[arg(long, conflicts_with = "live")]
    same_speaker: bool,
    /// Judge each window of a file against a live baseline of that file's earlier windows (as
    /// a live call would), instead of cold; adds `normalisation: "live"`.
    #[arg(long)]
    live: bool,
    /// Channel to analyse: 0 for mono files; for a stereo call, the caller's channel.
    #[arg(long, default_value_t = 0)]
    channel: usize,
    /// Emotion model file (JSON from `attune train`); the shipped model, embedded in the
    /// binary, when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ClassifyFormat::Jsonl)]
    format: ClassifyFormat,
}

#[derive(Debug, clap::Args)]
pub struct EvalEmotionArgs {
    /// A RAVDESS speech folder.
    #[arg(
        long,
        conflicts_with = "manifest",
        required_unless_present = "manifest"
    )]
    ravdess: Option<PathBuf>,
    /// Or a manifest CSV (path,label,speaker).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Pass every file (training and test) through the simulated telephone channel.
    #[arg(long)]
    telephone: bool,
    /// Add white noise at this SNR (dB) (with --telephone).
    #[arg(long)]
    noise_snr_db: Option<f64>,
    /// Also evaluate against each test speaker's own baseline (all their files, unlabelled).
    #[arg(long)]
    baseline: bool,
    /// Train each fold on the test channel and also on the recorded (wideband) copies of the
    /// training speakers' files, as `attune train --channel both` does.
    #[arg(long)]
    train_both: bool,
    /// Cross-corpus instead of leave-one-speaker-out: train on the whole --ravdess/--manifest
    /// corpus and test on this EmoDB folder (with `wav/`; German, other speakers).
    #[arg(long)]
    test_emodb: Option<PathBuf>,
    /// Judge only the first S seconds of speech of each test file (a short window, as the
    /// caller_upset onset path judges); the model is still trained on whole files unless
    /// --train-windows says otherwise.
    #[arg(long, value_name = "S")]
    window_speech_s: Option<f64>,
    /// With --window-speech-s: train on whole files (the shipped model), on the short windows,
    /// or on both.
    #[arg(long, value_enum, default_value_t = TrainWindows::Whole, requires = "window_speech_s")]
    train_windows: TrainWindows,
    /// Every fold also trains on this EmoDB folder (its speakers are never tested), through
    /// the test channel (and recorded with --train-both).
    #[arg(long, conflicts_with = "test_emodb")]
    train_emodb: Option<PathBuf>,
    /// Print JSON instead of text tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// What `eval emotion --window-speech-s` trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainWindows {
    Whole,
    Short,
    Both,
}

/// One corpus entry.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) path: PathBuf,
    pub(super) label: Label,
    pub(super) speaker: String,
}

pub(super) fn ravdess_entries(dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let actors =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut actor_dirs: Vec<PathBuf> = actors
        .filter_map(Result::ok)
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
        bail!(
            "no RAVDESS files (Actor_NN/03-01-EE-II-SS-RR-AA.wav) under {}",
            dir.display()
        );
    }
    Ok(entries)
}

/// The `.wav` files directly in `dir`, sorted by path.
fn wav_files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    Ok(files)
}

pub(super) fn emodb_entries(dir: &Path) -> anyhow::Result<Vec<Entry>> {
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
        bail!("no EmoDB files (wav/SSTTTEV.wav) under {}", dir.display());
    }
    Ok(entries)
}

fn manifest_entries(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
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
            bail!(
                "{} line {}: expected path,label,speaker, found {} field(s)",
                path.display(),
                n + 1,
                fields.len()
            );
        }
        let Some(label) = Label::parse(fields[1]) else {
            bail!(
                "{} line {}: unknown label {:?} (use one of angry, anxious, sad, happy, neutral, \
                 or anger, disgust, fear, sadness, boredom, happiness, calm, surprised)",
                path.display(),
                n + 1,
                fields[1]
            );
        };
        entries.push(Entry {
            path: base.join(fields[0]),
            label,
            speaker: fields[2].to_owned(),
        });
    }
    if entries.is_empty() {
        bail!("{} lists no files", path.display());
    }
    Ok(entries)
}

pub(super) fn condition_name(condition: ChannelCondition) -> String {
    match condition {
        ChannelCondition::AsRecorded => "recorded".to_owned(),
        ChannelCondition::Telephone { noise_snr_db: None } => "telephone".to_owned(),
        ChannelCondition::Telephone {
            noise_snr_db: Some(snr),
        } => format!("telephone+noise{snr}dB"),
    }
}

fn fnv(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
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
    let mut key = format!(
        "{CACHE_VERSION}|{}|{}",
        condition_name(condition),
        FEATURE_NAMES.join(",")
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
        .join(format!("{:016x}.json", fnv(&key)))
}

/// Functionals of every entry through `condition` (two threads; cached).
pub(super) fn extract_all(
    entries: &[Entry],
    condition: ChannelCondition,
) -> anyhow::Result<Vec<LabelledFunctionals>> {
    extract_all_windowed(entries, condition, None)
}

/// Functionals of the first window of `e`'s speech (`window_speech_s` of it; the whole file
/// when it holds less).
fn extract_first_window(
    e: &Entry,
    condition: ChannelCondition,
    window_speech_s: f64,
) -> anyhow::Result<FileFunctionals> {
    let samples = load_channel(&e.path, 0, condition)
        .with_context(|| format!("cannot analyse {}", e.path.display()))?;
    windowed_functionals(&samples, window_speech_s)
        .into_iter()
        .next()
        .with_context(|| format!("{}: no window", e.path.display()))
}

/// [`extract_all`], each file cut to its first `window_speech_s` of speech when given.
fn extract_all_windowed(
    entries: &[Entry],
    condition: ChannelCondition,
    window_speech_s: Option<f64>,
) -> anyhow::Result<Vec<LabelledFunctionals>> {
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
        let results: Vec<anyhow::Result<Vec<FileFunctionals>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = entries
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|e| match window_speech_s {
                                Some(w) => extract_first_window(e, condition, w),
                                None => extract_file(&e.path, 0, condition).with_context(|| {
                                    format!("cannot analyse {}", e.path.display())
                                }),
                            })
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| bail!("feature extraction thread panicked"))
                })
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

fn corpus(ravdess: Option<&Path>, manifest: Option<&Path>) -> anyhow::Result<Vec<Entry>> {
    match (ravdess, manifest) {
        (Some(dir), _) => ravdess_entries(dir),
        (None, Some(m)) => manifest_entries(m),
        (None, None) => bail!("give --ravdess DIR or --manifest CSV"),
    }
}

pub fn run_train(args: &TrainArgs) -> anyhow::Result<()> {
    let entries = corpus(args.ravdess.as_deref(), args.manifest.as_deref())?;
    let telephone = ChannelCondition::Telephone {
        noise_snr_db: args.noise_snr_db,
    };
    // The first condition is the one evaluated; recorded copies of `both` are extra training
    // data, named SPEAKER/recorded so their baselines stay apart from the telephone copies'.
    let mut primary = Vec::new();
    let mut extra = Vec::new();
    let mut conditions = Vec::new();
    if matches!(args.channel, TrainChannel::Telephone | TrainChannel::Both) {
        primary = extract_all(&entries, telephone)?;
        conditions.push(condition_name(telephone));
    }
    if matches!(args.channel, TrainChannel::Recorded | TrainChannel::Both) {
        let recorded = extract_all(&entries, ChannelCondition::AsRecorded)?;
        if primary.is_empty() {
            primary = recorded;
        } else {
            extra = recorded
                .into_iter()
                .map(|mut s| {
                    s.speaker.push_str("/recorded");
                    s
                })
                .collect();
        }
        conditions.push("recorded".to_owned());
    }
    let samples: Vec<LabelledFunctionals> = primary.iter().chain(&extra).cloned().collect();
    let condition = conditions.join("+");
    let config = args.model.config();
    let model = EmotionModel::train(&samples, &config, &condition);
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    attune_qa::files::save_model(&model, &args.out)?;
    eprintln!(
        "wrote {} ({} examples, {} speakers, {})",
        args.out.display(),
        model.training.examples,
        model.training.speakers,
        condition
    );
    let evaluation = if args.evaluate {
        let name = format!("{} (trained on {condition})", conditions[0]);
        let report = leave_one_speaker_out_augmented(&primary, &extra, &config, &name, true);
        let text = format_report(&report);
        print!("{text}");
        Some(text)
    } else {
        None
    };
    let card = args
        .out
        .parent()
        .unwrap_or(Path::new("."))
        .join("MODEL_CARD.md");
    std::fs::write(&card, model_card(&model, &args.out, evaluation.as_deref()))
        .with_context(|| format!("cannot write {}", card.display()))?;
    eprintln!("wrote {}", card.display());
    Ok(())
}

fn model_card(model: &EmotionModel, path: &Path, evaluation: Option<&str>) -> String {
    let per_label: Vec<String> = model
        .training
        .per_label
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let mut card = format!(
        "# Attune caller-emotion model (`{}`)\n\n\
         Generated by `attune train`; regenerate it the same way. Hand-written context lives in the\n\
         project README and `src/model/`.\n\n\
         ## Data\n\
         {} examples from {} speakers, channel: {}. Per label: {}.\n\
         RAVDESS (Livingstone & Russo 2018) is licensed CC BY-NC-SA 4.0: a model trained on it\n\
         inherits the non-commercial share-alike terms. Retrain on your own labelled calls with\n\
         `attune train --manifest calls.csv` (columns path,label,speaker).\n\n\
         ## Features\n\
         {} window-level functionals of one party's speech, computed by Attune's own signal core at 8 kHz:\n\
         {}.\n\n\
         ## Model\n\
         Two heads, each an ensemble of {} networks (one tanh hidden layer of {} units shared by a\n\
         5-class softmax head and a high-arousal sigmoid head; full-batch Adam, {} epochs, learning rate\n\
         {}, L2 {}, input noise {}, class-balanced losses):\n\
         - cold start: z-scores against the training population, absolute-level (gain) features withheld;\n\
         - speaker (used once the baseline holds {} s of speech): z-scores against the speaker's own\n\
           baseline{}, plus where the baseline itself sits in the training population (z-scores of its\n\
           mean, gain features withheld), so it can tell a calm baseline from an upset or a mixed one.\n\
           While training, every epoch shows each example against one of {} baselines drawn from its\n\
           speaker's files: all of them, a random subset, one emotion only, mostly low-arousal, mostly\n\
           high-arousal (a live call's baseline is the call so far, whatever the caller's state).\n\
         Architecture, epochs, learning rate and L2 were fixed a priori; the input noise, the baseline-drawing\n\
         scheme and the speaker network's inputs were chosen among a few variants on the leave-one-speaker-out\n\
         figures below (mild selection on these 20 speakers: expect slightly lower figures on new ones).\n\n\
         ## Class mapping\n\
         angry = anger + disgust (+ frustrated), anxious = fear, sad = sadness + boredom, happy = happiness,\n\
         neutral = neutral + calm; surprised is high arousal only. High arousal = anger, disgust, fear,\n\
         happiness, surprise. Valence = probability-weighted class prototypes (angry -0.8, anxious -0.6,\n\
         sad -0.7, happy 0.8, neutral 0.1). Classes: {}.\n\n\
         ## Abstention\n\
         Below {} s of speech (or 0.3 s of voiced speech) in a window the model says `unknown`.\n\n",
        path.display(),
        model.training.examples,
        model.training.speakers,
        model.training.condition,
        per_label.join(", "),
        FEATURE_COUNT,
        FEATURE_NAMES.join(", "),
        model.train_config.ensemble,
        model.train_config.hidden,
        model.train_config.epochs,
        model.train_config.learning_rate,
        model.train_config.weight_decay,
        model.train_config.input_noise,
        MIN_BASELINE_SPEECH_S,
        if model.train_config.level_blind_baseline {
            " (level features withheld: --level-blind-baseline)"
        } else {
            ""
        },
        model.train_config.baseline_draws,
        CLASS_NAMES.join(", "),
        MIN_SPEECH_S,
    );
    card.push_str("## Measured (leave-one-speaker-out on the training corpus)\n\n");
    match evaluation {
        Some(text) => {
            card.push_str("```text\n");
            card.push_str(text);
            card.push_str("```\n\n");
        }
        None => card.push_str("Not measured in this run (`attune train --evaluate`).\n\n"),
    }
    card.push_str(
        "## Intended use and known failure modes\n\
         Intended: a supervisor's cue for the caller's state and the agent's calmness over a call,\n\
         judged against each party's own baseline. Not for decisions about individuals.\n\
         - Trained on acted speech (two fixed sentences per actor): real callers' emotions are subtler and\n\
           the model will over-read acted-style intensity cues.\n\
         - Cold (no baseline) judgements confuse a naturally loud or high-pitched voice with arousal.\n\
         - Against a baseline of all of a speaker's emotions the speaker network is weaker than one trained\n\
           for that case only (telephone LOSO arousal 87.2 % against 90.0 % for the previous model): it was\n\
           trained for baselines of any mix (live calls), see the README.\n\
         - A baseline that is the call so far is judged for what it is (calm, upset, mixed), but it is only\n\
           the speaker's mean and spread: a call that alternates quickly between states blurs it.\n\
         - Level against the baseline is a strong cue: recordings normalised file by file (the EmoDB copy in\n\
           ../shared/data) invert it and the baseline judgement collapses (EmoDB arousal 52.9 %); train\n\
           with `--level-blind-baseline` for such material (74.1 %).\n\
         - Whole files are cut into windows of 2.5 s of speech and the windows averaged.\n\
         - English only in training; on German (EmoDB, telephone) arousal is 78.6 % cold but 5 classes only 35.2 %.\n\
         - Music, hold tones and crosstalk from the other party bias the features.\n",
    );
    card
}

fn finite_or_null(v: f32) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!((f64::from(v) * 1000.0).round() / 1000.0)
    } else {
        serde_json::Value::Null
    }
}

pub fn run_classify(args: &ClassifyArgs) -> anyhow::Result<()> {
    let model = attune_qa::files::model_or_embedded(args.model.as_deref())?;
    let mut results: Vec<(PathBuf, anyhow::Result<Vec<FileFunctionals>>)> = Vec::new();
    for file in &args.files {
        let r = load_channel(file, args.channel, ChannelCondition::AsRecorded)
            .map(|samples| windowed_functionals(&samples, WINDOW_SPEECH_S))
            .with_context(|| format!("cannot analyse {}", file.display()));
        results.push((file.clone(), r));
    }
    let mut baseline = SpeakerBaseline::new();
    if args.same_speaker {
        for (_, r) in &results {
            for w in r.iter().flatten() {
                baseline.add(&w.features, w.speech_s);
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0;
    for (file, r) in results {
        let line = match r {
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
                serde_json::json!({
                    "file": file.display().to_string(),
                    "emotion": "unknown",
                    "reason": format!("{e:#}"),
                    "probabilities": null,
                    "arousal": null,
                    "valence": null,
                    "calmness": null,
                    "confidence": 0.0,
                })
            }
            Ok(windows) => {
                let p = if args.live {
                    model.predict_windows_live(&windows).1
                } else {
                    model.predict_windows(&windows, args.same_speaker.then_some(&baseline))
                };
                let abstained = p.emotion.is_none();
                let probabilities: serde_json::Map<String, serde_json::Value> = CLASS_NAMES
                    .iter()
                    .zip(p.probabilities)
                    .map(|(n, v)| ((*n).to_owned(), finite_or_null(v)))
                    .collect();
                let when = |v: serde_json::Value| {
                    if abstained {
                        serde_json::Value::Null
                    } else {
                        v
                    }
                };
                serde_json::json!({
                    "file": file.display().to_string(),
                    "channel": args.channel,
                    "emotion": p.emotion.unwrap_or("unknown"),
                    "reason": p.abstain_reason,
                    "probabilities": when(serde_json::Value::Object(probabilities)),
                    "arousal": when(finite_or_null(p.arousal)),
                    "valence": when(finite_or_null(p.valence)),
                    "calmness": when(finite_or_null(p.calmness)),
                    "confidence": finite_or_null(p.confidence),
                    "normalisation": if args.live {
                        serde_json::json!("live")
                    } else {
                        serde_json::json!(p.normalisation)
                    },
                    "speech_s": (p.speech_s * 100.0).round() / 100.0,
                    "windows": windows.len(),
                })
            }
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    if failed > 0 {
        bail!(
            "{failed} of {} file(s) could not be analysed",
            args.files.len()
        );
    }
    Ok(())
}

/// Functionals of `entries` under `condition` (and as recorded with `also_recorded`), named
/// `SPEAKER/CONDITION`: training data that no fold ever tests.
fn training_only_copies(
    entries: &[Entry],
    condition: ChannelCondition,
    also_recorded: bool,
) -> anyhow::Result<Vec<LabelledFunctionals>> {
    let mut conditions = vec![condition];
    if also_recorded && condition != ChannelCondition::AsRecorded {
        conditions.push(ChannelCondition::AsRecorded);
    }
    let mut out = Vec::new();
    for c in conditions {
        let name = condition_name(c);
        out.extend(extract_all(entries, c)?.into_iter().map(|mut s| {
            s.speaker = format!("{}/{name}", s.speaker);
            s
        }));
    }
    Ok(out)
}

pub fn run_eval(args: &EvalEmotionArgs) -> anyhow::Result<()> {
    let entries = corpus(args.ravdess.as_deref(), args.manifest.as_deref())?;
    let condition = if args.telephone {
        ChannelCondition::Telephone {
            noise_snr_db: args.noise_snr_db,
        }
    } else {
        ChannelCondition::AsRecorded
    };
    let samples = extract_all(&entries, condition)?;
    let mut per_speaker: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &samples {
        *per_speaker.entry(s.speaker.as_str()).or_default() += 1;
    }
    let started = std::time::Instant::now();
    let mut extra = if args.train_both && condition != ChannelCondition::AsRecorded {
        extract_all(&entries, ChannelCondition::AsRecorded)?
            .into_iter()
            .map(|mut s| {
                s.speaker.push_str("/recorded");
                s
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut name = if extra.is_empty() {
        condition_name(condition)
    } else {
        format!("{} (trained on {0} + recorded)", condition_name(condition))
    };
    if let Some(dir) = &args.train_emodb {
        extra.extend(training_only_copies(
            &emodb_entries(dir)?,
            condition,
            args.train_both,
        )?);
        name.push_str(&format!("; every fold also trained on {}", dir.display()));
    }
    let report = if let Some(emodb) = &args.test_emodb {
        let test = extract_all(&emodb_entries(emodb)?, condition)?;
        cross_corpus(
            &samples,
            &extra,
            &test,
            &args.model.config(),
            &format!(
                "{name}; trained on all of it, tested on {}",
                emodb.display()
            ),
            args.baseline,
        )
    } else if let Some(w) = args.window_speech_s {
        if !(w.is_finite() && w > 0.0) {
            bail!("--window-speech-s {w}: need a number of seconds > 0");
        }
        let short = extract_all_windowed(&entries, condition, Some(w))?;
        let short_extra = if extra.is_empty() {
            Vec::new()
        } else {
            extract_all_windowed(&entries, ChannelCondition::AsRecorded, Some(w))?
                .into_iter()
                .map(|mut s| {
                    s.speaker.push_str("/recorded");
                    s
                })
                .collect()
        };
        let pools: Vec<&[LabelledFunctionals]> = match args.train_windows {
            TrainWindows::Whole => vec![&samples, &extra],
            TrainWindows::Short => vec![&short, &short_extra],
            TrainWindows::Both => vec![&samples, &extra, &short, &short_extra],
        };
        let train_name = match args.train_windows {
            TrainWindows::Whole => "whole files",
            TrainWindows::Short => "the same short windows",
            TrainWindows::Both => "whole files and the short windows",
        };
        leave_one_speaker_out_split(
            &short,
            &pools,
            &args.model.config(),
            &format!(
                "{name}; tested on the first {w} s of speech of each file, trained on {train_name}"
            ),
            args.baseline,
        )
    } else {
        leave_one_speaker_out_augmented(
            &samples,
            &extra,
            &args.model.config(),
            &name,
            args.baseline,
        )
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", format_report(&report));
    }
    eprintln!(
        "{} training speakers; trained and judged in {:.1} s",
        per_speaker.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
