//! Telephony ingest: the media forks contact-center platforms can switch on without code, each
//! feeding the same live-call path as gRPC ingest (hub, analysis pool, console, cues, store).
//!
//! - [`twilio`]: Twilio Media Streams, WebSocket at `/ingest/twilio`.
//! - [`audiohook`]: Genesys Cloud AudioHook (protocol 2), WebSocket at `/ingest/audiohook`.
//! - [`audiosocket`]: Asterisk AudioSocket, TCP on `attune serve --audiosocket ADDR`.
//!
//! Each adapter is a pure protocol state machine (no I/O, unit-tested) plus a thin async driver.
//! Drivers turn the platform's frames into interleaved stereo chunks (channel 0 = the customer,
//! channel 1 = the agent unless the platform says otherwise) with [`TrackAligner`], and hand
//! them to a [`LiveCall`]: the same session core, hub publication, end-of-call summary and
//! recorder hand-off as a gRPC call (see [`super::grpc`]).

pub mod audiohook;
pub mod audiosocket;
pub mod clients;
pub mod twilio;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::bytes::Bytes;

use super::auth::{AuthError, Principal, Role};
use super::grpc::{AdmitError, Counts, Shared, zero_counts};
use super::hub::{CallInfo, HubError};
use super::limits::{CallPacer, CallPermit, LimitKind};
use super::pb;
use super::session::{CallSpec, CallSummary, Encoding, InputError, Layout, Sequencer, SessionCore};
use std::net::IpAddr;

/// Settings of the telephony adapters.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Twilio auth tokens; a `/ingest/twilio` upgrade must carry a valid `X-Twilio-Signature`
    /// for one of them. Empty: signatures are not checked (say so at startup).
    pub twilio_auth_tokens: Vec<String>,
    /// The public `wss://…` base URL Twilio connects to (scheme and authority, e.g.
    /// `wss://attune.example.com`), used to rebuild the signed URL behind a proxy. Default: the
    /// request's `Host` with `wss://`.
    pub public_base_url: Option<String>,
    /// Which Twilio track is the agent (the other is the caller).
    pub twilio_agent_track: twilio::Track,
    /// AudioHook credentials (API key, base64-decoded client secret). Empty: not checked.
    pub audiohook_keys: Vec<(String, Vec<u8>)>,
    /// Refuse Twilio and AudioHook streams whose platform has no credentials configured (what
    /// `attune serve` does unless `--allow-unsigned-telephony`).
    pub require_signatures: bool,
    /// Agent and team of AudioSocket calls (the protocol carries neither).
    pub audiosocket_agent_id: String,
    pub audiosocket_team: String,
    /// The Attune ingest token AudioSocket calls are ingested as (the protocol carries no
    /// credentials); needed when the store has accounts or tokens. Its teams must include
    /// `audiosocket_team`. Checked per call, so a revoked token stops new calls.
    pub audiosocket_token: Option<String>,
    /// A connection that sends no audio for this long is closed and its call ends ("timeout").
    pub no_media_timeout: Duration,
    /// A connection must start its call (Twilio `start`, AudioHook `open`, AudioSocket UUID)
    /// within this time.
    pub start_timeout: Duration,
    /// Largest WebSocket message accepted, bytes.
    pub max_message_bytes: usize,
    /// How far one party's audio may run ahead of the other's before the other is filled with
    /// silence, ms.
    pub max_skew_ms: u32,
    /// Largest gap in a track's timestamps filled with silence, ms; beyond, the stream is refused.
    pub max_gap_ms: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            twilio_auth_tokens: Vec::new(),
            public_base_url: None,
            twilio_agent_track: twilio::Track::Outbound,
            audiohook_keys: Vec::new(),
            require_signatures: false,
            audiosocket_agent_id: "unknown".into(),
            audiosocket_team: "default".into(),
            audiosocket_token: None,
            no_media_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(10),
            max_message_bytes: 64 << 10,
            max_skew_ms: 1000,
            max_gap_ms: 60_000,
        }
    }
}

