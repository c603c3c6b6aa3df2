//! Clients of the three telephony protocols: they play a two-party recording (8 kHz) the way
//! the platform would, paced in real time (or faster). `attune replay --protocol …` and the
//! tests use them to try a setup before a platform is pointed at it.
//!
//! - Twilio: `connected`, `start` (both tracks, custom parameters), 20 ms `media` frames per
//!   track (base64 mu-law, string timestamps), `stop`; `X-Twilio-Signature` when given a token.
//! - AudioHook: `open` (PCMU stereo external/internal), waits for `opened`, 20 ms binary frames,
//!   `ping` every 5 s, `close`, waits for `closed`; signed like Genesys when given a key.
//! - AudioSocket: two TCP legs (caller UUID even, agent odd), UUID, 20 ms slin frames, hangup.

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use attune_core::audio::g711;

use super::audiosocket::{KIND_HANGUP, KIND_SLIN_8K, KIND_UUID, encode_frame};

/// Samples of one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// A call to play: both parties at 8 kHz (samples in -1..=1).
#[derive(Debug, Clone)]
pub struct StereoCall {
    pub call_id: String,
    pub agent_id: String,
    pub team: String,
    pub caller: Vec<f32>,
    pub agent: Vec<f32>,
}

impl StereoCall {
    fn frames(&self) -> usize {
        self.caller
            .len()
            .min(self.agent.len())
            .div_ceil(FRAME_SAMPLES)
    }

    fn frame(track: &[f32], i: usize) -> &[f32] {
        let start = (i * FRAME_SAMPLES).min(track.len());
        &track[start..((i + 1) * FRAME_SAMPLES).min(track.len())]
    }
}

/// What one streamed call saw.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    pub frames_sent: u64,
    /// Frames sent more than one frame (20 ms) after their time.
    pub frames_late: u64,
    /// How late each frame was sent, ms (for percentiles).
    pub send_lag_ms: Vec<f64>,
    /// The server's close frame (code, reason), if any.
    pub close: Option<(u16, String)>,
    pub wall_s: f64,
    /// When frame 0 was due (the pacing origin), to time events against the frames sent.
    pub started_at: Option<std::time::Instant>,
    /// Wall time between frames, seconds (20 ms at real time).
    pub frame_interval_s: f64,
}

impl ClientReport {
    /// When frame `i` (20 ms of audio from `i × 20 ms`) was sent, if it was.
    pub fn frame_sent_at(&self, i: usize) -> Option<std::time::Instant> {
        let lag_ms = *self.send_lag_ms.get(i)?;
        let due = self.started_at? + Duration::from_secs_f64(self.frame_interval_s * i as f64);
        Some(due + Duration::from_secs_f64(lag_ms / 1e3))
    }
}

/// A client failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("tcp: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

