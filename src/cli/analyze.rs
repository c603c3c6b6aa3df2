//! `attune analyze FILE|DIR...`: scores recorded calls. One file without `--out` prints its
//! result document (the dialog document extended with emotion, calmness, cues and the QA score)
//! to stdout; with `--out DIR` it scores a whole batch in parallel on all cores, resumably,
//! writing one result per recording (atomically), an index page, and storing every result in
//! the database.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::ValueEnum;

use attune_qa::batch::{self, ResultNames};
use attune_qa::html::{self, IndexEntry};
use attune_qa::store::{Store, StoredCall};
use attune_qa::stream::{Layout, LongArrays};
use attune_qa::{self as qa, CallReport, InputIdentity, ScoringSetup};

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
}

fn open_store(location: &str, busy_timeout_s: f64) -> anyhow::Result<Store> {
    let timeout = std::time::Duration::from_secs_f64(busy_timeout_s.clamp(0.0, 3600.0));
    Ok(Store::open_with_timeout(location, timeout)?)
}

/// Agent and team of a recording: its NAME.meta.json sidecar, else the command line.
fn agent_and_team(path: &Path, args: &AnalyzeArgs) -> (Option<String>, Option<String>) {
    let sidecar = path.with_extension("meta.json");
    let meta: Option<serde_json::Value> = std::fs::read_to_string(&sidecar)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let pick = |key: &str, fallback: &Option<String>| {
        meta.as_ref()
            .and_then(|m| m[key].as_str().map(str::to_owned))
            .or_else(|| fallback.clone())
    };
    (pick("agent", &args.agent), pick("team", &args.team))
}

