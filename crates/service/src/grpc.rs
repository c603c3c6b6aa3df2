//! The gRPC edge (`attune.v1.LiveCalls`): the per-call ingest session driver and the monitor
//! stream, with every fault mapped to one precise status.
//!
//! An ingest session is a tokio task that reads the call's stream, hands chunks (in sequence
//! order) to the [`AnalysisPool`], publishes the resulting events to the [`Hub`] and to the
//! call's own response stream, and always ends the call in the hub with a summary — whether the
//! client ended it, went silent, disconnected or sent something invalid.
//!
//! | fault | status |
//! |---|---|
//! | no header within `header_timeout` | `DEADLINE_EXCEEDED` |
//! | audio or end before the header, a second header | `FAILED_PRECONDITION` |
//! | bad sample rate / encoding / layout / agent channel, misaligned chunk, bad chunk channel | `INVALID_ARGUMENT` |
//! | no `authorization: Bearer TOKEN`, or an unknown, revoked or malformed token | `UNAUTHENTICATED` |
//! | a token whose role or teams do not cover the request (ingest for another team, monitor with an ingest token) | `PERMISSION_DENIED` |
//! | call id already live, or already stored (a stored call is never replaced) | `ALREADY_EXISTS` |
//! | more live calls than `--max-calls`, a message above the size limit | `RESOURCE_EXHAUSTED` |
//! | more live calls than `--max-calls-per-token` or `--max-calls-per-connection` (the message names the limit and its value) | `RESOURCE_EXHAUSTED` |
//! | a sequence gap wider than the reorder window | `OUT_OF_RANGE` |
//! | no message for `idle_timeout`, or audio received lagging wall time since the start by more than `idle_timeout` (call ends, reason "timeout") | `DEADLINE_EXCEEDED` |
//! | server shutting down | `UNAVAILABLE` |
//!
//! Audio sent faster than `--max-ingest-speed` × real time beyond `--ingest-burst-s`, or more
//! than `--max-messages-per-s` messages a second, is not refused: the session reads the
//! stream more slowly (back-pressure, counted in `/metrics`; see [`super::limits`]).
//!
//! Chunks out of order within the reorder window are held and analysed in order; duplicates
//! are dropped; both are counted (acks, summary, `/metrics`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use attune_core::call::CallEvent;
use attune_core::cues::CueRules;
use attune_core::model::emotion::EmotionModel;

use super::analysis::AnalysisPool;
use super::auth::{Access, AuthError, Gate, Principal};
use super::convert;
use super::hub::{CallEnd, CallFilter, CallInfo, Hub, HubError, HubEventKind, now_unix_ms};
use super::limits::{CallLimiter, CallPacer, LimitKind};
use super::metrics::ServiceMetrics;
use super::pb::{
    self, event::Kind, ingest_request::Msg, ingest_response, live_calls_server::LiveCalls,
    monitor_response,
};
use super::recorder::CallRecorder;
use super::recordings::RecordingTap;
use super::session::{CallSpec, CallSummary, Sequencer, SessionCore, SessionLimits};

/// Settings of the ingest and monitor streams.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How long a new stream may take to send its call header.
    pub header_timeout: Duration,
    /// How long a live call's stream may stay silent, and how far its audio may lag wall time
    /// since its start, before the call ends ("timeout"; see [`super::limits`]).
    pub idle_timeout: Duration,
    pub limits: SessionLimits,
    /// An ack is sent after every this many analysed chunks (and at the end).
    pub ack_every_chunks: u64,
    /// Call time between snapshots, seconds.
    pub snapshot_period_s: f64,
    /// Responses queued per ingest stream before the session waits for the client to read.
    pub response_buffer: usize,
    /// Messages queued per monitor stream; beyond, events are dropped and counted.
    pub monitor_buffer: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            limits: SessionLimits::default(),
            ack_every_chunks: 5,
            snapshot_period_s: 1.0,
            response_buffer: 256,
            monitor_buffer: 1024,
        }
    }
}

/// What every stream shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub metrics: Arc<ServiceMetrics>,
    pub pool: Arc<AnalysisPool>,
    pub config: SessionConfig,
    pub rules: CueRules,
    pub model: Arc<EmotionModel>,
    /// Becomes true when the server shuts down: sessions end their calls.
    pub shutdown: watch::Receiver<bool>,
    /// Where ended calls are scored and saved (none: not stored).
    pub recorder: Option<Arc<CallRecorder>>,
    /// Who may ingest and monitor.
    pub gate: Arc<Gate>,
    /// Live calls per token, connection and peer address ([`super::limits`]).
    pub limiter: Arc<CallLimiter>,
}

