//! Twilio Media Streams at `/ingest/twilio`.
//!
//! A `<Start><Stream url="wss://HOST/ingest/twilio" track="both_tracks">` fork sends text
//! messages: `connected`, `start` (`streamSid`, `callSid`, `tracks`, `mediaFormat`,
//! `customParameters`), `media` (`track` inbound|outbound, `chunk`, `timestamp` in ms since the
//! stream started, base64 mu-law 8 kHz mono, 20 ms a frame), `dtmf`, `mark`, `stop`. Numbers
//! arrive as JSON strings (numbers are accepted too).
//!
//! Parties: inbound = the caller (channel 0), outbound = the agent (channel 1); which track is
//! the agent is configurable ([`super::IngestConfig::twilio_agent_track`]). The tracks are
//! aligned by `timestamp` with [`TrackAligner`]: gaps are filled with silence, late or repeated
//! frames dropped. Call id = `callSid` unless a `call_id` custom parameter is given; `agent_id`
//! and `team` come from the custom parameters.
//!
//! [`TwilioStream`] is the protocol state machine (no I/O); [`upgrade`] the WebSocket driver,
//! which checks `X-Twilio-Signature` ([`signature`]) when auth tokens are configured.
//!
//! Identity: with accounts or tokens in the store, a call must carry an Attune ingest token,
//! as the `attune_token` custom parameter (`<Parameter name="attune_token" value="…"/>`) or
//! `Authorization: Bearer` on the upgrade (from a proxy); its teams must include the call's
//! team, and a stored call id is refused unless the token may resume it (closed with 1008).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::extract::State as Shared;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;

use attune_core::audio::g711;

use super::{
    ActiveGuard, AdapterCounters, AlignError, IngestConfig, LiveCall, TrackAligner, WsState,
    constant_time_eq, split_frames, stereo_spec,
};
use crate::session::Encoding;

/// Twilio's sample rate, Hz.
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// Largest decoded media payload accepted, bytes (1 s of 8 kHz mu-law; Twilio sends 160).
pub const MAX_PAYLOAD_BYTES: usize = 8000;

/// A Twilio media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Inbound,
    Outbound,
}

impl Track {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "inbound" => Some(Track::Inbound),
            "outbound" => Some(Track::Outbound),
            _ => None,
        }
    }
}

/// A message or order Twilio's protocol does not allow; each maps to a WebSocket close code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TwilioError {
    #[error("malformed message: {0}")]
    Json(String),
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("{event} before start")]
    BeforeStart { event: &'static str },
    #[error("a second start")]
    SecondStart,
    #[error("{0} after stop")]
    AfterStop(String),
    #[error("start: {0}")]
    BadStart(String),
    #[error(
        "unsupported media format {encoding} {rate} Hz {channels} ch (expected audio/x-mulaw 8000 Hz 1 ch)"
    )]
    Format {
        encoding: String,
        rate: u64,
        channels: u64,
    },
    #[error("media: unknown track {0:?} (expected inbound or outbound)")]
    UnknownTrack(String),
    #[error("media: {0}")]
    BadMedia(String),
    #[error("media: payload of {0} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit")]
    Oversized(usize),
    #[error(transparent)]
    Align(#[from] AlignError),
}

impl TwilioError {
    /// The WebSocket close code: 1007 for bad data, 1002 for a wrong order, 1003 for an
    /// unsupported format, 1009 for an oversized payload.
    pub fn close_code(&self) -> u16 {
        match self {
            TwilioError::Json(_) | TwilioError::BadMedia(_) | TwilioError::BadStart(_) => 1007,
            TwilioError::UnknownEvent(_)
            | TwilioError::BeforeStart { .. }
            | TwilioError::SecondStart
            | TwilioError::AfterStop(_)
            | TwilioError::UnknownTrack(_)
            | TwilioError::Align(_) => 1002,
            TwilioError::Format { .. } => 1003,
            TwilioError::Oversized(_) => 1009,
        }
    }
}

/// A number Twilio sends as a string (or, leniently, as a number).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Num<'a> {
    #[serde(borrow)]
    Str(Cow<'a, str>),
    Int(u64),
}

