//! Genesys Cloud AudioHook (protocol version 2) at `/ingest/audiohook`.
//!
//! Text messages carry `version`, `id` (the session), `type`, `seq`, `clientseq`/`serverseq`,
//! `position` and `parameters`. The client opens (`open`, offering media), the server answers
//! `opened` with the media it chose (PCMU or L16 at 8000 Hz, channels `external` and/or
//! `internal`); `ping` → `pong`; `paused`/`resumed`/`discarded` (a gap: filled with silence),
//! `update` and `error` are noted; `close` → `closed`. The server sends `disconnect` when it
//! refuses a session. Binary messages are the audio, interleaved in the negotiated channel
//! order: external = the customer, internal = the agent. L16 is signed 16-bit little-endian.
//!
//! Identity: `conversationId` is the call id, `organizationId` the tenant (used as the team
//! unless `customConfig.team` is given), the agent from `customConfig.agentId` (or
//! `agent_id`), else the participant id is not the agent (it is the customer) and the agent is
//! "unknown". A `conversationId` of all zeros is Genesys' connection probe: opened and closed
//! without a call.
//!
//! Authentication ([`verify_request`]): `X-API-KEY` plus HTTP Message Signatures (RFC 9421:
//! `Signature-Input`/`Signature`, hmac-sha256 keyed with the base64-decoded client secret,
//! keyid = the API key, covering `@request-target`, `@authority`, the `audiohook-*` headers and
//! `x-api-key`; `created`/`expires` and a nonce checked). A refused upgrade gets HTTP 401 with
//! the reason. With accounts or tokens in the store, the `X-API-KEY` must also be an Attune
//! ingest token whose teams include the call's team, and a stored call id is refused unless
//! the token may resume it: the session gets `disconnect` (reason `error`, the why in `info`)
//! and is closed with 1008.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use axum::extract::State as Shared;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::twilio::{BATCH_MS, close};
use super::{ActiveGuard, LiveCall, WsState, constant_time_eq, split_frames, stereo_spec};
use crate::session::Encoding;

/// AudioHook's sample rate here, Hz.
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// Largest gap (`discarded`, `resumed`) filled with silence, s.
pub const MAX_GAP_S: f64 = 300.0;
/// The probe's conversation id.
pub const PROBE_CONVERSATION: &str = "00000000-0000-0000-0000-000000000000";

/// Audio format of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcmu,
    L16,
}

/// A party's channel in AudioHook terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The customer.
    External,
    /// The agent.
    Internal,
}

/// The media the server chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub format: Format,
    /// Channel order of the binary frames.
    pub channels: Vec<Party>,
}

impl Media {
    fn bytes_per_sample(&self) -> usize {
        match self.format {
            Format::Pcmu => 1,
            Format::L16 => 2,
        }
    }

    /// Bytes of one frame (all channels).
    pub fn frame_bytes(&self) -> usize {
        self.bytes_per_sample() * self.channels.len()
    }

    fn json(&self) -> Value {
        let channels: Vec<&str> = self
            .channels
            .iter()
            .map(|p| match p {
                Party::External => "external",
                Party::Internal => "internal",
            })
            .collect();
        json!({"type": "audio", "format": match self.format { Format::Pcmu => "PCMU", Format::L16 => "L16" },
               "channels": channels, "rate": SAMPLE_RATE_HZ})
    }

    /// The analyzer's agent channel (the stereo output keeps the frames' order).
    pub fn agent_channel(&self) -> usize {
        match self.channels.as_slice() {
            [Party::Internal, Party::External] => 0,
            _ => 1,
        }
    }
}

/// A fault in an AudioHook session: the `disconnect` info and close code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookError {
    #[error("malformed message: {0}")]
    Json(String),
    #[error("unsupported protocol version {0:?} (expected \"2\")")]
    Version(String),
    #[error("{kind} before open")]
    BeforeOpen { kind: String },
    #[error("a second open")]
    SecondOpen,
    #[error("message seq {got}, expected {expected}")]
    Sequence { got: u64, expected: u64 },
    #[error("session id {got:?} differs from the session's {expected:?}")]
    SessionId { got: String, expected: String },
    #[error("open: {0}")]
    BadOpen(String),
    #[error(
        "no supported media offered ({0}); expected PCMU or L16 at 8000 Hz, channels external/internal"
    )]
    NoMedia(String),
    #[error("audio frame of {bytes} bytes is not a whole number of {frame_bytes}-byte frames")]
    FrameSize { bytes: usize, frame_bytes: usize },
    #[error("audio before opened")]
    AudioBeforeOpen,
    #[error("{kind} after close")]
    AfterClose { kind: String },
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("bad duration {0:?} (expected ISO 8601 like PT1.5S, at most {MAX_GAP_S} s)")]
    Duration(String),
}