/// The status of a refused credential.
pub(crate) fn auth_status(e: AuthError) -> Status {
    match e {
        AuthError::Unauthenticated(why) => Status::unauthenticated(why),
        AuthError::Forbidden(why) => Status::permission_denied(why),
        AuthError::Throttled { retry_after_s } => {
            Status::resource_exhausted(format!("try again in {retry_after_s} s"))
        }
        AuthError::Unavailable(detail) => {
            eprintln!("attune: gRPC: account store: {detail}");
            Status::unavailable("the account store is unavailable")
        }
    }
}

impl Shared {
    /// The recording of a call whose team is recorded (None: not recorded, or no recordings
    /// folder).
    pub(crate) fn start_recording(&self, spec: &CallSpec) -> Option<RecordingTap> {
        self.recorder.as_ref()?.recordings()?.start_live(spec)
    }

    /// The principal of a gRPC request's `authorization: Bearer TOKEN` metadata.
    pub(crate) async fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Principal, Status> {
        if !self.gate.enabled() {
            return Ok(Principal::unauthenticated_admin());
        }
        let value = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(token) = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned())
        else {
            return Err(Status::unauthenticated(
                "send an API token as `authorization: Bearer TOKEN` (attune tokens create)",
            ));
        };
        let gate = self.gate.clone();
        tokio::task::spawn_blocking(move || gate.bearer(&token))
            .await
            .unwrap_or_else(|_| Err(AuthError::Unavailable("token check failed".into())))
            .map_err(auth_status)
    }
}

/// The `LiveCalls` service.
#[derive(Clone)]
pub struct LiveCallsService {
    shared: Arc<Shared>,
}

impl LiveCallsService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

type Responses<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
type Sender = mpsc::Sender<Result<pb::IngestResponse, Status>>;

pub(crate) fn hub_status(e: HubError) -> Status {
    match e {
        HubError::TooManyCalls { .. } => Status::resource_exhausted(e.to_string()),
        HubError::DuplicateCall(_) => Status::already_exists(e.to_string()),
        HubError::BadCallId(_) => Status::invalid_argument(e.to_string()),
    }
}

/// An error reading the client's stream: a too-large message gets RESOURCE_EXHAUSTED; anything
/// else means the client is gone.
fn inbound_error(status: Status) -> Option<Status> {
    let too_large = status.code() == tonic::Code::OutOfRange
        && status.message().contains("message length too large");
    too_large.then(|| Status::resource_exhausted(status.message().to_owned()))
}

/// Per-call counts.
pub(crate) struct Counts {
    pub(crate) chunks_received: u64,
    pub(crate) bytes_received: u64,
    pub(crate) acked: u64,
    pub(crate) last_ack_sent: u64,
}

/// Sends to the gRPC client, if the call has one (telephony adapters have none).
async fn send(tx: Option<&Sender>, msg: ingest_response::Msg) {
    let Some(tx) = tx else { return };
    // A client that went away is not an error here: the call still ends properly.
    let _ = tx.send(Ok(pb::IngestResponse { msg: Some(msg) })).await;
}

/// Most continuation parts one call id may have (`ID#2` ... `ID#MAX_RESUMED_PARTS`).
pub const MAX_RESUMED_PARTS: u32 = 20;

/// Why a call may not start under the id it asked for.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// The id is stored (and this credential may not resume it, or it has no part left).
    #[error("{0}")]
    Exists(String),
    /// The credential may not ingest for the call's team.
    #[error("{0}")]
    Denied(String),
    /// The store could not say.
    #[error("{0}")]
    Unavailable(String),
}

impl From<AdmitError> for Status {
    fn from(e: AdmitError) -> Status {
        match e {
            AdmitError::Exists(m) => Status::already_exists(m),
            AdmitError::Denied(m) => Status::permission_denied(m),
            AdmitError::Unavailable(m) => Status::unavailable(m),
        }
    }
}

