//! `attune eval dialog [DIR...] [--generate N --seed S]`: interruption precision/recall/F1 with
//! attribution, overlap onset error, talk- and silence-time error over composed calls (see
//! [`attune_lab::eval::dialog`] for the definitions).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

use attune_core::dialog::DialogConfig;
use attune_core::dsp::vad::VadConfig;
use attune_lab::compose::random::{Catalog, RandomCallConfig, random_spec};
use attune_lab::compose::{self, SourceCache};
use attune_lab::eval::dialog::{self as eval, DialogEvalReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct EvalDialogArgs {
    /// Folders of composed calls (CALL.wav with CALL.truth.json beside it).
    dirs: Vec<PathBuf>,
    /// Also compose N random calls (into --out, or a temporary folder) and evaluate them.
    #[arg(long)]
    generate: Option<usize>,
    /// Seed of the generated calls.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fixed crosstalk of the generated calls, dB (drawn in -35..-25 otherwise).
    #[arg(long, allow_hyphen_values = true)]
    crosstalk_db: Option<f64>,
    /// Soft-spoken callers in random calls: sad utterances, --quiet-db below the usual level.
    #[arg(long)]
    quiet_caller: bool,
    /// How far below the usual caller level a --quiet-caller speaks, dB.
    #[arg(long, default_value_t = 12.0)]
    quiet_db: f64,
    /// Breaths and lip clicks before utterances of random calls (never speech in the truth).
    #[arg(long)]
    breaths: bool,
    /// Where generated calls are written (kept); a temporary folder otherwise (removed).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The corpora folder for --generate.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Tracker settings as JSON (fields of DialogConfig; missing ones keep their default).
    #[arg(long)]
    dialog_config: Option<String>,
    /// Voice-activity thresholds as JSON (fields of VadConfig; missing ones keep their
    /// default), on both channels, for the prosody and emotion features.
    #[arg(long)]
    vad_config: Option<String>,
    /// Voice-activity thresholds for turn-taking (talk time, overlaps, interruptions) as JSON:
    /// fields of VadConfig, missing ones keep VadConfig's default (so `{}` is the fixed-margin
    /// detector of the emotion features). Without it: the turn-taking defaults (soft voices
    /// judged against their own level, soft_snr_margin_db 4).
    #[arg(long)]
    dialog_vad_config: Option<String>,
    /// List every call.
    #[arg(long)]
    verbose: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: &EvalDialogArgs) -> anyhow::Result<()> {
    let mut dirs = args.dirs.clone();
    let mut temporary = None;
    if let Some(n) = args.generate {
        let dir = match &args.out {
            Some(dir) => dir.clone(),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "attune-eval-dialog-{}-{}",
                    std::process::id(),
                    args.seed
                ));
                temporary = Some(dir.clone());
                dir
            }
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        generate(args, n, &dir)?;
        dirs.push(dir);
    }
    if dirs.is_empty() {
        bail!("nothing to evaluate: give folders of composed calls or --generate N");
    }
    for dir in &dirs {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
    }
    let config: DialogConfig = match &args.dialog_config {
        Some(json) => serde_json::from_str(json).context("--dialog-config")?,
        None => DialogConfig::default(),
    };
    let vad: VadConfig = match &args.vad_config {
        Some(json) => serde_json::from_str(json).context("--vad-config")?,
        None => VadConfig::default(),
    };
    let dialog_vad: VadConfig = match &args.dialog_vad_config {
        Some(json) => serde_json::from_str(json).context("--dialog-vad-config")?,
        None => VadConfig::turn_taking(),
    };
    let report = eval::evaluate_dirs(&dirs, &config, &vad, &dialog_vad);
    if let Some(dir) = temporary {
        let _ = std::fs::remove_dir_all(dir);
    }
    let report = report?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", text(&report, args.verbose)),
    }
    Ok(())
}

