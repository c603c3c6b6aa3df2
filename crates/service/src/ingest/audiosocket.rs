//! Asterisk AudioSocket on TCP (`attune serve --audiosocket ADDR`).
//!
//! Frames: 1 kind byte, 2-byte big-endian payload length, payload. 0x01 the call's UUID
//! (16 bytes, first), 0x10 signed linear 16-bit little-endian 8 kHz mono (0x11–0x18: 12, 16, 24,
//! 32, 44.1, 48, 96, 192 kHz; up to 48 kHz accepted), 0x03 DTMF (one ASCII digit), 0x00 hangup,
//! 0xff error.
//!
//! One connection carries one party. **Pairing rule**: the two legs of a call send UUIDs that
//! differ only in the lowest bit of the last byte — even = the caller (channel 0), odd = the
//! agent (channel 1); the call id is the UUID with that bit cleared (see docs/telephony.md for
//! the dialplan). A leg without its partner is a call whose other party is silent. Agent and
//! team are not in the protocol: they come from `--audiosocket-agent`/`--audiosocket-team`.
//! The two legs are aligned by arrival ([`super::TrackAligner`]): a leg running more than
//! `max_skew_ms` ahead fills the other with silence.
//!
//! AudioSocket has no authentication: the listener binds loopback by default; bind it to a
//! private, trusted interface only. With accounts or tokens in the store, its calls are
//! ingested as the token the server is given (`--audiosocket-token`, an ingest token whose
//! teams include `--audiosocket-team`), and a stored call id is refused as gRPC refuses it:
//! without that token every call is refused (both legs are closed, logged and counted).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::{IngestConfig, LiveCall, TrackAligner, stereo_spec};
use crate::grpc::Shared;
use crate::session::Encoding;

pub const KIND_HANGUP: u8 = 0x00;
pub const KIND_UUID: u8 = 0x01;
pub const KIND_DTMF: u8 = 0x03;
pub const KIND_SLIN_8K: u8 = 0x10;
pub const KIND_ERROR: u8 = 0xff;

/// Largest payload accepted, bytes (1 s of 8 kHz audio; Asterisk sends 320 per 20 ms).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 16_000;

/// One frame (audio borrowed from the read buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Hangup,
    Uuid([u8; 16]),
    Dtmf(u8),
    Audio { rate_hz: u32, pcm: &'a [u8] },
    Error(&'a [u8]),
}

/// A frame Attune refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    #[error("frame of kind 0x{kind:02x} has {len} payload bytes (limit {max})")]
    Oversized { kind: u8, len: usize, max: usize },
    #[error("unknown frame kind 0x{0:02x}")]
    UnknownKind(u8),
    #[error("UUID frame of {0} bytes (expected 16)")]
    UuidLength(usize),
    #[error("audio frame of {0} bytes is not whole 16-bit samples")]
    OddAudio(usize),
    #[error("unsupported sample rate {0} Hz (expected 8000..=48000)")]
    Rate(u32),
    #[error("the first frame must be the UUID (got kind 0x{0:02x})")]
    NoUuid(u8),
    #[error("the connection sent its UUID twice")]
    SecondUuid,
    #[error("the other leg runs at {other} Hz, this one at {this} Hz")]
    RateMismatch { this: u32, other: u32 },
    #[error("the {0} of this call is already connected")]
    PartyTaken(&'static str),
    #[error("the connection ended inside a frame")]
    Truncated,
}

fn rate_of(kind: u8) -> Option<u32> {
    Some(match kind {
        0x10 => 8000,
        0x11 => 12_000,
        0x12 => 16_000,
        0x13 => 24_000,
        0x14 => 32_000,
        0x15 => 44_100,
        0x16 => 48_000,
        0x17 => 96_000,
        0x18 => 192_000,
        _ => return None,
    })
}

/// Parses the frame at the start of `buf`: `Ok(None)` when it is not all there yet, else the
/// frame and the bytes it took. The length is checked against `max_payload` before waiting for
/// the payload, so an oversized frame is refused at once.
pub fn parse_frame(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<(Frame<'_>, usize)>, SocketError> {
    if buf.len() < 3 {
        return Ok(None);
    }
    let kind = buf[0];
    let len = usize::from(u16::from_be_bytes([buf[1], buf[2]]));
    let known =
        matches!(kind, KIND_HANGUP | KIND_UUID | KIND_DTMF | KIND_ERROR) || rate_of(kind).is_some();
    if !known {
        return Err(SocketError::UnknownKind(kind));
    }
    if len > max_payload {
        return Err(SocketError::Oversized {
            kind,
            len,
            max: max_payload,
        });
    }
    if buf.len() < 3 + len {
        return Ok(None);
    }
    let payload = &buf[3..3 + len];
    let frame = match kind {
        KIND_HANGUP => Frame::Hangup,
        KIND_UUID => Frame::Uuid(
            payload
                .try_into()
                .map_err(|_| SocketError::UuidLength(len))?,
        ),
        KIND_DTMF => Frame::Dtmf(payload.first().copied().unwrap_or(b'?')),
        KIND_ERROR => Frame::Error(payload),
        _ => {
            let rate_hz = rate_of(kind).unwrap_or(0);
            if !(8000..=48_000).contains(&rate_hz) {
                return Err(SocketError::Rate(rate_hz));
            }
            if !len.is_multiple_of(2) {
                return Err(SocketError::OddAudio(len));
            }
            Frame::Audio {
                rate_hz,
                pcm: payload,
            }
        }
    };
    Ok(Some((frame, 3 + len)))
}

/// Encodes one frame (what test clients and `attune replay --protocol audiosocket` send).
pub fn encode_frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload[..usize::from(len)]);
}