impl Num<'_> {
    fn get(&self) -> Option<u64> {
        match self {
            Num::Str(s) => s.parse().ok(),
            Num::Int(n) => Some(*n),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<MediaBody<'a>>,
    #[serde(default)]
    start: Option<StartBody>,
}

#[derive(Debug, Deserialize)]
struct MediaBody<'a> {
    #[serde(borrow, default)]
    track: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Num<'a>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    #[serde(default)]
    stream_sid: String,
    #[serde(default)]
    call_sid: String,
    #[serde(default)]
    tracks: Vec<String>,
    #[serde(default)]
    custom_parameters: BTreeMap<String, serde_json::Value>,
    media_format: Option<MediaFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormat {
    encoding: String,
    sample_rate: u64,
    channels: u64,
}

/// The call a `start` message declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStart {
    pub call_id: String,
    pub agent_id: String,
    pub team: String,
    pub stream_sid: String,
    /// Tracks forked ("inbound", "outbound").
    pub tracks: Vec<String>,
    /// The Attune ingest token of the `attune_token` custom parameter, if any.
    pub token: Option<String>,
}

/// What one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to act on (`connected`, `mark`, `dtmf`, a media frame held for alignment).
    Nothing,
    /// The call starts.
    Started(StreamStart),
    /// Aligned audio was appended to `out`.
    Audio,
    /// The stream stopped; the rest of the audio was appended to `out`.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitStart,
    Streaming,
    Stopped,
}

/// Twilio's protocol as a state machine: messages in, interleaved stereo mu-law out
/// (channel 0 = the caller, channel 1 = the agent).
#[derive(Debug)]
pub struct TwilioStream {
    state: State,
    agent_track: Track,
    aligner: TrackAligner,
    payload: Vec<u8>,
    /// Media frames received, and frames dropped whole as late or repeated.
    pub frames: u64,
    pub frames_late: u64,
}

impl TwilioStream {
    pub fn new(agent_track: Track, max_skew_ms: u32, max_gap_ms: u32) -> Self {
        let per_ms = u64::from(SAMPLE_RATE_HZ / 1000);
        Self {
            state: State::AwaitStart,
            agent_track,
            aligner: TrackAligner::new(
                &[g711::encode_mulaw(0)],
                u64::from(max_skew_ms) * per_ms,
                u64::from(max_gap_ms) * per_ms,
            ),
            payload: Vec::with_capacity(MAX_PAYLOAD_BYTES),
            frames: 0,
            frames_late: 0,
        }
    }

    /// The channel of the analyzer the agent is on.
    pub const AGENT_CHANNEL: usize = 1;

    /// Silence inserted so far, samples.
    pub fn silence_filled(&self) -> u64 {
        self.aligner.silence_filled
    }

    /// Handles one text message; aligned audio is appended to `out`.
    pub fn on_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<Step, TwilioError> {
        let msg: Envelope =
            serde_json::from_str(text).map_err(|e| TwilioError::Json(e.to_string()))?;
        if self.state == State::Stopped {
            return Err(TwilioError::AfterStop(msg.event.into_owned()));
        }
        match msg.event.as_ref() {
            "connected" => {
                if self.state != State::AwaitStart {
                    return Err(TwilioError::UnknownEvent("connected after start".into()));
                }
                Ok(Step::Nothing)
            }
            "start" => {
                if self.state != State::AwaitStart {
                    return Err(TwilioError::SecondStart);
                }
                let start = msg
                    .start
                    .ok_or_else(|| TwilioError::BadStart("no start object".into()))?;
                let started = self.start(start)?;
                self.state = State::Streaming;
                Ok(Step::Started(started))
            }
            "media" => {
                if self.state != State::Streaming {
                    return Err(TwilioError::BeforeStart { event: "media" });
                }
                let media = msg
                    .media
                    .ok_or_else(|| TwilioError::BadMedia("no media object".into()))?;
                self.media(&media, out)
            }
            "dtmf" | "mark" => {
                if self.state != State::Streaming {
                    return Err(TwilioError::BeforeStart { event: "dtmf/mark" });
                }
                Ok(Step::Nothing)
            }
            "stop" => {
                if self.state != State::Streaming {
                    return Err(TwilioError::BeforeStart { event: "stop" });
                }
                self.state = State::Stopped;
                self.aligner.flush(out);
                Ok(Step::Stopped)
            }
            other => Err(TwilioError::UnknownEvent(other.to_owned())),
        }
    }

