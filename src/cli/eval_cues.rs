//! `attune eval cues [--folds K] [--generate N] [--seed S] [--minutes M] [--rules FILE]`:
//! speaker-disjoint cue accuracy ([`attune_lab::eval::cue_folds`]: one emotion model per fold of
//! RAVDESS actors, trained without them and cached, judging calls composed from them only).
//! This module holds the flags and the text report.
//!
//! `--in-sample` judges the same calls with the shipped model instead, which was trained on
//! every actor: it overstates, and is kept only to show by how much.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;

use attune_core::cues::CueRules;
use attune_core::dsp::vad::VadConfig;
use attune_lab::compose;
use attune_lab::eval::cue_folds::{self, CueEvalConfig, Judge, SpeakerDisjointCueReport, targets};
use attune_lab::eval::fold_models::{FoldCorpus, FoldTraining};
use attune_lab::eval::folds::DEFAULT_FOLDS;

use super::emotion::ModelArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct EvalCuesArgs {
    /// Folds over the RAVDESS actors (5: 4 held-out actors per fold).
    #[arg(long, default_value_t = DEFAULT_FOLDS)]
    folds: usize,
    /// Run only these folds (0-based, comma-separated), e.g. to tune rules on some folds and
    /// report on the others.
    #[arg(long, value_delimiter = ',')]
    only_folds: Option<Vec<usize>>,
    /// Compose N calls per fold (cycling: upset caller, calm caller, anxious caller).
    #[arg(long, default_value_t = 24)]
    generate: usize,
    /// Seed of the generated calls.
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Length of each call, minutes.
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// Cue rules (TOML); the shipped rules/cues.toml otherwise.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// In-sample, overstates: judge every fold's calls with --model (trained on all actors,
    /// the test callers included) instead of fold models.
    #[arg(long)]
    in_sample: bool,
    /// The emotion model of --in-sample (JSON from `attune train`); the shipped model, embedded
    /// in the binary, when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Fold models also train on this EmoDB folder (its speakers are never test callers).
    #[arg(long)]
    train_emodb: Option<PathBuf>,
    /// Fold models also train on telephone copies with white noise at this SNR, dB.
    #[arg(long)]
    train_noise_snr_db: Option<f64>,
    #[command(flatten)]
    train: ModelArgs,
    /// The corpora folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the composed calls (WAV, truth and spec) in this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Voice-activity thresholds as JSON (fields of VadConfig; missing ones keep their
    /// default), on both channels.
    #[arg(long)]
    vad_config: Option<String>,
    /// List every call.
    #[arg(long)]
    verbose: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// How the in-sample model is named in the report.
fn model_label(args: &EvalCuesArgs) -> String {
    args.model.as_ref().map_or_else(
        || "the shipped model (models/emotion.json, embedded)".to_owned(),
        |p| p.display().to_string(),
    )
}

/// Where fold models are cached: `target/attune-folds/` (or under `$CARGO_TARGET_DIR`).
pub(super) fn fold_cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("attune-folds")
}

pub fn run(args: &EvalCuesArgs) -> anyhow::Result<()> {
    let rules = match &args.rules {
        Some(path) => attune_qa::files::load_cue_rules(path)?,
        None => CueRules::default(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(compose::spec::DEFAULT_DATA_DIR));
    let vad: VadConfig = match &args.vad_config {
        Some(json) => serde_json::from_str(json).context("--vad-config")?,
        None => VadConfig::default(),
    };
    let config = CueEvalConfig {
        folds: args.folds,
        only_folds: args.only_folds.clone(),
        calls_per_fold: args.generate,
        seed: args.seed,
        minutes: args.minutes,
        rules,
        vad,
        work_dir: args.out.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "attune-eval-cues-{}-{}",
                std::process::id(),
                args.seed
            ))
        }),
        keep_calls: args.out.is_some(),
        data_dir,
    };
    // Flags are checked before the corpora are read.
    config.validate()?;
    let judge = if args.in_sample {
        Judge::InSample {
            model: Arc::new(
                attune_qa::files::model_or_embedded(args.model.as_deref())
                    .context("cannot load the emotion model")?,
            ),
            label: model_label(args),
        }
    } else {
        Judge::FoldModels(FoldCorpus::load(
            &config.data_dir.join("ravdess"),
            FoldTraining {
                config: args.train.config(),
                emodb: args.train_emodb.clone(),
                noise_snr_db: args.train_noise_snr_db,
            },
            fold_cache_dir(),
        )?)
    };
    let report = cue_folds::evaluate(&config, &judge, |line| eprintln!("{line}"))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", text(&report, args.verbose)),
    }
    Ok(())
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2} s"))
}