/// Counters of one adapter (rendered in `/metrics` with a `protocol` label).
#[derive(Debug, Default)]
pub struct AdapterCounters {
    pub connections: AtomicU64,
    pub active: AtomicU64,
    /// Connections refused or closed with an error (bad signature, bad frame, timeout, …).
    pub refused: AtomicU64,
    pub frames: AtomicU64,
    /// Audio frames dropped because their time was already past (late, out of order, repeated).
    pub frames_late: AtomicU64,
    /// Samples of silence inserted for gaps and for a party running behind.
    pub silence_filled_samples: AtomicU64,
    /// Calls refused for their identity: no or a bad Attune token, a team the token may not
    /// ingest for, a call id that is live or stored (also counted in `refused`).
    pub refused_identity: AtomicU64,
}

/// Counters of all adapters.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    pub twilio: AdapterCounters,
    pub audiohook: AdapterCounters,
    pub audiosocket: AdapterCounters,
}

/// A metric's name, type, help and field.
type MetricRow = (
    &'static str,
    &'static str,
    &'static str,
    fn(&AdapterCounters) -> &AtomicU64,
);

/// Appends the adapters' counters in Prometheus text format.
pub fn render_metrics(out: &mut String, m: &IngestMetrics) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let rows: [MetricRow; 7] = [
        (
            "attune_telephony_connections_total",
            "counter",
            "Telephony connections accepted.",
            |c| &c.connections,
        ),
        (
            "attune_telephony_connections_active",
            "gauge",
            "Telephony connections open.",
            |c| &c.active,
        ),
        (
            "attune_telephony_refused_total",
            "counter",
            "Telephony connections refused or closed with an error.",
            |c| &c.refused,
        ),
        (
            "attune_telephony_frames_total",
            "counter",
            "Telephony audio frames received.",
            |c| &c.frames,
        ),
        (
            "attune_telephony_frames_late_total",
            "counter",
            "Telephony audio frames dropped as late, repeated or out of order.",
            |c| &c.frames_late,
        ),
        (
            "attune_telephony_silence_filled_samples_total",
            "counter",
            "Samples of silence inserted for gaps and lagging parties.",
            |c| &c.silence_filled_samples,
        ),
        (
            "attune_telephony_refused_identity_total",
            "counter",
            "Telephony calls refused for their identity: no or a bad Attune token, a team it may not ingest for, a live or stored call id.",
            |c| &c.refused_identity,
        ),
    ];
    for (name, kind, help, field) in rows {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (protocol, counters) in [
            ("twilio", &m.twilio),
            ("audiohook", &m.audiohook),
            ("audiosocket", &m.audiosocket),
        ] {
            let _ = writeln!(
                out,
                "{name}{{protocol=\"{protocol}\"}} {}",
                get(field(counters))
            );
        }
    }
}

/// Counts a connection while it lives.
pub(crate) struct ActiveGuard<'a>(&'a AdapterCounters);