impl Shared {
    /// Whether `who` may ingest for `team` (always, with authentication off).
    pub fn may_ingest(&self, who: &Principal, team: &str) -> Result<(), AdmitError> {
        if self.gate.enabled() && !who.may(Access::Ingest { team }) {
            return Err(AdmitError::Denied(format!(
                "this credential may not ingest calls of team {team:?}"
            )));
        }
        Ok(())
    }

    /// The stored-id rule every ingest path follows (gRPC and the telephony adapters): a call
    /// id that is stored is refused, unless `who` may resume; then the new session is stored as
    /// the call's next continuation part, `ID#2`, `ID#3`, ... (`spec.call_id` is set to it) and
    /// the stored record is left as it is. Both outcomes are audited (`ingest.resume`).
    pub async fn admit_stored(
        &self,
        who: &Principal,
        source: &str,
        spec: &mut CallSpec,
    ) -> Result<(), AdmitError> {
        let Some(recorder) = self.recorder.clone() else {
            return Ok(());
        };
        let id = spec.call_id.clone();
        let may_resume = who.may_resume && self.gate.enabled();
        enum Found {
            Fresh,
            Stored,
            Part(String),
            Full,
        }
        let found = tokio::task::spawn_blocking(move || -> Result<Found, String> {
            if !recorder.has_call(&id).map_err(|e| e.to_string())? {
                return Ok(Found::Fresh);
            }
            if !may_resume {
                return Ok(Found::Stored);
            }
            for part in 2..=MAX_RESUMED_PARTS {
                let candidate = format!("{id}#{part}");
                if !recorder.has_call(&candidate).map_err(|e| e.to_string())? {
                    return Ok(Found::Part(candidate));
                }
            }
            Ok(Found::Full)
        })
        .await
        .map_err(|_| AdmitError::Unavailable("the store check failed".into()))?;
        let audit = |outcome: String| {
            let (gate, actor, target, source) = (
                self.gate.clone(),
                who.actor.clone(),
                spec.call_id.clone(),
                source.to_owned(),
            );
            tokio::task::spawn_blocking(move || {
                gate.audit(&actor, "ingest.resume", &target, &source, &outcome)
            });
        };
        match found {
            Ok(Found::Fresh) => Ok(()),
            Ok(Found::Stored) => {
                if self.gate.enabled() {
                    audit("refused: the call is stored; this token may not resume".into());
                }
                Err(AdmitError::Exists(format!(
                    "call {:?} is stored already; a stored call is never replaced (use a new call id, or a token created with --may-resume to continue it as a new part)",
                    spec.call_id
                )))
            }
            Ok(Found::Part(part)) => {
                audit(format!("ok: continues as {part:?}"));
                eprintln!(
                    "attune: call {:?} resumed by {} as {part:?} (the stored record stays)",
                    spec.call_id, who.actor
                );
                spec.call_id = part;
                Ok(())
            }
            Ok(Found::Full) => {
                audit(format!("refused: {MAX_RESUMED_PARTS} parts stored already"));
                Err(AdmitError::Exists(format!(
                    "call {:?} has {MAX_RESUMED_PARTS} parts stored already; use a new call id",
                    spec.call_id
                )))
            }
            Err(e) => {
                eprintln!("attune: ingest: store: {e}");
                Err(AdmitError::Unavailable("the store is unavailable".into()))
            }
        }
    }

    async fn run_ingest(
        self: Arc<Self>,
        who: Principal,
        peer: Option<std::net::SocketAddr>,
        inbound: Streaming<pb::IngestRequest>,
        tx: Sender,
    ) {
        if let Err(status) = self.ingest(&who, peer, inbound, &tx).await {
            self.metrics.ingest_errors.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(Err(status)).await;
        }
    }