fn to_i16(v: f32) -> i16 {
    (v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

fn mulaw(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .map(|&v| g711::encode_mulaw(to_i16(v)))
        .collect()
}

/// Paces frame `i` at `start + i × 20 ms / speed`; records lag.
struct Pacer {
    start: tokio::time::Instant,
    frame: Duration,
    report: ClientReport,
}

impl Pacer {
    fn new(speed: f64) -> Self {
        let frame = Duration::from_secs_f64(0.020 / speed.max(1e-3));
        Self {
            start: tokio::time::Instant::now(),
            frame,
            report: ClientReport {
                started_at: Some(std::time::Instant::now()),
                frame_interval_s: frame.as_secs_f64(),
                ..ClientReport::default()
            },
        }
    }

    async fn wait(&mut self, i: usize) {
        let due = self.start + self.frame * i as u32;
        tokio::time::sleep_until(due).await;
        let lag = tokio::time::Instant::now().saturating_duration_since(due);
        self.report.send_lag_ms.push(lag.as_secs_f64() * 1e3);
        if lag > self.frame {
            self.report.frames_late += 1;
        }
        self.report.frames_sent += 1;
    }

    fn finish(mut self) -> ClientReport {
        self.report.wall_s = self.start.elapsed().as_secs_f64();
        self.report
    }
}

fn ws_url(server: &str, path: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = base
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .unwrap_or_else(|| base.to_owned());
    if base.ends_with(path) {
        base
    } else {
        format!("{base}{path}")
    }
}

fn close_of(msg: &Message) -> Option<(u16, String)> {
    match msg {
        Message::Close(Some(frame)) => Some((u16::from(frame.code), frame.reason.to_string())),
        Message::Close(None) => Some((1005, String::new())),
        _ => None,
    }
}

/// Streams `call` as a Twilio Media Streams fork with both tracks to `server`
/// (`ws://host:port`, `/ingest/twilio` appended). With `auth_token`, the upgrade is signed as
/// Twilio signs it (the URL as given, or `signed_url` when the server sits behind a proxy).
pub async fn stream_twilio(
    server: &str,
    call: &StereoCall,
    speed: f64,
    auth_token: Option<&str>,
) -> Result<ClientReport, ClientError> {
    stream_twilio_as(server, call, speed, auth_token, None).await
}

/// As [`stream_twilio`], with an Attune ingest token as the `attune_token` custom parameter.
pub async fn stream_twilio_as(
    server: &str,
    call: &StereoCall,
    speed: f64,
    auth_token: Option<&str>,
    attune_token: Option<&str>,
) -> Result<ClientReport, ClientError> {
    let url = ws_url(server, "/ingest/twilio");
    let mut custom = json!({"agent_id": call.agent_id, "team": call.team});
    if let Some(token) = attune_token {
        custom["attune_token"] = json!(token);
    }
    let mut request = url.as_str().into_client_request()?;
    if let Some(token) = auth_token {
        let signed = url.replacen("ws://", "wss://", 1);
        let signature = super::twilio::signature(token, &signed, &[]);
        request.headers_mut().insert(
            "x-twilio-signature",
            signature
                .parse()
                .map_err(|_| ClientError::Protocol("signature".into()))?,
        );
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let sid = format!("MZ{:032x}", fxhash(&call.call_id));
    ws.send(Message::text(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
    ))
    .await?;
    ws.send(Message::text(
        json!({"event": "start", "sequenceNumber": "1", "streamSid": sid,
            "start": {"accountSid": "AC0", "streamSid": sid, "callSid": call.call_id,
                "tracks": ["inbound", "outbound"],
                "customParameters": custom,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        .to_string(),
    ))
    .await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pacer = Pacer::new(speed);
    let mut seq = 2u64;
    let mut close = None;
    for i in 0..call.frames() {
        pacer.wait(i).await;
        for (track, samples) in [("inbound", &call.caller), ("outbound", &call.agent)] {
            let payload = b64.encode(mulaw(StereoCall::frame(samples, i)));
            let msg = json!({"event": "media", "sequenceNumber": seq.to_string(), "streamSid": sid,
                "media": {"track": track, "chunk": (i + 1).to_string(),
                    "timestamp": (i * 20).to_string(), "payload": payload}});
            seq += 1;
            if let Err(e) = ws.send(Message::text(msg.to_string())).await {
                close = Some((1006, e.to_string()));
                break;
            }
        }
        if close.is_some() {
            break;
        }
    }
    if close.is_none() {
        ws.send(Message::text(
            json!({"event": "stop", "sequenceNumber": seq.to_string(), "streamSid": sid,
                "stop": {"accountSid": "AC0", "callSid": call.call_id}})
            .to_string(),
        ))
        .await?;
    }
    while let Some(Ok(msg)) = ws.next().await {
        if let Some(c) = close_of(&msg) {
            close = Some(c);
            break;
        }
    }
    let mut report = pacer.finish();
    report.close = close;
    Ok(report)
}

fn fxhash(s: &str) -> u128 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u128, |h, b| {
        (h ^ u128::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Streams `call` as a Genesys AudioHook client (PCMU, external = caller, internal = agent).
/// With `key` (API key, decoded client secret) the upgrade carries X-API-KEY and an HTTP
/// message signature as Genesys sends them.
pub async fn stream_audiohook(
    server: &str,
    call: &StereoCall,
    speed: f64,
    key: Option<(&str, &[u8])>,
) -> Result<ClientReport, ClientError> {
    let url = ws_url(server, "/ingest/audiohook");
    let mut request = url.as_str().into_client_request()?;
    let session_id = format!("{:032x}", fxhash(&format!("s-{}", call.call_id)));
    let org = "d7934305-0972-4844-938e-9060eef73d05";
    {
        let h = request.headers_mut();
        let put = |h: &mut axum::http::HeaderMap, k: &'static str, v: &str| {
            if let Ok(v) = v.parse() {
                h.insert(k, v);
            }
        };
        put(h, "audiohook-organization-id", org);
        put(h, "audiohook-session-id", &session_id);
        put(h, "audiohook-correlation-id", &session_id);
        if let Some((api_key, secret)) = key {
            put(h, "x-api-key", api_key);
            let uri: axum::http::Uri = url
                .parse()
                .map_err(|_| ClientError::Protocol(format!("bad URL {url}")))?;
            let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let authority = uri.authority().map_or("", |a| a.as_str()).to_owned();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // A fresh nonce for every upgrade (the server refuses one seen before): two
            // sessions of the same call within one second must not share it.
            static UPGRADES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let upgrade = UPGRADES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let now_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let nonce = format!(
                "{:032x}",
                fxhash(&format!(
                    "{session_id}{now_ns}-{}-{upgrade}",
                    std::process::id()
                ))
            );
            let params = format!(
                "(\"@request-target\" \"@authority\" \"audiohook-organization-id\" \"audiohook-session-id\" \"audiohook-correlation-id\" \"x-api-key\");keyid=\"{api_key}\";nonce=\"{nonce}\";alg=\"hmac-sha256\";created={now};expires={}",
                now + 300
            );
            let input = super::audiohook::parse_signature_input(&format!("sig1={params}"))
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let base = super::audiohook::signature_base(&input, &target, &authority, h)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let signature = super::audiohook::sign(secret, &base);
            put(h, "signature-input", &format!("sig1={params}"));
            put(h, "signature", &format!("sig1=:{signature}:"));
        }
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let mut seq = 1u64;
    let mut message = |kind: &str, parameters: serde_json::Value, position_s: f64| {
        let m = json!({"version": "2", "type": kind, "seq": seq, "serverseq": 0, "id": session_id,
            "position": format!("PT{position_s:.2}S"), "parameters": parameters});
        seq += 1;
        Message::text(m.to_string())
    };
    ws.send(message(
        "open",
        json!({"organizationId": org, "conversationId": call.call_id,
            "participant": {"id": "p-1", "ani": "+15555550100", "aniName": "Caller", "dnis": "+18005550100"},
            "media": [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}],
            "language": "en-US", "customConfig": {"agentId": call.agent_id, "team": call.team}}),
        0.0,
    ))
    .await?;
    // `opened` (or a refusal).
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let v: serde_json::Value = serde_json::from_str(text.as_str())
                    .map_err(|e| ClientError::Protocol(format!("bad reply: {e}")))?;
                match v["type"].as_str() {
                    Some("opened") => break,
                    Some("disconnect") => {
                        return Err(ClientError::Protocol(format!(
                            "refused: {}",
                            v["parameters"]["info"]
                        )));
                    }
                    _ => {}
                }
            }
            Some(Ok(msg)) => {
                if let Some(c) = close_of(&msg) {
                    return Err(ClientError::Protocol(format!(
                        "closed before opened: {c:?}"
                    )));
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(ClientError::Protocol("closed before opened".into())),
        }
    }
    let mut pacer = Pacer::new(speed);
    let mut close = None;
    let mut pongs = 0u64;
    let mut frame = Vec::with_capacity(2 * FRAME_SAMPLES);
    for i in 0..call.frames() {
        pacer.wait(i).await;
        frame.clear();
        let (c, a) = (
            StereoCall::frame(&call.caller, i),
            StereoCall::frame(&call.agent, i),
        );
        for (x, y) in c.iter().zip(a) {
            frame.push(g711::encode_mulaw(to_i16(*x)));
            frame.push(g711::encode_mulaw(to_i16(*y)));
        }
        if let Err(e) = ws.send(Message::binary(frame.clone())).await {
            close = Some((1006, e.to_string()));
            break;
        }
        if i % 250 == 249 {
            ws.send(message("ping", json!({}), i as f64 * 0.02)).await?;
        }
        // Read replies (pongs, a disconnect) without waiting.
        while let Some(Some(Ok(msg))) = futures_util::FutureExt::now_or_never(ws.next()) {
            if let Message::Text(t) = &msg {
                pongs += u64::from(t.as_str().contains("\"pong\""));
            }
            if let Some(c) = close_of(&msg) {
                close = Some(c);
            }
        }
        if close.is_some() {
            break;
        }
    }
    let _ = pongs;
    if close.is_none() {
        let position = call.frames() as f64 * 0.02;
        ws.send(message("close", json!({"reason": "end"}), position))
            .await?;
        while let Some(Ok(msg)) = ws.next().await {
            if let Some(c) = close_of(&msg) {
                close = Some(c);
                break;
            }
        }
    }
    let mut report = pacer.finish();
    report.close = close;
    Ok(report)
}

/// Streams `call` as two Asterisk AudioSocket legs to `addr` (`host:port`): the caller with
/// `uuid` (lowest bit cleared), the agent with the lowest bit set.
pub async fn stream_audiosocket(
    addr: &str,
    call: &StereoCall,
    speed: f64,
    uuid: [u8; 16],
) -> Result<ClientReport, ClientError> {
    let addr = addr
        .trim_start_matches("tcp://")
        .trim_start_matches("http://")
        .to_owned();
    let mut legs = Vec::new();
    for party in 0..2u8 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await?;
        stream.set_nodelay(true)?;
        let mut id = uuid;
        id[15] = (id[15] & !1) | party;
        let mut out = Vec::new();
        encode_frame(KIND_UUID, &id, &mut out);
        stream.write_all(&out).await?;
        legs.push(stream);
    }
    let mut pacer = Pacer::new(speed);
    let mut pcm = Vec::with_capacity(2 * FRAME_SAMPLES);
    let mut out = Vec::with_capacity(4 + 2 * FRAME_SAMPLES);
    for i in 0..call.frames() {
        pacer.wait(i).await;
        for (leg, samples) in legs.iter_mut().zip([&call.caller, &call.agent]) {
            pcm.clear();
            for v in StereoCall::frame(samples, i) {
                pcm.extend_from_slice(&to_i16(*v).to_le_bytes());
            }
            out.clear();
            encode_frame(KIND_SLIN_8K, &pcm, &mut out);
            leg.write_all(&out).await?;
        }
    }
    for leg in &mut legs {
        out.clear();
        encode_frame(KIND_HANGUP, &[], &mut out);
        leg.write_all(&out).await?;
        leg.shutdown().await?;
    }
    // Wait for the server's hangup (it has analysed the call's end by then).
    for leg in &mut legs {
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncReadExt::read_to_end(leg, &mut sink),
        )
        .await;
    }
    Ok(pacer.finish())
}
