//! Call recordings: the audio of the live calls of opted-in teams, and of uploads, kept as
//! stereo 16-bit PCM WAV files (left = caller, right = agent, at the call's own sample rate) in
//! one folder beside the store, deleted after a retention period, and read back for the
//! console's player.
//!
//! - [`RecordingPolicy`]: where (`--recordings-dir`), which teams (`--record-teams`), how long
//!   (`--recording-retention-days`), validated from the flags.
//! - [`Recordings`]: the folder at run time. [`Recordings::start_live`] gives a live call its
//!   [`RecordingTap`]; [`Recordings::write_upload`] writes an upload's audio;
//!   [`Recordings::open_audio`] reads one back ([`StoredAudio::slice`] cuts a clip);
//!   [`Recordings::sweep`] applies the retention (when opened, then hourly).
//!
//! The real-time path: a call's [`RecordingTap`] lives in its
//! [`SessionCore`](super::session::SessionCore), so gRPC and every telephony adapter record
//! through the same place. After a chunk is analysed its bytes (already a reference-counted
//! buffer) are *moved* into a bounded queue with `try_send`: nothing is copied, allocated,
//! locked or logged per chunk, and the call's writer thread never parks on the queue (it polls),
//! so a send never has to wake it. The writer decodes, puts the parties on their channels and
//! appends to `DIR/<name>.wav.part`; when the call ends it writes the header, syncs the file and
//! renames it to `DIR/<name>.wav`, so a crash never leaves a half file under the final name
//! (stale part files are swept after a day).
//!
//! When the writer falls behind (more than [`TAP_QUEUE_CHUNKS`] chunks or [`TAP_QUEUE_BYTES`]
//! bytes waiting) a chunk is left out of the recording, counted in
//! `attune_recording_errors_total`, and replaced by silence of the same length so the recording
//! keeps the call's timeline; when the disk fails the recording stops (its part file removed),
//! is logged and counted. The analysis never waits for either.
//!
//! File names: a call id made only of `A-Z a-z 0-9 - _ .` and not starting with `.` is the
//! name as it is; any other byte is percent-encoded (`%2F` for `/`), and an id whose encoded
//! name would be long is named by its SHA-256 (`%sha256-HEX`, which no encoded name can equal).
//! No name holds a `/` or is `.` or `..`, so no id reaches outside the folder.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use prost::bytes::Bytes;

use super::auth::Teams;
use super::metrics::ServiceMetrics;
use super::session::{CallSpec, Encoding, Layout, check_client_id, decode_chunk};

/// Chunks a live call's writer may fall behind before chunks are left out.
pub const TAP_QUEUE_CHUNKS: usize = 512;
/// Bytes of audio a live call's writer may fall behind before chunks are left out.
pub const TAP_QUEUE_BYTES: usize = 8 << 20;
/// How often a live call's writer looks at its queue.
const WRITER_POLL: Duration = Duration::from_millis(50);
/// Stack of a writer thread, bytes (its buffers are on the heap).
const WRITER_STACK_BYTES: usize = 256 << 10;
/// Two-mono calls: how far one party may run ahead of the other before the other is written
/// as silence, seconds.
const MAX_PARTY_SKEW_S: u32 = 5;
/// Silence written in one step (a gap is written in steps, never held whole), frames.
const SILENCE_STEP_FRAMES: u64 = 4096;
/// How often the retention sweep runs after the one at start.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(3600);
/// A part file not written for this long belongs to no running call (a crash): swept.
pub const STALE_PART_AGE: Duration = Duration::from_secs(24 * 3600);
/// Longest clip [`StoredAudio::slice`] cuts, seconds.
pub const MAX_CLIP_S: f64 = 120.0;
/// Bytes of the WAV header Attune writes (RIFF, `fmt ` of PCM, `data`).
pub const WAV_HEADER_BYTES: usize = 44;
/// Most sample bytes one WAV file holds (its sizes are 32-bit): past this a recording stops
/// growing (about 6 hours of 48 kHz stereo).
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - WAV_HEADER_BYTES as u64;
/// Longest file name (without the `.wav.part` suffix) before ids are named by their hash.
const MAX_NAME_BYTES: usize = 200;

/// Which teams' calls are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordTeams {
    /// `*`: every team.
    All,
    /// These teams (none: nothing new is recorded).
    Only(Vec<String>),
}

impl RecordTeams {
    /// Parses `--record-teams`: `TEAM[,TEAM...]` or `*`.
    pub fn parse(text: &str) -> Result<Self, RecordingConfigError> {
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        if names.contains(&"*") {
            if names.len() > 1 {
                return Err(RecordingConfigError::Teams(format!(
                    "`*` means every team: give it alone, not among team names (got {text:?})"
                )));
            }
            return Ok(Self::All);
        }
        let mut teams = Vec::with_capacity(names.len());
        for name in names {
            if name.is_empty() {
                return Err(RecordingConfigError::Teams(format!(
                    "an empty team name in {text:?} (expected TEAM[,TEAM...] or *)"
                )));
            }
            check_client_id("team", name)
                .map_err(|e| RecordingConfigError::Teams(e.to_string()))?;
            if !teams.iter().any(|t| t == name) {
                teams.push(name.to_owned());
            }
        }
        Ok(Self::Only(teams))
    }

    /// Whether calls of `team` are recorded.
    pub fn covers(&self, team: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(teams) => teams.iter().any(|t| t == team),
        }
    }

    /// Whether no call is recorded.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::Only(t) if t.is_empty())
    }
}

impl std::fmt::Display for RecordTeams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("every team"),
            Self::Only(t) if t.is_empty() => f.write_str("no team"),
            Self::Only(t) => write!(
                f,
                "team{} {}",
                if t.len() > 1 { "s" } else { "" },
                t.join(", ")
            ),
        }
    }
}

/// A setting of the recordings that cannot be used; the message names the flag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingConfigError {
    #[error("--record-teams: {0}")]
    Teams(String),
    #[error(
        "--recording-retention-days must be at least 1 (got {0}): recordings are deleted that many days after they end"
    )]
    Retention(u32),
    #[error(
        "--recordings-dir DIR is required to record calls with {0} (by default recordings sit beside a SQLite file)"
    )]
    DirRequired(&'static str),
    #[error("--recordings-dir {path}: {reason}")]
    Dir { path: String, reason: String },
}

/// Where recordings are kept, whose, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingPolicy {
    /// The folder of the recordings.
    pub dir: PathBuf,
    /// Whose live calls (and uploads) are recorded.
    pub teams: RecordTeams,
    /// Days a recording is kept after it ends (at least 1).
    pub retention_days: u32,
}