    /// Ends the stream without a `stop` (the socket closed): the rest of the audio.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state == State::Streaming {
            self.aligner.flush(out);
        }
        self.state = State::Stopped;
    }

    fn start(&self, start: StartBody) -> Result<StreamStart, TwilioError> {
        if let Some(f) = &start.media_format {
            let ok = f.encoding.eq_ignore_ascii_case("audio/x-mulaw")
                && f.sample_rate == u64::from(SAMPLE_RATE_HZ)
                && f.channels == 1;
            if !ok {
                return Err(TwilioError::Format {
                    encoding: f.encoding.clone(),
                    rate: f.sample_rate,
                    channels: f.channels,
                });
            }
        }
        for track in &start.tracks {
            if Track::parse(track).is_none() {
                return Err(TwilioError::UnknownTrack(track.clone()));
            }
        }
        let param = |name: &str| -> Option<String> {
            match start.custom_parameters.get(name)? {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let call_id = param("call_id").unwrap_or_else(|| start.call_sid.clone());
        if call_id.is_empty() {
            return Err(TwilioError::BadStart(
                "no callSid and no call_id parameter".into(),
            ));
        }
        Ok(StreamStart {
            call_id,
            agent_id: param("agent_id").unwrap_or_else(|| "unknown".into()),
            team: param("team").unwrap_or_else(|| "default".into()),
            stream_sid: start.stream_sid,
            tracks: start.tracks,
            token: param("attune_token"),
        })
    }

    fn media(&mut self, media: &MediaBody, out: &mut Vec<u8>) -> Result<Step, TwilioError> {
        let track = match media.track.as_deref() {
            // A single-track fork may leave the track out: it is the inbound one.
            None => Track::Inbound,
            Some(name) => {
                Track::parse(name).ok_or_else(|| TwilioError::UnknownTrack(name.to_owned()))?
            }
        };
        let timestamp_ms = media
            .timestamp
            .get()
            .ok_or_else(|| TwilioError::BadMedia("timestamp is not a whole number".into()))?;
        if media.payload.len() > MAX_PAYLOAD_BYTES.div_ceil(3) * 4 {
            return Err(TwilioError::Oversized(media.payload.len() / 4 * 3));
        }
        self.payload.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(media.payload.as_bytes(), &mut self.payload)
            .map_err(|e| TwilioError::BadMedia(format!("payload is not base64: {e}")))?;
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(TwilioError::Oversized(self.payload.len()));
        }
        let channel = usize::from(track == self.agent_track);
        let at = timestamp_ms
            .checked_mul(u64::from(SAMPLE_RATE_HZ / 1000))
            .ok_or_else(|| TwilioError::BadMedia("timestamp out of range".into()))?;
        self.frames += 1;
        let before = out.len();
        let placed = self.aligner.place(channel, at, &self.payload, out)?;
        if placed.kept == 0 && placed.dropped > 0 {
            self.frames_late += 1;
        }
        Ok(if out.len() > before {
            Step::Audio
        } else {
            Step::Nothing
        })
    }
}

/// `X-Twilio-Signature`: base64 of HMAC-SHA1 (key: the auth token) over the full URL followed
/// by every POST parameter's name and value, sorted by name (none for a WebSocket upgrade).
pub fn signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use hmac::{KeyInit, Mac};
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `given` is the signature of `url` with one of `tokens`. Twilio signs the URL as
/// configured; with and without an explicit default port both count (as Twilio's libraries do).
pub fn signature_valid(tokens: &[String], url: &str, given: &str) -> bool {
    let alternatives = url_variants(url);
    tokens.iter().any(|token| {
        alternatives
            .iter()
            .any(|u| constant_time_eq(signature(token, u, &[]).as_bytes(), given.as_bytes()))
    })
}

fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let port = if scheme == "wss" || scheme == "https" {
            ":443"
        } else {
            ":80"
        };
        if let Some(host) = authority.strip_suffix(port) {
            out.push(format!("{scheme}://{host}{path}"));
        } else if !authority.contains(':') {
            out.push(format!("{scheme}://{authority}{port}{path}"));
        }
    }
    out
}