impl<'a> ActiveGuard<'a> {
    pub(crate) fn new(counters: &'a AdapterCounters) -> Self {
        counters.connections.fetch_add(1, Ordering::Relaxed);
        counters.active.fetch_add(1, Ordering::Relaxed);
        Self(counters)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a live call could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("call setup: {0}")]
    Setup(String),
    /// A field the client sent (ids, sample rate) broke its rule; closed with 1008.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the server is shutting down")]
    Shutdown,
    /// A limit of concurrent calls (per peer address); closed with 1008.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// No Attune ingest token, or one the gate refuses.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token may not ingest for the call's team, or the call id is stored.
    #[error(transparent)]
    Refused(#[from] AdmitError),
}

impl StartError {
    /// Whether the call was refused for who it is (its token, team or id).
    pub fn is_identity(&self) -> bool {
        matches!(
            self,
            StartError::Unauthenticated(_)
                | StartError::Refused(_)
                | StartError::Hub(HubError::DuplicateCall(_))
        )
    }
}

/// Counts and logs a call refused at its start (`protocol`: twilio, audiohook, audiosocket).
pub(crate) fn note_refused(
    counters: &AdapterCounters,
    protocol: &str,
    call_id: &str,
    e: &StartError,
) {
    counters.refused.fetch_add(1, Ordering::Relaxed);
    if e.is_identity() {
        counters.refused_identity.fetch_add(1, Ordering::Relaxed);
        eprintln!("attune: {protocol}: call {call_id:?} refused: {e}");
    }
}

/// Who a telephony call is ingested as: the Attune API token it carried (`token`), resolved by
/// the gate. With authentication off (no accounts or tokens in the store: gRPC's open mode)
/// every call is taken, as gRPC takes it; otherwise a call without a token is refused, `how`
/// saying how this protocol carries one.
pub async fn identify(
    shared: &Arc<Shared>,
    token: Option<String>,
    how: &str,
) -> Result<Principal, StartError> {
    if !shared.gate.enabled() {
        return Ok(Principal::unauthenticated_admin());
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(StartError::Unauthenticated(format!(
            "no Attune ingest token: {how}"
        )));
    };
    let gate = shared.gate.clone();
    let who = tokio::task::spawn_blocking(move || gate.bearer(&token))
        .await
        .map_err(|_| StartError::Shutdown)?
        .map_err(|e| {
            let why = match e {
                AuthError::Unauthenticated(m) | AuthError::Forbidden(m) => m,
                other => other.to_string(),
            };
            StartError::Unauthenticated(format!("Attune token refused: {why}"))
        })?;
    if who.role != Role::Ingest {
        return Err(StartError::Refused(AdmitError::Denied(format!(
            "{} is a {} token; telephony calls need an ingest token",
            who.actor, who.role
        ))));
    }
    Ok(who)
}

/// Why a chunk could not be analysed (the call then ends).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the server is shutting down")]
    Shutdown,
}

/// One live call fed by a telephony adapter: the session core gRPC ingest uses, driven chunk
/// by chunk, published to the hub and ended with a summary (and stored) exactly as gRPC does.
pub struct LiveCall {
    shared: Arc<Shared>,
    call: Arc<CallInfo>,
    spec: Arc<CallSpec>,
    core: Option<Box<SessionCore>>,
    sequencer: Sequencer,
    counts: Counts,
    batch: Vec<pb::AudioChunk>,
    /// Pace, message rate and the audio-lag idle rule ([`crate::limits`]).
    pacer: CallPacer,
    /// Counts the call against its peer address while it lives.
    _permit: Option<CallPermit>,
}

