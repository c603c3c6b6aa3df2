//! `attune eval cues [--folds K] [--generate N] [--seed S] [--minutes M] [--rules FILE]`:
//! speaker-disjoint cue accuracy. The RAVDESS actors are split into K folds
//! ([`attune_lab::eval::folds::speaker_folds`]); for each fold the emotion model is trained as
//! `attune train` trains it but without the fold's actors (cached, [`super::folds`]), and N calls
//! are composed with callers from the fold's actors only, cycling through an upset caller, a calm
//! caller and an anxious caller. Each call runs through `analyze_recording` exactly as a recorded
//! call. Figures per fold and pooled, with their spread over folds (definitions in
//! [`attune_lab::eval::cues`] and [`attune_lab::eval::caller`]).
//!
//! `--in-sample` judges the same calls with the shipped model instead, which was trained on
//! every actor: it overstates, and is kept only to show by how much.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::Serialize;

use attune_core::call::{CallConfig, CallEvent, EmotionPoint, analyze_recording};
use attune_core::cues::{CueEvent, CueKind, CueRules};
use attune_core::dialog::Speaker;
use attune_core::model::emotion::EmotionModel;
use attune_core::rng::SplitMix64;
use attune_lab::compose::random::{CallerArc, Catalog, RandomCallConfig, random_spec};
use attune_lab::compose::{self, SourceCache};
use attune_lab::eval::caller::{
    AnxiousCallResult, TimelineCounts, score_anxious_call, timeline_counts,
};
use attune_lab::eval::cues::{self as eval, CallCueResult, TARGET_DELAY_S};
use attune_lab::eval::folds::{DEFAULT_FOLDS, Spread, pct, per_10_min, ravdess_sex, speaker_folds};

use super::emotion::ModelArgs;
use super::folds::{FoldCorpus, FoldTraining};

/// The second delay target: every upset caller flagged within this long, seconds.
const ALL_FLAGGED_DELAY_S: f64 = 10.0;

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

/// The scripted mood of call `index`: index % 3 = 0 upset, 1 calm, 2 anxious. Upset and anxious
/// stretches: onset 20 s..40 % of the call, 25-45 s long, 2-6 dB louder.
fn caller_arc(seed: u64, index: u64, duration_s: f64) -> CallerArc {
    let mut rng = SplitMix64::new(seed ^ 0x00c0_ffee).fork(index);
    let latest_onset_s = (0.4 * duration_s).max(25.0);
    let onset_s = (rng.range(20.0, latest_onset_s) * 10.0).round() / 10.0;
    let stretch_s = (rng.range(25.0, 45.0) * 10.0).round() / 10.0;
    let level_offset_db = (rng.range(2.0, 6.0) * 10.0).round() / 10.0;
    match index % 3 {
        0 => CallerArc::Upset {
            onset_s,
            upset_s: stretch_s,
            level_offset_db,
        },
        1 => CallerArc::Calm,
        _ => CallerArc::Anxious {
            onset_s,
            anxious_s: stretch_s,
            level_offset_db,
        },
    }
}

/// The RAVDESS actor of a catalog caller (`ravdess/Actor_07/...` → 7).
fn catalog_actor(files: &[(u8, String)]) -> Option<u32> {
    let (_, path) = files.first()?;
    path.split('/')
        .find_map(|p| p.strip_prefix("Actor_"))
        .and_then(|n| n.parse().ok())
}

/// Counts over a set of calls; every figure is computed from them, so pooling is summing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CueCounts {
    pub calls: usize,
    pub upset_calls: usize,
    pub upset_flagged_within_3_s: usize,
    pub upset_flagged_within_10_s: usize,
    /// caller_upset opened before the first angry utterance of an upset call.
    pub upset_opened_before_anger: usize,
    pub calm_calls: usize,
    pub calm_call_minutes: f64,
    pub false_caller_upset_on_calm_calls: usize,
    pub false_caller_anxious_on_calm_calls: usize,
    /// Every false cue on calm calls, all kinds (see `attune_lab::eval::cues`).
    pub false_cues_any_kind_on_calm_calls: usize,
    pub anxious_calls: usize,
    pub anxious_flagged: usize,
    pub caller_anxious_opened_before_fear: usize,
    pub caller_upset_on_anxious_calls: usize,
    pub caller_anxious_on_upset_calls: usize,
    pub timeline: TimelineCounts,
}