impl HookError {
    pub fn close_code(&self) -> u16 {
        match self {
            HookError::Json(_) | HookError::Duration(_) | HookError::FrameSize { .. } => 1007,
            HookError::NoMedia(_) | HookError::Version(_) => 1003,
            _ => 1002,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    version: String,
    #[serde(default)]
    id: String,
    #[serde(rename = "type")]
    kind: String,
    seq: u64,
    #[serde(default)]
    parameters: Value,
}

/// The call an `open` declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCall {
    pub call_id: String,
    pub organization_id: String,
    pub agent_id: String,
    pub team: String,
    pub media: Media,
}

/// What a message did (besides any reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Nothing,
    /// The session is open: start the call.
    Opened(OpenCall),
    /// A connection probe was opened (no call).
    Probe,
    /// Silence of this many samples per channel was appended to `out` (a gap).
    Gap,
    /// The client closed the session (after `closed` is sent, the socket may close).
    Closed,
}

/// One step's result: the text to send back (if any) and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: Option<String>,
    pub event: Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitOpen,
    Open,
    Closed,
}

/// The AudioHook server side as a state machine: messages in, replies and interleaved stereo
/// audio out (in the negotiated order; mono sessions get a silent second channel).
#[derive(Debug)]
pub struct HookSession {
    state: State,
    session_id: String,
    client_seq: u64,
    server_seq: u64,
    media: Option<Media>,
    /// Binary frames received; gap samples filled.
    pub frames: u64,
    pub silence_filled: u64,
    /// The client said `paused` (and not yet `resumed`): no audio is due.
    pub paused: bool,
}

impl Default for HookSession {
    fn default() -> Self {
        Self::new()
    }
}

impl HookSession {
    pub fn new() -> Self {
        Self {
            state: State::AwaitOpen,
            session_id: String::new(),
            client_seq: 0,
            server_seq: 0,
            media: None,
            frames: 0,
            silence_filled: 0,
            paused: false,
        }
    }

    fn message(&mut self, kind: &str, parameters: Value) -> String {
        self.server_seq += 1;
        json!({
            "version": "2",
            "type": kind,
            "seq": self.server_seq,
            "clientseq": self.client_seq,
            "id": self.session_id,
            "parameters": parameters,
        })
        .to_string()
    }

    /// The `disconnect` message refusing the session for `error` (then close the socket).
    pub fn disconnect(&mut self, reason: &str, info: &str) -> String {
        self.state = State::Closed;
        self.message("disconnect", json!({"reason": reason, "info": info}))
    }

    /// Handles one text message; gap silence is appended to `out`.
    pub fn on_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<Outcome, HookError> {
        let msg: Envelope =
            serde_json::from_str(text).map_err(|e| HookError::Json(e.to_string()))?;
        if msg.version != "2" {
            return Err(HookError::Version(msg.version));
        }
        let expected = self.client_seq + 1;
        if msg.seq != expected {
            return Err(HookError::Sequence {
                got: msg.seq,
                expected,
            });
        }
        self.client_seq = msg.seq;
        if self.state == State::Closed {
            return Err(HookError::AfterClose { kind: msg.kind });
        }
        if self.state == State::AwaitOpen {
            if msg.kind != "open" {
                return Err(HookError::BeforeOpen { kind: msg.kind });
            }
            self.session_id = msg.id;
            return self.open(&msg.parameters);
        }
        if msg.id != self.session_id {
            return Err(HookError::SessionId {
                got: msg.id,
                expected: self.session_id.clone(),
            });
        }
        let nothing = |reply| Outcome {
            reply,
            event: Event::Nothing,
        };
        match msg.kind.as_str() {
            "open" => Err(HookError::SecondOpen),
            "ping" => Ok(nothing(Some(self.message("pong", json!({}))))),
            "close" => {
                self.state = State::Closed;
                Ok(Outcome {
                    reply: Some(self.message("closed", json!({}))),
                    event: Event::Closed,
                })
            }
            "paused" => {
                self.paused = true;
                Ok(nothing(None))
            }
            "update" | "error" => Ok(nothing(None)),
            "resumed" | "discarded" => {
                if msg.kind == "resumed" {
                    self.paused = false;
                }
                let discarded = msg
                    .parameters
                    .get("discarded")
                    .and_then(Value::as_str)
                    .unwrap_or("PT0S");
                let seconds = parse_duration_s(discarded)
                    .filter(|s| *s <= MAX_GAP_S)
                    .ok_or_else(|| HookError::Duration(discarded.to_owned()))?;
                let samples = (seconds * f64::from(SAMPLE_RATE_HZ)).round() as u64;
                self.silence(samples, out);
                Ok(Outcome {
                    reply: None,
                    event: if samples > 0 {
                        Event::Gap
                    } else {
                        Event::Nothing
                    },
                })
            }
            other => Err(HookError::UnknownType(other.to_owned())),
        }
    }