/// Recordings are kept this many days unless told otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

impl RecordingPolicy {
    /// The policy of `attune serve`'s flags for the store at `store` (a SQLite path, `:memory:`
    /// or a `postgres://` URL). `dir` defaults to `<store>.recordings` beside a SQLite file;
    /// with another store it is required when any team is recorded. None: nothing to record and
    /// no folder of earlier recordings to serve or sweep.
    pub fn from_flags(
        record_teams: Option<&str>,
        dir: Option<&Path>,
        retention_days: u32,
        store: &str,
    ) -> Result<Option<Self>, RecordingConfigError> {
        if retention_days == 0 {
            return Err(RecordingConfigError::Retention(retention_days));
        }
        let teams = match record_teams {
            Some(text) => RecordTeams::parse(text)?,
            None => RecordTeams::Only(Vec::new()),
        };
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => {
                let other =
                    if store.starts_with("postgres://") || store.starts_with("postgresql://") {
                        Some("a PostgreSQL store")
                    } else if store.is_empty() || store == ":memory:" {
                        Some("an in-memory store")
                    } else {
                        None
                    };
                match other {
                    Some(_) if teams.is_none() => return Ok(None),
                    Some(kind) => return Err(RecordingConfigError::DirRequired(kind)),
                    None => {
                        let dir = PathBuf::from(format!("{store}.recordings"));
                        // Recording off and no earlier recordings: nothing to do.
                        if teams.is_none() && !dir.exists() {
                            return Ok(None);
                        }
                        dir
                    }
                }
            }
        };
        Ok(Some(Self {
            dir,
            teams,
            retention_days,
        }))
    }

    /// The retention period.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }
}

/// The file name (without extension) of a call id's recording. See the module docs.
pub fn file_stem(call_id: &str) -> String {
    let mut out = String::with_capacity(call_id.len());
    for (i, b) in call_id.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.len() > MAX_NAME_BYTES {
        return format!(
            "%sha256-{}",
            super::auth::secrets::sha256_hex(call_id.as_bytes())
        );
    }
    out
}

/// A problem with one recording (the service goes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} exists already: a recording is never replaced")]
    Exists { path: String },
    #[error("{path} is not a recording Attune wrote: {reason}")]
    Format { path: String, reason: String },
    #[error("cannot read the upload's audio: {0}")]
    Audio(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RecordingError + '_ {
    move |source| RecordingError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The 44-byte header of a 16-bit PCM WAV file.
pub fn wav_header(sample_rate_hz: u32, channels: u16, data_bytes: u32) -> [u8; WAV_HEADER_BYTES] {
    let block_align = channels * 2;
    let mut h = [0u8; WAV_HEADER_BYTES];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_bytes.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate_hz.to_le_bytes());
    h[28..32].copy_from_slice(&(sample_rate_hz * u32::from(block_align)).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Reads back a header [`wav_header`] wrote: (rate Hz, channels, data bytes).
fn parse_wav_header(h: &[u8; WAV_HEADER_BYTES]) -> Result<(u32, u16, u32), String> {
    let u16_at = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if &h[0..4] != b"RIFF" || &h[8..12] != b"WAVE" || &h[12..16] != b"fmt " {
        return Err("no RIFF/WAVE header".into());
    }
    if u32_at(16) != 16 || u16_at(20) != 1 || u16_at(34) != 16 || &h[36..40] != b"data" {
        return Err("not the 16-bit PCM layout Attune writes".into());
    }
    let channels = u16_at(22);
    let rate = u32_at(24);
    if channels == 0 || rate == 0 {
        return Err(format!("{channels} channels at {rate} Hz"));
    }
    Ok((rate, channels, u32_at(40)))
}

/// A recording being written: `NAME.wav.part` until [`PartFile::commit`] renames it to
/// `NAME.wav`; removed when dropped uncommitted (a failed upload, a failed disk).
pub struct PartFile {
    part_path: PathBuf,
    final_path: PathBuf,
    file: Option<BufWriter<File>>,
    sample_rate_hz: u32,
    data_bytes: u64,
    /// The WAV size limit was reached: later audio is not written.
    pub full: bool,
}

impl PartFile {
    /// Creates (or truncates a stale) `<dir>/<stem>.wav.part`, readable by this user only.
    fn create(dir: &Path, stem: &str, sample_rate_hz: u32) -> Result<Self, RecordingError> {
        let part_path = dir.join(format!("{stem}.wav.part"));
        let final_path = dir.join(format!("{stem}.wav"));
        if final_path.symlink_metadata().is_ok() {
            return Err(RecordingError::Exists {
                path: final_path.display().to_string(),
            });
        }
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&part_path).map_err(io_error(&part_path))?;
        let mut file = BufWriter::with_capacity(64 << 10, file);
        file.write_all(&wav_header(sample_rate_hz, 2, 0))
            .map_err(io_error(&part_path))?;
        Ok(Self {
            part_path,
            final_path,
            file: Some(file),
            sample_rate_hz,
            data_bytes: 0,
            full: false,
        })
    }

    /// Appends interleaved stereo 16-bit frames (little-endian bytes); past the WAV size limit
    /// the rest is dropped and [`Self::full`] set.
    fn write_frames(&mut self, bytes: &[u8]) -> Result<(), RecordingError> {
        let room = MAX_DATA_BYTES.saturating_sub(self.data_bytes) as usize / 4 * 4;
        let take = bytes.len().min(room);
        if take < bytes.len() {
            self.full = true;
        }
        if let Some(file) = &mut self.file {
            file.write_all(&bytes[..take])
                .map_err(io_error(&self.part_path))?;
        }
        self.data_bytes += take as u64;
        Ok(())
    }

    /// Seconds written so far.
    fn written_s(&self) -> f64 {
        self.data_bytes as f64 / 4.0 / f64::from(self.sample_rate_hz)
    }

    /// Writes the header, syncs the file and renames it to its final name (never over an
    /// existing one). Returns the final path.
    fn commit(mut self) -> Result<PathBuf, RecordingError> {
        let Some(mut file) = self.file.take() else {
            return Err(RecordingError::Io {
                path: self.part_path.display().to_string(),
                source: io::Error::other("the file is closed"),
            });
        };
        let header = wav_header(self.sample_rate_hz, 2, self.data_bytes as u32);
        let path = self.part_path.clone();
        let finished = (|| {
            file.flush()?;
            let mut file = file.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header)?;
            file.sync_all()
        })();
        finished.map_err(io_error(&path))?;
        if self.final_path.symlink_metadata().is_ok() {
            return Err(RecordingError::Exists {
                path: self.final_path.display().to_string(),
            });
        }
        fs::rename(&self.part_path, &self.final_path).map_err(io_error(&path))?;
        // Committed: nothing to remove on drop.
        self.part_path = PathBuf::new();
        Ok(self.final_path.clone())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.part_path.as_os_str().is_empty() {
            drop(self.file.take());
            let _ = fs::remove_file(&self.part_path);
        }
    }
}