/// The call key and party (0 = caller, 1 = agent) of a leg's UUID.
pub fn pair_key(uuid: [u8; 16]) -> ([u8; 16], usize) {
    let mut key = uuid;
    key[15] &= !1;
    (key, usize::from(uuid[15] & 1))
}

/// A UUID in its hyphenated text form.
pub fn uuid_text(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

const PARTY: [&str; 2] = ["caller", "agent"];

enum LegMsg {
    Join {
        party: usize,
        reply: oneshot::Sender<Result<(), SocketError>>,
    },
    Audio {
        party: usize,
        rate_hz: u32,
        pcm: Vec<u8>,
    },
    End {
        party: usize,
        reason: &'static str,
    },
}

type Calls = Arc<Mutex<HashMap<[u8; 16], mpsc::Sender<LegMsg>>>>;

/// Accepts AudioSocket connections on `listener` until the service shuts down.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, config: Arc<IngestConfig>) {
    let calls: Calls = Arc::default();
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (shared, config, calls) = (shared.clone(), config.clone(), calls.clone());
        tokio::spawn(async move {
            let counters = &shared.metrics.telephony.audiosocket;
            let _active = super::ActiveGuard::new(counters);
            if let Err(e) = leg(stream, peer.ip(), shared.clone(), config, calls).await {
                shared
                    .metrics
                    .telephony
                    .audiosocket
                    .refused
                    .fetch_add(1, Ordering::Relaxed);
                let _ = e;
            }
        });
    }
}

/// Reads the next frame into `buf` (returns its kind-independent copy of what the caller needs).
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    read: &mut [u8],
) -> std::io::Result<usize> {
    let n = stream.read(read).await?;
    buf.extend_from_slice(&read[..n]);
    Ok(n)
}

/// One connection: the UUID first, then audio until hangup, error, close or silence.
async fn leg(
    mut stream: TcpStream,
    peer: std::net::IpAddr,
    shared: Arc<Shared>,
    config: Arc<IngestConfig>,
    calls: Calls,
) -> Result<(), SocketError> {
    let max = DEFAULT_MAX_PAYLOAD_BYTES;
    let mut buf = Vec::with_capacity(4096);
    let mut read = vec![0u8; 8192];
    // The UUID, within the start timeout.
    let deadline = tokio::time::Instant::now() + config.start_timeout;
    let uuid = loop {
        match parse_frame(&buf, max) {
            Err(e) => return refuse(&mut stream, e).await,
            Ok(Some((Frame::Uuid(uuid), used))) => {
                buf.drain(..used);
                break uuid;
            }
            Ok(Some((_, _))) => return refuse(&mut stream, SocketError::NoUuid(buf[0])).await,
            Ok(None) => {}
        }
        match tokio::time::timeout_at(deadline, read_more(&mut stream, &mut buf, &mut read)).await {
            Err(_) | Ok(Err(_)) | Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
        }
    };
    let (key, party) = pair_key(uuid);
    let tx = join(&shared, &config, &calls, key, party, peer).await;
    let tx = match tx {
        Ok(tx) => tx,
        Err(e) => return refuse(&mut stream, e).await,
    };
    let counters = &shared.metrics.telephony.audiosocket;
    let idle = config.no_media_timeout;
    let mut last_audio = tokio::time::Instant::now();
    let reason = 'read: loop {
        loop {
            match parse_frame(&buf, max) {
                Err(e) => {
                    let _ = refuse(&mut stream, e).await;
                    break 'read "error";
                }
                Ok(None) => break,
                Ok(Some((frame, used))) => {
                    let end = match frame {
                        Frame::Hangup => Some("ended"),
                        Frame::Error(_) => Some("error"),
                        Frame::Uuid(_) => {
                            let _ = refuse(&mut stream, SocketError::SecondUuid).await;
                            Some("error")
                        }
                        Frame::Dtmf(_) => None,
                        Frame::Audio { rate_hz, pcm } => {
                            counters.frames.fetch_add(1, Ordering::Relaxed);
                            last_audio = tokio::time::Instant::now();
                            let msg = LegMsg::Audio {
                                party,
                                rate_hz,
                                pcm: pcm.to_vec(),
                            };
                            if tx.send(msg).await.is_err() {
                                Some("error")
                            } else {
                                None
                            }
                        }
                    };
                    buf.drain(..used);
                    if let Some(reason) = end {
                        break 'read reason;
                    }
                }
            }
        }
        match tokio::time::timeout_at(
            last_audio + idle,
            read_more(&mut stream, &mut buf, &mut read),
        )
        .await
        {
            Err(_) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                break "timeout";
            }
            Ok(Err(_)) | Ok(Ok(0)) => {
                if !buf.is_empty() {
                    // A frame cut short by the close.
                    break "error";
                }
                break "disconnected";
            }
            Ok(Ok(_)) => {}
        }
    };
    let _ = tx.send(LegMsg::End { party, reason }).await;
    // Asterisk hangs up the channel on a hangup frame.
    let mut bye = Vec::new();
    encode_frame(KIND_HANGUP, &[], &mut bye);
    let _ = stream.write_all(&bye).await;
    Ok(())
}