    async fn ingest(
        &self,
        who: &Principal,
        peer: Option<std::net::SocketAddr>,
        mut inbound: Streaming<pb::IngestRequest>,
        tx: &Sender,
    ) -> Result<(), Status> {
        let header_timeout = self.config.header_timeout;
        let header = match tokio::time::timeout(header_timeout, inbound.message()).await {
            Err(_) => {
                return Err(Status::deadline_exceeded(format!(
                    "no call header within {:.1} s of opening the stream",
                    header_timeout.as_secs_f64()
                )));
            }
            Ok(Err(status)) => {
                return Err(inbound_error(status)
                    .unwrap_or_else(|| Status::cancelled("the client left before the header")));
            }
            Ok(Ok(None)) => {
                return Err(Status::invalid_argument(
                    "the stream ended before the call header",
                ));
            }
            Ok(Ok(Some(request))) => match request.msg {
                Some(Msg::Header(header)) => header,
                Some(Msg::Audio(chunk)) => {
                    return Err(Status::failed_precondition(format!(
                        "the first message must be the call header; got audio chunk {}",
                        chunk.seq
                    )));
                }
                Some(Msg::End(_)) => {
                    return Err(Status::failed_precondition(
                        "the first message must be the call header; got the end of the call",
                    ));
                }
                None => return Err(Status::invalid_argument("an empty IngestRequest")),
            },
        };
        let mut spec = CallSpec::from_header(&header)
            .map_err(|e| Status::invalid_argument(format!("call header: {e}")))?;
        self.may_ingest(who, &spec.team).map_err(Status::from)?;
        let mut keys = Vec::with_capacity(2);
        if self.gate.enabled() {
            keys.push((LimitKind::Token, who.actor.clone()));
        }
        if let Some(peer) = peer {
            keys.push((LimitKind::Connection, peer.to_string()));
        }
        // Held until the call has ended.
        let _permit = self
            .limiter
            .acquire(keys)
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        let source = peer.map_or_else(|| "grpc".to_owned(), |p| p.ip().to_string());
        self.admit_stored(who, &source, &mut spec)
            .await
            .map_err(Status::from)?;
        let call = self
            .hub
            .start_call(CallInfo {
                call_id: spec.call_id.clone(),
                agent_id: spec.agent_id.clone(),
                team: spec.team.clone(),
                started_at_unix_ms: 0,
            })
            .map_err(hub_status)?;
        let spec = Arc::new(spec);
        // From here the call is registered: every path below ends it.
        let (rules, model, period_s, setup_spec) = (
            self.rules.clone(),
            self.model.clone(),
            self.config.snapshot_period_s,
            spec.clone(),
        );
        let core = self
            .pool
            .run(move || SessionCore::new(setup_spec, rules, model, period_s).map(Box::new))
            .await;
        let core = match core {
            Ok(Ok(mut core)) => {
                core.set_recording(self.start_recording(&spec));
                core
            }
            Ok(Err(e)) => {
                let status = Status::invalid_argument(format!("call setup: {e}"));
                self.end_call(
                    &call,
                    &spec,
                    None,
                    "error",
                    &Sequencer::new(0),
                    &zero_counts(),
                    Some(tx),
                )
                .await;
                return Err(status);
            }
            Err(_) => {
                self.end_call(
                    &call,
                    &spec,
                    None,
                    "shutdown",
                    &Sequencer::new(0),
                    &zero_counts(),
                    Some(tx),
                )
                .await;
                return Err(Status::unavailable("the server is shutting down"));
            }
        };
        let mut sequencer = Sequencer::new(self.config.limits.reorder_window_chunks);
        let mut counts = zero_counts();
        let mut core = Some(core);
        let (reason, status) = self
            .ingest_audio(
                &call,
                &spec,
                &mut core,
                &mut sequencer,
                &mut counts,
                &mut inbound,
                tx,
            )
            .await;
        self.end_call(&call, &spec, core, reason, &sequencer, &counts, Some(tx))
            .await;
        status.map_or(Ok(()), Err)
    }