/// The headline figures of a [`CueCounts`].
fn figures(c: &CueCounts) -> Vec<(&'static str, f64)> {
    let t = &c.timeline;
    vec![
        (
            "false_caller_upset_per_10_min_calm",
            per_10_min(c.false_caller_upset_on_calm_calls, c.calm_call_minutes),
        ),
        (
            "upset_flagged_within_3_s_pct",
            pct(c.upset_flagged_within_3_s, c.upset_calls),
        ),
        (
            "upset_flagged_within_10_s_pct",
            pct(c.upset_flagged_within_10_s, c.upset_calls),
        ),
        (
            "caller_anxious_recall_pct",
            pct(c.anxious_flagged, c.anxious_calls),
        ),
        (
            "false_caller_anxious_per_10_min_calm",
            per_10_min(c.false_caller_anxious_on_calm_calls, c.calm_call_minutes),
        ),
        (
            "false_cues_any_kind_per_10_min_calm",
            per_10_min(c.false_cues_any_kind_on_calm_calls, c.calm_call_minutes),
        ),
        (
            "timeline_angry_turns_read_angry_pct",
            pct(t.angry_turns_read_angry, t.angry_turns),
        ),
        (
            "timeline_angry_turns_read_happy_pct",
            pct(t.angry_turns_read_happy, t.angry_turns),
        ),
        (
            "timeline_calm_turns_read_angry_pct",
            pct(t.calm_turns_read_angry, t.calm_turns),
        ),
        (
            "timeline_anxious_turns_read_anxious_pct",
            pct(t.anxious_turns_read_anxious, t.anxious_turns),
        ),
    ]
}

impl CueCounts {
    fn add(&mut self, o: &Self) {
        self.calls += o.calls;
        self.upset_calls += o.upset_calls;
        self.upset_flagged_within_3_s += o.upset_flagged_within_3_s;
        self.upset_flagged_within_10_s += o.upset_flagged_within_10_s;
        self.upset_opened_before_anger += o.upset_opened_before_anger;
        self.calm_calls += o.calm_calls;
        self.calm_call_minutes += o.calm_call_minutes;
        self.false_caller_upset_on_calm_calls += o.false_caller_upset_on_calm_calls;
        self.false_caller_anxious_on_calm_calls += o.false_caller_anxious_on_calm_calls;
        self.false_cues_any_kind_on_calm_calls += o.false_cues_any_kind_on_calm_calls;
        self.anxious_calls += o.anxious_calls;
        self.anxious_flagged += o.anxious_flagged;
        self.caller_anxious_opened_before_fear += o.caller_anxious_opened_before_fear;
        self.caller_upset_on_anxious_calls += o.caller_upset_on_anxious_calls;
        self.caller_anxious_on_upset_calls += o.caller_anxious_on_upset_calls;
        self.timeline.add(&o.timeline);
    }
}

/// One evaluated call.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluatedCall {
    pub name: String,
    /// "upset", "calm" or "anxious".
    pub caller_mood: &'static str,
    pub caller_actor: Option<u32>,
    pub cues: CallCueResult,
    pub anxious: Option<AnxiousCallResult>,
    pub timeline: TimelineCounts,
}