/// The URL Twilio connected to, as it signed it.
fn signed_url(config: &IngestConfig, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let path = uri
        .path_and_query()
        .map_or("/ingest/twilio", |p| p.as_str());
    match &config.public_base_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("wss://{host}{path}")
        }
    }
}

/// The `/ingest/twilio` upgrade: checks the signature (a bad one is closed with 1008), then
/// runs the stream.
pub(crate) async fn upgrade(
    Shared(state): Shared<WsState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    peer: super::Peer,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = super::peer_ip(&peer);
    let refusal = if state.config.twilio_auth_tokens.is_empty() {
        state.config.require_signatures.then(|| {
            "this server takes no unsigned Twilio streams and has no Twilio auth token".to_owned()
        })
    } else {
        let url = signed_url(&state.config, &headers, &uri);
        match headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
        {
            None => Some("no X-Twilio-Signature".to_owned()),
            Some(given) if !signature_valid(&state.config.twilio_auth_tokens, &url, given) => {
                Some(format!("X-Twilio-Signature does not match {url}"))
            }
            Some(_) => None,
        }
    };
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let limit = state.config.max_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            let shared = state.shared.clone();
            let counters = &shared.metrics.telephony.twilio;
            let _active = ActiveGuard::new(counters);
            if let Some(reason) = refusal {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                close(socket, 1008, &reason).await;
                return;
            }
            run(socket, state, peer, bearer).await;
        })
}

pub(crate) async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    // Close reasons are at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason[..end].into(),
        })))
        .await;
}

/// Why a stream ended: the call's end reason, and the close frame (code, reason).
struct Ending {
    reason: &'static str,
    close: Option<(u16, String)>,
}

impl Ending {
    fn error(code: u16, message: String) -> Self {
        Self {
            reason: "error",
            close: Some((code, message)),
        }
    }
}

/// Audio pushed to the analysis at least this much at a time, ms (as gRPC's default chunk).
pub(crate) const BATCH_MS: usize = 100;