/// A sample in -1..=1 as 16-bit PCM.
fn to_i16(v: f32) -> i16 {
    (v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

/// Puts the two parties of a call side by side: `pending[0]` the caller (left), `pending[1]`
/// the agent (right); frames are emitted when both parties have them, or when one runs more
/// than `max_skew_frames` ahead (the other is then silent there, and its late samples for
/// that time are dropped: `debt`).
struct StereoMixer {
    pending: [VecDeque<i16>; 2],
    debt: [u64; 2],
    max_skew_frames: usize,
}

impl StereoMixer {
    fn new(max_skew_frames: usize) -> Self {
        Self {
            pending: [VecDeque::new(), VecDeque::new()],
            debt: [0, 0],
            max_skew_frames: max_skew_frames.max(1),
        }
    }

    fn push(&mut self, party: usize, samples: impl Iterator<Item = i16>) {
        for s in samples {
            if self.debt[party] > 0 {
                self.debt[party] -= 1;
            } else {
                self.pending[party].push_back(s);
            }
        }
    }

    fn push_silence(&mut self, party: usize, frames: u64) {
        let paid = frames.min(self.debt[party]);
        self.debt[party] -= paid;
        let rest = frames - paid;
        self.pending[party].extend(std::iter::repeat_n(0, rest as usize));
    }

    /// Appends the frames ready (all of them, padded with silence, when `flush`) to `out`.
    fn drain(&mut self, flush: bool, out: &mut Vec<u8>) {
        let (a, b) = (self.pending[0].len(), self.pending[1].len());
        let (short, long) = (a.min(b), a.max(b));
        let n = if flush {
            long
        } else if long - short > self.max_skew_frames {
            long - self.max_skew_frames
        } else {
            short
        };
        for party in 0..2 {
            let missing = n.saturating_sub(self.pending[party].len());
            if missing > 0 {
                self.pending[party].extend(std::iter::repeat_n(0, missing));
                if !flush {
                    self.debt[party] += missing as u64;
                }
            }
        }
        out.reserve(n * 4);
        for _ in 0..n {
            for party in 0..2 {
                let s = self.pending[party].pop_front().unwrap_or(0);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }
}

/// One chunk handed from the analysis to a call's writer.
struct TapChunk {
    /// The chunk's channel (always 0 for interleaved stereo).
    channel: u8,
    /// Frames of this channel left out just before this chunk (the queue was full).
    gap_frames: u64,
    /// The chunk's bytes as received (empty: only a gap).
    audio: Bytes,
}

/// A live call's end of its recording: takes each analysed chunk without copying or waiting.
/// Dropping it ends the recording (the writer finishes and renames the file).
pub struct RecordingTap {
    queue: SyncSender<TapChunk>,
    queued_bytes: Arc<AtomicUsize>,
    interleaved: bool,
    /// Bytes of one frame of one chunk (both channels when interleaved).
    frame_bytes: usize,
    /// Frames left out per channel since the last chunk queued.
    gap_frames: [u64; 2],
    /// The writer has stopped (a disk failure): nothing more is sent.
    closed: bool,
    metrics: Arc<ServiceMetrics>,
}

impl std::fmt::Debug for RecordingTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingTap")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl RecordingTap {
    /// Hands a chunk (checked, in order, already analysed) to the writer. Never blocks,
    /// allocates, locks or logs: a full queue leaves the chunk out (counted; silence in its
    /// place).
    pub fn push(&mut self, channel: usize, audio: Bytes) {
        if self.closed || audio.is_empty() {
            return;
        }
        let c = if self.interleaved { 0 } else { channel.min(1) };
        let len = audio.len();
        let frames = (len / self.frame_bytes.max(1)) as u64;
        if self.queued_bytes.load(Ordering::Relaxed) + len > TAP_QUEUE_BYTES {
            self.left_out(c, frames);
            return;
        }
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        let chunk = TapChunk {
            channel: c as u8,
            gap_frames: self.gap_frames[c],
            audio,
        };
        match self.queue.try_send(chunk) {
            Ok(()) => self.gap_frames[c] = 0,
            Err(TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.left_out(c, frames);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.closed = true;
            }
        }
    }

    fn left_out(&mut self, channel: usize, frames: u64) {
        self.gap_frames[channel] += frames;
        self.metrics
            .recording_errors
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for RecordingTap {
    fn drop(&mut self) {
        // The end of the call: a gap left at the very end is still written (as silence).
        for c in 0..2 {
            if !self.closed && self.gap_frames[c] > 0 {
                let _ = self.queue.try_send(TapChunk {
                    channel: c as u8,
                    gap_frames: self.gap_frames[c],
                    audio: Bytes::new(),
                });
            }
        }
    }
}

/// Live writers running, and a way to wait until none is.
#[derive(Default)]
struct Writers {
    running: Mutex<usize>,
    idle: Condvar,
}

/// Counts a writer while it runs.
struct WriterGuard {
    writers: Arc<Writers>,
    metrics: Arc<ServiceMetrics>,
}

impl WriterGuard {
    fn new(writers: Arc<Writers>, metrics: Arc<ServiceMetrics>) -> Self {
        *writers.running.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        metrics.recordings_active.fetch_add(1, Ordering::Relaxed);
        Self { writers, metrics }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.metrics
            .recordings_active
            .fetch_sub(1, Ordering::Relaxed);
        let mut running = self
            .writers
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *running = running.saturating_sub(1);
        self.writers.idle.notify_all();
    }
}

/// What a live call's writer thread needs.
struct LiveWriter {
    call_id: String,
    dir: PathBuf,
    stem: String,
    sample_rate_hz: u32,
    encoding: Encoding,
    layout: Layout,
    agent_channel: usize,
    queue: Receiver<TapChunk>,
    queued_bytes: Arc<AtomicUsize>,
    metrics: Arc<ServiceMetrics>,
}

impl LiveWriter {
    /// The party (0 caller, 1 agent) of a channel.
    fn party(&self, channel: usize) -> usize {
        usize::from(channel == self.agent_channel)
    }

    fn fail(&self, what: &str, e: &RecordingError) {
        self.metrics
            .recording_errors
            .fetch_add(1, Ordering::Relaxed);
        eprintln!("attune: recording of call {:?} {what}: {e}", self.call_id);
    }

    fn run(self) {
        let mut part = match PartFile::create(&self.dir, &self.stem, self.sample_rate_hz) {
            Ok(part) => part,
            Err(e) => return self.fail("not started", &e),
        };
        let mut mixer = StereoMixer::new((MAX_PARTY_SKEW_S * self.sample_rate_hz) as usize);
        let mut decoded = [Vec::new(), Vec::new()];
        let mut out = Vec::new();
        let mut left_out_frames = 0u64;
        let mut reported_full = false;
        loop {
            let chunk = match self.queue.try_recv() {
                Ok(chunk) => chunk,
                Err(TryRecvError::Empty) => {
                    std::thread::sleep(WRITER_POLL);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            };
            self.queued_bytes
                .fetch_sub(chunk.audio.len(), Ordering::Relaxed);
            let channel = usize::from(chunk.channel);
            // A gap first: silence where chunks were left out.
            let mut gap = chunk.gap_frames;
            left_out_frames += gap;
            while gap > 0 {
                let step = gap.min(SILENCE_STEP_FRAMES);
                match self.layout {
                    Layout::InterleavedStereo => {
                        mixer.push_silence(0, step);
                        mixer.push_silence(1, step);
                    }
                    Layout::TwoMono => mixer.push_silence(self.party(channel), step),
                }
                gap -= step;
                out.clear();
                mixer.drain(false, &mut out);
                if let Err(e) = part.write_frames(&out) {
                    return self.fail("stopped", &e);
                }
            }
            match self.layout {
                Layout::InterleavedStereo => {
                    decode_chunk(self.encoding, 2, &chunk.audio, &mut decoded);
                    for (c, samples) in decoded.iter().enumerate() {
                        mixer.push(self.party(c), samples.iter().map(|&v| to_i16(v)));
                    }
                }
                Layout::TwoMono => {
                    decode_chunk(self.encoding, 1, &chunk.audio, &mut decoded[..1]);
                    mixer.push(self.party(channel), decoded[0].iter().map(|&v| to_i16(v)));
                }
            }
            drop(chunk);
            out.clear();
            mixer.drain(false, &mut out);
            if let Err(e) = part.write_frames(&out) {
                return self.fail("stopped", &e);
            }
            if part.full && !reported_full {
                reported_full = true;
                self.fail(
                    "reached the WAV size limit",
                    &RecordingError::Io {
                        path: part.part_path.display().to_string(),
                        source: io::Error::other("later audio is not recorded"),
                    },
                );
            }
        }
        out.clear();
        mixer.drain(true, &mut out);
        if let Err(e) = part.write_frames(&out) {
            return self.fail("stopped", &e);
        }
        let written_s = part.written_s();
        match part.commit() {
            Ok(_) => {
                self.metrics
                    .recordings_saved
                    .fetch_add(1, Ordering::Relaxed);
                if left_out_frames > 0 {
                    eprintln!(
                        "attune: recording of call {:?}: {:.1} s of audio were left out (the writer fell behind) and are silence",
                        self.call_id,
                        left_out_frames as f64 / f64::from(self.sample_rate_hz)
                    );
                }
            }
            Err(e) => self.fail(&format!("({written_s:.1} s) not saved"), &e),
        }
    }
}

/// What a retention sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Recordings (and stale part files) deleted.
    pub deleted: u64,
    /// Files that could not be deleted (logged).
    pub failed: u64,
}

/// A stored recording opened for reading: a 16-bit PCM WAV Attune wrote.
#[derive(Debug)]
pub struct StoredAudio {
    file: File,
    pub sample_rate_hz: u32,
    pub channels: u16,
    /// Frames (one sample per channel) in the file.
    pub frames: u64,
}

impl StoredAudio {
    /// Length, seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate_hz)
    }

    /// The whole recording (`clip` None) or the clip `(from_s, to_s)` (see [`parse_clip`]),
    /// its end clamped to the recording's length; a clip that starts past the end is refused
    /// (the message names `from_s`).
    pub fn slice(self, clip: Option<(f64, f64)>) -> Result<AudioSlice, String> {
        let rate = f64::from(self.sample_rate_hz);
        let (from_frame, to_frame) = match clip {
            None => (0, self.frames),
            Some((from_s, to_s)) => {
                let from = (from_s * rate).round() as u64;
                if from >= self.frames {
                    return Err(format!(
                        "from_s {from_s} is past the end of the recording ({:.2} s)",
                        self.duration_s()
                    ));
                }
                (from, ((to_s * rate).round() as u64).min(self.frames))
            }
        };
        let frame_bytes = u64::from(self.channels) * 2;
        let data_len = (to_frame - from_frame) * frame_bytes;
        Ok(AudioSlice {
            header: wav_header(self.sample_rate_hz, self.channels, data_len as u32),
            data_start: WAV_HEADER_BYTES as u64 + from_frame * frame_bytes,
            data_len,
            frames: to_frame - from_frame,
            file: self.file,
        })
    }
}

/// A WAV file to send: a fresh header and a run of the recording's sample bytes.
#[derive(Debug)]
pub struct AudioSlice {
    header: [u8; WAV_HEADER_BYTES],
    /// Offset of the first sample byte in the file.
    data_start: u64,
    data_len: u64,
    /// Frames in the slice.
    pub frames: u64,
    file: File,
}

impl AudioSlice {
    /// Bytes of the WAV (header and samples).
    pub fn len(&self) -> u64 {
        WAV_HEADER_BYTES as u64 + self.data_len
    }

    /// Whether the WAV holds no sample.
    pub fn is_empty(&self) -> bool {
        self.data_len == 0
    }

    /// Sends bytes `start..end` of the WAV in pieces of at most 64 KiB to `send` (blocking
    /// reads; stops when `send` returns false, i.e. the client went away).
    pub fn send_range(
        mut self,
        start: u64,
        end: u64,
        mut send: impl FnMut(io::Result<Vec<u8>>) -> bool,
    ) {
        let end = end.min(self.len());
        let mut at = start.min(end);
        if at < WAV_HEADER_BYTES as u64 {
            let stop = end.min(WAV_HEADER_BYTES as u64);
            if !send(Ok(self.header[at as usize..stop as usize].to_vec())) {
                return;
            }
            at = stop;
        }
        if at >= end {
            return;
        }
        let offset = self.data_start + (at - WAV_HEADER_BYTES as u64);
        if let Err(e) = self.file.seek(SeekFrom::Start(offset)) {
            send(Err(e));
            return;
        }
        let mut left = end - at;
        while left > 0 {
            let mut buf = vec![0u8; left.min(64 << 10) as usize];
            match self.file.read(&mut buf) {
                Ok(0) => {
                    send(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the recording ended early",
                    )));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if !send(Ok(buf)) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    send(Err(e));
                    return;
                }
            }
        }
    }
}

/// Reads `?from_s=A&to_s=B`: both or neither; numbers of seconds ≥ 0, A < B, B − A ≤
/// [`MAX_CLIP_S`]. Errors name the bad parameter.
pub fn parse_clip(from_s: Option<&str>, to_s: Option<&str>) -> Result<Option<(f64, f64)>, String> {
    let number = |name: &str, text: &str| -> Result<f64, String> {
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(format!(
                "{name} must be a number of seconds >= 0, got {text:?}"
            )),
        }
    };
    let blank = |t: &&str| !t.trim().is_empty();
    match (from_s.filter(blank), to_s.filter(blank)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!(
            "to_s is missing: a clip needs from_s and to_s (at most {MAX_CLIP_S} s apart), or neither for the whole recording"
        )),
        (None, Some(_)) => Err(format!(
            "from_s is missing: a clip needs from_s and to_s (at most {MAX_CLIP_S} s apart), or neither for the whole recording"
        )),
        (Some(a), Some(b)) => {
            let (from, to) = (number("from_s", a)?, number("to_s", b)?);
            if from >= to {
                return Err(format!("to_s ({to}) must be greater than from_s ({from})"));
            }
            if to - from > MAX_CLIP_S {
                return Err(format!(
                    "to_s - from_s is {} s: a clip is at most {MAX_CLIP_S} s",
                    to - from
                ));
            }
            Ok(Some((from, to)))
        }
    }
}

