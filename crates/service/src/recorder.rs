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
//! `attune_store_retries_total`). At shutdown the queue is drained before the process exits.
//!
//! With a spool ([`CallRecorder::start_with_spool`], [`super::spool`]) nothing is lost while
//! the disk has room: an ended call's store record is written to the spool (fsynced) before the
//! call is acknowledged as ended, and its file is deleted only once the database committed
//! it. A write still failing after the retry window stays spooled (`attune_store_spooled_calls`)
//! and is tried again every [`STUCK_RETRY_EVERY`] and at the next start, when the spool is
//! stored first; a call the spool cannot take (disk full) is kept in memory only, logged and
//! counted (`attune_store_spool_errors_total`). The spool also journals the live calls
//! ([`CallRecorder::journal_live_calls`]): a call still live when the process died is stored
//! at the next start as interrupted (`source = "interrupted"`, no score). Without a spool, a
//! call whose write fails beyond the window is counted as lost (`attune_store_errors_total`).
//!
//! An upload ([`CallRecorder::score_upload`], blocking: run it on a blocking thread) is scored
//! with [`attune_qa::score_wav_bytes`] — the code `attune analyze` runs on a file — and saved
//! with `source = "recording"`; when its team is recorded its audio is kept too
//! ([`super::recordings`], the recordings this recorder carries: [`CallRecorder::with_recordings`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use attune_core::call::CallOutcome;
use attune_qa::store::{CallQuery, CallRow, Store, StoreError, StoredCall};
use attune_qa::{self as qa, CallReport, InputIdentity, ScoreError, ScoringSetup};

use super::hub::{CallInfo, Hub, LiveJournal, now_unix_ms};
use super::metrics::ServiceMetrics;
use super::recordings::Recordings;
use super::session::CallSummary;
use super::spool::{LiveMarker, Spool};

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
/// How often spooled calls whose store write failed beyond the retry window are tried again.
pub const STUCK_RETRY_EVERY: Duration = Duration::from_secs(10);

/// How a failing store write is tried again (`attune serve --store-retry-s`,
/// `--store-retry-every-s`); the default is [`STORE_RETRY_WINDOW`] and [`STUCK_RETRY_EVERY`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreRetry {
    /// How long one call's failing write is tried again with backoff before it is left
    /// spooled (or, without a spool, given up as not stored).
    pub window: Duration,
    /// How often the calls left spooled are tried again.
    pub stuck_every: Duration,
}

impl Default for StoreRetry {
    fn default() -> Self {
        Self {
            window: STORE_RETRY_WINDOW,
            stuck_every: STUCK_RETRY_EVERY,
        }
    }
}

/// An ended live call, as scored.
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
    queue: Mutex<Option<Sender<WriteJob>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Where ended calls wait for the database and live calls are journaled (None: memory only).
    spool: Option<Arc<Spool>>,
    /// The live-call journal's thread, once started ([`Self::journal_live_calls`]).
    journal: Mutex<Option<Sender<JournalOp>>>,
    /// Ended calls the spool could not take (rate-limits their log lines).
    spool_write_errors: std::sync::atomic::AtomicU64,
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