impl LiveCall {
    /// Registers the call in the hub and builds its analyzer (on the analysis pool). `spec`
    /// must describe interleaved stereo. `peer`: the address the call comes from, counted
    /// against `max_calls_per_peer`. `who` ([`identify`]) must be allowed to ingest for the
    /// call's team, and a stored call id is refused unless `who` may resume it (then the call
    /// runs as its next part, `ID#2`, ...), as gRPC does ([`Shared::admit_stored`]).
    pub async fn start(
        shared: Arc<Shared>,
        mut spec: CallSpec,
        peer: Option<IpAddr>,
        who: &Principal,
    ) -> Result<Self, StartError> {
        debug_assert_eq!(spec.layout, Layout::InterleavedStereo);
        spec.validate()?;
        shared.may_ingest(who, &spec.team)?;
        let source = peer.map_or_else(|| "telephony".to_owned(), |ip| ip.to_string());
        shared.admit_stored(who, &source, &mut spec).await?;
        let permit = match peer {
            Some(ip) => Some(
                shared
                    .limiter
                    .acquire(vec![(LimitKind::Peer, ip.to_string())])?,
            ),
            None => None,
        };
        let call = shared.hub.start_call(CallInfo {
            call_id: spec.call_id.clone(),
            agent_id: spec.agent_id.clone(),
            team: spec.team.clone(),
            started_at_unix_ms: 0,
        })?;
        let spec = Arc::new(spec);
        let (rules, model, period_s, setup_spec) = (
            shared.rules.clone(),
            shared.model.clone(),
            shared.config.snapshot_period_s,
            spec.clone(),
        );
        let core = shared
            .pool
            .run(move || SessionCore::new(setup_spec, rules, model, period_s).map(Box::new))
            .await;
        let (core, failure) = match core {
            Ok(Ok(mut core)) => {
                core.set_recording(shared.start_recording(&spec));
                (Some(core), None)
            }
            Ok(Err(e)) => (None, Some(StartError::Setup(e.to_string()))),
            Err(_) => (None, Some(StartError::Shutdown)),
        };
        let pacer = CallPacer::new(
            &shared.config.limits,
            shared.config.idle_timeout,
            shared.metrics.clone(),
        );
        let live = Self {
            shared,
            call,
            spec,
            core,
            sequencer: Sequencer::new(0),
            counts: zero_counts(),
            batch: Vec::with_capacity(1),
            pacer,
            _permit: permit,
        };
        match failure {
            None => Ok(live),
            Some(e) => {
                let reason = if matches!(e, StartError::Shutdown) {
                    "shutdown"
                } else {
                    "error"
                };
                live.end(reason).await;
                Err(e)
            }
        }
    }

    /// The call as the hub knows it.
    pub fn info(&self) -> &Arc<CallInfo> {
        &self.call
    }

    /// Analyses one chunk of interleaved stereo audio in the call's encoding (in time order;
    /// the adapters align and fill gaps before this) and publishes its events.
    pub async fn push(&mut self, audio: Vec<u8>) -> Result<(), PushError> {
        if audio.is_empty() {
            return Ok(());
        }
        let chunk = pb::AudioChunk {
            seq: self.sequencer.next_seq(),
            channel: 0,
            audio: Bytes::from(audio),
        };
        self.spec.check_chunk(&chunk)?;
        self.pacer
            .add_audio(self.spec.chunk_seconds(chunk.audio.len()));
        let metrics = &self.shared.metrics;
        self.counts.chunks_received += 1;
        self.counts.bytes_received += chunk.audio.len() as u64;
        metrics.chunks_received.fetch_add(1, Ordering::Relaxed);
        metrics
            .bytes_received
            .fetch_add(chunk.audio.len() as u64, Ordering::Relaxed);
        self.sequencer.accept(chunk, &mut self.batch)?;
        let Some(mut work) = self.core.take() else {
            return Err(PushError::Shutdown);
        };
        let mut chunks = std::mem::take(&mut self.batch);
        let Ok((work, mut chunks)) = self
            .shared
            .pool
            .run(move || {
                work.push_chunks(&mut chunks);
                (work, chunks)
            })
            .await
        else {
            return Err(PushError::Shutdown);
        };
        metrics
            .chunks_acked
            .fetch_add(chunks.len() as u64, Ordering::Relaxed);
        self.counts.acked += chunks.len() as u64;
        chunks.clear();
        self.batch = chunks;
        self.shared.forward(&self.call, &work.events, None).await;
        self.core = Some(work);
        // Over the pace: the adapter reads its socket later (back-pressure).
        self.hold(false).await;
        Ok(())
    }

    /// Notes one message read from the platform (media frame, WebSocket message); over the
    /// message rate or the pace, waits before the adapter reads the next.
    pub async fn message(&mut self) {
        self.hold(true).await;
    }

