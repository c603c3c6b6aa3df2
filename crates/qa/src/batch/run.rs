//! Scoring a batch of recordings into a folder ([`run`]): the plan (skip what is current, keep
//! the database in step with the result files), a pool of worker threads, the result files
//! written atomically (NAME.json last: its presence marks the recording as done), every result
//! stored, and the index page (and, for CSV, summary.csv). Progress is reported through
//! [`Progress`], so the terminal's progress bar stays in the CLI.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use serde::Deserialize;

use super::{BatchError, ResultNames, current_result, write_atomic, write_atomic_with};
use crate::html::{self, IndexEntry};
use crate::report::{CallReport, InputIdentity, ScoringSetup, rfc3339_from_unix_ms};
use crate::rubric::recording_call_id;
use crate::store::{ReportDigest, Store, StoreError, StoredCall};
use crate::stream::{Layout, write_report};

/// The file written beside each NAME.json, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraFile {
    /// NAME.html, the call's report page.
    Html,
    /// NAME.csv, one row per rubric item; and summary.csv, one row per call.
    Csv,
}

impl ExtraFile {
    fn extension(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Csv => "csv",
        }
    }
}

/// How a batch is run.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// The file written beside each NAME.json.
    pub extra: Option<ExtraFile>,
    /// Score again even when a current result exists.
    pub force: bool,
    /// Recordings scored at once (None: all cores).
    pub jobs: Option<usize>,
    /// Agent and team stored with each call (a NAME.meta.json beside a recording, with
    /// "agent" and "team", takes precedence).
    pub agent: Option<String>,
    pub team: Option<String>,
}

/// Receives a batch's progress (called from the thread that runs [`run`]).
pub trait Progress {
    /// Scoring starts: `to_score` recordings are queued.
    fn start(&self, to_score: usize);
    /// One recording (its result name) is done, scored or failed.
    fn done(&self, name: &str);
    /// Every recording is done.
    fn finish(&self);
}

/// No progress reporting.
impl Progress for () {
    fn start(&self, _: usize) {}
    fn done(&self, _: &str) {}
    fn finish(&self) {}
}

/// What the summary table, the index page and summary.csv need of a result: kept instead of
/// the document, so a batch's memory does not grow with its number of calls.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSummary {
    pub duration_s: f64,
    pub score_pct: Option<f64>,
    pub auto_fail: bool,
    pub agent_interruptions: u64,
    pub cue_count: usize,
    /// The call's line of summary.csv.
    pub csv_row: String,
}

impl ResultSummary {
    fn of(digest: &ReportDigest) -> Self {
        Self {
            duration_s: digest.duration_s,
            score_pct: digest.qa.score_pct,
            auto_fail: digest.qa.auto_fail,
            agent_interruptions: digest.interruption_count.agent,
            cue_count: digest.cues.len(),
            csv_row: crate::csv::summary_row(digest),
        }
    }
}

/// How one recording of a batch came out.
#[derive(Debug, Clone, PartialEq)]
pub enum RowResult {
    Scored(ResultSummary),
    /// A current result existed.
    Skipped(ResultSummary),
    /// Why it failed.
    Failed(String),
}

/// One recording of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub path: PathBuf,
    /// Its result name (NAME.json).
    pub name: String,
    pub result: RowResult,
    /// Whether its result is in the store.
    pub stored: bool,
    pub warnings: Vec<String>,
}

/// What a batch did.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Every recording, in input order.
    pub rows: Vec<BatchRow>,
    /// Worker threads used.
    pub workers: usize,
    /// The first error storing a result, if any (its files were written).
    pub store_error: Option<String>,
}

/// The error and its causes, as `error: cause: cause`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Agent and team of a recording: its NAME.meta.json sidecar, else the fallbacks.
pub fn agent_and_team(
    path: &Path,
    agent: &Option<String>,
    team: &Option<String>,
) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Meta {
        agent: Option<serde_json::Value>,
        team: Option<serde_json::Value>,
    }
    let meta: Option<Meta> = std::fs::read_to_string(path.with_extension("meta.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    let meta = meta.as_ref();
    (
        text(meta.and_then(|m| m.agent.as_ref())).or_else(|| agent.clone()),
        text(meta.and_then(|m| m.team.as_ref())).or_else(|| team.clone()),
    )
}

/// The stored id of a recording: from its canonical path.
fn call_id_of(path: &Path) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    recording_call_id(canonical.display().to_string().as_bytes())
}

/// What is stored of a scored recording at `path`: its id from its canonical path, agent and
/// team from its NAME.meta.json or the fallbacks, taken place when the file was modified.
pub fn stored_recording(
    report: &CallReport,
    path: &Path,
    agent: &Option<String>,
    team: &Option<String>,
) -> Result<StoredCall, StoreError> {
    let (agent, team) = agent_and_team(path, agent, team);
    StoredCall::from_report(
        report,
        &call_id_of(path),
        "recording",
        agent,
        team,
        rfc3339_from_unix_ms(report.input.modified_unix_ms),
    )
}