    /// Reads chunks until the call ends; returns why, and the status to end the stream with.
    #[allow(clippy::too_many_arguments)] // one call's state, borrowed for the loop
    async fn ingest_audio(
        &self,
        call: &Arc<CallInfo>,
        spec: &CallSpec,
        core: &mut Option<Box<SessionCore>>,
        sequencer: &mut Sequencer,
        counts: &mut Counts,
        inbound: &mut Streaming<pb::IngestRequest>,
        tx: &Sender,
    ) -> (&'static str, Option<Status>) {
        let idle = self.config.idle_timeout;
        let limits = &self.config.limits;
        let mut pacer = CallPacer::new(limits, idle, self.metrics.clone());
        // Audio time per channel (a two-mono call's parties arrive as separate chunks).
        let mut channel_s = [0.0f64; 2];
        let mut hold = Duration::ZERO;
        let mut shutdown = self.shutdown.clone();
        let mut ready: Vec<pb::AudioChunk> = Vec::with_capacity(8);
        loop {
            if !hold.is_zero() {
                // Back-pressure: over the pace or the message rate, read later.
                tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|stopping| *stopping) => {
                        return ("shutdown", Some(Status::unavailable("the server is shutting down: call ended")));
                    }
                    _ = tokio::time::sleep(hold) => {}
                }
            }
            let silent = tokio::time::Instant::now() + idle;
            let deadline = if limits.idle_counts_audio {
                silent.min(pacer.idle_deadline())
            } else {
                silent
            };
            let next = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    return ("shutdown", Some(Status::unavailable("the server is shutting down: call ended")));
                }
                next = tokio::time::timeout_at(deadline, inbound.message()) => next,
            };
            let request = match next {
                Err(_) if deadline < silent => {
                    self.metrics
                        .calls_idle_lagging
                        .fetch_add(1, Ordering::Relaxed);
                    return (
                        "timeout",
                        Some(Status::deadline_exceeded(format!(
                            "{}: call ended",
                            pacer.idle_reason()
                        ))),
                    );
                }
                Err(_) => {
                    return (
                        "timeout",
                        Some(Status::deadline_exceeded(format!(
                            "no message for {:.1} s: call ended",
                            idle.as_secs_f64()
                        ))),
                    );
                }
                Ok(Err(status)) => {
                    return match inbound_error(status) {
                        Some(status) => ("error", Some(status)),
                        None => ("disconnected", None),
                    };
                }
                // The client stopped sending without ending the call.
                Ok(Ok(None)) => return ("disconnected", None),
                Ok(Ok(Some(request))) => request,
            };
            let chunk = match request.msg {
                Some(Msg::Audio(chunk)) => chunk,
                Some(Msg::End(_)) => return ("ended", None),
                Some(Msg::Header(_)) => {
                    return (
                        "error",
                        Some(Status::failed_precondition(
                            "a second call header: the call is already declared",
                        )),
                    );
                }
                None => {
                    return (
                        "error",
                        Some(Status::invalid_argument("an empty IngestRequest")),
                    );
                }
            };
            if let Err(e) = spec.check_chunk(&chunk) {
                return ("error", Some(Status::invalid_argument(e.to_string())));
            }
            counts.chunks_received += 1;
            counts.bytes_received += chunk.audio.len() as u64;
            self.metrics.chunks_received.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .bytes_received
                .fetch_add(chunk.audio.len() as u64, Ordering::Relaxed);
            let out_of_order_before = sequencer.out_of_order;
            let (channel, chunk_s) = (
                (chunk.channel as usize).min(1),
                spec.chunk_seconds(chunk.audio.len()),
            );
            match sequencer.accept(chunk, &mut ready) {
                Err(e) => return ("error", Some(Status::out_of_range(e.to_string()))),
                Ok(false) => {
                    self.metrics
                        .chunks_duplicate
                        .fetch_add(1, Ordering::Relaxed);
                }
                Ok(true) => {
                    // Audio time is the furthest party's (duplicates add none).
                    let before = channel_s[0].max(channel_s[1]);
                    channel_s[channel] += chunk_s;
                    pacer.add_audio(channel_s[0].max(channel_s[1]) - before);
                }
            }
            hold = pacer.wait(true);
            self.metrics.chunks_out_of_order.fetch_add(
                sequencer.out_of_order - out_of_order_before,
                Ordering::Relaxed,
            );
            if ready.is_empty() {
                continue;
            }
            let Some(mut work) = core.take() else {
                return (
                    "error",
                    Some(Status::internal("the call's analysis is gone")),
                );
            };
            let mut chunks = std::mem::take(&mut ready);
            let Ok((work, chunks)) = self
                .pool
                .run(move || {
                    work.push_chunks(&mut chunks);
                    (work, chunks)
                })
                .await
            else {
                return (
                    "shutdown",
                    Some(Status::unavailable("the server is shutting down")),
                );
            };
            let analysed = chunks.len() as u64;
            ready = chunks;
            ready.clear();
            self.forward(call, &work.events, Some(tx)).await;
            counts.acked += analysed;
            self.metrics
                .chunks_acked
                .fetch_add(analysed, Ordering::Relaxed);
            if counts.acked - counts.last_ack_sent >= self.config.ack_every_chunks {
                counts.last_ack_sent = counts.acked;
                send(
                    Some(tx),
                    ingest_response::Msg::Ack(ack(&work, sequencer, counts)),
                )
                .await;
            }
            *core = Some(work);
        }
    }

    /// Publishes a batch of the call's events to the hub and sends them to the call's client
    /// (gRPC only: `tx` is None for the telephony adapters, see [`super::ingest`]).
    pub(crate) async fn forward(
        &self,
        call: &Arc<CallInfo>,
        events: &[CallEvent],
        tx: Option<&Sender>,
    ) {
        for event in events {
            let hub_kind = match event {
                CallEvent::Snapshot(s) => Some(HubEventKind::Snapshot(s.clone())),
                CallEvent::Emotion(p) => Some(HubEventKind::Emotion(p.clone())),
                CallEvent::Cue(c) => Some(HubEventKind::Cue(c.clone())),
                CallEvent::Dialog(_) => None,
            };
            if let Some(kind) = hub_kind {
                self.hub.publish(call, kind);
            }
            if let Some(kind) = convert::call_event_kind(event) {
                send(tx, ingest_response::Msg::Event(call_event(call, kind))).await;
            }
        }
    }

    /// Finishes the analysis, ends the call in the hub with its summary, sends the summary and
    /// hands the call to the recorder (scored and stored off the runtime's threads).
    #[allow(clippy::too_many_arguments)] // one call's state, borrowed at its end
    pub(crate) async fn end_call(
        &self,
        call: &Arc<CallInfo>,
        spec: &CallSpec,
        core: Option<Box<SessionCore>>,
        reason: &str,
        sequencer: &Sequencer,
        counts: &Counts,
        tx: Option<&Sender>,
    ) -> Arc<CallSummary> {
        let mut outcome = None;
        let mut duration_s = 0.0;
        if let Some(mut work) = core {
            duration_s = work.analysed_s();
            if let Ok((work, finished)) = self
                .pool
                .run(move || {
                    let outcome = work.finish();
                    work.end_recording();
                    (work, outcome)
                })
                .await
            {
                self.forward(call, &work.events, tx).await;
                send(tx, ingest_response::Msg::Ack(ack(&work, sequencer, counts))).await;
                duration_s = finished.duration_s;
                outcome = Some(finished);
            }
        }
        let summary = Arc::new(CallSummary {
            reason: reason.to_owned(),
            duration_s,
            chunks_received: counts.chunks_received,
            bytes_received: counts.bytes_received,
            chunks_out_of_order: sequencer.out_of_order,
            chunks_duplicate: sequencer.duplicates,
            outcome,
            continued: self.hub.continuation(&call.call_id),
        });
        if let Some(recorder) = &self.recorder {
            recorder.record_live(
                call,
                spec.sample_rate_hz,
                spec.agent_channel,
                counts.bytes_received,
                summary.clone(),
            );
        }
        let ended_at_unix_ms = now_unix_ms();
        let proto = convert::summary_to_proto(&summary, ended_at_unix_ms);
        self.hub.end_call(
            call,
            CallEnd {
                reason: reason.to_owned(),
                duration_s,
                ended_at_unix_ms,
                summary: Some(summary.clone()),
            },
        );
        send(
            tx,
            ingest_response::Msg::Event(call_event(call, Kind::CallEnded(proto))),
        )
        .await;
        summary
    }
}