fn stored_call(
    doc: &serde_json::Value,
    path: &Path,
    input: &InputIdentity,
    args: &AnalyzeArgs,
) -> anyhow::Result<StoredCall> {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let call_id = qa::recording_call_id(canonical.display().to_string().as_bytes());
    let (agent, team) = agent_and_team(path, args);
    Ok(StoredCall::from_document(
        doc,
        &call_id,
        "recording",
        agent,
        team,
        qa::rfc3339_from_unix_ms(input.modified_unix_ms),
    )?)
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<()> {
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
    let mut report = qa::score_recording(path, setup, |w| eprintln!("warning: {w}"))
        .with_context(|| format!("cannot analyse {}", path.display()))?;
    if let Some(db) = &args.db {
        let mut store = open_store(db, args.busy_timeout_s)?;
        let arrays = LongArrays::take(&mut report);
        let stored = serde_json::to_value(&report)
            .map_err(anyhow::Error::from)
            .and_then(|rest| store_view(&arrays, &rest))
            .and_then(|(view, text)| stored_call_with_text(&view, text, path, &report.input, args));
        arrays.put_back(&mut report);
        store.save_call(&stored?)?;
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

struct Job {
    index: usize,
    path: PathBuf,
    name: String,
    input: InputIdentity,
}

/// What the summary table, the index page and summary.csv need of a result: kept instead of
/// the document, so a batch's memory does not grow with its number of calls.
struct ResultSummary {
    duration_s: Option<f64>,
    score_pct: Option<f64>,
    auto_fail: bool,
    agent_interruptions: Option<u64>,
    cue_count: Option<usize>,
    csv_row: String,
}

impl ResultSummary {
    /// From a result document (or the store's view of one, see [`store_view`]).
    fn of(doc: &serde_json::Value) -> Self {
        Self {
            duration_s: doc["duration_s"].as_f64(),
            score_pct: doc["qa"]["score_pct"].as_f64(),
            auto_fail: doc["qa"]["auto_fail"] == true,
            agent_interruptions: doc["interruption_count"]["agent"].as_u64(),
            cue_count: doc["cues"].as_array().map(Vec::len),
            csv_row: qa::csv::summary_row(doc),
        }
    }
}

enum JobResult {
    Scored(ResultSummary),
    Skipped(ResultSummary),
    Failed(String),
}

/// A scored recording, as the worker hands it over: its summary and what to store (or why
/// it cannot be stored).
struct Scored {
    summary: ResultSummary,
    call: anyhow::Result<StoredCall>,
}

/// What the store reads of a document (`rest`: the document without its long arrays) — the
/// rest with the cues and the caller's last point put back — and the whole document's text as
/// stored, written without a JSON tree of the whole document.
fn store_view(
    arrays: &LongArrays,
    rest: &serde_json::Value,
) -> anyhow::Result<(serde_json::Value, String)> {
    let text = arrays.to_compact_string(rest)?;
    let mut view = rest.clone();
    view["cues"] = serde_json::to_value(arrays.cues())?;
    view["caller_emotion"] =
        serde_json::to_value(arrays.last_caller_emotion().into_iter().collect::<Vec<_>>())?;
    Ok((view, text))
}

/// [`stored_call`] of a store view, with the whole document's text.
fn stored_call_with_text(
    view: &serde_json::Value,
    report_json: String,
    path: &Path,
    input: &InputIdentity,
    args: &AnalyzeArgs,
) -> anyhow::Result<StoredCall> {
    let mut call = stored_call(view, path, input, args)?;
    call.report_json = report_json;
    Ok(call)
}

struct Row {
    path: PathBuf,
    name: String,
    result: JobResult,
    stored: Option<String>,
    warnings: Vec<String>,
}

/// Scores, writes the result files, returns the result's summary and what to store. The
/// document is never one JSON tree in memory (see [`attune_qa::stream`]).
fn score_and_write(
    job: &Job,
    setup: &ScoringSetup,
    out: &Path,
    args: &AnalyzeArgs,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Scored> {
    let mut report = qa::score_recording(&job.path, setup, |w| warnings.push(w.to_owned()))?;
    match args.format {
        AnalyzeFormat::Html => batch::write_atomic(
            &out.join(format!("{}.html", job.name)),
            html::render_call(&report).as_bytes(),
        )?,
        AnalyzeFormat::Csv => batch::write_atomic(
            &out.join(format!("{}.csv", job.name)),
            qa::csv::item_rows(&report).as_bytes(),
        )?,
        AnalyzeFormat::Json | AnalyzeFormat::Text => {}
    }
    let arrays = LongArrays::take(&mut report);
    let rest = serde_json::to_value(&report)?;
    drop(report);
    // NAME.json last: its presence marks the recording as done.
    batch::write_atomic_with(&out.join(format!("{}.json", job.name)), |file| {
        arrays.write(&rest, Layout::Pretty, file)?;
        file.write_all(b"\n")
    })?;
    let (view, text) = store_view(&arrays, &rest)?;
    drop(arrays);
    Ok(Scored {
        summary: ResultSummary::of(&view),
        call: stored_call_with_text(&view, text, &job.path, &job.input, args),
    })
}

fn format_file(format: AnalyzeFormat) -> Option<&'static str> {
    match format {
        AnalyzeFormat::Html => Some("html"),
        AnalyzeFormat::Csv => Some("csv"),
        _ => None,
    }
}

/// Removes temp files a killed run left behind.
fn remove_stale_temp_files(out: &Path) {
    if let Ok(entries) = std::fs::read_dir(out) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Process CPU time (all threads), seconds.
fn process_cpu_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Peak resident memory of this process so far (Linux `VmHWM`), MB.
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn run_batch(args: &AnalyzeArgs, setup: &ScoringSetup, out: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let inputs = batch::collect_inputs(&args.inputs)?;
    if inputs.is_empty() {
        bail!("no .wav recording found in the inputs given");
    }
    batch::prepare_out_dir(out)?;
    remove_stale_temp_files(out);
    let db_location = args
        .db
        .clone()
        .unwrap_or_else(|| out.join("attune.db").display().to_string());
    let mut store = open_store(&db_location, args.busy_timeout_s)?;

    // Plan: skip what is current, queue the rest.
    let mut names = ResultNames::default();
    let mut rows: Vec<Option<Row>> = Vec::with_capacity(inputs.len());
    let mut queue = VecDeque::new();
    for (index, path) in inputs.iter().enumerate() {
        let name = names.name(path);
        let row = |result| Row {
            path: path.clone(),
            name: name.clone(),
            result,
            stored: None,
            warnings: Vec::new(),
        };
        let input = match InputIdentity::of(path) {
            Ok(input) => input,
            Err(e) => {
                rows.push(Some(row(JobResult::Failed(format!("cannot read: {e}")))));
                continue;
            }
        };
        let extra_present =
            format_file(args.format).is_none_or(|ext| out.join(format!("{name}.{ext}")).exists());
        let current = (!args.force && extra_present)
            .then(|| {
                batch::current_result(&out.join(format!("{name}.json")), &input, &setup.versions)
            })
            .flatten();
        match current {
            Some(doc) => {
                // Keep the database in step with the files (it may be new, or have missed
                // the save when a run was killed); a stored call keeps its agent and team.
                let call = stored_call(&doc, path, &input, args)?;
                if !store.has_call(&call.call_id)? {
                    store.save_call(&call)?;
                }
                let mut r = row(JobResult::Skipped(ResultSummary::of(&doc)));
                r.stored = Some(input.path.clone());
                rows.push(Some(r));
            }
            None => {
                rows.push(None);
                queue.push_back(Job {
                    index,
                    path: path.clone(),
                    name,
                    input,
                });
            }
        }
    }

    let to_score = queue.len();
    let workers = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, to_score.max(1));
    let progress = indicatif::ProgressBar::new(to_score as u64);
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
    let queue = Mutex::new(queue);
    let (send, receive) = mpsc::channel::<(Job, anyhow::Result<Scored>, Vec<String>)>();
    let mut store_error = None;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let send = send.clone();
            let queue = &queue;
            scope.spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(mut q) => q.pop_front(),
                        Err(_) => None,
                    };
                    let Some(job) = job else { break };
                    let mut warnings = Vec::new();
                    let result = score_and_write(&job, setup, out, args, &mut warnings);
                    if send.send((job, result, warnings)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(send);
        for (job, result, warnings) in receive {
            progress.inc(1);
            progress.set_message(job.name.clone());
            let mut row = Row {
                path: job.path.clone(),
                name: job.name.clone(),
                result: JobResult::Failed(String::new()),
                stored: None,
                warnings,
            };
            match result {
                Ok(scored) => {
                    match scored.call.and_then(|call| Ok(store.save_call(&call)?)) {
                        Ok(()) => row.stored = Some(job.input.path.clone()),
                        Err(e) => {
                            let text = format!("{e:#}");
                            if store_error.is_none() {
                                store_error = Some(text);
                            }
                        }
                    }
                    row.result = JobResult::Scored(scored.summary);
                }
                Err(e) => row.result = JobResult::Failed(format!("{e:#}")),
            }
            rows[job.index] = Some(row);
        }
    });
    progress.finish_and_clear();
    let rows: Vec<Row> = rows.into_iter().flatten().collect();

    // Index page and, for CSV, one summary file.
    let entries: Vec<IndexEntry> = rows
        .iter()
        .map(|r| {
            let (doc, status) = match &r.result {
                JobResult::Scored(doc) => (Some(doc), "scored".to_owned()),
                JobResult::Skipped(doc) => (Some(doc), "already scored".to_owned()),
                JobResult::Failed(why) => (None, format!("failed: {why}")),
            };
            IndexEntry {
                name: r.name.clone(),
                file: r.path.display().to_string(),
                duration_s: doc.and_then(|d| d.duration_s),
                score_pct: doc.and_then(|d| d.score_pct),
                auto_fail: doc.is_some_and(|d| d.auto_fail),
                status,
                has_html: out.join(format!("{}.html", r.name)).exists(),
            }
        })
        .collect();
    batch::write_atomic(
        &out.join("index.html"),
        html::render_index(&entries).as_bytes(),
    )?;
    if args.format == AnalyzeFormat::Csv {
        let mut summary = format!("{}\n", qa::csv::SUMMARY_HEADER);
        for r in &rows {
            if let JobResult::Scored(doc) | JobResult::Skipped(doc) = &r.result {
                summary.push_str(&doc.csv_row);
                summary.push('\n');
            }
        }
        batch::write_atomic(&out.join("summary.csv"), summary.as_bytes())?;
    }

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
            JobResult::Scored(doc) => {
                scored += 1;
                audio_s += doc.duration_s.unwrap_or(0.0);
                ("scored", Some(doc))
            }
            JobResult::Skipped(doc) => {
                skipped += 1;
                ("already scored", Some(doc))
            }
            JobResult::Failed(_) => {
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
            num(doc.and_then(|d| d.duration_s), "s"),
            score.unwrap_or_else(|| "-".to_owned()),
            doc.and_then(|d| d.agent_interruptions)
                .map_or("-".to_owned(), |n| n.to_string()),
            doc.and_then(|d| d.cue_count)
                .map_or("-".to_owned(), |n| n.to_string()),
        )?;
    }
    let wall_s = started.elapsed().as_secs_f64();
    let cpu = process_cpu_s();
    writeln!(
        so,
        "{scored} scored, {skipped} already scored, {failed} failed; {:.1} min of audio scored in {wall_s:.1} s wall{}{} on {workers} worker(s): {:.1} calls/min, {:.0}x real time; results in {}, database {}",
        audio_s / 60.0,
        cpu.map_or(String::new(), |c| format!(" / {c:.1} s CPU")),
        peak_memory_mb().map_or(String::new(), |m| format!(" / peak memory {m:.1} MB")),
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
        if let JobResult::Failed(why) = &r.result {
            eprintln!("failed: {}: {why}", r.path.display());
        }
        if r.stored.is_none() && !matches!(r.result, JobResult::Failed(_)) {
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