    fn silence(&mut self, samples: u64, out: &mut Vec<u8>) {
        let Some(media) = &self.media else { return };
        let frame = match media.format {
            Format::Pcmu => &[0xFF, 0xFF, 0, 0][..2],
            Format::L16 => &[0, 0, 0, 0][..],
        };
        for _ in 0..samples {
            out.extend_from_slice(frame);
        }
        self.silence_filled += samples;
    }

    fn open(&mut self, p: &Value) -> Result<Outcome, HookError> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
        let call_id = text(p.get("conversationId"));
        if call_id.is_empty() {
            return Err(HookError::BadOpen("no conversationId".into()));
        }
        let organization_id = text(p.get("organizationId"));
        let offered = p
            .get("media")
            .and_then(Value::as_array)
            .ok_or_else(|| HookError::BadOpen("no media offered".into()))?;
        let media = choose_media(offered)?;
        self.state = State::Open;
        let reply = self.message(
            "opened",
            json!({"startPaused": false, "media": [media.json()]}),
        );
        if call_id == PROBE_CONVERSATION {
            self.media = Some(media);
            return Ok(Outcome {
                reply: Some(reply),
                event: Event::Probe,
            });
        }
        let custom = p.get("customConfig");
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| custom.and_then(|c| c.get(*n)).and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let agent_id = field(&["agentId", "agent_id"]).unwrap_or_else(|| "unknown".into());
        let team = field(&["team"]).unwrap_or_else(|| {
            if organization_id.is_empty() {
                "default".into()
            } else {
                organization_id.clone()
            }
        });
        self.media = Some(media.clone());
        Ok(Outcome {
            reply: Some(reply),
            event: Event::Opened(OpenCall {
                call_id,
                organization_id,
                agent_id,
                team,
                media,
            }),
        })
    }

    /// Handles one binary message (audio); stereo audio in the call's encoding is appended to
    /// `out` (PCMU as mu-law, L16 as PCM16LE).
    pub fn on_binary(&mut self, audio: &[u8], out: &mut Vec<u8>) -> Result<(), HookError> {
        let media = match (&self.state, &self.media) {
            (State::Open, Some(media)) => media,
            (State::Closed, _) => {
                return Err(HookError::AfterClose {
                    kind: "audio".into(),
                });
            }
            _ => return Err(HookError::AudioBeforeOpen),
        };
        let frame_bytes = media.frame_bytes();
        if !audio.len().is_multiple_of(frame_bytes) {
            return Err(HookError::FrameSize {
                bytes: audio.len(),
                frame_bytes,
            });
        }
        self.frames += 1;
        if media.channels.len() == 2 {
            out.extend_from_slice(audio);
        } else {
            let bps = media.bytes_per_sample();
            let silence = if media.format == Format::Pcmu {
                &[0xFFu8][..]
            } else {
                &[0, 0][..]
            };
            let mono_is_agent = media.channels[0] == Party::Internal;
            for s in audio.chunks_exact(bps) {
                if mono_is_agent {
                    out.extend_from_slice(silence);
                    out.extend_from_slice(s);
                } else {
                    out.extend_from_slice(s);
                    out.extend_from_slice(silence);
                }
            }
        }
        Ok(())
    }

    /// The encoding of the stereo output.
    pub fn encoding(&self) -> Encoding {
        match self.media.as_ref().map(|m| m.format) {
            Some(Format::L16) => Encoding::Pcm16le,
            _ => Encoding::Mulaw,
        }
    }
}

/// Picks the first offer Attune can analyse (stereo preferred over mono).
fn choose_media(offered: &[Value]) -> Result<Media, HookError> {
    let mut candidates = Vec::new();
    for offer in offered {
        let format = match offer.get("format").and_then(Value::as_str) {
            Some("PCMU") => Format::Pcmu,
            Some("L16") => Format::L16,
            _ => continue,
        };
        if offer.get("rate").and_then(Value::as_u64) != Some(u64::from(SAMPLE_RATE_HZ)) {
            continue;
        }
        let Some(names) = offer.get("channels").and_then(Value::as_array) else {
            continue;
        };
        let channels: Option<Vec<Party>> = names
            .iter()
            .map(|n| match n.as_str() {
                Some("external") => Some(Party::External),
                Some("internal") => Some(Party::Internal),
                _ => None,
            })
            .collect();
        let Some(channels) = channels else { continue };
        let valid = match channels.as_slice() {
            [_] => true,
            [a, b] => a != b,
            _ => false,
        };
        if valid {
            candidates.push(Media { format, channels });
        }
    }
    candidates.sort_by_key(|m| std::cmp::Reverse(m.channels.len()));
    candidates.into_iter().next().ok_or_else(|| {
        let shown = Value::Array(offered.to_vec()).to_string();
        HookError::NoMedia(shown.chars().take(200).collect())
    })
}