/// A `Read` over shared bytes (an upload read twice: for its recording and for its score).
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The recordings folder at run time. See the module docs.
pub struct Recordings {
    policy: RecordingPolicy,
    metrics: Arc<ServiceMetrics>,
    writers: Arc<Writers>,
    next_writer: AtomicU64,
    /// Dropping it stops the hourly sweep.
    sweep_stop: Mutex<Option<mpsc::Sender<()>>>,
    sweeper: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Recordings {
    /// Creates the folder (mode 0700) if needed, checks that files can be written in it, and
    /// runs the first retention sweep. Start the hourly one with [`Self::start_sweeper`].
    pub fn open(
        policy: RecordingPolicy,
        metrics: Arc<ServiceMetrics>,
    ) -> Result<Arc<Self>, RecordingConfigError> {
        let dir_error = |reason: String| RecordingConfigError::Dir {
            path: policy.dir.display().to_string(),
            reason,
        };
        if policy.retention_days == 0 {
            return Err(RecordingConfigError::Retention(0));
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&policy.dir)
            .map_err(|e| dir_error(format!("cannot create the folder: {e}")))?;
        if !policy.dir.is_dir() {
            return Err(dir_error("is not a folder".into()));
        }
        let probe = policy
            .dir
            .join(format!(".attune-write-check-{}", std::process::id()));
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| dir_error(format!("cannot write in the folder: {e}")))?;
        let recordings = Arc::new(Self {
            policy,
            metrics,
            writers: Arc::new(Writers::default()),
            next_writer: AtomicU64::new(0),
            sweep_stop: Mutex::new(None),
            sweeper: Mutex::new(None),
        });
        let swept = recordings.sweep(SystemTime::now());
        eprintln!(
            "attune: recordings in {} ({}, kept {} days): {} older deleted",
            recordings.policy.dir.display(),
            recordings.policy.teams,
            recordings.policy.retention_days,
            swept.deleted
        );
        Ok(recordings)
    }