/// Composes `n` random calls of the set seeded by `--seed` into `dir` (the composer's own
/// generator: 1-3 minute calls, crosstalk -35..-25 dB unless fixed).
fn generate(args: &EvalDialogArgs, n: usize, dir: &Path) -> anyhow::Result<()> {
    let config = RandomCallConfig {
        seed: args.seed,
        crosstalk_db: args.crosstalk_db,
        quiet_caller_db: args.quiet_caller.then_some(args.quiet_db),
        mouth_noises: args.breaths,
        ..RandomCallConfig::default()
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(compose::spec::DEFAULT_DATA_DIR));
    let catalog = Catalog::scan(&data_dir)
        .with_context(|| format!("cannot list the corpora in {}", data_dir.display()))?;
    let mut cache = SourceCache::new(&data_dir, config.sample_rate_hz, config.telephone);
    for index in 0..n as u64 {
        // A call the composer cannot build is skipped (said on stderr), not fatal.
        let call = random_spec(&config, index, &catalog, &mut cache)
            .and_then(|spec| compose::compose_with(&spec, &mut cache));
        match call {
            Ok(call) => {
                compose::write_call(&call, &dir.join(format!("call_{index:03}.wav")))?;
            }
            Err(error) => eprintln!("warning: random call {index} skipped: {error}"),
        }
    }
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// The text table.
pub fn text(r: &DialogEvalReport, verbose: bool) -> String {
    let mut t = String::new();
    let pass = |ok: bool| if ok { "ok" } else { "MISS" };
    let mut line = |s: String| {
        t.push_str(&s);
        t.push('\n');
    };
    line(format!(
        "calls {}  audio {:.1} min",
        r.calls,
        r.audio_s / 60.0
    ));
    line(format!(
        "{:<34} {:>10} {:>10}  {}",
        "figure", "value", "target", ""
    ));
    line(format!(
        "{:<34} {:>10} {:>10}",
        "interruptions true/detected/match",
        format!(
            "{}/{}/{}",
            r.interruptions_true, r.interruptions_detected, r.interruptions_matched
        ),
        ""
    ));
    line(format!(
        "{:<34} {:>10.3} {:>10}",
        "interruption precision", r.precision, ""
    ));
    line(format!(
        "{:<34} {:>10.3} {:>10}",
        "interruption recall", r.recall, ""
    ));
    line(format!(
        "{:<34} {:>10.3} {:>10}  {}",
        "interruption F1",
        r.f1,
        ">= 0.95",
        pass(r.f1 >= 0.95)
    ));
    line(format!(
        "{:<34} {:>10.3} {:>10}  {}",
        "attribution accuracy",
        r.attribution,
        ">= 0.95",
        pass(r.attribution >= 0.95)
    ));
    let i = &r.interruption_onset_error_ms;
    line(format!(
        "{:<34} {:>10} {:>10}",
        "interruption onset err med/p95 ms",
        format!("{}/{}", opt(i.median), opt(i.p95)),
        ""
    ));
    let o = &r.overlap_onset_error_ms;
    line(format!(
        "{:<34} {:>10} {:>10}",
        "overlaps true/detected/matched",
        format!("{}/{}/{}", r.overlaps_true, r.overlaps_detected, o.count),
        ""
    ));
    line(format!(
        "{:<34} {:>10} {:>10}  {}",
        "overlap onset error median ms",
        opt(o.median),
        "<= 50",
        pass(o.median.is_some_and(|m| m <= 50.0))
    ));
    line(format!(
        "{:<34} {:>10} {:>10}  {}",
        "overlap onset error p95 ms",
        opt(o.p95),
        "<= 150",
        pass(o.p95.is_some_and(|m| m <= 150.0))
    ));
    line(format!(
        "{:<34} {:>10.2} {:>10}",
        "false overlap s (outside truth)", r.false_overlap_s, ""
    ));
    for (name, e) in [
        ("agent", &r.talk_error_agent),
        ("caller", &r.talk_error_caller),
    ] {
        line(format!(
            "{:<34} {:>10.2} {:>10}  {}",
            format!("talk error {name} mean |%|"),
            e.mean_abs_pct,
            "<= 2",
            pass(e.mean_abs_pct <= 2.0)
        ));
        line(format!(
            "{:<34} {:>10} {:>10}",
            format!("talk error {name} max|%| / signed / pooled"),
            format!(
                "{:.1}/{:+.1}/{:+.1}",
                e.max_abs_pct, e.mean_signed_pct, e.pooled_pct
            ),
            ""
        ));
    }
    line(format!(
        "{:<34} {:>10} {:>10}",
        "silence error mean/max s, pooled %",
        format!(
            "{:.2}/{:.2}/{:+.1}",
            r.silence_error_mean_abs_s, r.silence_error_max_abs_s, r.silence_error_pooled_pct
        ),
        ""
    ));
    if verbose {
        for c in &r.items {
            line(format!(
                "{}  xt {:?}  int {}/{}/{}  talk a {:.1}/{:.1} c {:.1}/{:.1}  sil {:.1}/{:.1}  false ovl {:.2}",
                c.file,
                c.crosstalk_db,
                c.interruptions_true,
                c.interruptions_detected,
                c.interruptions_matched,
                c.talk_detected[0],
                c.talk_true[0],
                c.talk_detected[1],
                c.talk_true[1],
                c.silence_detected_s,
                c.silence_true_s,
                c.false_overlap_s
            ));
        }
    }
    t
}