/// Seconds of an ISO 8601 duration of the forms AudioHook uses (`PT1.25S`, `PT2M3S`, `PT1H`).
pub fn parse_duration_s(text: &str) -> Option<f64> {
    let rest = text.strip_prefix("PT")?;
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let v: f64 = number.parse().ok()?;
                number.clear();
                total += v * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    (number.is_empty() && total.is_finite()).then_some(total)
}

/// Why an upgrade was refused (HTTP 401 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no X-API-KEY header")]
    NoApiKey,
    #[error("unknown API key")]
    UnknownKey,
    #[error("no Signature-Input or Signature header")]
    NoSignature,
    #[error("malformed Signature-Input: {0}")]
    Malformed(String),
    #[error("signature does not cover {0}")]
    NotCovered(&'static str),
    #[error("signature keyid {0:?} is not the X-API-KEY")]
    KeyId(String),
    #[error("unsupported signature algorithm {0:?} (expected hmac-sha256)")]
    Algorithm(String),
    #[error("signature expired or not yet valid (created {created}, expires {expires}, now {now})")]
    Expired {
        created: i64,
        expires: i64,
        now: i64,
    },
    #[error("signature has no nonce")]
    NoNonce,
    #[error("nonce already used")]
    Replayed,
    #[error("signature does not match")]
    Mismatch,
}

/// A parsed `Signature-Input` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInput {
    pub label: String,
    pub components: Vec<String>,
    /// The member's value as sent (`("…" …);keyid=…`): the `@signature-params` line.
    pub params_text: String,
    pub keyid: Option<String>,
    pub alg: Option<String>,
    pub nonce: Option<String>,
    pub created: Option<i64>,
    pub expires: Option<i64>,
}