/// Saves one call, trying again with backoff while the database fails for up to `window`
/// ([`STORE_RETRY_WINDOW`] by default). Runs on the writer thread only.
fn save_with_retries(
    store: &SharedStore,
    call: &StoredCall,
    metrics: &ServiceMetrics,
    window: Duration,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut pause = STORE_RETRY_FIRST_PAUSE;
    loop {
        match with_store(store, |s| s.save_call(call)) {
            Ok(()) => return Ok(()),
            Err(e) if worth_retrying(&e) && started.elapsed() < window => {
                if metrics
                    .store_retries
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(100)
                {
                    eprintln!(
                        "attune: storing live calls failed ({e}); trying again for up to {} s",
                        window.as_secs_f64()
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
        Self::start_with_spool(store, setup, metrics, None)
    }

    /// As [`Self::start`], with ended calls spooled in `spool` until stored (see the module
    /// docs). The calls a previous process left in it are stored first, on the writer thread:
    /// the spooled ones, then the live ones as interrupted.
    pub fn start_with_spool(
        store: Store,
        setup: Arc<ScoringSetup>,
        metrics: Arc<ServiceMetrics>,
        spool: Option<Spool>,
    ) -> std::io::Result<Self> {
        Self::start_with_retry(store, setup, metrics, spool, StoreRetry::default())
    }

    /// As [`Self::start_with_spool`], failing writes tried again as `retry` says.
    pub fn start_with_retry(
        store: Store,
        setup: Arc<ScoringSetup>,
        metrics: Arc<ServiceMetrics>,
        spool: Option<Spool>,
        retry: StoreRetry,
    ) -> std::io::Result<Self> {
        let location = store.location().to_owned();
        let store: SharedStore = Arc::new(Mutex::new(Some(store)));
        let spool = spool.map(Arc::new);
        // What the previous process left, listed now: new calls spool and journal apart.
        let left = match &spool {
            Some(spool) => {
                let spooled = spool.spooled_calls()?;
                let live = spool.take_left_live()?;
                metrics
                    .store_spooled_calls
                    .fetch_add(spooled.len() as u64, Ordering::Relaxed);
                Some((spooled, live))
            }
            None => None,
        };
        let (sender, receiver) = mpsc::channel::<WriteJob>();
        let writer = {
            let (store, setup, metrics, spool) =
                (store.clone(), setup.clone(), metrics.clone(), spool.clone());
            std::thread::Builder::new()
                .name("attune-store-writer".into())
                .spawn(move || {
                    let mut writer = Writer {
                        store,
                        metrics,
                        spool,
                        stuck: Vec::new(),
                        retry,
                    };
                    if let Some((spooled, live)) = left {
                        writer.recover(&setup, spooled, live);
                    }
                    loop {
                        match receiver.recv_timeout(writer.retry.stuck_every) {
                            Ok(job) => {
                                writer.metrics.store_queue_calls.fetch_sub(1, Ordering::Relaxed);
                                writer.write(job);
                            }
                            Err(RecvTimeoutError::Timeout) => writer.retry_stuck(),
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    writer.retry_stuck();
                    if let (false, Some(spool)) = (writer.stuck.is_empty(), &writer.spool) {
                        eprintln!(
                            "attune: {} ended calls could not be stored and stay spooled in {}: they are stored at the next start",
                            writer.stuck.len(),
                            spool.dir().display()
                        );
                    }
                })?
        };
        Ok(Self {
            store,
            setup,
            metrics,
            queue: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            spool,
            journal: Mutex::new(None),
            spool_write_errors: std::sync::atomic::AtomicU64::new(0),
            uploads: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_UPLOADS)),
            max_upload_bytes: MAX_UPLOAD_BYTES,
            location,
            recordings: None,
        })
    }

    /// The spool, if ended calls are spooled.
    pub fn spool(&self) -> Option<&Arc<Spool>> {
        self.spool.as_ref()
    }

    /// Journals `hub`'s local calls in the spool while they are live (a marker file each,
    /// written and removed on a thread of its own, never on the audio path), so that a call
    /// the process dies with is stored as interrupted at the next start. Nothing without a
    /// spool.
    pub fn journal_live_calls(&self, hub: &Hub) -> std::io::Result<()> {
        let Some(spool) = self.spool.clone() else {
            return Ok(());
        };
        let (sender, receiver) = mpsc::channel::<JournalOp>();
        let metrics = self.metrics.clone();
        std::thread::Builder::new()
            .name("attune-live-journal".into())
            .spawn(move || run_journal(&spool, &metrics, &receiver))?;
        *lock(&self.journal) = Some(sender.clone());
        if !hub.set_live_journal(Arc::new(JournalSender(sender))) {
            eprintln!("attune: the hub already journals its live calls");
        }
        Ok(())
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
        // Scored and spooled here, before the call is acknowledged as ended; blocking work, so
        // the tokio worker hands its other tasks on meanwhile.
        let job = off_async(|| {
            let call = live_call_record(&job, &self.setup);
            let spooled = match (&call, &self.spool) {
                (Ok(call), Some(spool)) => match spool.write_call(call, job.ended_at_unix_ms) {
                    Ok(path) => {
                        self.metrics
                            .store_spooled_calls
                            .fetch_add(1, Ordering::Relaxed);
                        Some(path)
                    }
                    Err(e) => {
                        self.metrics
                            .store_spool_errors
                            .fetch_add(1, Ordering::Relaxed);
                        // Counted apart from the other spool faults (live markers), so that
                        // the first call the spool cannot take is always logged.
                        if self
                            .spool_write_errors
                            .fetch_add(1, Ordering::Relaxed)
                            .is_multiple_of(100)
                        {
                            eprintln!(
                                "attune: cannot spool ended call {} in {} ({e}): it waits for the store in memory only (lost if the process dies first)",
                                info.call_id,
                                spool.dir().display()
                            );
                        }
                        None
                    }
                },
                _ => None,
            };
            WriteJob {
                call_id: info.call_id.clone(),
                call,
                spooled,
            }
        });
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

    /// Stops taking live calls and waits until the queued ones are saved (or spooled, when
    /// the database keeps failing) and the live-call journal is on disk.
    pub fn close(&self) {
        if let Some(journal) = lock(&self.journal).take() {
            let (done, flushed) = mpsc::channel();
            if journal.send(JournalOp::Flush(done)).is_ok() {
                let _ = flushed.recv_timeout(Duration::from_secs(5));
            }
        }
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

    /// Account and token management on the store (blocking): the console's admin page.
    pub fn manage<T>(
        &self,
        work: impl FnOnce(&mut Store) -> Result<T, crate::auth::manage::ManageError>,
    ) -> Result<T, crate::auth::manage::ManageError> {
        match lock(&self.store).as_mut() {
            Some(store) => work(store),
            None => Err(StoreError::Unsupported("the store is closed".to_owned()).into()),
        }
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

/// Runs blocking work from any thread: on a worker of tokio's multi-threaded runtime the
/// worker's other tasks move to another thread meanwhile (`block_in_place`).
fn off_async<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// An ended call for the writer: its record (or why it has none) and its spool file.
struct WriteJob {
    call_id: String,
    call: Result<StoredCall, StoreError>,
    /// None: in memory only (no spool, or the spool could not take it).
    spooled: Option<PathBuf>,
}

/// The writer thread's state.
struct Writer {
    store: SharedStore,
    metrics: Arc<ServiceMetrics>,
    spool: Option<Arc<Spool>>,
    /// Spooled calls whose write failed beyond the retry window, oldest first.
    stuck: Vec<(StoredCall, PathBuf)>,
    retry: StoreRetry,
}

impl Writer {
    fn stored(&self, spooled: Option<&PathBuf>) {
        self.metrics.calls_stored.fetch_add(1, Ordering::Relaxed);
        if let Some(path) = spooled {
            self.metrics
                .store_spooled_calls
                .fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = Spool::remove(path) {
                // Stored again at the next start: it keeps one row.
                self.metrics
                    .store_spool_errors
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "attune: cannot remove the spool file {} of a stored call: {e}",
                    path.display()
                );
            }
        }
    }

    /// Stores one ended call. While spooled calls are stuck (the database failed beyond the
    /// retry window), a spooled call is tried once and joins them if it fails too.
    fn write(&mut self, job: WriteJob) {
        let call = match job.call {
            Ok(call) => call,
            Err(e) => {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("attune: live call {} was not stored: {e}", job.call_id);
                return;
            }
        };
        let saved = if self.stuck.is_empty() || job.spooled.is_none() {
            save_with_retries(&self.store, &call, &self.metrics, self.retry.window)
        } else {
            with_store(&self.store, |s| s.save_call(&call))
        };
        match (saved, job.spooled) {
            (Ok(()), spooled) => {
                self.stored(spooled.as_ref());
                if !self.stuck.is_empty() {
                    self.retry_stuck();
                }
            }
            (Err(e), Some(path)) if worth_retrying(&e) => {
                if self.stuck.is_empty() || self.stuck.len().is_multiple_of(100) {
                    eprintln!(
                        "attune: live call {} is not stored yet ({e}): it stays spooled in {} and is tried again every {} s ({} waiting)",
                        job.call_id,
                        path.display(),
                        self.retry.stuck_every.as_secs_f64(),
                        self.stuck.len() + 1
                    );
                }
                self.stuck.push((call, path));
            }
            (Err(e), spooled) => {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("attune: live call {} was not stored: {e}", job.call_id);
                if let (Some(path), Some(spool)) = (spooled, &self.spool) {
                    // The store refuses this record: kept for a person, not tried forever.
                    self.metrics
                        .store_spooled_calls
                        .fetch_sub(1, Ordering::Relaxed);
                    let aside = spool.move_aside(&path, e.to_string());
                    if let Some(to) = aside.moved_to {
                        eprintln!("attune: its record is kept in {}", to.display());
                    }
                }
            }
        }
    }

    /// Tries the stuck calls again, oldest first, until one fails.
    fn retry_stuck(&mut self) {
        let mut done = 0;
        for (call, path) in &self.stuck {
            match with_store(&self.store, |s| s.save_call(call)) {
                Ok(()) => {
                    self.stored(Some(path));
                    done += 1;
                }
                Err(_) => break,
            }
        }
        if done > 0 {
            self.stuck.drain(..done);
            eprintln!(
                "attune: {done} spooled calls stored ({} still waiting)",
                self.stuck.len()
            );
        }
    }

    /// Stores what a previous process left in the spool: its ended calls, then the calls it
    /// died with (live markers) as interrupted, unless stored or spooled already.
    fn recover(
        &mut self,
        setup: &ScoringSetup,
        spooled: Vec<PathBuf>,
        live: Vec<(PathBuf, Result<LiveMarker, String>)>,
    ) {
        let Some(spool) = self.spool.clone() else {
            return;
        };
        let (mut replayed, mut interrupted, mut corrupt) = (0, 0, 0);
        let mut spooled_ids = HashSet::new();
        for path in spooled {
            match Spool::read_call(&path) {
                Ok(call) => {
                    spooled_ids.insert(call.call_id.clone());
                    replayed += 1;
                    self.write(WriteJob {
                        call_id: call.call_id.clone(),
                        call: Ok(call),
                        spooled: Some(path),
                    });
                }
                Err(e) => {
                    corrupt += 1;
                    self.metrics
                        .store_spooled_calls
                        .fetch_sub(1, Ordering::Relaxed);
                    self.spool_corrupt(&spool, &path, e);
                }
            }
        }
        for (path, marker) in live {
            let marker = match marker {
                Ok(marker) => marker,
                Err(e) => {
                    corrupt += 1;
                    self.spool_corrupt(&spool, &path, e);
                    continue;
                }
            };
            let known = spooled_ids.contains(&marker.call_id)
                || with_store(&self.store, |s| s.has_call(&marker.call_id)).unwrap_or(false);
            if !known {
                let call = match interrupted_record(&marker, setup) {
                    Ok(call) => call,
                    Err(e) => {
                        eprintln!(
                            "attune: cannot make the record of interrupted call {}: {e}",
                            marker.call_id
                        );
                        continue;
                    }
                };
                // Spooled first, so that a failing database keeps it too.
                let spooled = match spool.write_call(&call, now_unix_ms()) {
                    Ok(path) => {
                        self.metrics
                            .store_spooled_calls
                            .fetch_add(1, Ordering::Relaxed);
                        Some(path)
                    }
                    Err(e) => {
                        self.metrics
                            .store_spool_errors
                            .fetch_add(1, Ordering::Relaxed);
                        eprintln!(
                            "attune: cannot spool interrupted call {} ({e}); storing it directly",
                            marker.call_id
                        );
                        None
                    }
                };
                let stuck_before = self.stuck.len();
                self.write(WriteJob {
                    call_id: marker.call_id.clone(),
                    call: Ok(call),
                    spooled: spooled.clone(),
                });
                if spooled.is_none() && self.stuck.len() == stuck_before {
                    // Not spooled and not stored: keep the marker for the next start.
                    let stored = with_store(&self.store, |s| s.has_call(&marker.call_id));
                    if !matches!(stored, Ok(true)) {
                        continue;
                    }
                }
                interrupted += 1;
                self.metrics
                    .calls_interrupted_stored
                    .fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = Spool::remove(&path) {
                eprintln!(
                    "attune: cannot remove the live marker {}: {e}",
                    path.display()
                );
            }
        }
        if replayed + interrupted + corrupt > 0 {
            eprintln!(
                "attune: spool {}: {replayed} ended calls stored again, {interrupted} calls that were live when the service stopped stored as interrupted, {corrupt} unreadable files moved aside",
                spool.dir().display()
            );
        }
    }

    fn spool_corrupt(&self, spool: &Spool, path: &std::path::Path, error: String) {
        self.metrics
            .store_spool_corrupt
            .fetch_add(1, Ordering::Relaxed);
        let aside = spool.move_aside(path, error);
        eprintln!(
            "attune: spool file {} cannot be read ({}); {}",
            aside.path.display(),
            aside.error,
            match &aside.moved_to {
                Some(to) => format!("moved aside to {}", to.display()),
                None => "it could not be moved aside and stays where it is".to_owned(),
            }
        );
    }
}

/// The stored record of a call that was live when the process died: its header and start
/// time, no analysis, no score (`source = "interrupted"`; its document says so in `warnings`
/// and `interrupted`).
fn interrupted_record(marker: &LiveMarker, setup: &ScoringSetup) -> Result<StoredCall, StoreError> {
    let outcome = attune_core::call::CallAnalyzer::new(
        attune_core::call::CallConfig::default(),
        setup.model.clone(),
    )
    .map_err(|e| StoreError::Record(e.to_string()))?
    .finish(&mut Vec::new());
    let now = qa::rfc3339_utc(SystemTime::now());
    let input = InputIdentity {
        path: format!("live:{}", marker.call_id),
        size_bytes: 0,
        modified_unix_ms: marker.started_at_unix_ms as i64,
    };
    let mut report = CallReport::from_outcome(
        input.path.clone(),
        &outcome,
        8000,
        2,
        setup,
        input,
        now.clone(),
        now,
    );
    report.analysis.warnings.push(
        "interrupted: the service stopped (killed or crashed) while this call was live;          nothing of its analysis was kept, and it is not scored"
            .to_owned(),
    );
    report.qa.score_pct = None;
    report.qa.raw_score_pct = None;
    let mut call = StoredCall::from_report(
        &report,
        &marker.call_id,
        "interrupted",
        non_empty(&marker.agent_id),
        non_empty(&marker.team),
        qa::rfc3339_from_unix_ms(marker.started_at_unix_ms as i64),
    )?;
    call.score_pct = None;
    let mut doc: serde_json::Value = serde_json::from_str(&call.report_json)
        .map_err(|e| StoreError::Record(format!("cannot read the document: {e}")))?;
    if let Some(doc) = doc.as_object_mut() {
        doc.insert(
            "interrupted".to_owned(),
            serde_json::json!({
                "reason": "interrupted",
                "detail": "the service stopped while the call was live",
                "started_at": qa::rfc3339_from_unix_ms(marker.started_at_unix_ms as i64),
            }),
        );
    }
    call.report_json = doc.to_string();
    Ok(call)
}

/// What the live-call journal's thread is told.
enum JournalOp {
    Started(LiveMarker),
    Ended(String),
    /// Answers once everything before it is on disk.
    Flush(Sender<()>),
}

/// The hub's side of the journal: a send, never a wait.
struct JournalSender(Sender<JournalOp>);

impl LiveJournal for JournalSender {
    fn started(&self, call: &Arc<CallInfo>) {
        let _ = self.0.send(JournalOp::Started(LiveMarker::from(&**call)));
    }

    fn ended(&self, call: &Arc<CallInfo>) {
        let _ = self.0.send(JournalOp::Ended(call.call_id.clone()));
    }
}

/// The journal's thread: writes and removes live markers, syncing the directory once per
/// batch of what has arrived.
fn run_journal(spool: &Spool, metrics: &ServiceMetrics, receiver: &mpsc::Receiver<JournalOp>) {
    let fail = |what: &str, id: &str, e: std::io::Error| {
        if metrics
            .store_spool_errors
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(100)
        {
            eprintln!(
                "attune: cannot {what} the live marker of call {id} in {}: {e}",
                spool.dir().display()
            );
        }
    };
    while let Ok(first) = receiver.recv() {
        let mut flushed = Vec::new();
        let mut op = Some(first);
        while let Some(next) = op {
            match next {
                JournalOp::Started(marker) => {
                    if let Err(e) = spool.mark_live(&marker) {
                        fail("write", &marker.call_id, e);
                    }
                }
                JournalOp::Ended(call_id) => {
                    if let Err(e) = spool.unmark_live(&call_id) {
                        fail("remove", &call_id, e);
                    }
                }
                JournalOp::Flush(done) => flushed.push(done),
            }
            op = receiver.try_recv().ok();
        }
        if let Err(e) = spool.sync_live() {
            fail("sync", "(all)", e);
        }
        for done in flushed {
            let _ = done.send(());
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

    fn spooled(name: &str) -> (std::path::PathBuf, String, Spool) {
        let dir =
            std::env::temp_dir().join(format!("attune-recorder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("t.db").display().to_string();
        let spool = Spool::open(dir.join("t.db.spool")).unwrap();
        (dir, db, spool)
    }

    fn start_spooled(db: &str, spool: Spool, metrics: &Arc<ServiceMetrics>) -> CallRecorder {
        let setup = Arc::new(ScoringSetup::load(None, None, None, 0).unwrap());
        CallRecorder::start_with_spool(
            Store::open(db).unwrap(),
            setup,
            metrics.clone(),
            Some(spool),
        )
        .unwrap()
    }

    #[test]
    fn the_spool_is_stored_at_the_next_start_once_and_a_corrupt_file_is_set_aside() {
        let (dir, db, spool) = spooled("replay");
        let call = crate::spool::tests::call("c1");
        // Stored already, and spooled twice (a crash between the commit and the deletion).
        Store::open(&db).unwrap().save_call(&call).unwrap();
        spool.write_call(&call, 1).unwrap();
        spool.write_call(&call, 2).unwrap();
        spool
            .write_call(&crate::spool::tests::call("c2"), 3)
            .unwrap();
        let bad = spool
            .write_call(&crate::spool::tests::call("c3"), 4)
            .unwrap();
        std::fs::write(&bad, b"{\"version\":1,\"call\":{\"call_id\":").unwrap();
        let metrics = Arc::new(ServiceMetrics::default());
        let recorder = start_spooled(&db, spool, &metrics);
        recorder.close();
        let mut store = Store::open(&db).unwrap();
        let mut ids: Vec<String> = store
            .calls(&CallQuery::default())
            .unwrap()
            .into_iter()
            .map(|r| r.call_id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["c1", "c2"]);
        assert_eq!(metrics.calls_stored.load(Ordering::Relaxed), 3);
        assert_eq!(metrics.store_spooled_calls.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.store_spool_corrupt.load(Ordering::Relaxed), 1);
        let spool = Spool::open(dir.join("t.db.spool")).unwrap();
        assert!(spool.spooled_calls().unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(dir.join("t.db.spool/corrupt"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn calls_left_live_are_stored_as_interrupted_unless_stored_already() {
        let (_dir, db, spool) = spooled("interrupted");
        let marker = |id: &str| LiveMarker {
            call_id: id.into(),
            agent_id: "a7".into(),
            team: "t7".into(),
            started_at_unix_ms: 1_796_000_000_000,
        };
        spool.mark_live(&marker("gone")).unwrap();
        spool.mark_live(&marker("stored")).unwrap();
        spool.mark_live(&marker("spooled")).unwrap();
        Store::open(&db)
            .unwrap()
            .save_call(&crate::spool::tests::call("stored"))
            .unwrap();
        spool
            .write_call(&crate::spool::tests::call("spooled"), 1)
            .unwrap();
        let metrics = Arc::new(ServiceMetrics::default());
        let recorder = start_spooled(&db, spool, &metrics);
        recorder.close();
        assert_eq!(metrics.calls_interrupted_stored.load(Ordering::Relaxed), 1);
        let mut store = Store::open(&db).unwrap();
        let rows = store.calls(&CallQuery::default()).unwrap();
        assert_eq!(rows.len(), 3);
        let gone = rows.iter().find(|r| r.call_id == "gone").unwrap();
        assert_eq!(gone.source, "interrupted");
        assert_eq!(gone.score_pct, None);
        assert_eq!(gone.agent.as_deref(), Some("a7"));
        assert_eq!(gone.team.as_deref(), Some("t7"));
        assert_eq!(gone.call_at, qa::rfc3339_from_unix_ms(1_796_000_000_000));
        let doc: serde_json::Value =
            serde_json::from_str(&store.report_json("gone").unwrap().unwrap()).unwrap();
        assert_eq!(doc["interrupted"]["reason"], "interrupted");
        for id in ["stored", "spooled"] {
            let row = rows.iter().find(|r| r.call_id == id).unwrap();
            assert_eq!(row.source, "live", "{id}");
        }
    }

    #[test]
    fn ended_calls_are_spooled_before_the_locked_database_takes_them() {
        let (dir, db, spool) = spooled("spool-locked");
        let metrics = Arc::new(ServiceMetrics::default());
        let setup = Arc::new(ScoringSetup::load(None, None, None, 0).unwrap());
        let recorder = CallRecorder::start_with_spool(
            Store::open_with_timeout(&db, Duration::from_millis(20)).unwrap(),
            setup,
            metrics.clone(),
            Some(spool),
        )
        .unwrap();
        let mut holder = Store::open(&db).unwrap();
        holder.hold_write_lock_for_tests().unwrap();
        for i in 0..20 {
            let (info, summary) = empty_call(&recorder, &format!("c{i}"));
            recorder.record_live(&info, 8000, 0, 1, summary);
        }
        // On disk as soon as record_live returns.
        let spool = Spool::open(dir.join("t.db.spool")).unwrap();
        assert_eq!(spool.spooled_calls().unwrap().len(), 20);
        assert_eq!(metrics.store_spooled_calls.load(Ordering::Relaxed), 20);
        drop(holder);
        recorder.close();
        assert_eq!(metrics.calls_stored.load(Ordering::Relaxed), 20);
        assert_eq!(metrics.store_spooled_calls.load(Ordering::Relaxed), 0);
        assert!(spool.spooled_calls().unwrap().is_empty());
        let stored = Store::open(&db)
            .unwrap()
            .calls(&CallQuery::default())
            .unwrap()
            .len();
        assert_eq!(stored, 20);
    }
}
