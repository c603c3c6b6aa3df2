//! Stored calls for the service ([`CallRecorder`]): live calls scored and saved at their end,
//! recordings uploaded from the browser scored and saved, and the queries behind the console's
//! "Recorded calls" page.
//!
//! A live call is scored with the same document builder as `attune analyze`
//! ([`CallReport::from_outcome`] over the call's [`CallOutcome`], the QA rubric of the
//! [`ScoringSetup`]) and saved with `source = "live"`. The scoring and the database write run on
//! one dedicated writer thread fed by a queue, never on tokio's workers. The queue holds every
//! ended call until it is saved (its depth is `attune_store_queue_calls`): a burst of calls
//! ending at once waits, it is not dropped. A write that fails because the database is locked,
//! full or unreachable is tried again with backoff for up to [`STORE_RETRY_WINDOW`] (logged,
//! `attune_store_retries_total`); only then is the call counted as lost
//! (`attune_store_errors_total`). At shutdown the queue is drained before the process exits.
//!
//! An upload ([`CallRecorder::score_upload`], blocking: run it on a blocking thread) is scored
//! with [`attune_qa::score_wav_bytes`] — the code `attune analyze` runs on a file — and saved
//! with `source = "recording"`; when its team is recorded its audio is kept too
//! ([`super::recordings`], the recordings this recorder carries: [`CallRecorder::with_recordings`]).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use attune_core::call::CallOutcome;
use attune_qa::store::{CallQuery, CallRow, Store, StoreError, StoredCall};
use attune_qa::{self as qa, CallReport, InputIdentity, ScoreError, ScoringSetup};

use super::hub::{CallInfo, now_unix_ms};
use super::metrics::ServiceMetrics;
use super::recordings::Recordings;
use super::session::CallSummary;

/// Largest recording accepted by upload, bytes.
pub const MAX_UPLOAD_BYTES: usize = 256 << 20;
/// Uploads scored at once; more are refused (503) until one finishes.
pub const MAX_CONCURRENT_UPLOADS: usize = 2;
/// How long a failing store write (locked, full or unreachable database) is tried again before
/// the call is given up as not stored.
pub const STORE_RETRY_WINDOW: Duration = Duration::from_secs(120);
/// The first pause before a failed store write is tried again; it doubles up to
/// [`STORE_RETRY_MAX_PAUSE`].
const STORE_RETRY_FIRST_PAUSE: Duration = Duration::from_millis(100);
const STORE_RETRY_MAX_PAUSE: Duration = Duration::from_secs(2);

/// An ended live call, as handed to the writer thread.
struct LiveCallJob {
    info: Arc<CallInfo>,
    sample_rate_hz: u32,
    agent_channel: u16,
    bytes_received: u64,
    ended_at_unix_ms: u64,
    summary: Arc<CallSummary>,
}

/// Why an upload was refused; [`UploadError::status`] is its HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error("the request body is empty: send the WAV file's bytes as the body")]
    Empty,
    #[error(
        "the recording is {size_bytes} bytes, over the upload limit of {limit_bytes} bytes ({} MiB)",
        limit_bytes >> 20
    )]
    TooLarge { size_bytes: u64, limit_bytes: usize },
    #[error("not a WAV recording: {0}")]
    NotWav(String),
    #[error(
        "mono recording ({channels} channel): QA scoring needs a stereo call, the agent on one channel and the caller on the other"
    )]
    Mono { channels: u16 },
    #[error(
        "truncated WAV file: the data ends before the size its header announces (the upload was cut short?)"
    )]
    Truncated,
    #[error("{0} uploads are being scored already: try again in a moment")]
    Busy(usize),
    #[error("agent channel {0} does not exist: a call has channels 0 and 1")]
    AgentChannel(u16),
    #[error("cannot score the recording: {0}")]
    Score(String),
    #[error("the recording was scored but not stored: {0}")]
    Store(#[from] StoreError),
}

impl UploadError {
    /// HTTP status: 400 for bad input, 413 too large, 503 busy, 500 for the store.
    pub fn status(&self) -> u16 {
        match self {
            Self::Empty
            | Self::NotWav(_)
            | Self::Truncated
            | Self::AgentChannel(_)
            | Self::Score(_) => 400,
            Self::Mono { .. } => 422,
            Self::TooLarge { .. } => 413,
            Self::Busy(_) => 503,
            Self::Store(_) => 500,
        }
    }
}