async fn refuse(stream: &mut TcpStream, e: SocketError) -> Result<(), SocketError> {
    // The protocol has no error text towards Asterisk: hang up (the reason is counted and in
    // the call's summary); the error kind carries a short code.
    let mut out = Vec::new();
    encode_frame(KIND_ERROR, e.to_string().as_bytes(), &mut out);
    encode_frame(KIND_HANGUP, &[], &mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
    Err(e)
}

/// Joins the call of `key` as `party`, starting it if it is not live.
async fn join(
    shared: &Arc<Shared>,
    config: &Arc<IngestConfig>,
    calls: &Calls,
    key: [u8; 16],
    party: usize,
    peer: std::net::IpAddr,
) -> Result<mpsc::Sender<LegMsg>, SocketError> {
    for _ in 0..2 {
        let existing = calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(tx) = existing {
            let (reply, answer) = oneshot::channel();
            if tx.send(LegMsg::Join { party, reply }).await.is_ok()
                && let Ok(result) = answer.await
            {
                return result.map(|()| tx);
            }
            // The call ended meanwhile: start a new one.
            calls.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            continue;
        }
        let (tx, rx) = mpsc::channel(64);
        {
            let mut map = calls.lock().unwrap_or_else(|p| p.into_inner());
            if map.contains_key(&key) {
                continue;
            }
            map.insert(key, tx.clone());
        }
        tokio::spawn(call_task(
            shared.clone(),
            config.clone(),
            calls.clone(),
            key,
            party,
            peer,
            rx,
        ));
        return Ok(tx);
    }
    Err(SocketError::PartyTaken(PARTY[party]))
}

/// One call: both legs' audio aligned into the analysis; ends when every joined leg has.
async fn call_task(
    shared: Arc<Shared>,
    config: Arc<IngestConfig>,
    calls: Calls,
    key: [u8; 16],
    first_party: usize,
    peer: std::net::IpAddr,
    mut rx: mpsc::Receiver<LegMsg>,
) {
    let counters = &shared.metrics.telephony.audiosocket;
    let mut joined = [false; 2];
    let mut ended = [false; 2];
    joined[first_party] = true;
    let mut live: Option<(LiveCall, u32, TrackAligner)> = None;
    let mut out = Vec::with_capacity(8192);
    let mut reason = "disconnected";
    let mut shutdown = shared.shutdown.clone();
    loop {
        let lag_deadline = live.as_ref().map(|(call, _, _)| call.idle_deadline());
        let msg = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => { reason = "shutdown"; break; }
            // The trickle-proof idle rule: the call's audio must keep up with wall time.
            _ = tokio::time::sleep_until(lag_deadline.unwrap_or_else(tokio::time::Instant::now)), if lag_deadline.is_some() => {
                if live.as_ref().and_then(|(call, _, _)| call.lagging()).is_some() {
                    reason = "timeout";
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                continue;
            }
            msg = rx.recv() => msg,
        };
        let Some(msg) = msg else { break };
        match msg {
            LegMsg::Join { party, reply } => {
                let result = if joined[party] {
                    Err(SocketError::PartyTaken(PARTY[party]))
                } else {
                    joined[party] = true;
                    Ok(())
                };
                let _ = reply.send(result);
            }
            LegMsg::End { party, reason: why } => {
                ended[party] = true;
                if why != "disconnected" || reason == "disconnected" {
                    reason = why;
                }
                if (0..2).all(|p| !joined[p] || ended[p]) {
                    break;
                }
            }
            LegMsg::Audio {
                party,
                rate_hz,
                pcm,
            } => {
                if live.is_none() {
                    let call_id = uuid_text(&key);
                    let spec = stereo_spec(
                        call_id.clone(),
                        config.audiosocket_agent_id.clone(),
                        config.audiosocket_team.clone(),
                        rate_hz,
                        Encoding::Pcm16le,
                        1,
                    );
                    let started = match super::identify(
                        &shared,
                        config.audiosocket_token.clone(),
                        "the protocol carries none: give the server one with --audiosocket-token",
                    )
                    .await
                    {
                        Ok(who) => LiveCall::start(shared.clone(), spec, Some(peer), &who).await,
                        Err(e) => Err(e),
                    };
                    match started {
                        Ok(call) => {
                            let per_ms = u64::from(rate_hz) / 1000;
                            let aligner = TrackAligner::new(
                                &[0, 0],
                                u64::from(config.max_skew_ms) * per_ms,
                                u64::from(config.max_gap_ms) * per_ms,
                            );
                            live = Some((call, rate_hz, aligner));
                        }
                        Err(e) => {
                            reason = "error";
                            super::note_refused(counters, "audiosocket", &call_id, &e);
                            if !e.is_identity() {
                                eprintln!("attune: audiosocket: call {call_id:?} not started: {e}");
                            }
                            break;
                        }
                    }
                }
                let Some((call, rate, aligner)) = live.as_mut() else {
                    break;
                };
                if rate_hz != *rate {
                    // The mismatching leg's audio is dropped; the call goes on.
                    counters.frames_late.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                call.message().await;
                let filled_before = aligner.silence_filled;
                aligner.append(party, &pcm, &mut out);
                counters
                    .silence_filled_samples
                    .fetch_add(aligner.silence_filled - filled_before, Ordering::Relaxed);
                let batch_bytes = *rate as usize * super::twilio::BATCH_MS / 1000 * 4;
                if out.len() >= batch_bytes && call.push(std::mem::take(&mut out)).await.is_err() {
                    reason = "error";
                    break;
                }
            }
        }
    }
    calls.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
    if let Some((mut call, _, mut aligner)) = live {
        if reason != "error" && reason != "shutdown" {
            aligner.flush(&mut out);
            let _ = call.push(std::mem::take(&mut out)).await;
        }
        call.end(reason).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_refuse_precisely() {
        let mut wire = Vec::new();
        let uuid = [7u8; 16];
        encode_frame(KIND_UUID, &uuid, &mut wire);
        encode_frame(KIND_SLIN_8K, &[1, 0, 2, 0], &mut wire);
        encode_frame(KIND_DTMF, b"5", &mut wire);
        encode_frame(KIND_HANGUP, &[], &mut wire);
        let mut at = 0;
        let mut frames = Vec::new();
        while let Some((frame, used)) = parse_frame(&wire[at..], 1000).unwrap() {
            frames.push(format!("{frame:?}"));
            at += used;
        }
        assert_eq!(at, wire.len());
        assert_eq!(frames.len(), 4);
        assert!(frames[1].contains("rate_hz: 8000"));
        // Truncated: wait for more.
        assert_eq!(parse_frame(&wire[..5], 1000), Ok(None));
        assert_eq!(parse_frame(&[0x10, 0x00], 1000), Ok(None));
        assert_eq!(
            parse_frame(&[0x10, 0xff, 0xff], 1000),
            Err(SocketError::Oversized {
                kind: 0x10,
                len: 65535,
                max: 1000
            })
        );
        assert_eq!(
            parse_frame(&[0x42, 0, 0], 1000),
            Err(SocketError::UnknownKind(0x42))
        );
        assert_eq!(
            parse_frame(&[0x01, 0, 2, 1, 2], 1000),
            Err(SocketError::UuidLength(2))
        );
        assert_eq!(
            parse_frame(&[0x10, 0, 1, 1], 1000),
            Err(SocketError::OddAudio(1))
        );
        assert_eq!(
            parse_frame(&[0x17, 0, 2, 1, 1], 1000),
            Err(SocketError::Rate(96_000))
        );
        assert!(matches!(
            parse_frame(&[0x12, 0, 2, 1, 1], 1000),
            Ok(Some((
                Frame::Audio {
                    rate_hz: 16_000,
                    ..
                },
                5
            )))
        ));
    }

    #[test]
    fn legs_pair_by_uuid() {
        let mut caller = [0xabu8; 16];
        caller[15] = 0x10;
        let mut agent = caller;
        agent[15] = 0x11;
        let (k1, p1) = pair_key(caller);
        let (k2, p2) = pair_key(agent);
        assert_eq!(k1, k2);
        assert_eq!((p1, p2), (0, 1));
        assert_eq!(uuid_text(&k1), "abababab-abab-abab-abab-ababababab10");
    }
}