    async fn hold(&mut self, message: bool) {
        let wait = self.pacer.wait(message);
        if wait.is_zero() {
            return;
        }
        let mut shutdown = self.shared.shutdown.clone();
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// When the call ends for lack of audio: its audio time plus the idle timeout after its
    /// start (far away when the rule is off). Adapters wait for their socket until then.
    pub fn idle_deadline(&self) -> tokio::time::Instant {
        if self.shared.config.limits.idle_counts_audio {
            self.pacer.idle_deadline()
        } else {
            tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
        }
    }

    /// Whether the call's idle deadline has passed; counts it in `/metrics` when it has, and
    /// returns the reason to close with.
    pub fn lagging(&self) -> Option<String> {
        if tokio::time::Instant::now() < self.idle_deadline() {
            return None;
        }
        self.shared
            .metrics
            .calls_idle_lagging
            .fetch_add(1, Ordering::Relaxed);
        Some(self.pacer.idle_reason())
    }

    /// Ends the call: final analysis, hub summary, recorder. `reason` as for gRPC calls
    /// ("ended", "timeout", "disconnected", "shutdown", "error").
    pub async fn end(self, reason: &str) -> Arc<CallSummary> {
        self.shared
            .end_call(
                &self.call,
                &self.spec,
                self.core,
                reason,
                &self.sequencer,
                &self.counts,
                None,
            )
            .await
    }

    /// Fires when the server begins to shut down.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shared.shutdown.clone()
    }
}

/// A header for an adapter's call: interleaved stereo at `sample_rate_hz`.
pub(crate) fn stereo_spec(
    call_id: String,
    agent_id: String,
    team: String,
    sample_rate_hz: u32,
    encoding: Encoding,
    agent_channel: usize,
) -> CallSpec {
    CallSpec {
        call_id,
        agent_id,
        team,
        sample_rate_hz,
        encoding,
        layout: Layout::InterleavedStereo,
        agent_channel,
    }
}

/// A fault in a track's timing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlignError {
    #[error(
        "track {track}: audio at sample {at} jumps {gap} samples ahead (at most {max} filled with silence)"
    )]
    GapTooWide {
        track: usize,
        at: u64,
        gap: u64,
        max: u64,
    },
}

/// What placing one frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placed {
    /// Samples of the frame kept.
    pub kept: usize,
    /// Samples dropped (already past or already received).
    pub dropped: usize,
    /// Samples of silence inserted before it.
    pub filled: u64,
}

/// Aligns two tracks of one-byte or two-byte samples by their position in the call (sample
/// index since the start) and emits them interleaved, in time order:
/// - a frame placed after a gap in its track gets silence before it (up to `max_gap`);
/// - samples at a position already received or emitted are dropped (late, repeated);
/// - audio is emitted as soon as both tracks have it, or when one track runs more than
///   `max_skew` samples ahead (the other is then filled with silence: a party that sends
///   nothing, or a track that is not forked, is silent).
///
/// Memory is bounded: each track holds at most `max_skew` samples plus one frame.
#[derive(Debug)]
pub struct TrackAligner {
    bytes_per_sample: usize,
    silence: [u8; 2],
    /// Samples of each track held, from position `emitted`.
    held: [Vec<u8>; 2],
    /// Position (samples) of the first held sample of both tracks.
    emitted: u64,
    max_skew: u64,
    max_gap: u64,
    /// Silence inserted so far, samples (both tracks).
    pub silence_filled: u64,
}

impl TrackAligner {
    /// `silence` is one sample of silence in the encoding (0xFF for mu-law, [0, 0] for PCM16).
    pub fn new(silence: &[u8], max_skew_samples: u64, max_gap_samples: u64) -> Self {
        let bytes_per_sample = silence.len().clamp(1, 2);
        let mut s = [0u8; 2];
        s[..bytes_per_sample].copy_from_slice(&silence[..bytes_per_sample]);
        Self {
            bytes_per_sample,
            silence: s,
            held: [Vec::new(), Vec::new()],
            emitted: 0,
            max_skew: max_skew_samples.max(1),
            max_gap: max_gap_samples,
            silence_filled: 0,
        }
    }