/// Who and what an upload is.
#[derive(Debug, Clone, Default)]
pub struct UploadInfo {
    /// File name shown for the call (defaults to `upload.wav`).
    pub name: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    /// Channel carrying the agent (0 or 1), as `attune analyze --agent-channel`.
    pub agent_channel: u16,
    /// Keep the audio as the call's recording (the upload's team, or the uploader's, is
    /// recorded; see [`Recordings::records_upload`]). Nothing is kept without recordings.
    pub keep_audio: bool,
    /// The id to store it under (the cluster's batch queue: made from the audio's SHA-256);
    /// None: a fresh server-issued `up-` id. Never from a client.
    pub call_id: Option<String>,
}

/// A scored and stored upload.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UploadResult {
    /// Issued by the server (`up-` and 16 random hex digits): an upload never replaces a
    /// stored call, whatever its bytes.
    pub call_id: String,
    /// SHA-256 of the uploaded bytes (hex).
    pub content_sha256: String,
    pub name: String,
    pub duration_s: f64,
    pub score_pct: Option<f64>,
    pub auto_fail: bool,
    pub warnings: Vec<String>,
    /// The call's report page on the console.
    pub report_url: String,
    /// The call's audio (`GET`), when it was kept as its recording.
    pub audio_url: Option<String>,
}

