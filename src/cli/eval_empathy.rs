//! `attune eval empathy [--folds K] [--generate N] [--seed S]`: how well each empathy measure
//! separates the scripted behaviours of `attune_lab::compose::empathy`, on callers the judging
//! model never heard: the RAVDESS actors are split into K folds as `attune eval cues` splits
//! them, each fold's calls use only its actors and are judged by the fold model trained without
//! them ([`attune_lab::eval::fold_models`]). Evaluation logic: [`attune_lab::eval::empathy`]; here only the
//! arguments, the fold loop and the printing.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;

use attune_core::cues::CueRules;
use attune_lab::compose::random::Catalog;
use attune_lab::compose::{self, SourceCache};
use attune_lab::eval::cue_folds::{caller_folds, catalog_actor};
use attune_lab::eval::empathy::{ComparisonResult, EmpathyCall, compare, evaluate_calls};
use attune_lab::eval::folds::DEFAULT_FOLDS;

use super::EvalFormat;
use super::emotion::ModelArgs;
use attune_lab::eval::fold_models::{FoldCorpus, FoldTraining};

#[derive(Debug, clap::Args)]
pub struct EvalEmpathyArgs {
    /// Folds over the RAVDESS actors (5: 4 held-out actors per fold).
    #[arg(long, default_value_t = DEFAULT_FOLDS)]
    folds: usize,
    /// Run only these folds (0-based, comma-separated).
    #[arg(long, value_delimiter = ',')]
    only_folds: Option<Vec<usize>>,
    /// Scripted calls per fold, cycling through the 6 scripted cases.
    #[arg(long, default_value_t = 12)]
    generate: usize,
    /// Seed of the scripted calls.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cue rules (TOML); the shipped rules/cues.toml otherwise.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// In-sample, overstates: judge every fold's calls with --model (trained on all actors).
    #[arg(long)]
    in_sample: bool,
    /// The model of --in-sample; the shipped one when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    train: ModelArgs,
    /// The corpora folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the composed calls (WAV, truth and spec) in this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// List every call's measures.
    #[arg(long)]
    verbose: bool,
    #[arg(long, value_enum, default_value_t = EvalFormat::Text)]
    format: EvalFormat,
}

/// The whole evaluation.
#[derive(Debug, Serialize)]
struct EmpathyEvalReport {
    protocol: String,
    rules_version: String,
    seed: u64,
    calls_per_fold: usize,
    comparisons: Vec<ComparisonResult>,
    calls: Vec<EmpathyCall>,
}

pub fn run(args: &EvalEmpathyArgs) -> anyhow::Result<()> {
    if args.generate == 0 {
        bail!("--generate must be at least 1");
    }
    let rules = match &args.rules {
        Some(path) => attune_qa::files::load_cue_rules(path)?,
        None => CueRules::default(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(compose::spec::DEFAULT_DATA_DIR));
    let catalog = Catalog::scan(&data_dir)
        .with_context(|| format!("cannot list the corpora in {}", data_dir.display()))?;
    let folds = caller_folds(&catalog, args.folds);
    if let Some(bad) = args
        .only_folds
        .iter()
        .flatten()
        .find(|f| **f >= folds.len())
    {
        bail!("--only-folds {bad}: there are {} folds", folds.len());
    }
    let shipped = if args.in_sample {
        Some(Arc::new(
            attune_qa::files::model_or_embedded(args.model.as_deref())
                .context("cannot load the emotion model")?,
        ))
    } else {
        None
    };
    let corpus = if args.in_sample {
        None
    } else {
        Some(FoldCorpus::load(
            &data_dir.join("ravdess"),
            FoldTraining {
                config: args.train.config(),
                emodb: None,
                noise_snr_db: None,
            },
            super::eval_cues::fold_cache_dir(),
        )?)
    };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut cache = SourceCache::new(&data_dir, 8_000, true);
    let mut calls = Vec::new();
    for (fold, held_out) in folds.iter().enumerate() {
        if args
            .only_folds
            .as_ref()
            .is_some_and(|only| !only.contains(&fold))
        {
            continue;
        }
        let model = match (&shipped, &corpus) {
            (Some(m), _) => Arc::clone(m),
            (None, Some(c)) => Arc::new(c.model_without(held_out)?.0),
            (None, None) => unreachable!("a model or a corpus is loaded"),
        };
        let fold_catalog = Catalog {
            agents: catalog.agents.clone(),
            callers: catalog
                .callers
                .iter()
                .filter(|c| catalog_actor(c).is_some_and(|a| held_out.contains(&a)))
                .cloned()
                .collect(),
        };
        let started = std::time::Instant::now();
        calls.extend(
            evaluate_calls(
                &model,
                &rules,
                &fold_catalog,
                &mut cache,
                args.seed,
                fold,
                args.generate,
                args.out.as_deref(),
            )
            .with_context(|| format!("fold {fold}"))?,
        );
        eprintln!(
            "fold {fold} (actors {held_out:?}): {} calls in {:.0} s",
            args.generate,
            started.elapsed().as_secs_f64()
        );
    }
    let report = EmpathyEvalReport {
        protocol: if args.in_sample {
            "in-sample (overstates): every fold judged by the shipped model".to_owned()
        } else {
            format!(
                "speaker-disjoint ({} folds over RAVDESS actors; each fold's callers judged by a model trained without them)",
                folds.len()
            )
        },
        rules_version: rules.version.clone(),
        seed: args.seed,
        calls_per_fold: args.generate,
        comparisons: compare(&calls),
        calls,
    };
    match args.format {
        EvalFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        EvalFormat::Text => print!("{}", text(&report, args.verbose)),
    }
    Ok(())
}

fn text(r: &EmpathyEvalReport, verbose: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "empathy measures on scripted calls: {}, rules {}, seed {}, {} calls",
        r.protocol,
        r.rules_version,
        r.seed,
        r.calls.len()
    );
    let _ = writeln!(
        s,
        "{:<64} {:<44} {:>6} {:>11} {:>11} {:>10} {:>10}",
        "behaviour (better vs worse)",
        "measure",
        "AUC",
        "n better",
        "n worse",
        "mean bet.",
        "mean wor."
    );
    for c in &r.comparisons {
        let n = |have: usize, missing: usize| {
            if missing > 0 {
                format!("{have} (+{missing} -)")
            } else {
                have.to_string()
            }
        };
        let _ = writeln!(
            s,
            "{:<64} {:<44} {:>6.3} {:>11} {:>11} {:>10.2} {:>10.2}",
            c.comparison.behaviour,
            c.comparison.measure,
            c.auc,
            n(c.better_n, c.better_missing),
            n(c.worse_n, c.worse_missing),
            c.better_mean,
            c.worse_mean
        );
    }
    let _ = writeln!(
        s,
        "AUC: probability that a call of the better case gets the better value (ties half); (+k -): calls without a value (e.g. caller_upset never opened)"
    );
    let upset = r
        .calls
        .iter()
        .filter(|c| c.measures.caller_upset_opened)
        .count();
    let _ = writeln!(
        s,
        "caller_upset opened on {upset} of {} calls",
        r.calls.len()
    );
    if verbose {
        for c in &r.calls {
            let _ = writeln!(
                s,
                "{} {}",
                c.name,
                serde_json::to_string(&c.measures).unwrap_or_default()
            );
        }
    }
    s
}