async fn run(
    mut socket: WebSocket,
    state: WsState,
    peer: Option<std::net::IpAddr>,
    bearer: Option<String>,
) {
    let WsState { shared, config } = state;
    let counters: &AdapterCounters = &shared.metrics.telephony.twilio;
    let mut stream = TwilioStream::new(
        config.twilio_agent_track,
        config.max_skew_ms,
        config.max_gap_ms,
    );
    let mut out = Vec::with_capacity(4096);
    // Until `start`: messages within the start timeout.
    let deadline = tokio::time::Instant::now() + config.start_timeout;
    let started = loop {
        let msg = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Err(_) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                let secs = config.start_timeout.as_secs_f64();
                close(socket, 1008, &format!("no start within {secs:.1} s")).await;
                return;
            }
            Ok(None | Some(Err(_))) => return,
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            Message::Text(text) => match stream.on_text(text.as_str(), &mut out) {
                Ok(Step::Started(start)) => break start,
                Ok(_) => {}
                Err(e) => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    close(socket, e.close_code(), &e.to_string()).await;
                    return;
                }
            },
            Message::Binary(_) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                close(socket, 1003, "binary message: Twilio sends JSON text").await;
                return;
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    };
    let call_id = started.call_id.clone();
    let token = started.token.clone().or(bearer);
    let who = match super::identify(
        &shared,
        token,
        "add <Parameter name=\"attune_token\" value=\"…\"/> to the <Stream>",
    )
    .await
    {
        Ok(who) => who,
        Err(e) => {
            super::note_refused(counters, "twilio", &call_id, &e);
            close(socket, 1008, &e.to_string()).await;
            return;
        }
    };
    let spec = stereo_spec(
        started.call_id,
        started.agent_id,
        started.team,
        SAMPLE_RATE_HZ,
        Encoding::Mulaw,
        TwilioStream::AGENT_CHANNEL,
    );
    let mut live = match LiveCall::start(shared.clone(), spec, peer, &who).await {
        Ok(live) => live,
        Err(e) => {
            super::note_refused(counters, "twilio", &call_id, &e);
            close(socket, 1008, &e.to_string()).await;
            return;
        }
    };
    let batch_bytes = SAMPLE_RATE_HZ as usize * BATCH_MS / 1000 * 2;
    let mut shutdown = live.shutdown_signal();
    let mut silence_reported = 0;
    let idle = config.no_media_timeout;
    let mut last_media = tokio::time::Instant::now();
    let ending = loop {
        let msg = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break Ending { reason: "shutdown", close: Some((1001, "the server is shutting down".into())) },
            msg = tokio::time::timeout_at((last_media + idle).min(live.idle_deadline()), socket.recv()) => msg,
        };
        let msg = match msg {
            Err(_) => {
                if let Some(why) = live.lagging() {
                    break Ending {
                        reason: "timeout",
                        close: Some((1008, why)),
                    };
                }
                break Ending {
                    reason: "timeout",
                    close: Some((1008, format!("no media for {:.1} s", idle.as_secs_f64()))),
                };
            }
            Ok(None | Some(Err(_))) => {
                stream.finish(&mut out);
                break Ending {
                    reason: "disconnected",
                    close: None,
                };
            }
            Ok(Some(Ok(msg))) => msg,
        };
        let step = match msg {
            Message::Text(text) => {
                let frames_before = stream.frames;
                let step = stream.on_text(text.as_str(), &mut out);
                if stream.frames > frames_before {
                    last_media = tokio::time::Instant::now();
                    live.message().await;
                }
                step
            }
            Message::Binary(_) => {
                break Ending::error(1003, "binary message: Twilio sends JSON text".into());
            }
            Message::Close(_) => {
                stream.finish(&mut out);
                break Ending {
                    reason: "disconnected",
                    close: None,
                };
            }
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let stopped = match step {
            Err(e) => break Ending::error(e.close_code(), e.to_string()),
            Ok(Step::Stopped) => true,
            Ok(_) => false,
        };
        if (stopped || out.len() >= batch_bytes)
            && let Err(e) = push_all(&mut live, std::mem::take(&mut out)).await
        {
            break Ending::error(1011, e.to_string());
        }
        if stopped {
            break Ending {
                reason: "ended",
                close: Some((1000, "stream stopped".into())),
            };
        }
        let filled = stream.silence_filled();
        counters
            .silence_filled_samples
            .fetch_add(filled - silence_reported, Ordering::Relaxed);
        silence_reported = filled;
    };
    counters.frames.fetch_add(stream.frames, Ordering::Relaxed);
    counters
        .frames_late
        .fetch_add(stream.frames_late, Ordering::Relaxed);
    if ending.reason != "error" {
        // What was aligned before the end still counts.
        let _ = push_all(&mut live, std::mem::take(&mut out)).await;
    } else {
        counters.refused.fetch_add(1, Ordering::Relaxed);
    }
    if ending.reason == "timeout" {
        counters.refused.fetch_add(1, Ordering::Relaxed);
    }
    live.end(ending.reason).await;
    if let Some((code, reason)) = ending.close {
        close(socket, code, &reason).await;
    }
}