/// The store as the service uses it. See the module docs.
pub struct CallRecorder {
    /// None once closed. The store is dropped off async threads (see `Drop`): PostgreSQL's
    /// blocking client owns a runtime, which must not be dropped inside tokio's.
    store: SharedStore,
    setup: Arc<ScoringSetup>,
    metrics: Arc<ServiceMetrics>,
    queue: Mutex<Option<Sender<LiveCallJob>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Uploads being scored now.
    uploads: Arc<tokio::sync::Semaphore>,
    /// Largest upload accepted, bytes ([`MAX_UPLOAD_BYTES`] unless changed).
    pub max_upload_bytes: usize,
    location: String,
    /// Where the audio of recorded calls is kept (none: no call is recorded).
    recordings: Option<Arc<Recordings>>,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("location", &self.location)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type SharedStore = Arc<Mutex<Option<Store>>>;

/// Runs `work` on the store, or says it is closed.
fn with_store<T>(
    store: &SharedStore,
    work: impl FnOnce(&mut Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match lock(store).as_mut() {
        Some(store) => work(store),
        None => Err(StoreError::Unsupported("the store is closed".to_owned())),
    }
}

/// Whether a failed write may succeed later (the database locked, full or unreachable), as
/// opposed to a record the store refuses or a store that is closed.
fn worth_retrying(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Locked { .. }
            | StoreError::Full { .. }
            | StoreError::Open { .. }
            | StoreError::Query { .. }
            | StoreError::ReadOnly { .. }
    )
}

/// Saves one call, trying again with backoff while the database fails for up to
/// [`STORE_RETRY_WINDOW`]. Runs on the writer thread only.
fn save_with_retries(
    store: &SharedStore,
    call: &StoredCall,
    metrics: &ServiceMetrics,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut pause = STORE_RETRY_FIRST_PAUSE;
    loop {
        match with_store(store, |s| s.save_call(call)) {
            Ok(()) => return Ok(()),
            Err(e) if worth_retrying(&e) && started.elapsed() < STORE_RETRY_WINDOW => {
                if metrics
                    .store_retries
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(100)
                {
                    eprintln!(
                        "attune: storing live calls failed ({e}); trying again for up to {} s",
                        STORE_RETRY_WINDOW.as_secs()
                    );
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(STORE_RETRY_MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl CallRecorder {
    /// Starts the writer thread over an open store; live calls and uploads are scored with
    /// `setup` (its model and cue rules should be the ones the live calls are analysed with).
    pub fn start(
        store: Store,
        setup: Arc<ScoringSetup>,
        metrics: Arc<ServiceMetrics>,
    ) -> std::io::Result<Self> {
        let location = store.location().to_owned();
        let store: SharedStore = Arc::new(Mutex::new(Some(store)));
        let (sender, receiver) = mpsc::channel::<LiveCallJob>();
        let writer = {
            let (store, setup, metrics) = (store.clone(), setup.clone(), metrics.clone());
            std::thread::Builder::new()
                .name("attune-store-writer".into())
                .spawn(move || {
                    for job in receiver {
                        let call_id = job.info.call_id.clone();
                        let saved = live_call_record(&job, &setup)
                            .and_then(|call| save_with_retries(&store, &call, &metrics));
                        metrics.store_queue_calls.fetch_sub(1, Ordering::Relaxed);
                        match saved {
                            Ok(()) => {
                                metrics
                                    .calls_stored
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => {
                                metrics
                                    .store_errors
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                eprintln!("attune: live call {call_id} was not stored: {e}");
                            }
                        }
                    }
                })?
        };
        Ok(Self {
            store,
            setup,
            metrics,
            queue: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            uploads: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_UPLOADS)),
            max_upload_bytes: MAX_UPLOAD_BYTES,
            location,
            recordings: None,
        })
    }

    /// Keeps the audio of the calls of recorded teams (live calls and uploads) in
    /// `recordings`, beside this store.
    pub fn with_recordings(mut self, recordings: Arc<Recordings>) -> Self {
        self.recordings = Some(recordings);
        self
    }

    /// The recordings of this store, if calls are recorded.
    pub fn recordings(&self) -> Option<&Arc<Recordings>> {
        self.recordings.as_ref()
    }

    /// Where the calls are stored (path, or URL without password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// What calls are scored with.
    pub fn setup(&self) -> &ScoringSetup {
        &self.setup
    }

    /// Queues an ended live call for scoring and saving; never blocks. A call without an
    /// outcome (its analysis could not finish) or without audio (no bytes received; counted)
    /// is not stored; a closed recorder is logged and counted as a store error.
    pub fn record_live(
        &self,
        info: &Arc<CallInfo>,
        sample_rate_hz: u32,
        agent_channel: usize,
        bytes_received: u64,
        summary: Arc<CallSummary>,
    ) {
        if summary.outcome.is_none() {
            return;
        }
        // A call that sent no audio (a header, then nothing) has nothing to score or keep.
        if bytes_received == 0 {
            self.metrics
                .calls_not_stored_empty
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let job = LiveCallJob {
            info: info.clone(),
            sample_rate_hz,
            agent_channel: agent_channel.min(1) as u16,
            bytes_received,
            ended_at_unix_ms: now_unix_ms(),
            summary,
        };
        self.metrics
            .store_queue_calls
            .fetch_add(1, Ordering::Relaxed);
        let sent = match &*lock(&self.queue) {
            Some(queue) => queue.send(job).map_err(|_| "the store writer has stopped"),
            None => Err("the store is closed (the service is stopping)"),
        };
        if sent.is_err() {
            self.metrics
                .store_queue_calls
                .fetch_sub(1, Ordering::Relaxed);
        }
        if let Err(why) = sent {
            self.metrics
                .store_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            eprintln!("attune: live call {} was not stored: {why}", info.call_id);
        }
    }

    /// Stops taking live calls and waits until the queued ones are saved.
    pub fn close(&self) {
        lock(&self.queue).take();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }

    /// Takes one of the upload slots, or says how many are busy.
    pub fn upload_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, UploadError> {
        self.uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| UploadError::Busy(MAX_CONCURRENT_UPLOADS))
    }

    /// Scores an uploaded WAV recording with the default rubric and saves it
    /// (`source = "recording"`). Blocking (CPU and database): call from a blocking thread.
    pub fn score_upload(
        &self,
        info: &UploadInfo,
        bytes: Vec<u8>,
    ) -> Result<UploadResult, UploadError> {
        if bytes.is_empty() {
            return Err(UploadError::Empty);
        }
        if info.agent_channel > 1 {
            return Err(UploadError::AgentChannel(info.agent_channel));
        }
        if bytes.len() > self.max_upload_bytes {
            return Err(UploadError::TooLarge {
                size_bytes: bytes.len() as u64,
                limit_bytes: self.max_upload_bytes,
            });
        }
        // The header alone (from a bounded copy of the start) tells a non-WAV or mono file
        // before any scoring.
        let head = bytes[..bytes.len().min(1 << 20)].to_vec();
        let header =
            attune_core::audio::AudioReader::from_wav_reader(Box::new(std::io::Cursor::new(head)))
                .map_err(|e| UploadError::NotWav(e.to_string()))?;
        let channels = header.spec().channels;
        if channels < 2 {
            return Err(UploadError::Mono { channels });
        }
        let name = info
            .name
            .as_deref()
            .and_then(non_empty)
            .map(|n| n.chars().take(200).collect::<String>())
            .unwrap_or_else(|| "upload.wav".to_owned());
        let call_id = info
            .call_id
            .clone()
            .unwrap_or_else(|| format!("up-{}", crate::auth::secrets::random_hex(8)));
        let content_sha256 = crate::auth::secrets::sha256_hex(&bytes);
        // The audio to keep is written first (the scoring takes the bytes), and becomes the
        // recording only once the call is stored; a failure is logged and counted, and the
        // upload goes on without it.
        let mut part = None;
        let bytes = match self.recordings.as_ref().filter(|_| info.keep_audio) {
            None => bytes,
            Some(recordings) => {
                let shared = Arc::new(bytes);
                match recordings.write_upload(&call_id, &shared, info.agent_channel) {
                    Ok(p) => part = Some(p),
                    Err(e) => {
                        recordings.count_error();
                        eprintln!("attune: the audio of upload {call_id} is not kept: {e}");
                    }
                }
                Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone())
            }
        };
        let swapped;
        let setup = if info.agent_channel == self.setup.agent_channel {
            &*self.setup
        } else {
            swapped = ScoringSetup {
                agent_channel: info.agent_channel,
                ..(*self.setup).clone()
            };
            &swapped
        };
        let (report, truncated) =
            qa::score_wav_bytes(&name, bytes, setup, |_| {}).map_err(|e| match e {
                ScoreError::Audio(e) => UploadError::NotWav(e.to_string()),
                e => UploadError::Score(e.to_string()),
            })?;
        if truncated {
            return Err(UploadError::Truncated);
        }
        let call = StoredCall::from_report(
            &report,
            &call_id,
            "recording",
            info.agent.as_deref().and_then(non_empty),
            info.team.as_deref().and_then(non_empty),
            qa::rfc3339_utc(SystemTime::now()),
        )?;
        with_store(&self.store, |s| s.save_call(&call))?;
        self.metrics
            .calls_stored
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut audio_url = None;
        if let (Some(recordings), Some(part)) = (&self.recordings, part) {
            match recordings.commit_upload(part) {
                Ok(()) => audio_url = Some(format!("/api/recorded/{call_id}/audio")),
                Err(e) => {
                    recordings.count_error();
                    eprintln!("attune: the audio of upload {call_id} is not kept: {e}");
                }
            }
        }
        Ok(UploadResult {
            audio_url,
            report_url: format!("/recorded/{call_id}"),
            call_id,
            content_sha256,
            name,
            duration_s: report.analysis.duration_s,
            score_pct: report.qa.score_pct,
            auto_fail: report.qa.auto_fail,
            warnings: report.analysis.warnings.clone(),
        })
    }

    /// Stored calls matching `query`, newest first (blocking).
    pub fn calls(&self, query: &CallQuery) -> Result<Vec<CallRow>, StoreError> {
        with_store(&self.store, |s| s.calls(query))
    }

    /// Whether a call id is stored (blocking).
    pub fn has_call(&self, call_id: &str) -> Result<bool, StoreError> {
        with_store(&self.store, |s| s.has_call(call_id))
    }

    /// A stored call's team (blocking): None when there is no such call, Some(None) when it
    /// has no team.
    pub fn call_team(&self, call_id: &str) -> Result<Option<Option<String>>, StoreError> {
        with_store(&self.store, |s| s.call_team(call_id))
    }

    /// Stores an acknowledgement with who made it (blocking).
    pub fn save_ack(&self, ack: &attune_qa::store::AckRecord) -> Result<(), StoreError> {
        with_store(&self.store, |s| s.save_ack(ack))
    }

    /// Audit log entries (blocking).
    pub fn audit_entries(
        &self,
        query: &attune_qa::store::AuditQuery,
    ) -> Result<Vec<attune_qa::store::AuditEntry>, StoreError> {
        with_store(&self.store, |s| s.audit(query))
    }

    /// A stored call's result document (blocking); None when there is no such call.
    pub fn report_json(&self, call_id: &str) -> Result<Option<String>, StoreError> {
        with_store(&self.store, |s| s.report_json(call_id))
    }

    /// Every (agent, team) pair with stored calls (blocking): the coaching view's roster.
    pub fn roster(&self) -> Result<Vec<attune_qa::store::RosterRow>, StoreError> {
        with_store(&self.store, |s| s.roster())
    }

    /// The coaching view of an agent or team (blocking; holds the store while it reads the
    /// range's documents). `may_read` says whether a team's calls count.
    pub fn coaching(
        &self,
        request: &attune_qa::coaching::CoachingRequest,
        may_read: &dyn Fn(Option<&str>) -> bool,
    ) -> Result<attune_qa::coaching::CoachingSummary, attune_qa::coaching::CoachingError> {
        match lock(&self.store).as_mut() {
            Some(store) => attune_qa::coaching::coaching_summary(store, request, may_read),
            None => Err(StoreError::Unsupported("the store is closed".to_owned()).into()),
        }
    }
}

impl Drop for CallRecorder {
    fn drop(&mut self) {
        // The writer drains what is queued; then the store is closed on a plain thread (this
        // drop may run on one of tokio's threads, where a blocking client may not be dropped).
        lock(&self.queue).take();
        let writer = lock(&self.writer).take();
        let store = self.store.clone();
        let close = move || {
            if let Some(writer) = writer {
                let _ = writer.join();
            }
            drop(lock(&store).take());
        };
        if let Err(e) = std::thread::Builder::new()
            .name("attune-store-close".into())
            .spawn(close)
        {
            eprintln!("attune: cannot close the store on its own thread: {e}");
        }
    }
}

/// The stored record of an ended live call: its result document built exactly as for a
/// recording ([`CallReport::from_outcome`]), `source = "live"`, agent and team from the header.
fn live_call_record(job: &LiveCallJob, setup: &ScoringSetup) -> Result<StoredCall, StoreError> {
    let outcome: &CallOutcome = job
        .summary
        .outcome
        .as_ref()
        .ok_or_else(|| StoreError::Record("the call's analysis did not finish".to_owned()))?;
    let started_at = qa::rfc3339_utc(SystemTime::now());
    let call_at = qa::rfc3339_from_unix_ms(job.info.started_at_unix_ms as i64);
    let input = InputIdentity {
        path: format!("live:{}", job.info.call_id),
        size_bytes: job.bytes_received,
        modified_unix_ms: job.ended_at_unix_ms as i64,
    };
    let swapped;
    let setup = if setup.agent_channel == job.agent_channel {
        setup
    } else {
        swapped = ScoringSetup {
            agent_channel: job.agent_channel,
            ..setup.clone()
        };
        &swapped
    };
    let mut report = CallReport::from_outcome(
        input.path.clone(),
        outcome,
        job.sample_rate_hz,
        2,
        setup,
        input,
        started_at,
        qa::rfc3339_utc(SystemTime::now()),
    );
    if let Some(c) = &job.summary.continued {
        report.analysis.warnings.push(continuation_notice(c));
    }
    StoredCall::from_report(
        &report,
        &job.info.call_id,
        "live",
        non_empty(&job.info.agent_id),
        non_empty(&job.info.team),
        call_at,
    )
}

/// The stored result's notice for a call continued from another node.
pub fn continuation_notice(c: &crate::hub::Continuation) -> String {
    format!(
        "continued from another node of the cluster: the call began at {} on a node that \
         stopped ({:.1} s analysed there, not part of this result); this node took it over \
         after a gap of {:.1} s, and its times count from then",
        qa::rfc3339_from_unix_ms(c.earlier_started_at_unix_ms as i64),
        c.earlier_analysed_s,
        c.gap_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(name: &str) -> CallRecorder {
        let dir =
            std::env::temp_dir().join(format!("attune-recorder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("t.db").display().to_string()).unwrap();
        let setup = Arc::new(ScoringSetup::load(None, None, None, 0).unwrap());
        CallRecorder::start(store, setup, Arc::new(ServiceMetrics::default())).unwrap()
    }

    #[test]
    fn uploads_beyond_the_limit_are_refused_as_busy() {
        let recorder = recorder("busy");
        let first = recorder.upload_permit().unwrap();
        let _second = recorder.upload_permit().unwrap();
        let third = recorder.upload_permit().unwrap_err();
        assert_eq!(third.status(), 503);
        assert!(
            third.to_string().contains("2 uploads are being scored"),
            "{third}"
        );
        drop(first);
        assert!(recorder.upload_permit().is_ok());
    }

    fn empty_call(recorder: &CallRecorder, call_id: &str) -> (Arc<CallInfo>, Arc<CallSummary>) {
        let info = Arc::new(CallInfo {
            call_id: call_id.into(),
            agent_id: "a".into(),
            team: "t".into(),
            started_at_unix_ms: 0,
        });
        let outcome = attune_core::call::CallAnalyzer::new(
            attune_core::call::CallConfig::default(),
            recorder.setup().model.clone(),
        )
        .unwrap()
        .finish(&mut Vec::new());
        let summary = Arc::new(CallSummary {
            reason: "ended".into(),
            duration_s: 0.0,
            chunks_received: 0,
            bytes_received: 0,
            chunks_out_of_order: 0,
            chunks_duplicate: 0,
            outcome: Some(outcome),
            continued: None,
        });
        (info, summary)
    }

    #[test]
    fn a_locked_database_delays_the_ended_calls_but_loses_none() {
        let dir =
            std::env::temp_dir().join(format!("attune-recorder-{}-locked", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("t.db").display().to_string();
        let store = Store::open_with_timeout(&db, Duration::from_millis(20)).unwrap();
        let setup = Arc::new(ScoringSetup::load(None, None, None, 0).unwrap());
        let metrics = Arc::new(ServiceMetrics::default());
        let recorder = CallRecorder::start(store, setup, metrics.clone()).unwrap();
        let mut holder = Store::open(&db).unwrap();
        holder.hold_write_lock_for_tests().unwrap();
        // More calls than the old bounded queue held, all ending at once.
        for i in 0..1100 {
            let (info, summary) = empty_call(&recorder, &format!("c{i}"));
            recorder.record_live(&info, 8000, 0, 1, summary);
        }
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(metrics.calls_stored.load(Ordering::Relaxed), 0);
        assert!(metrics.store_retries.load(Ordering::Relaxed) > 0);
        assert!(metrics.store_queue_calls.load(Ordering::Relaxed) > 0);
        drop(holder);
        recorder.close();
        assert_eq!(metrics.store_errors.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.calls_stored.load(Ordering::Relaxed), 1100);
        assert_eq!(metrics.store_queue_calls.load(Ordering::Relaxed), 0);
        let stored = Store::open(&db)
            .unwrap()
            .calls(&CallQuery::default())
            .unwrap()
            .len();
        assert_eq!(stored, 1100);
    }

    #[test]
    fn a_call_that_sent_no_audio_is_counted_not_stored() {
        let dir =
            std::env::temp_dir().join(format!("attune-recorder-{}-empty", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("t.db").display().to_string();
        let setup = Arc::new(ScoringSetup::load(None, None, None, 0).unwrap());
        let metrics = Arc::new(ServiceMetrics::default());
        let recorder =
            CallRecorder::start(Store::open(&db).unwrap(), setup, metrics.clone()).unwrap();
        let (info, summary) = empty_call(&recorder, "no-audio");
        recorder.record_live(&info, 8000, 0, 0, summary.clone());
        let (info, summary) = empty_call(&recorder, "some-audio");
        recorder.record_live(&info, 8000, 0, 3200, summary);
        recorder.close();
        assert_eq!(metrics.calls_not_stored_empty.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.calls_stored.load(Ordering::Relaxed), 1);
        let stored = Store::open(&db)
            .unwrap()
            .calls(&CallQuery::default())
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].call_id, "some-audio");
    }

    #[test]
    fn a_closed_recorder_counts_live_calls_it_cannot_store() {
        let recorder = recorder("closed");
        recorder.close();
        let info = Arc::new(CallInfo {
            call_id: "c1".into(),
            agent_id: "a".into(),
            team: "t".into(),
            started_at_unix_ms: 0,
        });
        let outcome = attune_core::call::CallAnalyzer::new(
            attune_core::call::CallConfig::default(),
            recorder.setup().model.clone(),
        )
        .unwrap()
        .finish(&mut Vec::new());
        let summary = Arc::new(CallSummary {
            reason: "ended".into(),
            duration_s: 0.0,
            chunks_received: 0,
            bytes_received: 0,
            chunks_out_of_order: 0,
            chunks_duplicate: 0,
            outcome: Some(outcome),
            continued: None,
        });
        recorder.record_live(&info, 8000, 0, 1, summary);
        assert_eq!(
            recorder
                .metrics
                .store_errors
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}
