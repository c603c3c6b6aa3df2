//! `attune eval cues [--generate N] [--seed S] [--minutes M] [--rules FILE]`: composes calls
//! with a scripted caller mood (even-numbered calls upset, odd-numbered calm), runs each through
//! `analyze_recording` exactly as a recorded call, and prints the caller_upset delay on upset
//! calls and the false cues per 10 minutes on calm calls (definitions in
//! [`attune_lab::eval::cues`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::ValueEnum;

use attune_core::call::{CallConfig, analyze_recording};
use attune_core::cues::{CueEvent, CueRules};
use attune_core::model::emotion::EmotionModel;
use attune_core::rng::SplitMix64;
use attune_lab::compose::random::{CallerArc, Catalog, RandomCallConfig, random_spec};
use attune_lab::compose::{self, SourceCache};
use attune_lab::eval::cues::{self as eval, CueEvalReport, TARGET_DELAY_S};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct EvalCuesArgs {
    /// Compose N calls (even-numbered: an upset caller; odd-numbered: a calm caller).
    #[arg(long, default_value_t = 20)]
    generate: usize,
    /// Seed of the generated calls (README figures: seed 2; rules tuned on seeds 1 and 5).
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Length of each call, minutes.
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// Cue rules (TOML); the shipped rules/cues.toml otherwise.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Emotion model file (JSON from `attune train`); the shipped model, embedded in the
    /// binary, when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The corpora folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the composed calls (WAV, truth and spec) in this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// List every call.
    #[arg(long)]
    verbose: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: &EvalCuesArgs) -> anyhow::Result<()> {
    if args.generate == 0 {
        bail!("--generate must be at least 1");
    }
    if !(args.minutes.is_finite() && (1.0..=60.0).contains(&args.minutes)) {
        bail!("--minutes {}: need 1 <= M <= 60", args.minutes);
    }
    let rules = match &args.rules {
        Some(path) => attune_qa::files::load_cue_rules(path)?,
        None => CueRules::default(),
    };
    let model = Arc::new(
        attune_qa::files::model_or_embedded(args.model.as_deref())
            .context("cannot load the emotion model")?,
    );
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(compose::spec::DEFAULT_DATA_DIR));
    let catalog = Catalog::scan(&data_dir)
        .with_context(|| format!("cannot list the corpora in {}", data_dir.display()))?;
    let (dir, temporary) = match &args.out {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "attune-eval-cues-{}-{}",
                std::process::id(),
                args.seed
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = evaluate(args, &rules, &model, &catalog, &data_dir, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = result?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", text(&report, args, args.verbose)),
    }
    Ok(())
}

/// The scripted mood of call `index`: upset for even indices (onset 20 s..40 % of the call,
/// 25-45 s of upset speech, 2-6 dB louder), calm for odd ones.
fn caller_arc(seed: u64, index: u64, duration_s: f64) -> CallerArc {
    if index % 2 == 1 {
        return CallerArc::Calm;
    }
    let mut rng = SplitMix64::new(seed ^ 0x00c0_ffee).fork(index);
    let latest_onset_s = (0.4 * duration_s).max(25.0);
    CallerArc::Upset {
        onset_s: (rng.range(20.0, latest_onset_s) * 10.0).round() / 10.0,
        upset_s: (rng.range(25.0, 45.0) * 10.0).round() / 10.0,
        level_offset_db: (rng.range(2.0, 6.0) * 10.0).round() / 10.0,
    }
}