/// Parses the first member of a `Signature-Input` header.
pub fn parse_signature_input(header: &str) -> Result<SignatureInput, AuthError> {
    let bad = |why: &str| AuthError::Malformed(why.to_owned());
    let (label, value) = header.split_once('=').ok_or_else(|| bad("no label"))?;
    let value = value.trim();
    let inner = value
        .strip_prefix('(')
        .ok_or_else(|| bad("no component list"))?;
    let close = inner
        .find(')')
        .ok_or_else(|| bad("unclosed component list"))?;
    let components = inner[..close]
        .split_whitespace()
        .map(|c| {
            c.strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| bad("unquoted component"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut input = SignatureInput {
        label: label.trim().to_owned(),
        components,
        params_text: value.to_owned(),
        keyid: None,
        alg: None,
        nonce: None,
        created: None,
        expires: None,
    };
    // A second member (after a comma) is ignored.
    let after_list = close + 2;
    let tail = &value[after_list..];
    let tail_end = tail.find(',').unwrap_or(tail.len());
    input.params_text = value[..after_list + tail_end].to_owned();
    let params = &tail[..tail_end];
    for param in params.split(';').filter(|p| !p.trim().is_empty()) {
        let (k, v) = param
            .split_once('=')
            .ok_or_else(|| bad("parameter without value"))?;
        let text = v.trim().trim_matches('"').to_owned();
        match k.trim() {
            "keyid" => input.keyid = Some(text),
            "alg" => input.alg = Some(text),
            "nonce" => input.nonce = Some(text),
            "created" => input.created = Some(text.parse().map_err(|_| bad("created"))?),
            "expires" => input.expires = Some(text.parse().map_err(|_| bad("expires"))?),
            _ => {}
        }
    }
    Ok(input)
}

/// The RFC 9421 signature base of `input` for a request.
pub fn signature_base(
    input: &SignatureInput,
    request_target: &str,
    authority: &str,
    headers: &HeaderMap,
) -> Result<String, AuthError> {
    let mut base = String::new();
    for component in &input.components {
        let value = match component.as_str() {
            "@request-target" | "@path" => request_target.to_owned(),
            "@authority" => authority.to_ascii_lowercase(),
            "@method" => "GET".to_owned(),
            name if name.starts_with('@') => {
                return Err(AuthError::Malformed(format!(
                    "unsupported component {name}"
                )));
            }
            name => headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| AuthError::Malformed(format!("covered header {name} is missing")))?,
        };
        base.push_str(&format!("\"{component}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {}", input.params_text));
    Ok(base)
}

/// HMAC-SHA256 of `base` keyed with `secret`, base64.
pub fn sign(secret: &[u8], base: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Recently seen nonces (bounded: the oldest are forgotten first).
#[derive(Debug, Default)]
pub struct NonceCache {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl NonceCache {
    const CAPACITY: usize = 100_000;

    /// Records `nonce`; false if it was seen before.
    pub fn insert(&self, nonce: &str) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *guard;
        if !set.insert(nonce.to_owned()) {
            return false;
        }
        order.push_back(nonce.to_owned());
        if order.len() > Self::CAPACITY
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }
}

/// Checks an upgrade's API key and signature against `keys` (API key, decoded secret).
pub fn verify_request(
    keys: &[(String, Vec<u8>)],
    request_target: &str,
    authority: &str,
    headers: &HeaderMap,
    now_unix_s: i64,
    nonces: &NonceCache,
) -> Result<(), AuthError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let api_key = header("x-api-key").ok_or(AuthError::NoApiKey)?;
    let secret = keys
        .iter()
        .find(|(k, _)| constant_time_eq(k.as_bytes(), api_key.as_bytes()))
        .map(|(_, s)| s)
        .ok_or(AuthError::UnknownKey)?;
    let (Some(input), Some(signature)) = (header("signature-input"), header("signature")) else {
        return Err(AuthError::NoSignature);
    };
    let input = parse_signature_input(input)?;
    for required in [
        "@request-target",
        "@authority",
        "audiohook-organization-id",
        "audiohook-session-id",
        "audiohook-correlation-id",
        "x-api-key",
    ] {
        if !input.components.iter().any(|c| c == required) {
            return Err(AuthError::NotCovered(required));
        }
    }
    if input.keyid.as_deref() != Some(api_key) {
        return Err(AuthError::KeyId(input.keyid.unwrap_or_default()));
    }
    if let Some(alg) = &input.alg
        && alg != "hmac-sha256"
    {
        return Err(AuthError::Algorithm(alg.clone()));
    }
    let created = input.created.unwrap_or(i64::MIN);
    let expires = input.expires.unwrap_or(created.saturating_add(300));
    // Clocks may differ a little.
    let skew = 60;
    if created == i64::MIN || created > now_unix_s + skew || expires < now_unix_s - skew {
        return Err(AuthError::Expired {
            created,
            expires,
            now: now_unix_s,
        });
    }
    let nonce = input.nonce.as_deref().ok_or(AuthError::NoNonce)?;
    let base = signature_base(&input, request_target, authority, headers)?;
    let expected = sign(secret, &base);
    // `label=:base64:`, possibly among other members.
    let given = signature
        .split(',')
        .map(str::trim)
        .find_map(|m| m.strip_prefix(&format!("{}=", input.label)))
        .and_then(|v| v.strip_prefix(':'))
        .and_then(|v| v.strip_suffix(':'))
        .ok_or(AuthError::Mismatch)?;
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(AuthError::Mismatch);
    }
    if !nonces.insert(nonce) {
        return Err(AuthError::Replayed);
    }
    Ok(())
}

fn now_unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

static NONCES: std::sync::LazyLock<NonceCache> = std::sync::LazyLock::new(NonceCache::default);

/// The `/ingest/audiohook` upgrade: authenticates (HTTP 401 with the reason on failure), then
/// runs the session.
pub(crate) async fn upgrade(
    Shared(state): Shared<WsState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    peer: super::Peer,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = super::peer_ip(&peer);
    let counters = &state.shared.metrics.telephony.audiohook;
    if state.config.audiohook_keys.is_empty() && state.config.require_signatures {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::UNAUTHORIZED,
            "audiohook: this server takes no unsigned AudioHook sessions and has no API key\n",
        )
            .into_response();
    }
    if !state.config.audiohook_keys.is_empty() {
        let target = uri
            .path_and_query()
            .map_or("/ingest/audiohook", |p| p.as_str());
        let authority = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Err(e) = verify_request(
            &state.config.audiohook_keys,
            target,
            authority,
            &headers,
            now_unix_s(),
            &NONCES,
        ) {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::UNAUTHORIZED, format!("audiohook: {e}\n")).into_response();
        }
    }
    // With accounts or tokens in the store, X-API-KEY is also the Attune ingest token.
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_owned());
    let limit = state.config.max_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| run(socket, state, peer, api_key))
}

struct Ending {
    reason: &'static str,
    close: Option<(u16, String)>,
}