pub(crate) fn zero_counts() -> Counts {
    Counts {
        chunks_received: 0,
        bytes_received: 0,
        acked: 0,
        last_ack_sent: 0,
    }
}

fn ack(core: &SessionCore, sequencer: &Sequencer, counts: &Counts) -> pb::Ack {
    pb::Ack {
        highest_contiguous_seq: sequencer.next_seq() as i64 - 1,
        chunks_received: counts.chunks_received,
        bytes_received: counts.bytes_received,
        chunks_out_of_order: sequencer.out_of_order,
        chunks_duplicate: sequencer.duplicates,
        analysed_s: core.analysed_s(),
    }
}

fn call_event(call: &CallInfo, kind: Kind) -> pb::Event {
    pb::Event {
        call: Some(convert::call_info_to_proto(call)),
        seq: 0,
        published_at_unix_ms: now_unix_ms(),
        kind: Some(kind),
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[tonic::async_trait]
impl LiveCalls for LiveCallsService {
    type IngestStream = Responses<pb::IngestResponse>;
    type MonitorStream = Responses<pb::MonitorResponse>;

    async fn ingest(
        &self,
        request: Request<Streaming<pb::IngestRequest>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        let who = self.shared.authenticate(request.metadata()).await?;
        if self.shared.gate.enabled() && who.role != super::auth::Role::Ingest {
            return Err(Status::permission_denied(format!(
                "a {} credential may not ingest calls (an ingest token may)",
                who.role
            )));
        }
        let peer = request.remote_addr();
        let (tx, rx) = mpsc::channel(self.shared.config.response_buffer);
        tokio::spawn(
            self.shared
                .clone()
                .run_ingest(who, peer, request.into_inner(), tx),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn monitor(
        &self,
        request: Request<pb::MonitorRequest>,
    ) -> Result<Response<Self::MonitorStream>, Status> {
        let who = self.shared.authenticate(request.metadata()).await?;
        if !who.sees_live_calls() {
            return Err(Status::permission_denied(format!(
                "a {} credential may not watch calls (a monitor or api token may)",
                who.role
            )));
        }
        let request = request.into_inner();
        let filter = CallFilter {
            team: non_empty(request.team),
            agent_id: non_empty(request.agent_id),
            call_id: non_empty(request.call_id),
        };
        let (tx, rx) = mpsc::channel(self.shared.config.monitor_buffer.max(1));
        tokio::spawn(self.shared.clone().run_monitor(who, filter, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl Shared {
    /// Follows the hub for one monitor. Never waits for the client: when its queue is full,
    /// events are dropped, counted, and the client is told how many it missed.
    async fn run_monitor(
        self: Arc<Self>,
        who: Principal,
        filter: CallFilter,
        tx: mpsc::Sender<Result<pb::MonitorResponse, Status>>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        use tokio::sync::mpsc::error::TrySendError;
        let (views, mut events) = self.hub.subscribe(&filter);
        self.metrics.monitors_active.fetch_add(1, Ordering::Relaxed);
        let mut shutdown = self.shutdown.clone();
        let mut missed: u64 = 0;
        let visible = |call: &CallInfo| {
            who.may(Access::ViewLiveCall {
                team: &call.team,
                agent_id: &call.agent_id,
            })
        };
        let mut queue: Vec<pb::MonitorResponse> = views
            .iter()
            .filter(|v| visible(&v.call))
            .map(|v| pb::MonitorResponse {
                msg: Some(monitor_response::Msg::LiveCall(convert::view_to_proto(v))),
            })
            .collect();
        'follow: loop {
            for msg in queue.drain(..) {
                if tx.capacity() == 0 {
                    missed += 1;
                    self.hub.count_dropped(1);
                    continue;
                }
                if missed > 0 {
                    let note = pb::MonitorResponse {
                        msg: Some(monitor_response::Msg::MissedEvents(missed)),
                    };
                    match tx.try_send(Ok(note)) {
                        Ok(()) => missed = 0,
                        Err(TrySendError::Full(_)) => {
                            missed += 1;
                            self.hub.count_dropped(1);
                            continue;
                        }
                        Err(TrySendError::Closed(_)) => break 'follow,
                    }
                }
                match tx.try_send(Ok(msg)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        missed += 1;
                        self.hub.count_dropped(1);
                    }
                    Err(TrySendError::Closed(_)) => break 'follow,
                }
            }
            let event = tokio::select! {
                _ = shutdown.wait_for(|stopping| *stopping) => break,
                _ = tx.closed() => break,
                // Room again after drops: tell the client what it missed at once.
                permit = tx.reserve(), if missed > 0 => {
                    let Ok(permit) = permit else { break };
                    permit.send(Ok(pb::MonitorResponse {
                        msg: Some(monitor_response::Msg::MissedEvents(missed)),
                    }));
                    missed = 0;
                    continue;
                }
                event = events.recv() => event,
            };
            match event {
                Ok(event) if filter.matches(&event.call) && visible(&event.call) => {
                    if tx.capacity() == 0 {
                        missed += 1;
                        self.hub.count_dropped(1);
                    } else {
                        queue.push(pb::MonitorResponse {
                            msg: Some(monitor_response::Msg::Event(convert::hub_event_to_proto(
                                &event,
                            ))),
                        });
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    missed += n;
                    self.hub.count_dropped(n);
                }
                Err(RecvError::Closed) => break,
            }
        }
        self.metrics.monitors_active.fetch_sub(1, Ordering::Relaxed);
    }
}