fn evaluate(
    args: &EvalCuesArgs,
    rules: &CueRules,
    model: &Arc<EmotionModel>,
    catalog: &Catalog,
    data_dir: &Path,
    dir: &Path,
) -> anyhow::Result<CueEvalReport> {
    let base = RandomCallConfig {
        seed: args.seed,
        min_minutes: args.minutes,
        max_minutes: args.minutes,
        ..RandomCallConfig::default()
    };
    let mut cache = SourceCache::new(data_dir, base.sample_rate_hz, base.telephone);
    let mut results = Vec::with_capacity(args.generate);
    for index in 0..args.generate as u64 {
        let config = RandomCallConfig {
            caller_arc: Some(caller_arc(args.seed, index, args.minutes * 60.0)),
            ..base.clone()
        };
        let name = format!("call_{index:03}");
        let wav = dir.join(format!("{name}.wav"));
        let spec = random_spec(&config, index, catalog, &mut cache)
            .with_context(|| format!("cannot plan {name}"))?;
        let call = compose::compose_with(&spec, &mut cache)
            .with_context(|| format!("cannot compose {name}"))?;
        compose::write_call(&call, &wav)?;
        if args.out.is_some() {
            let spec_path = dir.join(format!("{name}.spec.json"));
            std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)? + "\n")
                .with_context(|| format!("cannot write {}", spec_path.display()))?;
        }
        let truth = call.annotation;
        let mut reader = attune_qa::files::open_wav(&wav)
            .with_context(|| format!("cannot read {}", wav.display()))?;
        let config = CallConfig {
            agent_channel: usize::from(truth.agent_channel),
            rules: rules.clone(),
            ..CallConfig::default()
        };
        let path = wav.display().to_string();
        let mut cues: Vec<CueEvent> = Vec::new();
        analyze_recording(
            &mut reader,
            config,
            Arc::clone(model),
            |e| {
                if let attune_core::call::CallEvent::Cue(c) = e {
                    cues.push(c.clone());
                }
            },
            |_| {},
        )
        .with_context(|| format!("cannot analyse {path}"))?;
        if args.out.is_none() {
            let _ = std::fs::remove_file(&wav);
            let _ = std::fs::remove_file(wav.with_extension("truth.json"));
        }
        results.push(eval::score_call(&name, &truth, &cues, rules));
    }
    Ok(eval::report(results, rules))
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2} s"))
}

/// The text report.
fn text(r: &CueEvalReport, args: &EvalCuesArgs, verbose: bool) -> String {
    let mut t = String::new();
    let mut line = |s: String| {
        t.push_str(&s);
        t.push('\n');
    };
    line(format!(
        "rules {}  seed {}  {} calls of {} min",
        r.rules_version,
        args.seed,
        r.calls.len(),
        args.minutes
    ));
    line(format!(
        "upset calls {}: caller_upset within {TARGET_DELAY_S} s of sustained angry speech {}/{}, flagged at all {}, missed {}, opened before the anger {}",
        r.upset_calls,
        r.upset_flagged_within_target,
        r.upset_calls,
        r.upset_flagged,
        r.upset_missed,
        r.upset_early_opens
    ));
    line(format!(
        "  delay median {}  p90 {}  max {}",
        opt_s(r.upset_delay_median_s),
        opt_s(r.upset_delay_p90_s),
        opt_s(r.upset_delay_max_s)
    ));
    line(format!(
        "calm calls {} ({:.1} min): false cues {} = {:.2} per 10 min (target <= 1); true timing cues {}",
        r.calm_calls,
        r.calm_minutes,
        r.calm_false_total,
        r.calm_false_per_10_min,
        r.calm_true_timing_cues
    ));
    for (kind, n) in &r.calm_false_by_kind {
        line(format!(
            "  {:<26} {:>3}  {:.2} per 10 min",
            kind.as_str(),
            n,
            *n as f64 / r.calm_minutes.max(1e-9) * 10.0
        ));
    }
    if verbose {
        for c in &r.calls {
            let opened: Vec<String> = c
                .opened
                .iter()
                .map(|(k, n)| format!("{}x{n}", k.as_str()))
                .collect();
            let role = match c.upset_stretch_s {
                Some((s, e)) => format!("upset {s:.1}-{e:.1} s, delay {}", opt_s(c.upset_delay_s)),
                None => "calm".to_owned(),
            };
            let false_cues: Vec<String> = c
                .false_cues
                .iter()
                .map(|(k, t)| format!("{}@{t:.1}", k.as_str()))
                .collect();
            line(format!(
                "{} {:.0} s {role}; false [{}]; opened [{}]",
                c.name,
                c.duration_s,
                false_cues.join(" "),
                opened.join(" ")
            ));
        }
    }
    t
}