/// Pushes aligned stereo audio in chunks of at most 1 s.
pub(crate) async fn push_all(live: &mut LiveCall, audio: Vec<u8>) -> Result<(), super::PushError> {
    let frame_bytes = 2;
    for chunk in split_frames(audio, frame_bytes, SAMPLE_RATE_HZ as usize) {
        live.push(chunk).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(track: &str, ts: u64, payload: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
        format!(
            r#"{{"event":"media","sequenceNumber":"3","media":{{"track":"{track}","chunk":"1","timestamp":"{ts}","payload":"{b64}"}},"streamSid":"MZ1"}}"#
        )
    }

    const START: &str = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound","outbound"],"customParameters":{"agent_id":"alice","team":"billing"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}"#;

    #[test]
    fn a_both_tracks_stream_becomes_aligned_stereo() {
        let mut s = TwilioStream::new(Track::Outbound, 1000, 60_000);
        let mut out = Vec::new();
        assert_eq!(
            s.on_text(
                r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
                &mut out
            ),
            Ok(Step::Nothing)
        );
        let Ok(Step::Started(start)) = s.on_text(START, &mut out) else {
            panic!("no start")
        };
        assert_eq!(
            (
                start.call_id.as_str(),
                start.agent_id.as_str(),
                start.team.as_str()
            ),
            ("CA1", "alice", "billing")
        );
        s.on_text(&media("inbound", 0, &[1; 160]), &mut out)
            .unwrap();
        assert!(out.is_empty());
        s.on_text(&media("outbound", 0, &[2; 160]), &mut out)
            .unwrap();
        assert_eq!(out.len(), 320);
        assert_eq!(&out[..4], &[1, 2, 1, 2], "inbound = caller = channel 0");
        // The outbound frame of 20 ms is missing: silence when the inbound runs ahead.
        out.clear();
        s.on_text(&media("inbound", 20, &[1; 160]), &mut out)
            .unwrap();
        s.on_text(&media("inbound", 40, &[1; 160]), &mut out)
            .unwrap();
        s.on_text(&media("outbound", 40, &[2; 160]), &mut out)
            .unwrap();
        assert_eq!(out.len(), 640);
        assert_eq!(out[1], 0xFF, "gap filled with mu-law silence");
        assert_eq!(out[321], 2);
        // A repeated frame is dropped and counted.
        s.on_text(&media("inbound", 40, &[9; 160]), &mut out)
            .unwrap();
        assert_eq!(s.frames_late, 1);
        out.clear();
        assert_eq!(
            s.on_text(r#"{"event":"stop"}"#, &mut out),
            Ok(Step::Stopped)
        );
        assert!(matches!(
            s.on_text(&media("inbound", 60, &[1; 160]), &mut out),
            Err(TwilioError::AfterStop(_))
        ));
    }

    #[test]
    fn bad_input_is_a_precise_error() {
        let mut out = Vec::new();
        let mut s = TwilioStream::new(Track::Outbound, 1000, 60_000);
        let e = s.on_text("{not json", &mut out).unwrap_err();
        assert_eq!(e.close_code(), 1007);
        let e = s.on_text(&media("inbound", 0, &[1]), &mut out).unwrap_err();
        assert_eq!(e, TwilioError::BeforeStart { event: "media" });
        assert_eq!(
            s.on_text(r#"{"event":"hello"}"#, &mut out).unwrap_err(),
            TwilioError::UnknownEvent("hello".into())
        );
        s.on_text(START, &mut out).unwrap();
        assert_eq!(
            s.on_text(START, &mut out).unwrap_err(),
            TwilioError::SecondStart
        );
        assert_eq!(
            s.on_text(&media("sideways", 0, &[1]), &mut out)
                .unwrap_err(),
            TwilioError::UnknownTrack("sideways".into())
        );
        let garbage =
            r#"{"event":"media","media":{"track":"inbound","timestamp":"0","payload":"!!!"}}"#;
        assert!(matches!(
            s.on_text(garbage, &mut out),
            Err(TwilioError::BadMedia(_))
        ));
        let e = s
            .on_text(
                &media("inbound", 0, &vec![0; MAX_PAYLOAD_BYTES + 1]),
                &mut out,
            )
            .unwrap_err();
        assert_eq!(e.close_code(), 1009);
        let e = s
            .on_text(&media("inbound", 10_000_000, &[1]), &mut out)
            .unwrap_err();
        assert!(matches!(e, TwilioError::Align(_)));
        let wrong = START.replace("audio/x-mulaw", "audio/l16");
        let mut s = TwilioStream::new(Track::Outbound, 1000, 60_000);
        assert_eq!(s.on_text(&wrong, &mut out).unwrap_err().close_code(), 1003);
    }

    #[test]
    fn signature_matches_twilios_published_example() {
        // Twilio's documented example (security docs and its helper libraries' tests).
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        let url = "wss://attune.example.com/ingest/twilio";
        let good = signature("secret", url, &[]);
        assert!(signature_valid(
            &["other".into(), "secret".into()],
            url,
            &good
        ));
        assert!(signature_valid(
            &["secret".into()],
            "wss://attune.example.com:443/ingest/twilio",
            &good
        ));
        assert!(!signature_valid(&["secret".into()], url, "AAAA"));
    }
}