async fn run(
    mut socket: WebSocket,
    state: WsState,
    peer: Option<std::net::IpAddr>,
    api_key: Option<String>,
) {
    let WsState { shared, config } = state;
    let counters = &shared.metrics.telephony.audiohook;
    let _active = ActiveGuard::new(counters);
    let mut session = HookSession::new();
    let mut out = Vec::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + config.start_timeout;
    // Until `open`.
    let open = loop {
        let msg = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Err(_) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                let text = session.disconnect("error", "no open message in time");
                let _ = socket.send(Message::Text(text.into())).await;
                close(socket, 1008, "no open in time").await;
                return;
            }
            Ok(None | Some(Err(_))) => return,
            Ok(Some(Ok(msg))) => msg,
        };
        let result = match msg {
            Message::Text(text) => session.on_text(text.as_str(), &mut out),
            Message::Binary(_) => Err(HookError::AudioBeforeOpen),
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        match result {
            Ok(outcome) => {
                if let Some(reply) = outcome.reply {
                    let _ = socket.send(Message::Text(reply.into())).await;
                }
                match outcome.event {
                    Event::Opened(open) => break Some(open),
                    Event::Probe => break None,
                    _ => {}
                }
            }
            Err(e) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                let text = session.disconnect("error", &e.to_string());
                let _ = socket.send(Message::Text(text.into())).await;
                close(socket, e.close_code(), &e.to_string()).await;
                return;
            }
        }
    };
    let mut live = match open {
        None => None,
        Some(open) => {
            let call_id = open.call_id.clone();
            let spec = stereo_spec(
                open.call_id,
                open.agent_id,
                open.team,
                SAMPLE_RATE_HZ,
                session.encoding(),
                open.media.agent_channel(),
            );
            let started = match super::identify(
                &shared,
                api_key,
                "set the AudioHook integration's API key (X-API-KEY) to an Attune ingest token",
            )
            .await
            {
                Ok(who) => LiveCall::start(shared.clone(), spec, peer, &who).await,
                Err(e) => Err(e),
            };
            match started {
                Ok(live) => Some(live),
                Err(e) => {
                    super::note_refused(counters, "audiohook", &call_id, &e);
                    let text = session.disconnect("error", &e.to_string());
                    let _ = socket.send(Message::Text(text.into())).await;
                    close(socket, 1008, &e.to_string()).await;
                    return;
                }
            }
        }
    };
    let frame_bytes = 2 * session.encoding().bytes_per_sample();
    let batch_bytes = SAMPLE_RATE_HZ as usize * BATCH_MS / 1000 * frame_bytes;
    let mut shutdown = shared.shutdown.clone();
    let idle = config.no_media_timeout;
    let mut last_activity = tokio::time::Instant::now();
    let ending = loop {
        let msg = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => None,
            // A paused session sends no audio (pings keep it alive); otherwise its audio must
            // keep up with wall time (the trickle-proof idle rule).
            msg = tokio::time::timeout_at(
                match live.as_ref().filter(|_| !session.paused) {
                    Some(live) => (last_activity + idle).min(live.idle_deadline()),
                    None => last_activity + idle,
                },
                socket.recv(),
            ) => Some(msg),
        };
        let Some(msg) = msg else {
            let text = session.disconnect("error", "the server is shutting down");
            let _ = socket.send(Message::Text(text.into())).await;
            break Ending {
                reason: "shutdown",
                close: Some((1001, "the server is shutting down".into())),
            };
        };
        let msg = match msg {
            Err(_) => {
                let lagging = live
                    .as_ref()
                    .filter(|_| !session.paused)
                    .and_then(LiveCall::lagging);
                if let Some(why) = lagging {
                    let text = session.disconnect("error", &why);
                    let _ = socket.send(Message::Text(text.into())).await;
                    break Ending {
                        reason: "timeout",
                        close: Some((1008, why)),
                    };
                }
                let info = format!("no message for {:.1} s", idle.as_secs_f64());
                let text = session.disconnect("error", &info);
                let _ = socket.send(Message::Text(text.into())).await;
                break Ending {
                    reason: "timeout",
                    close: Some((1008, info)),
                };
            }
            Ok(None | Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                break Ending {
                    reason: "disconnected",
                    close: None,
                };
            }
            Ok(Some(Ok(msg))) => msg,
        };
        // Pings keep a paused session alive; audio and control messages too.
        last_activity = tokio::time::Instant::now();
        if let Some(live) = live.as_mut() {
            live.message().await;
        }
        let result = match msg {
            Message::Text(text) => session.on_text(text.as_str(), &mut out),
            Message::Binary(audio) => session.on_binary(&audio, &mut out).map(|()| Outcome {
                reply: None,
                event: Event::Nothing,
            }),
            _ => continue,
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                let text = session.disconnect("error", &e.to_string());
                let _ = socket.send(Message::Text(text.into())).await;
                break Ending {
                    reason: "error",
                    close: Some((e.close_code(), e.to_string())),
                };
            }
        };
        if let Some(reply) = outcome.reply {
            let _ = socket.send(Message::Text(reply.into())).await;
        }
        let closed = outcome.event == Event::Closed;
        if let Some(live) = live.as_mut()
            && (closed || out.len() >= batch_bytes)
        {
            if let Err(e) = push_all(live, std::mem::take(&mut out), frame_bytes).await {
                break Ending {
                    reason: "error",
                    close: Some((1011, e.to_string())),
                };
            }
        } else if live.is_none() {
            out.clear();
        }
        if closed {
            break Ending {
                reason: "ended",
                close: Some((1000, "session closed".into())),
            };
        }
    };
    counters.frames.fetch_add(session.frames, Ordering::Relaxed);
    counters
        .silence_filled_samples
        .fetch_add(session.silence_filled, Ordering::Relaxed);
    if matches!(ending.reason, "error" | "timeout") {
        counters.refused.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(mut live) = live {
        if ending.reason != "error" {
            let _ = push_all(&mut live, std::mem::take(&mut out), frame_bytes).await;
        }
        live.end(ending.reason).await;
    }
    if let Some((code, reason)) = ending.close {
        close(socket, code, &reason).await;
    }
}