fn fig(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "-".to_owned()
    }
}

/// The text report.
fn text(r: &SpeakerDisjointCueReport, verbose: bool) -> String {
    let mut t = String::new();
    let mut line = |s: String| {
        t.push_str(&s);
        t.push('\n');
    };
    line(format!(
        "{}; rules {}; seed {}; {} calls per fold of {} min",
        r.protocol, r.rules_version, r.seed, r.calls_per_fold, r.minutes_per_call
    ));
    for f in &r.folds {
        let c = &f.counts;
        line(format!(
            "fold {} (actors {:?}): upset {}/{} within 3 s, {}/{} within 10 s, {} opened before the anger; \
             calm {:.1} min: false caller_upset {}, caller_anxious {}, any cue {}; anxious flagged {}/{} \
             (caller_upset on them {}); timeline angry->angry {}/{}, calm->angry {}/{}",
            f.fold,
            f.held_out_actors,
            c.upset_flagged_within_3_s,
            c.upset_calls,
            c.upset_flagged_within_10_s,
            c.upset_calls,
            c.upset_opened_before_anger,
            c.calm_call_minutes,
            c.false_caller_upset_on_calm_calls,
            c.false_caller_anxious_on_calm_calls,
            c.false_cues_any_kind_on_calm_calls,
            c.anxious_flagged,
            c.anxious_calls,
            c.caller_upset_on_anxious_calls,
            c.timeline.angry_turns_read_angry,
            c.timeline.angry_turns,
            c.timeline.calm_turns_read_angry,
            c.timeline.calm_turns,
        ));
        if verbose {
            for call in &f.calls {
                let opened: Vec<String> = call
                    .cues
                    .opened
                    .iter()
                    .map(|(k, n)| format!("{}x{n}", k.as_str()))
                    .collect();
                let role = match (call.cues.upset_stretch_s, &call.anxious) {
                    (Some((s, e)), _) => format!(
                        "upset {s:.1}-{e:.1} s, delay {}",
                        opt_s(call.cues.upset_delay_s)
                    ),
                    (None, Some(a)) => format!(
                        "anxious {:.1}-{:.1} s, delay {}",
                        a.anxious_stretch_s.0,
                        a.anxious_stretch_s.1,
                        opt_s(a.anxious_delay_s)
                    ),
                    _ => "calm".to_owned(),
                };
                let false_cues: Vec<String> = call
                    .cues
                    .false_cues
                    .iter()
                    .map(|(k, t)| format!("{}@{t:.1}", k.as_str()))
                    .collect();
                line(format!(
                    "  {} actor {:?} {:.0} s {role}; false [{}]; opened [{}]",
                    call.name,
                    call.caller_actor,
                    call.cues.duration_s,
                    false_cues.join(" "),
                    opened.join(" ")
                ));
            }
        }
    }
    let c = &r.pooled_counts;
    line(format!(
        "pooled: {} calls: {} upset, {} calm ({:.1} min), {} anxious",
        c.calls, c.upset_calls, c.calm_calls, c.calm_call_minutes, c.anxious_calls
    ));
    line(format!(
        "  {:<42} {:>8} {:>8} {:>8} {:>8}   target",
        "figure", "pooled", "fold min", "fold max", "fold sd"
    ));
    let targets = targets();
    for (name, s) in &r.pooled {
        line(format!(
            "  {name:<42} {:>8} {:>8} {:>8} {:>8}   {}",
            fig(s.pooled),
            fig(s.fold_min),
            fig(s.fold_max),
            fig(s.fold_sd),
            targets.get(name).unwrap_or(&"")
        ));
    }
    t
}