    fn end(&self, track: usize) -> u64 {
        self.emitted + (self.held[track].len() / self.bytes_per_sample) as u64
    }

    /// Position (samples) just past the last sample received on `track`.
    pub fn track_end(&self, track: usize) -> u64 {
        self.end(track)
    }

    fn fill(&mut self, track: usize, samples: u64) {
        let bps = self.bytes_per_sample;
        let silence = self.silence;
        let held = &mut self.held[track];
        for _ in 0..samples {
            held.extend_from_slice(&silence[..bps]);
        }
        self.silence_filled += samples;
    }

    /// Places `audio` (whole samples) of `track` at position `at`; appends what can be emitted
    /// (interleaved: track 0, track 1) to `out`.
    pub fn place(
        &mut self,
        track: usize,
        at: u64,
        audio: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Placed, AlignError> {
        let bps = self.bytes_per_sample;
        let samples = (audio.len() / bps) as u64;
        let end = self.end(track);
        let mut placed = Placed::default();
        let skip = end.saturating_sub(at).min(samples);
        placed.dropped = skip as usize;
        if at > end {
            let gap = at - end;
            if gap > self.max_gap {
                return Err(AlignError::GapTooWide {
                    track,
                    at,
                    gap,
                    max: self.max_gap,
                });
            }
            placed.filled = gap;
            self.emit_gap(track, gap, out);
        }
        let kept = &audio[skip as usize * bps..samples as usize * bps];
        placed.kept = kept.len() / bps;
        self.held[track].extend_from_slice(kept);
        self.emit(out, false);
        Ok(placed)
    }

    /// Appends `samples` after the end of `track` (a track without timestamps).
    pub fn append(&mut self, track: usize, audio: &[u8], out: &mut Vec<u8>) {
        let at = self.end(track);
        // Appending at the end never leaves a gap.
        let _ = self.place(track, at, audio, out);
    }

    /// Inserts `samples` of silence on `track` (a gap the platform announced).
    pub fn skip(
        &mut self,
        track: usize,
        samples: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), AlignError> {
        let at = self.end(track) + samples;
        self.place(track, at, &[], out).map(|_| ())
    }

    /// Fills a gap of `gap` samples on `track`, emitting as it goes so a long gap is never
    /// held whole.
    fn emit_gap(&mut self, track: usize, gap: u64, out: &mut Vec<u8>) {
        let mut left = gap;
        while left > 0 {
            let step = left.min(self.max_skew);
            self.fill(track, step);
            left -= step;
            self.emit(out, false);
        }
    }

    /// Emits what both tracks hold, plus (if one runs more than `max_skew` ahead, or `flush`)
    /// the leading track's audio with the other filled with silence.
    fn emit(&mut self, out: &mut Vec<u8>, flush: bool) {
        let (e0, e1) = (self.end(0), self.end(1));
        let lead = e0.max(e1);
        let common = e0.min(e1);
        let upto = if flush {
            lead
        } else if lead - common > self.max_skew {
            lead - self.max_skew
        } else {
            common
        };
        for track in 0..2 {
            let end = self.end(track);
            if end < upto {
                self.fill(track, upto - end);
            }
        }
        let n = (upto - self.emitted) as usize;
        if n == 0 {
            return;
        }
        let bps = self.bytes_per_sample;
        out.reserve(n * 2 * bps);
        for i in 0..n {
            out.extend_from_slice(&self.held[0][i * bps..(i + 1) * bps]);
            out.extend_from_slice(&self.held[1][i * bps..(i + 1) * bps]);
        }
        for held in &mut self.held {
            held.drain(..n * bps);
        }
        self.emitted = upto;
    }

    /// Emits everything held (the end of the call), the shorter track padded with silence.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        self.emit(out, true);
    }

    /// Samples emitted per track so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }
}