struct Job {
    index: usize,
    path: PathBuf,
    name: String,
}

/// A scored recording, as the worker hands it over.
struct Scored {
    summary: ResultSummary,
    call: Result<StoredCall, StoreError>,
}

/// Scores, writes the result files, returns the result's summary and what to store. The
/// document is never one JSON tree in memory (see [`crate::stream`]).
fn score_and_write(
    job: &Job,
    setup: &ScoringSetup,
    out: &Path,
    options: &BatchOptions,
    warnings: &mut Vec<String>,
) -> Result<Scored, String> {
    let report = crate::report::score_recording(&job.path, setup, |w| warnings.push(w.to_owned()))
        .map_err(|e| chain(&e))?;
    let extra = match options.extra {
        Some(ExtraFile::Html) => Some(html::render_call(&report)),
        Some(ExtraFile::Csv) => Some(crate::csv::item_rows(&report)),
        None => None,
    };
    if let (Some(kind), Some(text)) = (options.extra, extra) {
        let path = out.join(format!("{}.{}", job.name, kind.extension()));
        write_atomic(&path, text.as_bytes()).map_err(|e| chain(&e))?;
    }
    // NAME.json last: its presence marks the recording as done.
    write_atomic_with(&out.join(format!("{}.json", job.name)), |file| {
        write_report(&report, Layout::Pretty, file)?;
        file.write_all(b"\n")
    })
    .map_err(|e| chain(&e))?;
    Ok(Scored {
        summary: ResultSummary::of(&ReportDigest::of(&report)),
        call: stored_recording(&report, &job.path, &options.agent, &options.team),
    })
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

/// Scores `inputs` into `out` (prepared by the caller with [`super::prepare_out_dir`]) and
/// stores every result in `store`; writes index.html (and, for CSV, summary.csv).
pub fn run(
    inputs: &[PathBuf],
    out: &Path,
    setup: &ScoringSetup,
    options: &BatchOptions,
    store: &mut Store,
    progress: &dyn Progress,
) -> Result<BatchOutcome, BatchError> {
    remove_stale_temp_files(out);

    // Plan: skip what is current, queue the rest.
    let mut names = ResultNames::default();
    let mut rows: Vec<Option<BatchRow>> = Vec::with_capacity(inputs.len());
    let mut queue = VecDeque::new();
    for (index, path) in inputs.iter().enumerate() {
        let name = names.name(path);
        let row = |result| BatchRow {
            path: path.clone(),
            name: name.clone(),
            result,
            stored: false,
            warnings: Vec::new(),
        };
        let input = match InputIdentity::of(path) {
            Ok(input) => input,
            Err(e) => {
                rows.push(Some(row(RowResult::Failed(format!("cannot read: {e}")))));
                continue;
            }
        };
        let extra_present = options
            .extra
            .is_none_or(|kind| out.join(format!("{name}.{}", kind.extension())).exists());
        let current = (!options.force && extra_present)
            .then(|| current_result(&out.join(format!("{name}.json")), &input, &setup.versions))
            .flatten();
        match current {
            Some(current) => {
                // Keep the database in step with the files (it may be new, or have missed
                // the save when a run was killed); a stored call keeps its agent and team.
                let (agent, team) = agent_and_team(path, &options.agent, &options.team);
                let summary = ResultSummary::of(&current.digest);
                let call = StoredCall::from_digest(
                    current.digest,
                    current.text,
                    &call_id_of(path),
                    "recording",
                    agent,
                    team,
                    rfc3339_from_unix_ms(input.modified_unix_ms),
                );
                if !store.has_call(&call.call_id)? {
                    store.save_call(&call)?;
                }
                let mut r = row(RowResult::Skipped(summary));
                r.stored = true;
                rows.push(Some(r));
            }
            None => {
                rows.push(None);
                queue.push_back(Job {
                    index,
                    path: path.clone(),
                    name,
                });
            }
        }
    }

    let to_score = queue.len();
    let workers = options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, to_score.max(1));
    progress.start(to_score);
    let queue = Mutex::new(queue);
    let (send, receive) = mpsc::channel::<(Job, Result<Scored, String>, Vec<String>)>();
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
                    let result = score_and_write(&job, setup, out, options, &mut warnings);
                    if send.send((job, result, warnings)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(send);
        for (job, result, warnings) in receive {
            progress.done(&job.name);
            let mut row = BatchRow {
                path: job.path.clone(),
                name: job.name.clone(),
                result: RowResult::Failed(String::new()),
                stored: false,
                warnings,
            };
            match result {
                Ok(scored) => {
                    match scored.call.and_then(|call| store.save_call(&call)) {
                        Ok(()) => row.stored = true,
                        Err(e) => {
                            if store_error.is_none() {
                                store_error = Some(chain(&e));
                            }
                        }
                    }
                    row.result = RowResult::Scored(scored.summary);
                }
                Err(e) => row.result = RowResult::Failed(e),
            }
            rows[job.index] = Some(row);
        }
    });
    progress.finish();
    let rows: Vec<BatchRow> = rows.into_iter().flatten().collect();

    // Index page and, for CSV, one summary file.
    let entries: Vec<IndexEntry> = rows
        .iter()
        .map(|r| {
            let (doc, status) = match &r.result {
                RowResult::Scored(doc) => (Some(doc), "scored".to_owned()),
                RowResult::Skipped(doc) => (Some(doc), "already scored".to_owned()),
                RowResult::Failed(why) => (None, format!("failed: {why}")),
            };
            IndexEntry {
                name: r.name.clone(),
                file: r.path.display().to_string(),
                duration_s: doc.map(|d| d.duration_s),
                score_pct: doc.and_then(|d| d.score_pct),
                auto_fail: doc.is_some_and(|d| d.auto_fail),
                status,
                has_html: out.join(format!("{}.html", r.name)).exists(),
            }
        })
        .collect();
    write_atomic(
        &out.join("index.html"),
        html::render_index(&entries).as_bytes(),
    )?;
    if options.extra == Some(ExtraFile::Csv) {
        let mut summary = format!("{}\n", crate::csv::SUMMARY_HEADER);
        for r in &rows {
            if let RowResult::Scored(doc) | RowResult::Skipped(doc) = &r.result {
                summary.push_str(&doc.csv_row);
                summary.push('\n');
            }
        }
        write_atomic(&out.join("summary.csv"), summary.as_bytes())?;
    }
    Ok(BatchOutcome {
        rows,
        workers,
        store_error,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Records what the batch reported.
    #[derive(Default)]
    struct Seen(RefCell<Vec<String>>);

    impl Progress for Seen {
        fn start(&self, to_score: usize) {
            self.0.borrow_mut().push(format!("start {to_score}"));
        }
        fn done(&self, name: &str) {
            self.0.borrow_mut().push(format!("done {name}"));
        }
        fn finish(&self) {
            self.0.borrow_mut().push("finish".to_owned());
        }
    }

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/calls")
            .join(name)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("attune-batch-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_batch_scores_stores_then_resumes() {
        let dir = temp_dir("resume");
        let out = dir.join("out");
        super::super::prepare_out_dir(&out).unwrap();
        let db = dir.join("a.db").display().to_string();
        let mut store = Store::open(&db).unwrap();
        let setup = ScoringSetup::load(None, None, None, 0).unwrap();
        let inputs = vec![example("calm.wav"), dir.join("missing.wav")];
        let options = BatchOptions {
            extra: Some(ExtraFile::Csv),
            jobs: Some(2),
            agent: Some("ana".to_owned()),
            ..BatchOptions::default()
        };
        let seen = Seen::default();
        let first = run(&inputs, &out, &setup, &options, &mut store, &seen).unwrap();
        assert_eq!(*seen.0.borrow(), ["start 1", "done calm", "finish"]);
        assert_eq!(first.workers, 1);
        assert!(first.store_error.is_none());
        let RowResult::Scored(summary) = &first.rows[0].result else {
            panic!("{:?}", first.rows[0].result);
        };
        assert!(first.rows[0].stored);
        assert!(summary.duration_s > 60.0 && summary.score_pct.is_some());
        assert!(
            matches!(&first.rows[1].result, RowResult::Failed(why) if why.starts_with("cannot read"))
        );
        for file in ["calm.json", "calm.csv", "index.html", "summary.csv"] {
            assert!(out.join(file).exists(), "{file}");
        }
        let summary_csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
        assert_eq!(summary_csv.lines().nth(1), Some(summary.csv_row.as_str()));

        // Again, with a new database: nothing is scored, the database catches up.
        let mut store = Store::open(&dir.join("b.db").display().to_string()).unwrap();
        let seen = Seen::default();
        let second = run(&inputs[..1], &out, &setup, &options, &mut store, &seen).unwrap();
        assert_eq!(*seen.0.borrow(), ["start 0", "finish"]);
        assert_eq!(second.rows[0].result, RowResult::Skipped(summary.clone()));
        let rows = store.calls(&crate::store::CallQuery::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].agent.as_deref(), Some("ana"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_result_missing_a_field_is_scored_again() {
        let dir = temp_dir("renamed");
        let out = dir.join("out");
        super::super::prepare_out_dir(&out).unwrap();
        let mut store = Store::open(&dir.join("a.db").display().to_string()).unwrap();
        let setup = ScoringSetup::load(None, None, None, 0).unwrap();
        let inputs = vec![example("calm.wav")];
        let options = BatchOptions::default();
        run(&inputs, &out, &setup, &options, &mut store, &()).unwrap();
        let json = out.join("calm.json");
        let text = std::fs::read_to_string(&json).unwrap();
        std::fs::write(&json, text.replace("\"duration_s\"", "\"length_s\"")).unwrap();
        let again = run(&inputs, &out, &setup, &options, &mut store, &()).unwrap();
        assert!(matches!(again.rows[0].result, RowResult::Scored(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
