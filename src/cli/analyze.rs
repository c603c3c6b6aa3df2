//! `attune analyze FILE|DIR...`: scores recorded calls. One file without `--out` prints its
//! result document (the dialog document extended with emotion, calmness, cues and the QA score)
//! to stdout; with `--out DIR` it scores a whole batch in parallel on all cores, resumably,
//! writing one result per recording (atomically), an index page, and storing every result in
//! the database.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::ValueEnum;

use attune_qa::batch::{self, BatchOptions, ExtraFile, RowResult};
use attune_qa::html;
use attune_qa::store::Store;
use attune_qa::{self as qa, CallReport, ScoringSetup};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeFormat {
    Json,
    Text,
    Html,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Stereo WAV recordings (one party per channel; mono is accepted with a warning), or
    /// folders of them (every .wav inside, recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Channel carrying the agent (the other carries the caller); use 1 for swapped recordings.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1))]
    agent_channel: u16,
    /// Output format (stdout for one file; with --out, what is written beside NAME.json).
    #[arg(long, value_enum, default_value_t = AnalyzeFormat::Json)]
    format: AnalyzeFormat,
    /// QA rubric (TOML); the shipped rules/qa.toml when absent.
    #[arg(long)]
    rubric: Option<PathBuf>,
    /// Cue rules (TOML); the shipped rules/cues.toml when absent.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Emotion model file (JSON from `attune train`); the shipped model, embedded in the
    /// binary, when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Write one result per recording into this folder (NAME.json, and NAME.html or NAME.csv),
    /// with index.html, scoring recordings in parallel.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score again even when a current result exists in --out.
    #[arg(long)]
    force: bool,
    /// Store results in this database (SQLite file, or postgres://... with the `postgres`
    /// feature). Default with --out: OUT/attune.db; without --out: not stored.
    #[arg(long)]
    db: Option<String>,
    /// Agent of these calls (stored with each; a NAME.meta.json beside a recording, with
    /// "agent" and "team", takes precedence).
    #[arg(long)]
    agent: Option<String>,
    /// Team of these calls.
    #[arg(long)]
    team: Option<String>,
    /// Recordings scored at once (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds to wait for a locked database before giving up.
    #[arg(long, default_value_t = 5.0)]
    busy_timeout_s: f64,
    /// Queue the recordings on a cluster instead of scoring them here
    /// (`nats://HOST:PORT[,...]`, build with `--features cluster`): every `attune serve
    /// --cluster` node takes them one at a time, scores them with its default rubric and
    /// stores them (as `bq-` and 16 hex digits of the audio's SHA-256: each recording once).
    #[arg(long, value_name = "URL", conflicts_with_all = ["out", "db", "force", "rubric", "rules", "model"])]
    cluster: Option<String>,
}