async fn push_all(
    live: &mut LiveCall,
    audio: Vec<u8>,
    frame_bytes: usize,
) -> Result<(), super::PushError> {
    for chunk in split_frames(audio, frame_bytes, SAMPLE_RATE_HZ as usize) {
        live.push(chunk).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_msg(conversation: &str, media: &str) -> String {
        format!(
            r#"{{"version":"2","type":"open","seq":1,"serverseq":0,"id":"e160e428-53e2-487c-977d-96989bf5c99d","position":"PT0S","parameters":{{"organizationId":"d7934305-0972-4844-938e-9060eef73d05","conversationId":"{conversation}","participant":{{"id":"883efee8-3d6c-4537-b500-6d7ca4b92fa0","ani":"+1-555-555-1234","aniName":"John Doe","dnis":"+1-800-555-6789"}},"media":{media},"language":"en-US","customConfig":{{"agentId":"alice"}}}}}}"#
        )
    }

    const STEREO: &str = r#"[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000},{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}]"#;

    fn msg(kind: &str, seq: u64, params: &str) -> String {
        format!(
            r#"{{"version":"2","type":"{kind}","seq":{seq},"serverseq":1,"id":"e160e428-53e2-487c-977d-96989bf5c99d","position":"PT1S","parameters":{params}}}"#
        )
    }

    #[test]
    fn a_session_opens_streams_pings_and_closes() {
        let mut s = HookSession::new();
        let mut out = Vec::new();
        let o = s.on_text(&open_msg("c-1", STEREO), &mut out).unwrap();
        let Event::Opened(open) = &o.event else {
            panic!("{o:?}")
        };
        assert_eq!(open.call_id, "c-1");
        assert_eq!(open.agent_id, "alice");
        assert_eq!(open.team, "d7934305-0972-4844-938e-9060eef73d05");
        assert_eq!(open.media.agent_channel(), 1);
        let reply: Value = serde_json::from_str(o.reply.as_deref().unwrap()).unwrap();
        assert_eq!(reply["type"], "opened");
        assert_eq!(reply["clientseq"], 1);
        assert_eq!(reply["parameters"]["media"][0]["channels"][1], "internal");
        s.on_binary(&[1, 2, 1, 2], &mut out).unwrap();
        assert_eq!(out, [1, 2, 1, 2]);
        let o = s.on_text(&msg("ping", 2, "{}"), &mut out).unwrap();
        let reply: Value = serde_json::from_str(o.reply.as_deref().unwrap()).unwrap();
        assert_eq!(
            (reply["type"].as_str(), reply["seq"].as_u64()),
            (Some("pong"), Some(2))
        );
        out.clear();
        s.on_text(
            &msg("discarded", 3, r#"{"start":"PT1S","discarded":"PT0.001S"}"#),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, vec![0xFF; 16], "8 samples of silence on both channels");
        let o = s
            .on_text(&msg("close", 4, r#"{"reason":"end"}"#), &mut out)
            .unwrap();
        assert_eq!(o.event, Event::Closed);
        assert!(o.reply.unwrap().contains("\"closed\""));
        assert!(matches!(
            s.on_binary(&[1, 2], &mut out),
            Err(HookError::AfterClose { .. })
        ));
    }

    #[test]
    fn refusals_name_the_fault() {
        let mut out = Vec::new();
        let mut s = HookSession::new();
        assert!(matches!(
            s.on_text(&msg("ping", 1, "{}"), &mut out),
            Err(HookError::BeforeOpen { .. })
        ));
        let mut s = HookSession::new();
        assert_eq!(
            s.on_binary(&[0; 4], &mut out),
            Err(HookError::AudioBeforeOpen)
        );
        let opus = r#"[{"type":"audio","format":"opus","channels":["external"],"rate":48000}]"#;
        let e = s.on_text(&open_msg("c", opus), &mut out).unwrap_err();
        assert_eq!(e.close_code(), 1003);
        let mut s = HookSession::new();
        s.on_text(&open_msg("c", STEREO), &mut out).unwrap();
        assert_eq!(
            s.on_text(&msg("ping", 5, "{}"), &mut out),
            Err(HookError::Sequence {
                got: 5,
                expected: 2
            })
        );
        let mut s = HookSession::new();
        s.on_text(&open_msg("c", STEREO), &mut out).unwrap();
        assert!(matches!(
            s.on_binary(&[0; 3], &mut out),
            Err(HookError::FrameSize { bytes: 3, .. })
        ));
        assert!(s.on_text("][", &mut out).is_err());
        let mut s = HookSession::new();
        s.on_text(&open_msg("c", STEREO), &mut out).unwrap();
        assert!(matches!(
            s.on_text(
                &msg("discarded", 2, r#"{"discarded":"PT99999S"}"#),
                &mut out
            ),
            Err(HookError::Duration(_))
        ));
        let d: Value = serde_json::from_str(&s.disconnect("error", "why")).unwrap();
        assert_eq!(d["type"], "disconnect");
        assert_eq!(d["parameters"]["info"], "why");
    }

    #[test]
    fn the_probe_opens_without_a_call_and_mono_gets_a_silent_agent() {
        let mut out = Vec::new();
        let mut s = HookSession::new();
        let o = s
            .on_text(&open_msg(PROBE_CONVERSATION, STEREO), &mut out)
            .unwrap();
        assert_eq!(o.event, Event::Probe);
        let mono = r#"[{"type":"audio","format":"L16","channels":["external"],"rate":8000}]"#;
        let mut s = HookSession::new();
        s.on_text(&open_msg("c", mono), &mut out).unwrap();
        assert_eq!(s.encoding(), Encoding::Pcm16le);
        s.on_binary(&[1, 2, 3, 4], &mut out).unwrap();
        assert_eq!(out, [1, 2, 0, 0, 3, 4, 0, 0]);
        assert_eq!(parse_duration_s("PT1M2.5S"), Some(62.5));
        assert_eq!(parse_duration_s("1S"), None);
    }

    #[test]
    fn http_message_signatures_are_verified() {
        let secret = b"TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=";
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .unwrap();
        let keys = vec![(
            "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh".to_owned(),
            secret.clone(),
        )];
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("host", "audiohook.example.com"),
            (
                "audiohook-organization-id",
                "d7934305-0972-4844-938e-9060eef73d05",
            ),
            (
                "audiohook-correlation-id",
                "e160e428-53e2-487c-977d-96989bf5c99d",
            ),
            (
                "audiohook-session-id",
                "30b0e395-84d3-4570-ac13-9a62d8f514c0",
            ),
            ("x-api-key", "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"),
        ] {
            headers.insert(k, v.parse().unwrap());
        }
        let input_text = r#"sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430"#;
        headers.insert("signature-input", input_text.parse().unwrap());
        let input = parse_signature_input(input_text).unwrap();
        assert_eq!(input.components.len(), 6);
        assert!(input.params_text.starts_with("(\"@request-target\""));
        let base = signature_base(
            &input,
            "/api/v1/audiohook/ws",
            "audiohook.example.com",
            &headers,
        )
        .unwrap();
        assert!(base.starts_with(
            "\"@request-target\": /api/v1/audiohook/ws\n\"@authority\": audiohook.example.com\n"
        ));
        assert!(base.ends_with("expires=3282026430"));
        let sig = sign(&secret, &base);
        headers.insert("signature", format!("sig1=:{sig}:").parse().unwrap());
        let nonces = NonceCache::default();
        let verify = |h: &HeaderMap, now| {
            verify_request(
                &keys,
                "/api/v1/audiohook/ws",
                "audiohook.example.com",
                h,
                now,
                &nonces,
            )
        };
        assert_eq!(verify(&headers, 1641013200), Ok(()));
        assert_eq!(verify(&headers, 1641013200), Err(AuthError::Replayed));
        assert!(matches!(
            verify(&headers, 1000),
            Err(AuthError::Expired { .. })
        ));
        let mut tampered = headers.clone();
        tampered.insert("audiohook-session-id", "other".parse().unwrap());
        assert_eq!(verify(&tampered, 1641013200), Err(AuthError::Mismatch));
        let mut wrong_key = headers.clone();
        wrong_key.insert("x-api-key", "nope".parse().unwrap());
        assert_eq!(verify(&wrong_key, 1641013200), Err(AuthError::UnknownKey));
        let mut bare = headers.clone();
        bare.remove("signature");
        assert_eq!(verify(&bare, 1641013200), Err(AuthError::NoSignature));
    }
}