/// Splits interleaved stereo audio into chunks of at most `max_frames` frames.
pub(crate) fn split_frames(audio: Vec<u8>, frame_bytes: usize, max_frames: usize) -> Vec<Vec<u8>> {
    let max_bytes = frame_bytes * max_frames.max(1);
    if audio.len() <= max_bytes {
        return vec![audio];
    }
    audio.chunks(max_bytes).map(<[u8]>::to_vec).collect()
}

/// The axum routes of the WebSocket adapters (`/ingest/twilio`, `/ingest/audiohook`).
pub fn routes(shared: Arc<Shared>, config: Arc<IngestConfig>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/ingest/twilio", get(twilio::upgrade))
        .route("/ingest/audiohook", get(audiohook::upgrade))
        .with_state(WsState { shared, config })
}

/// What the WebSocket handlers share.
#[derive(Clone)]
pub(crate) struct WsState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: Arc<IngestConfig>,
}

/// The peer address of a WebSocket upgrade (served with `PeerAddr` connect info), counted
/// against `max_calls_per_peer`.
pub(crate) type Peer = Option<axum::Extension<axum::extract::ConnectInfo<crate::tls::PeerAddr>>>;

pub(crate) fn peer_ip(peer: &Peer) -> Option<IpAddr> {
    peer.as_ref().map(|p| (p.0).0.0.ip())
}

/// Constant-time comparison of two byte strings (signatures).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interleave(out: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let a = out.iter().step_by(2).copied().collect();
        let b = out.iter().skip(1).step_by(2).copied().collect();
        (a, b)
    }

    #[test]
    fn aligned_tracks_interleave_in_time_order() {
        let mut al = TrackAligner::new(&[0xFF], 100, 1000);
        let mut out = Vec::new();
        al.place(0, 0, &[1, 2, 3], &mut out).unwrap();
        assert!(out.is_empty(), "waits for the other track");
        al.place(1, 0, &[4, 5], &mut out).unwrap();
        assert_eq!(out, [1, 4, 2, 5]);
        out.clear();
        // A gap on track 1 is filled with silence; a repeated frame on track 0 is dropped.
        let placed = al.place(0, 2, &[3, 6], &mut out).unwrap();
        assert_eq!((placed.kept, placed.dropped), (1, 1));
        let placed = al.place(1, 4, &[7], &mut out).unwrap();
        assert_eq!(placed.filled, 2);
        let (a, b) = interleave(&out);
        assert_eq!(a, [3, 6]);
        assert_eq!(b, [0xFF, 0xFF]);
        out.clear();
        al.flush(&mut out);
        assert_eq!(out, [0xFF, 7]);
    }

    #[test]
    fn a_silent_track_is_filled_once_the_other_runs_ahead() {
        let mut al = TrackAligner::new(&[0, 0], 4, 1000);
        let mut out = Vec::new();
        al.append(0, &[1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0], &mut out);
        // 6 samples on track 0, none on track 1: 2 emitted (6 - skew 4).
        assert_eq!(out, [1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(al.emitted(), 2);
        assert_eq!(al.silence_filled, 2);
    }

    #[test]
    fn wide_gaps_are_refused_and_late_frames_dropped() {
        let mut al = TrackAligner::new(&[0xFF], 8, 100);
        let mut out = Vec::new();
        assert!(matches!(
            al.place(0, 1_000_000, &[1], &mut out),
            Err(AlignError::GapTooWide { gap: 1_000_000, .. })
        ));
        al.place(0, 0, &[1; 20], &mut out).unwrap();
        al.place(1, 0, &[2; 20], &mut out).unwrap();
        let placed = al.place(0, 3, &[9; 4], &mut out).unwrap();
        assert_eq!((placed.kept, placed.dropped), (0, 4));
        // A long gap within the limit is filled in pieces, never held whole.
        al.place(0, 120, &[1], &mut out).unwrap();
        assert!(al.held[0].len() <= 9 && al.held[1].len() <= 9);
    }
}