    /// Runs the retention sweep every [`SWEEP_PERIOD`] on a thread of its own, until
    /// [`Self::close`] (or the last handle is dropped).
    pub fn start_sweeper(self: &Arc<Self>) -> io::Result<()> {
        let (stop, stopped) = mpsc::channel::<()>();
        let weak: Weak<Self> = Arc::downgrade(self);
        let handle = std::thread::Builder::new()
            .name("attune-recordings-sweep".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(SWEEP_PERIOD) {
                    let Some(recordings) = weak.upgrade() else {
                        return;
                    };
                    recordings.sweep(SystemTime::now());
                }
            })?;
        *self.sweep_stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop);
        *self.sweeper.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    }

    /// The policy in force.
    pub fn policy(&self) -> &RecordingPolicy {
        &self.policy
    }

    /// Whether live calls of `team` are recorded.
    pub fn records_team(&self, team: &str) -> bool {
        self.policy.teams.covers(team)
    }

    /// Whether an upload's audio is kept: its call's team is recorded, or one of the
    /// uploader's teams is (an uploader of every team counts only under `*`).
    pub fn records_upload(&self, call_team: Option<&str>, uploader: &Teams) -> bool {
        if call_team.is_some_and(|t| self.records_team(t)) {
            return true;
        }
        match (&self.policy.teams, uploader) {
            (RecordTeams::All, _) => true,
            (RecordTeams::Only(_), Teams::Only(teams)) => {
                teams.iter().any(|t| self.records_team(t))
            }
            (RecordTeams::Only(_), Teams::All) => false,
        }
    }

    /// Where the recording of `call_id` is (whether or not it exists).
    pub fn path_of(&self, call_id: &str) -> PathBuf {
        self.policy.dir.join(format!("{}.wav", file_stem(call_id)))
    }

    /// Whether `call_id` has a recording (blocking: a file lookup).
    pub fn has(&self, call_id: &str) -> bool {
        self.path_of(call_id)
            .symlink_metadata()
            .is_ok_and(|m| m.is_file())
    }

    /// Starts recording a live call when its team is recorded: the writer thread and the tap
    /// the call's session feeds. None when the team is not recorded, or the writer cannot
    /// start (logged and counted).
    pub fn start_live(&self, spec: &CallSpec) -> Option<RecordingTap> {
        if !self.records_team(&spec.team) {
            return None;
        }
        let (queue, receiver) = mpsc::sync_channel(TAP_QUEUE_CHUNKS);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let writer = LiveWriter {
            call_id: spec.call_id.clone(),
            dir: self.policy.dir.clone(),
            stem: file_stem(&spec.call_id),
            sample_rate_hz: spec.sample_rate_hz,
            encoding: spec.encoding,
            layout: spec.layout,
            agent_channel: spec.agent_channel.min(1),
            queue: receiver,
            queued_bytes: queued_bytes.clone(),
            metrics: self.metrics.clone(),
        };
        let guard = WriterGuard::new(self.writers.clone(), self.metrics.clone());
        let n = self.next_writer.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("attune-rec-{n}"))
            .stack_size(WRITER_STACK_BYTES)
            .spawn(move || {
                let _guard = guard;
                writer.run();
            });
        if let Err(e) = spawned {
            self.metrics
                .recording_errors
                .fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "attune: recording of call {:?} not started: cannot start its writer: {e}",
                spec.call_id
            );
            return None;
        }
        Some(RecordingTap {
            queue,
            queued_bytes,
            interleaved: spec.layout == Layout::InterleavedStereo,
            frame_bytes: spec.frame_bytes(),
            gap_frames: [0, 0],
            closed: false,
            metrics: self.metrics.clone(),
        })
    }

    /// Writes an uploaded WAV's audio (channel `agent_channel` on the right, the other of the
    /// first two on the left) to `<call_id>.wav.part` (blocking); [`Self::commit_upload`]
    /// makes it the recording. `bytes` is shared, not copied.
    pub fn write_upload(
        &self,
        call_id: &str,
        bytes: &Arc<Vec<u8>>,
        agent_channel: u16,
    ) -> Result<PartFile, RecordingError> {
        let source = io::Cursor::new(SharedBytes(bytes.clone()));
        let mut reader = attune_core::audio::AudioReader::from_wav_reader(Box::new(source))
            .map_err(|e| RecordingError::Audio(e.to_string()))?;
        let spec = reader.spec().clone();
        if spec.channels < 2 {
            return Err(RecordingError::Audio(format!(
                "{} channel: a call recording has two",
                spec.channels
            )));
        }
        let agent = usize::from(agent_channel.min(1));
        let caller = 1 - agent;
        let mut part =
            PartFile::create(&self.policy.dir, &file_stem(call_id), spec.sample_rate_hz)?;
        let mut input = vec![Vec::new(); usize::from(spec.channels)];
        let mut out = Vec::with_capacity(16_384 * 4);
        loop {
            let frames = reader
                .read_frames(16_384, &mut input)
                .map_err(|e| RecordingError::Audio(e.to_string()))?;
            if frames == 0 {
                break;
            }
            out.clear();
            for (l, r) in input[caller].iter().zip(&input[agent]) {
                out.extend_from_slice(&to_i16(*l).to_le_bytes());
                out.extend_from_slice(&to_i16(*r).to_le_bytes());
            }
            part.write_frames(&out)?;
        }
        Ok(part)
    }

    /// Makes an upload's part file its recording (after the call was stored).
    pub fn commit_upload(&self, part: PartFile) -> Result<(), RecordingError> {
        part.commit()?;
        self.metrics
            .recordings_saved
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counts a recording that could not be kept (the caller logs it).
    pub fn count_error(&self) {
        self.metrics
            .recording_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Opens the recording of `call_id` (blocking); None when it has none.
    pub fn open_audio(&self, call_id: &str) -> Result<Option<StoredAudio>, RecordingError> {
        let path = self.path_of(call_id);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path)(e)),
        };
        let len = file.metadata().map_err(io_error(&path))?.len();
        let mut header = [0u8; WAV_HEADER_BYTES];
        file.read_exact(&mut header)
            .map_err(|e| RecordingError::Format {
                path: path.display().to_string(),
                reason: format!("no header: {e}"),
            })?;
        let (sample_rate_hz, channels, data_bytes) =
            parse_wav_header(&header).map_err(|reason| RecordingError::Format {
                path: path.display().to_string(),
                reason,
            })?;
        let present = len.saturating_sub(WAV_HEADER_BYTES as u64);
        let frame_bytes = u64::from(channels) * 2;
        let frames = u64::from(data_bytes).min(present) / frame_bytes;
        Ok(Some(StoredAudio {
            file,
            sample_rate_hz,
            channels,
            frames,
        }))
    }

    /// Deletes the recordings finished before `now` minus the retention period (by the file's
    /// modification time: when its call ended or it was uploaded), and part files not written
    /// for [`STALE_PART_AGE`] (or the retention period, if shorter); logs and counts them.
    pub fn sweep(&self, now: SystemTime) -> SweepReport {
        let retention = self.policy.retention();
        let mut report = SweepReport::default();
        let entries = match fs::read_dir(&self.policy.dir) {
            Ok(entries) => entries,
            Err(e) => {
                eprintln!(
                    "attune: recordings: cannot list {}: {e}",
                    self.policy.dir.display()
                );
                report.failed += 1;
                return report;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let max_age = if name.ends_with(".wav") {
                retention
            } else if name.ends_with(".wav.part") {
                retention.min(STALE_PART_AGE)
            } else {
                continue;
            };
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let Ok(modified) = meta.modified() else {
                continue;
            };
            let old = now.duration_since(modified).is_ok_and(|age| age >= max_age);
            if !old {
                continue;
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => report.deleted += 1,
                Err(e) => {
                    report.failed += 1;
                    eprintln!(
                        "attune: recordings: cannot delete {}: {e}",
                        entry.path().display()
                    );
                }
            }
        }
        self.metrics
            .recordings_deleted
            .fetch_add(report.deleted, Ordering::Relaxed);
        if report.deleted > 0 {
            eprintln!(
                "attune: recordings: deleted {} older than {} days from {}",
                report.deleted,
                self.policy.retention_days,
                self.policy.dir.display()
            );
        }
        report
    }

    /// Stops the hourly sweep and waits up to `timeout` for the live recordings to be
    /// finished (renamed to their final names); returns whether all were.
    pub fn close(&self, timeout: Duration) -> bool {
        self.sweep_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = self
            .sweeper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = handle.join();
        }
        self.wait_idle(timeout)
    }

    /// Waits up to `timeout` until no live recording is being written (tests; shutdown).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let running = self
            .writers
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (running, _) = self
            .writers
            .idle
            .wait_timeout_while(running, timeout, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *running == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::encode_chunk;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("attune-recordings-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn policy(dir: &Path, teams: &str) -> RecordingPolicy {
        RecordingPolicy {
            dir: dir.to_path_buf(),
            teams: RecordTeams::parse(teams).unwrap(),
            retention_days: 30,
        }
    }

    fn spec(call_id: &str, team: &str, layout: Layout, agent_channel: usize) -> CallSpec {
        CallSpec {
            call_id: call_id.into(),
            agent_id: "a".into(),
            team: team.into(),
            sample_rate_hz: 8000,
            encoding: Encoding::Pcm16le,
            layout,
            agent_channel,
        }
    }

    /// (left, right) samples of a WAV Attune wrote.
    fn read_stereo(path: &Path) -> (u32, Vec<i16>, Vec<i16>) {
        let bytes = fs::read(path).unwrap();
        let header: [u8; WAV_HEADER_BYTES] = bytes[..WAV_HEADER_BYTES].try_into().unwrap();
        let (rate, channels, data) = parse_wav_header(&header).unwrap();
        assert_eq!(channels, 2);
        assert_eq!(data as usize, bytes.len() - WAV_HEADER_BYTES);
        let samples: Vec<i16> = bytes[WAV_HEADER_BYTES..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let left = samples.iter().step_by(2).copied().collect();
        let right = samples.iter().skip(1).step_by(2).copied().collect();
        (rate, left, right)
    }

    #[test]
    fn teams_and_flags_are_validated() {
        assert_eq!(RecordTeams::parse("*").unwrap(), RecordTeams::All);
        assert_eq!(
            RecordTeams::parse(" north, south,north").unwrap(),
            RecordTeams::Only(vec!["north".into(), "south".into()])
        );
        for bad in ["", "a,,b", "*,north", "t\u{1b}x"] {
            let e = RecordTeams::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("--record-teams: "), "{bad:?}: {e}");
        }
        let e = RecordingPolicy::from_flags(Some("north"), None, 0, "a.db")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--recording-retention-days must be at least 1"),
            "{e}"
        );
        let e = RecordingPolicy::from_flags(Some("north"), None, 30, "postgres://h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--recordings-dir DIR is required"), "{e}");
        assert!(e.contains("PostgreSQL"), "{e}");
        assert_eq!(
            RecordingPolicy::from_flags(None, None, 30, "postgres://h/db").unwrap(),
            None
        );
        let p = RecordingPolicy::from_flags(Some("*"), None, 7, "/var/lib/attune/a.db")
            .unwrap()
            .unwrap();
        assert_eq!(p.dir, Path::new("/var/lib/attune/a.db.recordings"));
        assert_eq!(p.retention(), Duration::from_secs(7 * 86_400));
        // Off, and no earlier folder: nothing to do.
        assert_eq!(
            RecordingPolicy::from_flags(None, None, 30, "/nonexistent/x.db").unwrap(),
            None
        );
    }

    #[test]
    fn file_names_never_leave_the_folder() {
        assert_eq!(file_stem("call-42_A.b"), "call-42_A.b");
        assert_eq!(file_stem("../../etc/passwd"), "%2E.%2F..%2Fetc%2Fpasswd");
        assert_eq!(file_stem(".."), "%2E.");
        assert_eq!(file_stem("a b/é"), "a%20b%2F%C3%A9");
        let long = file_stem(&"é".repeat(100));
        assert!(
            long.starts_with("%sha256-") && long.len() == 8 + 64,
            "{long}"
        );
        assert!(file_stem("").starts_with("%sha256-"));
        for id in ["/", "..", ".", "a/../../b", "\\..\\x", "%2F", "x\0y"] {
            let stem = file_stem(id);
            assert!(
                !stem.contains('/') && !stem.contains('\\') && !stem.starts_with('.'),
                "{id:?} → {stem}"
            );
        }
        // Different ids, different names (the encoding is reversible).
        assert_ne!(file_stem("a/b"), file_stem("a%2Fb"));
    }

    #[test]
    fn clips_are_validated_naming_the_parameter() {
        assert_eq!(parse_clip(None, None), Ok(None));
        assert_eq!(parse_clip(Some("1.5"), Some("3")), Ok(Some((1.5, 3.0))));
        let cases = [
            (Some("x"), Some("3"), "from_s must be a number"),
            (Some("1"), Some("NaN"), "to_s must be a number"),
            (
                Some("-1"),
                Some("3"),
                "from_s must be a number of seconds >= 0",
            ),
            (
                Some("3"),
                Some("1"),
                "to_s (1) must be greater than from_s (3)",
            ),
            (Some("0"), Some("121"), "a clip is at most 120 s"),
            (Some("1"), None, "to_s is missing"),
            (None, Some("1"), "from_s is missing"),
        ];
        for (a, b, says) in cases {
            let e = parse_clip(a, b).unwrap_err();
            assert!(e.contains(says), "{a:?} {b:?}: {e}");
        }
    }

    #[test]
    fn a_live_call_is_written_with_the_caller_left_and_the_agent_right() {
        let dir = temp("live");
        let metrics = Arc::new(ServiceMetrics::default());
        let recordings = Recordings::open(policy(&dir, "north"), metrics.clone()).unwrap();
        assert!(
            recordings
                .start_live(&spec("c1", "south", Layout::InterleavedStereo, 1))
                .is_none()
        );
        // Agent on channel 0: the agent's samples go right.
        let mut tap = recordings
            .start_live(&spec("c/1", "north", Layout::InterleavedStereo, 0))
            .unwrap();
        let agent: Vec<f32> = (0..8000)
            .map(|i| ((i % 100) as f32 - 50.0) / 100.0)
            .collect();
        let caller: Vec<f32> = (0..8000).map(|i| (i % 7) as f32 / 100.0).collect();
        for (a, c) in agent.chunks(160).zip(caller.chunks(160)) {
            let mut bytes = Vec::new();
            encode_chunk(Encoding::Pcm16le, &[a, c], &mut bytes);
            tap.push(0, Bytes::from(bytes));
        }
        // Written under the part name while the call runs.
        let part = dir.join("c%2F1.wav.part");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !part.exists() {
            assert!(std::time::Instant::now() < deadline, "no part file");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(tap);
        assert!(recordings.wait_idle(Duration::from_secs(10)));
        let path = recordings.path_of("c/1");
        assert_eq!(path, dir.join("c%2F1.wav"));
        assert!(!dir.join("c%2F1.wav.part").exists());
        let (rate, left, right) = read_stereo(&path);
        assert_eq!(rate, 8000);
        assert_eq!(left.len(), 8000);
        let want = |v: &[f32]| v.iter().map(|&x| to_i16(x)).collect::<Vec<_>>();
        assert_eq!(right, want(&agent));
        assert_eq!(left, want(&caller));
        assert_eq!(metrics.recordings_saved.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.recordings_active.load(Ordering::Relaxed), 0);
        // A second call of the same id never replaces the recording.
        let tap = recordings
            .start_live(&spec("c/1", "north", Layout::InterleavedStereo, 0))
            .unwrap();
        drop(tap);
        assert!(recordings.wait_idle(Duration::from_secs(10)));
        assert_eq!(read_stereo(&path).1.len(), 8000);
        assert_eq!(metrics.recording_errors.load(Ordering::Relaxed), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_mono_parties_are_aligned_and_a_silent_party_is_silence() {
        let dir = temp("mono");
        let recordings =
            Recordings::open(policy(&dir, "*"), Arc::new(ServiceMetrics::default())).unwrap();
        let mut tap = recordings
            .start_live(&spec("m", "any", Layout::TwoMono, 1))
            .unwrap();
        let tone: Vec<f32> = (0..100).map(|i| i as f32 / 200.0).collect();
        let mut bytes = Vec::new();
        encode_chunk(Encoding::Pcm16le, &[&tone], &mut bytes);
        // Agent (channel 1) first, then the caller's same stretch: aligned.
        tap.push(1, Bytes::from(bytes.clone()));
        tap.push(0, Bytes::from(bytes.clone()));
        // Then only the agent speaks for 6 s (past the 5 s skew): the caller is silence.
        let mut long = Vec::new();
        encode_chunk(Encoding::Pcm16le, &[&vec![0.25; 48_000]], &mut long);
        tap.push(1, Bytes::from(long));
        drop(tap);
        assert!(recordings.wait_idle(Duration::from_secs(10)));
        let (_, left, right) = read_stereo(&recordings.path_of("m"));
        assert_eq!(left.len(), 48_100);
        let want: Vec<i16> = tone.iter().map(|&x| to_i16(x)).collect();
        assert_eq!(&left[..100], &want[..]);
        assert_eq!(&right[..100], &want[..]);
        assert!(left[100..].iter().all(|&s| s == 0));
        assert!(right[100..].iter().all(|&s| s == to_i16(0.25)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_mixer_keeps_time_when_one_party_runs_ahead() {
        let mut m = StereoMixer::new(4);
        let mut out = Vec::new();
        m.push(1, [1, 2, 3, 4, 5, 6].into_iter());
        m.drain(false, &mut out);
        // 6 agent samples, no caller: 2 frames out (6 - skew 4), the caller owes 2.
        assert_eq!(out.len(), 2 * 4);
        assert_eq!(m.debt, [2, 0]);
        // The caller's late samples for those 2 frames are dropped, the next ones kept.
        m.push(0, [9, 9, 7, 8].into_iter());
        out.clear();
        m.drain(false, &mut out);
        let frames: Vec<i16> = out
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(frames, [7, 3, 8, 4]);
    }

    #[test]
    fn clips_and_headers_round_trip() {
        let dir = temp("clip");
        let recordings =
            Recordings::open(policy(&dir, "*"), Arc::new(ServiceMetrics::default())).unwrap();
        let mut tap = recordings
            .start_live(&spec("k", "t", Layout::InterleavedStereo, 1))
            .unwrap();
        let mut bytes = Vec::new();
        let ramp: Vec<f32> = (0..16_000).map(|i| (i % 1000) as f32 / 2000.0).collect();
        encode_chunk(Encoding::Pcm16le, &[&ramp, &ramp], &mut bytes);
        tap.push(0, Bytes::from(bytes));
        drop(tap);
        assert!(recordings.wait_idle(Duration::from_secs(10)));
        let audio = recordings.open_audio("k").unwrap().unwrap();
        assert_eq!((audio.frames, audio.sample_rate_hz), (16_000, 8000));
        let slice = audio.slice(Some((0.5, 1.25))).unwrap();
        assert_eq!(slice.frames, 6000);
        assert_eq!(slice.len(), 44 + 6000 * 4);
        let mut got = Vec::new();
        slice.send_range(0, u64::MAX, |piece| {
            got.extend(piece.unwrap());
            true
        });
        let header: [u8; 44] = got[..44].try_into().unwrap();
        assert_eq!(parse_wav_header(&header).unwrap(), (8000, 2, 24_000));
        let first = i16::from_le_bytes([got[44], got[45]]);
        assert_eq!(first, to_i16(ramp[4000]));
        // Clamped to the end; a clip past the end is refused naming from_s.
        let audio = recordings.open_audio("k").unwrap().unwrap();
        assert_eq!(audio.slice(Some((1.5, 100.0))).unwrap().frames, 4000);
        let audio = recordings.open_audio("k").unwrap().unwrap();
        let e = audio.slice(Some((2.0, 3.0))).unwrap_err();
        assert!(e.starts_with("from_s 2 is past the end"), "{e}");
        // A range inside the samples.
        let audio = recordings.open_audio("k").unwrap().unwrap();
        let mut got = Vec::new();
        audio.slice(None).unwrap().send_range(40, 48, |p| {
            got.extend(p.unwrap());
            true
        });
        assert_eq!(got.len(), 8);
        assert_eq!(&got[..4], &(64_000u32).to_le_bytes());
        assert!(recordings.open_audio("none").unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_sweep_deletes_only_old_recordings_and_stale_parts() {
        let dir = temp("sweep");
        let metrics = Arc::new(ServiceMetrics::default());
        let recordings = Recordings::open(policy(&dir, "*"), metrics.clone()).unwrap();
        for name in ["old.wav", "new.wav", "stale.wav.part", "notes.txt"] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        let set_age = |name: &str, days: u64| {
            let t = SystemTime::now() - Duration::from_secs(days * 86_400);
            File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        set_age("old.wav", 31);
        set_age("stale.wav.part", 2);
        set_age("notes.txt", 400);
        let report = recordings.sweep(SystemTime::now());
        assert_eq!(
            report,
            SweepReport {
                deleted: 2,
                failed: 0
            }
        );
        assert!(dir.join("new.wav").exists() && dir.join("notes.txt").exists());
        assert!(!dir.join("old.wav").exists() && !dir.join("stale.wav.part").exists());
        // "Now" 31 days on: the new one goes too.
        let later = SystemTime::now() + Duration::from_secs(31 * 86_400);
        assert_eq!(recordings.sweep(later).deleted, 1);
        assert_eq!(metrics.recordings_deleted.load(Ordering::Relaxed), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uploads_and_uploaders_are_matched_to_the_policy() {
        let dir = temp("policy");
        let r =
            Recordings::open(policy(&dir, "north"), Arc::new(ServiceMetrics::default())).unwrap();
        assert!(r.records_upload(Some("north"), &Teams::All));
        assert!(!r.records_upload(Some("south"), &Teams::All));
        assert!(r.records_upload(None, &Teams::Only(vec!["north".into()])));
        assert!(!r.records_upload(None, &Teams::Only(Vec::new())));
        fs::remove_dir_all(&dir).unwrap();
    }
}