/// One fold.
#[derive(Debug, Clone, Serialize)]
pub struct FoldReport {
    pub fold: usize,
    pub held_out_actors: Vec<u32>,
    /// What judged the calls: "trained without the held-out actors" or the in-sample model.
    pub model: String,
    pub counts: CueCounts,
    pub figures: BTreeMap<&'static str, f64>,
    pub calls: Vec<EvaluatedCall>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct SpeakerDisjointCueReport {
    /// "speaker-disjoint (K folds over RAVDESS actors)" or "in-sample (overstates)".
    pub protocol: String,
    pub rules_version: String,
    pub seed: u64,
    pub minutes_per_call: f64,
    pub calls_per_fold: usize,
    pub pooled_counts: CueCounts,
    /// Pooled figure with the spread of the per-fold figures.
    pub pooled: BTreeMap<&'static str, Spread>,
    pub folds: Vec<FoldReport>,
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
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(compose::spec::DEFAULT_DATA_DIR));
    let catalog = Catalog::scan(&data_dir)
        .with_context(|| format!("cannot list the corpora in {}", data_dir.display()))?;
    let actors: Vec<u32> = catalog
        .callers
        .iter()
        .filter_map(|c| catalog_actor(c))
        .collect();
    let folds = speaker_folds(&actors, args.folds, ravdess_sex);
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
                emodb: args.train_emodb.clone(),
                noise_snr_db: args.train_noise_snr_db,
            },
        )?)
    };
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
    let mut reports = Vec::new();
    let mut result = Ok(());
    for (fold, held_out) in folds.iter().enumerate() {
        if args
            .only_folds
            .as_ref()
            .is_some_and(|only| !only.contains(&fold))
        {
            continue;
        }
        let (model, model_name) = match (&shipped, &corpus) {
            (Some(m), _) => (Arc::clone(m), format!("{} (in-sample)", model_label(args))),
            (None, Some(c)) => match c.model_without(held_out) {
                Ok(m) => (
                    Arc::new(m),
                    "trained without the held-out actors".to_owned(),
                ),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            },
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
        match evaluate_fold(args, &rules, &model, &fold_catalog, &data_dir, &dir, fold) {
            Ok(calls) => reports.push(fold_report(fold, held_out, model_name, calls)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    let mut pooled_counts = CueCounts::default();
    for r in &reports {
        pooled_counts.add(&r.counts);
    }
    let pooled = figures(&pooled_counts)
        .into_iter()
        .map(|(name, value)| {
            let per_fold: Vec<f64> = reports.iter().map(|r| r.figures[name]).collect();
            (name, Spread::new(value, &per_fold))
        })
        .collect();
    let report = SpeakerDisjointCueReport {
        protocol: if args.in_sample {
            format!(
                "in-sample (overstates): every fold judged by {}",
                model_label(args)
            )
        } else {
            format!(
                "speaker-disjoint ({} folds over RAVDESS actors)",
                folds.len()
            )
        },
        rules_version: rules.version.clone(),
        seed: args.seed,
        minutes_per_call: args.minutes,
        calls_per_fold: args.generate,
        pooled_counts,
        pooled,
        folds: reports,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", text(&report, args.verbose)),
    }
    Ok(())
}

fn evaluate_fold(
    args: &EvalCuesArgs,
    rules: &CueRules,
    model: &Arc<EmotionModel>,
    catalog: &Catalog,
    data_dir: &Path,
    dir: &Path,
    fold: usize,
) -> anyhow::Result<Vec<EvaluatedCall>> {
    let base = RandomCallConfig {
        seed: args.seed,
        min_minutes: args.minutes,
        max_minutes: args.minutes,
        ..RandomCallConfig::default()
    };
    let mut cache = SourceCache::new(data_dir, base.sample_rate_hz, base.telephone);
    let mut results = Vec::with_capacity(args.generate);
    for i in 0..args.generate as u64 {
        let index = fold as u64 * 1000 + i;
        let arc = caller_arc(args.seed, index, args.minutes * 60.0);
        let config = RandomCallConfig {
            caller_arc: Some(arc),
            ..base.clone()
        };
        let name = format!("fold{fold}_call_{i:03}");
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
        let mut caller_points: Vec<EmotionPoint> = Vec::new();
        analyze_recording(
            &mut reader,
            config,
            Arc::clone(model),
            |e| match e {
                CallEvent::Cue(c) => cues.push(c.clone()),
                CallEvent::Emotion(p) if p.party == Speaker::Caller => {
                    caller_points.push(p.clone())
                }
                _ => {}
            },
            |_| {},
        )
        .with_context(|| format!("cannot analyse {path}"))?;
        if args.out.is_none() {
            let _ = std::fs::remove_file(&wav);
            let _ = std::fs::remove_file(wav.with_extension("truth.json"));
        }
        let caller_actor = truth
            .utterances
            .iter()
            .find(|u| u.speaker == Speaker::Caller)
            .and_then(|u| {
                u.source
                    .split('/')
                    .find_map(|p| p.strip_prefix("Actor_"))
                    .and_then(|n| n.parse().ok())
            });
        let anxious = score_anxious_call(&truth, &cues);
        let mut scored = eval::score_call(&name, &truth, &cues, rules);
        let caller_mood = match arc {
            CallerArc::Upset { .. } => "upset",
            CallerArc::Calm => "calm",
            CallerArc::Anxious { .. } => "anxious",
        };
        if caller_mood == "anxious" {
            // score_call knows upset and calm calls only: an anxious call's cues are scored
            // by `score_anxious_call`.
            scored.false_cues.clear();
        }
        results.push(EvaluatedCall {
            name,
            caller_mood,
            caller_actor,
            timeline: timeline_counts(&truth, &caller_points),
            cues: scored,
            anxious,
        });
    }
    Ok(results)
}

fn count_kind(v: &[(CueKind, f64)], kind: CueKind) -> usize {
    v.iter().filter(|(k, _)| *k == kind).count()
}

fn opened(c: &CallCueResult, kind: CueKind) -> usize {
    c.opened
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, n)| *n)
}

fn fold_report(
    fold: usize,
    held_out: &[u32],
    model: String,
    calls: Vec<EvaluatedCall>,
) -> FoldReport {
    let mut c = CueCounts {
        calls: calls.len(),
        ..CueCounts::default()
    };
    for call in &calls {
        c.timeline.add(&call.timeline);
        match call.caller_mood {
            "upset" => {
                c.upset_calls += 1;
                let d = call.cues.upset_delay_s;
                c.upset_flagged_within_3_s += usize::from(d.is_some_and(|d| d <= TARGET_DELAY_S));
                c.upset_flagged_within_10_s +=
                    usize::from(d.is_some_and(|d| d <= ALL_FLAGGED_DELAY_S));
                c.upset_opened_before_anger += call.cues.early_upset_opens;
                c.caller_anxious_on_upset_calls += opened(&call.cues, CueKind::CallerAnxious);
            }
            "calm" => {
                c.calm_calls += 1;
                c.calm_call_minutes += call.cues.duration_s / 60.0;
                c.false_caller_upset_on_calm_calls +=
                    count_kind(&call.cues.false_cues, CueKind::CallerUpset);
                c.false_caller_anxious_on_calm_calls +=
                    count_kind(&call.cues.false_cues, CueKind::CallerAnxious);
                c.false_cues_any_kind_on_calm_calls += call.cues.false_cues.len();
            }
            _ => {
                c.anxious_calls += 1;
                if let Some(a) = &call.anxious {
                    c.anxious_flagged += usize::from(a.anxious_delay_s.is_some());
                    c.caller_anxious_opened_before_fear += a.early_anxious_opens;
                    c.caller_upset_on_anxious_calls += a.upset_opens;
                }
            }
        }
    }
    FoldReport {
        fold,
        held_out_actors: held_out.to_vec(),
        model,
        figures: figures(&c).into_iter().collect(),
        counts: c,
        calls,
    }
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
    let targets: BTreeMap<&str, &str> = [
        ("false_caller_upset_per_10_min_calm", "<= 1"),
        ("upset_flagged_within_3_s_pct", ">= 90"),
        ("upset_flagged_within_10_s_pct", "100"),
        ("caller_anxious_recall_pct", ">= 80"),
        ("false_caller_anxious_per_10_min_calm", "<= 1"),
        ("timeline_angry_turns_read_angry_pct", ">= 70"),
        ("timeline_calm_turns_read_angry_pct", "<= 10"),
    ]
    .into_iter()
    .collect();
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