fn open_store(location: &str, busy_timeout_s: f64) -> anyhow::Result<Store> {
    let timeout = std::time::Duration::from_secs_f64(busy_timeout_s.clamp(0.0, 3600.0));
    Ok(Store::open_with_timeout(location, timeout)?)
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<()> {
    if let Some(servers) = &args.cluster {
        return queue_on_cluster(args, servers);
    }
    let setup = ScoringSetup::load(
        args.model.as_deref(),
        args.rules.as_deref(),
        args.rubric.as_deref(),
        args.agent_channel,
    )?;
    match &args.out {
        Some(out) => run_batch(args, &setup, out),
        None => {
            let inputs = batch::collect_inputs(&args.inputs)?;
            if inputs.len() != 1 || args.inputs[0].is_dir() {
                bail!(
                    "{} recordings given: scoring more than one file (or a folder) needs --out DIR",
                    inputs.len()
                );
            }
            run_one(args, &setup, &inputs[0])
        }
    }
}

fn run_one(args: &AnalyzeArgs, setup: &ScoringSetup, path: &Path) -> anyhow::Result<()> {
    let report = qa::score_recording(path, setup, |w| eprintln!("warning: {w}"))
        .with_context(|| format!("cannot analyse {}", path.display()))?;
    if let Some(db) = &args.db {
        let mut store = open_store(db, args.busy_timeout_s)?;
        store.save_call(&batch::stored_recording(
            &report,
            path,
            &args.agent,
            &args.team,
        )?)?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        AnalyzeFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        AnalyzeFormat::Html => out.write_all(html::render_call(&report).as_bytes())?,
        AnalyzeFormat::Csv => out.write_all(qa::csv::item_rows(&report).as_bytes())?,
        AnalyzeFormat::Text => print_text(&mut out, &report)?,
    }
    out.flush()?;
    Ok(())
}

fn print_text(out: &mut impl Write, report: &CallReport) -> anyhow::Result<()> {
    let analysis = &report.analysis;
    let t = &analysis.talk;
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    writeln!(out, "file        {}", report.file)?;
    writeln!(out, "duration    {:.2} s", analysis.duration_s)?;
    writeln!(
        out,
        "talk        agent {} s  caller {} s  overlap {} s  silence {:.2} s",
        f(t.agent_s),
        f(t.caller_s),
        f(t.overlap_s),
        t.silence_s
    )?;
    writeln!(
        out,
        "turns       {}  interruptions {} (agent {}, caller {})  backchannels {}",
        analysis.turns.len(),
        analysis.interruptions.len(),
        analysis.interruption_count.agent,
        analysis.interruption_count.caller,
        analysis.backchannels.len()
    )?;
    let l = &analysis.response_latency_s;
    writeln!(
        out,
        "latency     agent median {} s  caller median {} s",
        f(l.agent_median),
        f(l.caller_median)
    )?;
    writeln!(
        out,
        "qa score    {}{}",
        report
            .qa
            .score_pct
            .map_or("not applicable".to_owned(), |s| format!("{s:.1} %")),
        if report.qa.auto_fail {
            " (automatic fail)"
        } else {
            ""
        }
    )?;
    for w in &analysis.warnings {
        writeln!(out, "warning     {w}")?;
    }
    Ok(())
}

/// The batch's progress bar on a terminal (hidden otherwise).
struct ProgressBar(indicatif::ProgressBar);

impl batch::Progress for ProgressBar {
    fn start(&self, to_score: usize) {
        self.0.set_length(to_score as u64);
    }
    fn done(&self, name: &str) {
        self.0.inc(1);
        self.0.set_message(name.to_owned());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ProgressBar {
    fn new() -> Self {
        let progress = indicatif::ProgressBar::new(0);
        if std::io::stderr().is_terminal() {
            progress.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} calls  {elapsed_precise} (eta {eta})  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
        } else {
            progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Self(progress)
    }
}

fn run_batch(args: &AnalyzeArgs, setup: &ScoringSetup, out: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let inputs = batch::collect_inputs(&args.inputs)?;
    if inputs.is_empty() {
        bail!("no .wav recording found in the inputs given");
    }
    batch::prepare_out_dir(out)?;
    let db_location = args
        .db
        .clone()
        .unwrap_or_else(|| out.join("attune.db").display().to_string());
    let mut store = open_store(&db_location, args.busy_timeout_s)?;
    let options = BatchOptions {
        extra: match args.format {
            AnalyzeFormat::Html => Some(ExtraFile::Html),
            AnalyzeFormat::Csv => Some(ExtraFile::Csv),
            AnalyzeFormat::Json | AnalyzeFormat::Text => None,
        },
        force: args.force,
        jobs: args.jobs,
        agent: args.agent.clone(),
        team: args.team.clone(),
    };
    let outcome = batch::run(
        &inputs,
        out,
        setup,
        &options,
        &mut store,
        &ProgressBar::new(),
    )?;
    let (rows, workers, store_error) = (outcome.rows, outcome.workers, outcome.store_error);

    // Summary table.
    let stdout = std::io::stdout();
    let mut so = stdout.lock();
    writeln!(
        so,
        "{:<32} {:<15} {:>9} {:>8} {:>10} {:>5}",
        "recording", "status", "duration", "score", "interrupt", "cues"
    )?;
    let (mut scored, mut skipped, mut failed) = (0, 0, 0);
    let mut audio_s = 0.0;
    for r in &rows {
        let (status, doc) = match &r.result {
            RowResult::Scored(doc) => {
                scored += 1;
                audio_s += doc.duration_s;
                ("scored", Some(doc))
            }
            RowResult::Skipped(doc) => {
                skipped += 1;
                ("already scored", Some(doc))
            }
            RowResult::Failed(_) => {
                failed += 1;
                ("FAILED", None)
            }
        };
        let num =
            |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v:.1}{unit}"));
        let score = doc.map(|d| {
            let s = num(d.score_pct, "%");
            if d.auto_fail { format!("{s}!") } else { s }
        });
        writeln!(
            so,
            "{:<32} {:<15} {:>9} {:>8} {:>10} {:>5}",
            r.name,
            status,
            num(doc.map(|d| d.duration_s), "s"),
            score.unwrap_or_else(|| "-".to_owned()),
            doc.map_or("-".to_owned(), |d| d.agent_interruptions.to_string()),
            doc.map_or("-".to_owned(), |d| d.cue_count.to_string()),
        )?;
    }
    let wall_s = started.elapsed().as_secs_f64();
    let cpu = qa::process::cpu_seconds();
    writeln!(
        so,
        "{scored} scored, {skipped} already scored, {failed} failed; {:.1} min of audio scored in {wall_s:.1} s wall{}{} on {workers} worker(s): {:.1} calls/min, {:.0}x real time; results in {}, database {}",
        audio_s / 60.0,
        cpu.map_or(String::new(), |c| format!(" / {c:.1} s CPU")),
        qa::process::peak_resident_mb()
            .map_or(String::new(), |m| format!(" / peak memory {m:.1} MB")),
        if wall_s > 0.0 {
            scored as f64 / wall_s * 60.0
        } else {
            0.0
        },
        if wall_s > 0.0 { audio_s / wall_s } else { 0.0 },
        out.display(),
        store.location()
    )?;
    so.flush()?;
    drop(so);
    for r in &rows {
        for w in &r.warnings {
            eprintln!("warning: {}: {w}", r.path.display());
        }
        if let RowResult::Failed(why) = &r.result {
            eprintln!("failed: {}: {why}", r.path.display());
        }
        if !r.stored && !matches!(r.result, RowResult::Failed(_)) {
            eprintln!("not stored: {}", r.path.display());
        }
    }
    if let Some(e) = store_error {
        bail!(
            "results were written to {} but not all were stored: {e}",
            out.display()
        );
    }
    if failed > 0 {
        bail!("{failed} of {} recordings failed (named above)", rows.len());
    }
    Ok(())
}

/// `--cluster`: puts the recordings on the cluster's work queue and prints each one's id.
#[cfg(feature = "cluster")]
fn queue_on_cluster(args: &AnalyzeArgs, servers: &str) -> anyhow::Result<()> {
    use attune_service::backlog::{Submission, submit};
    use attune_service::cluster::ClusterConfig;
    let inputs = batch::collect_inputs(&args.inputs)?;
    let mut recordings = Vec::with_capacity(inputs.len());
    for path in &inputs {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (agent, team) = batch::agent_and_team(path, &args.agent, &args.team);
        for (field, value) in [("agent", &agent), ("team", &team)] {
            if let Some(v) = value {
                attune_service::session::check_client_id(field, v)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
        recordings.push(Submission {
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            bytes,
            agent,
            team,
            agent_channel: args.agent_channel,
        });
    }
    let config = ClusterConfig::new(servers, &format!("analyze-{}", std::process::id()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let items = runtime.block_on(submit(&config, recordings))?;
    for item in &items {
        println!(
            "{}",
            serde_json::json!({"queued": item.name, "call_id": item.call_id, "size_bytes": item.size_bytes})
        );
    }
    eprintln!(
        "attune analyze: {} recordings queued on the cluster; the nodes score and store them (attune calls, or the console's Recorded calls)",
        items.len()
    );
    Ok(())
}

#[cfg(not(feature = "cluster"))]
fn queue_on_cluster(_args: &AnalyzeArgs, _servers: &str) -> anyhow::Result<()> {
    bail!(
        "this build has no cluster support: build with `cargo build --release --features cluster`"
    )
}
