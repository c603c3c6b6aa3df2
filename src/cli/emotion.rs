//! `attune train`, `attune classify` and `attune eval emotion`: the caller-emotion and
//! agent-calmness model from the command line. Corpora and their cached functionals come from
//! [`attune_lab::corpus`], the model card from [`attune_lab::model_card`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

use attune_core::model::emotion::{EmotionModel, LabelledFunctionals};
use attune_core::model::labels::CLASS_NAMES;
use attune_core::model::mlp::TrainConfig;
use attune_core::prosody::baseline::SpeakerBaseline;
use attune_core::prosody::windows::{FileFunctionals, WINDOW_SPEECH_S, windowed_functionals};
use attune_lab::corpus::{
    Entry, condition_name, emodb_entries, extract_all, extract_all_windowed, manifest_entries,
    ravdess_entries,
};
use attune_lab::eval::emotion::{
    cross_corpus, format_report, leave_one_speaker_out_augmented, leave_one_speaker_out_split,
};
use attune_lab::extract::{ChannelCondition, load_channel};

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

fn corpus(ravdess: Option<&Path>, manifest: Option<&Path>) -> anyhow::Result<Vec<Entry>> {
    match (ravdess, manifest) {
        (Some(dir), _) => Ok(ravdess_entries(dir)?),
        (None, Some(m)) => Ok(manifest_entries(m)?),
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
    std::fs::write(
        &card,
        attune_lab::model_card::render(&model, &args.out, evaluation.as_deref()),
    )
    .with_context(|| format!("cannot write {}", card.display()))?;
    eprintln!("wrote {}", card.display());
    Ok(())
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
