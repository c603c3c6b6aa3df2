//! `attune replay`: streams a recording to a server as N live calls at real-time pace (or
//! faster), prints the events received and, at the end, a JSON summary with cue latencies.
//! With `--calls 1000` it is the load test of the service.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use attune_core::audio::{AudioBuffer, SampleEncoding, read_all};
use attune_core::call::{CallAnalyzer, CallConfig, CallEvent};
use attune_core::features::LagHistogram;
use attune_service::client::{ChunkedAudio, PacingReport, connect, ingest_call, send_paced};
use attune_service::convert::{cue_json, event_json};
use attune_service::pb::{self, event::Kind, ingest_response};
use attune_service::session::Encoding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    /// Events as JSON lines, then the summary as one JSON line.
    Json,
    /// Events as readable lines, then the summary as indented JSON.
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WireEncoding {
    /// The file's own G.711 encoding if it has one, else PCM16LE.
    Auto,
    Pcm16le,
    F32le,
    Mulaw,
    Alaw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Attune's own gRPC ingest (`--server http://HOST:GRPC_PORT`).
    Grpc,
    /// Twilio Media Streams, both tracks (`--server ws://HOST:HTTP_PORT`).
    Twilio,
    /// Genesys AudioHook v2, PCMU stereo (`--server ws://HOST:HTTP_PORT`).
    Audiohook,
    /// Asterisk AudioSocket, one TCP leg per party (`--server HOST:PORT`).
    Audiosocket,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// How to stream: gRPC, or as a telephony platform would (8 kHz recordings).
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    protocol: Protocol,
    /// Sign Twilio upgrades with this auth token (as Twilio does).
    #[arg(long)]
    twilio_auth_token: Option<String>,
    /// Sign AudioHook upgrades with this API key (and --audiohook-secret, base64).
    #[arg(long, requires = "audiohook_secret")]
    audiohook_key: Option<String>,
    #[arg(long)]
    audiohook_secret: Option<String>,
    /// A stereo recording (one party per channel).
    file: PathBuf,
    /// The server: its gRPC address (http://HOST:PORT); for twilio/audiohook its HTTP address
    /// (ws://HOST:PORT, default ws://127.0.0.1:8080); for audiosocket HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    #[command(flatten)]
    client: super::accounts::ClientArgs,
    /// Pace: 1.0 is real time, 2.0 twice as fast.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Stream the recording as this many concurrent calls (ids suffixed -1..-N when N > 1).
    #[arg(long, default_value_t = 1)]
    calls: usize,
    /// Call id (default: the file name without extension).
    #[arg(long)]
    call_id: Option<String>,
    #[arg(long, default_value = "agent-1")]
    agent_id: String,
    #[arg(long, default_value = "default")]
    team: String,
    /// Which channel is the agent (default: `agent_channel` of NAME.truth.json beside the file,
    /// else 0).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1))]
    agent_channel: Option<u32>,
    #[arg(long, value_enum, default_value_t = ReplayFormat::Json)]
    format: ReplayFormat,
    /// Audio per chunk, milliseconds.
    #[arg(long, default_value_t = 100)]
    chunk_ms: u32,
    /// Encoding on the wire.
    #[arg(long, value_enum, default_value_t = WireEncoding::Auto)]
    encoding: WireEncoding,
    /// HTTP/2 connections to spread the calls over (default: one per 50 calls).
    #[arg(long)]
    connections: Option<usize>,
    /// Spread the calls' starts over this many seconds (default: one chunk).
    #[arg(long)]
    ramp_s: Option<f64>,
    /// Keep --calls calls live for this long (a soak): each call, once its last chunk is
    /// sent, is followed at once by the next one (ids suffixed -rN), until this many seconds
    /// have passed since the start; the summary counts every call (without the cue list).
    #[arg(long, value_name = "SECS")]
    duration_s: Option<f64>,
    /// Print only the summary, not the events.
    #[arg(long)]
    quiet: bool,
    /// With --protocol twilio|audiohook|audiosocket: also follow the server's gRPC Monitor
    /// stream at this address (http://HOST:GRPC_PORT, with --token a monitor token) and report
    /// each cue's latency: its arrival minus when the 20 ms frame holding its `t_s` was sent.
    #[arg(long, value_name = "URL")]
    monitor: Option<String>,
    /// No server: analyse the recording in-process, chunk by chunk as a live call would arrive,
    /// and print where the cue latency comes from — each cue's analysis delay (audio pushed past
    /// the end of the chunk containing its `t_s` before it was decided) by kind, and how long
    /// each analysis stage held frames back.
    #[arg(long)]
    local: bool,
    /// With --local: close extended_silence only when the call steps the frame at the speech
    /// onset, not as soon as the onset is known (the analysis before 2026-12-07, to compare).
    #[arg(long, requires = "local")]
    no_early_silence_close: bool,
    /// Emotion model file (JSON from `attune train`); the shipped model, embedded in the
    /// binary, when absent (with --local).
    #[arg(long)]
    model: Option<PathBuf>,
}

/// What one simulated call saw.
struct CallResult {
    call_id: String,
    pacing: PacingReport,
    /// (highest contiguous seq, arrival).
    acks: Vec<(i64, Instant)>,
    cues: Vec<(pb::Cue, Instant)>,
    ended: Option<pb::CallSummary>,
    status: Result<(), tonic::Status>,
}

fn agent_channel_from_truth(file: &Path) -> Option<u32> {
    let stem = file.file_stem()?.to_str()?;
    let truth = file.with_file_name(format!("{stem}.truth.json"));
    let text = std::fs::read_to_string(truth).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value.get("agent_channel")?.as_u64().map(|c| c as u32)
}

fn percentiles_ms(mut values: Vec<f64>) -> Value {
    if values.is_empty() {
        return json!({"count": 0, "p50": null, "p95": null, "p99": null, "max": null});
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        (values[rank - 1] * 10.0).round() / 10.0
    };
    json!({"count": values.len(), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)})
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a number > 0, got {}", args.speed);
    }
    if args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    if let Some(s) = args.duration_s
        && !(s.is_finite() && s > 0.0)
    {
        bail!("--duration-s must be a number of seconds > 0, got {s}");
    }
    if !(10..=1000).contains(&args.chunk_ms) {
        bail!("--chunk-ms must be 10..=1000, got {}", args.chunk_ms);
    }
    let reader = attune_qa::files::open_wav(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let file_encoding = reader.spec().encoding;
    let audio = read_all(reader).with_context(|| format!("cannot read {}", args.file.display()))?;
    if audio.channels.len() < 2 {
        bail!(
            "{}: a call needs two channels (one per party); this recording has {}",
            args.file.display(),
            audio.channels.len()
        );
    }
    let encoding = match args.encoding {
        WireEncoding::Auto => match file_encoding {
            SampleEncoding::MuLaw => Encoding::Mulaw,
            SampleEncoding::ALaw => Encoding::Alaw,
            _ => Encoding::Pcm16le,
        },
        WireEncoding::Pcm16le => Encoding::Pcm16le,
        WireEncoding::F32le => Encoding::F32le,
        WireEncoding::Mulaw => Encoding::Mulaw,
        WireEncoding::Alaw => Encoding::Alaw,
    };
    let frames_per_chunk = (audio.sample_rate_hz as usize * args.chunk_ms as usize / 1000).max(1);
    let chunked = ChunkedAudio::interleaved(
        [&audio.channels[0], &audio.channels[1]],
        audio.sample_rate_hz,
        frames_per_chunk,
        encoding,
    );
    let agent_channel = args
        .agent_channel
        .or_else(|| agent_channel_from_truth(&args.file))
        .unwrap_or(0);
    let base_id = args.call_id.clone().unwrap_or_else(|| {
        args.file
            .file_stem()
            .map_or("call".into(), |s| s.to_string_lossy().into_owned())
    });
    if args.protocol != Protocol::Grpc && !args.local {
        return replay_telephony(args, &audio, agent_channel, &base_id);
    }
    if args.local {
        let summary = local_breakdown(args, &audio, &chunked, agent_channel)?;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let tally = runtime.block_on(replay_calls(args, &chunked, agent_channel, &base_id))?;
    let wall_s = started.elapsed().as_secs_f64();
    let (failed, calls) = (tally.calls_failed, tally.calls);
    let summary = summarise(args, &chunked, tally, wall_s);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        ReplayFormat::Json => writeln!(out, "{}", serde_json::to_string(&summary)?)?,
        ReplayFormat::Text => writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?,
    }
    out.flush()?;
    if failed > 0 {
        bail!("{failed} of {calls} calls ended with an error");
    }
    Ok(())
}

/// The summary's figures, gathered call by call as each ends, so that a soak's thousands of
/// calls are not all kept in memory.
#[derive(Default)]
struct Tally {
    keep_cues: bool,
    calls: u64,
    calls_failed: u64,
    cues: Vec<Value>,
    cues_seen: u64,
    cue_latency_ms: Vec<f64>,
    ack_latency_ms: Vec<f32>,
    send_lag_ms: Vec<f32>,
    chunks_late: u64,
    chunks_sent: u64,
    chunks_acked: u64,
    errors: BTreeMap<String, u64>,
    end_reasons: BTreeMap<String, u64>,
    /// With --duration-s: late chunks by minute since `started` (to line them up with what
    /// else ran on the machine then).
    started: Option<Instant>,
    late_by_minute: BTreeMap<u64, u64>,
}

impl Tally {
    fn add(&mut self, audio: &ChunkedAudio, r: &CallResult) {
        let chunk_s = audio.chunk_s();
        self.calls += 1;
        let sent = &r.pacing.sent_at;
        self.chunks_sent += sent.len() as u64;
        for (k, lag) in r.pacing.lag.iter().enumerate() {
            self.send_lag_ms.push((lag.as_secs_f64() * 1e3) as f32);
            if lag.as_secs_f64() > chunk_s {
                self.chunks_late += 1;
                if let (Some(started), Some(at)) = (self.started, sent.get(k)) {
                    let minute = at.saturating_duration_since(started).as_secs() / 60;
                    *self.late_by_minute.entry(minute).or_default() += 1;
                }
            }
        }
        let acked = r.acks.iter().map(|(seq, _)| seq + 1).max().unwrap_or(0);
        self.chunks_acked += acked.max(0) as u64;
        for (seq, at) in &r.acks {
            if let Some(sent_at) = usize::try_from(*seq).ok().and_then(|s| sent.get(s)) {
                self.ack_latency_ms
                    .push((at.saturating_duration_since(*sent_at).as_secs_f64() * 1e3) as f32);
            }
        }
        for (cue, at) in &r.cues {
            self.cues_seen += 1;
            let seq = audio.chunk_containing(cue.t_s);
            let latency = sent
                .get(seq)
                .map(|sent_at| at.saturating_duration_since(*sent_at).as_secs_f64() * 1e3);
            if let Some(ms) = latency {
                self.cue_latency_ms.push(ms);
            }
            if self.keep_cues {
                let mut value = cue_json(&r.call_id, cue);
                if let Value::Object(map) = &mut value {
                    map.insert(
                        "latency_ms".into(),
                        json!(latency.map(|ms| (ms * 10.0).round() / 10.0)),
                    );
                }
                self.cues.push(value);
            }
        }
        if let Err(status) = &r.status {
            self.calls_failed += 1;
            *self
                .errors
                .entry(format!("{:?}: {}", status.code(), status.message()))
                .or_default() += 1;
        }
        if let Some(ended) = &r.ended {
            *self.end_reasons.entry(ended.reason.clone()).or_default() += 1;
        }
    }
}

async fn replay_calls(
    args: &ReplayArgs,
    audio: &ChunkedAudio,
    agent_channel: u32,
    base_id: &str,
) -> anyhow::Result<Tally> {
    let connections = args
        .connections
        .unwrap_or_else(|| args.calls.div_ceil(50))
        .clamp(1, args.calls);
    let options = args.client.options()?;
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(
            connect(&args.server, &options)
                .await
                .with_context(|| format!("cannot connect to {}", args.server))?,
        );
    }
    let ramp = Duration::from_secs_f64(args.ramp_s.unwrap_or(audio.chunk_s()).max(0.0));
    let t0 = tokio::time::Instant::now() + Duration::from_millis(50);
    let deadline = args.duration_s.map(|s| t0 + Duration::from_secs_f64(s));
    let printer = Arc::new(Mutex::new(std::io::stdout()));
    let tally = Arc::new(Mutex::new(Tally {
        keep_cues: deadline.is_none(),
        started: deadline.map(|_| t0.into_std()),
        ..Tally::default()
    }));
    let mut slots = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        let slot_id = if args.calls > 1 {
            format!("{base_id}-{}", i + 1)
        } else {
            base_id.to_owned()
        };
        let client = clients[i % connections].clone();
        let audio = audio.clone();
        let first_start = t0 + ramp.mul_f64(i as f64 / args.calls as f64);
        let (speed, quiet, format) = (args.speed, args.quiet, args.format);
        let (agent_id, team) = (args.agent_id.clone(), args.team.clone());
        let printer = printer.clone();
        let tally = tally.clone();
        slots.push(tokio::spawn(async move {
            let mut start = first_start;
            let mut calls = Vec::new();
            for round in 1u64.. {
                let call_id = match deadline {
                    Some(_) => format!("{slot_id}-r{round}"),
                    None => slot_id.clone(),
                };
                let header = pb::CallHeader {
                    call_id: call_id.clone(),
                    agent_id: agent_id.clone(),
                    team: team.clone(),
                    sample_rate_hz: audio.sample_rate_hz,
                    encoding: audio.encoding.to_proto() as i32,
                    layout: pb::ChannelLayout::InterleavedStereo as i32,
                    agent_channel,
                };
                let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
                calls.push(tokio::spawn(one_call(
                    client.clone(),
                    header,
                    audio.clone(),
                    (speed, start),
                    (quiet, format, printer.clone()),
                    sent_tx,
                    tally.clone(),
                )));
                let Some(deadline) = deadline else { break };
                // The next call starts once this one has sent its last chunk.
                let _ = sent_rx.await;
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    break;
                }
                start = now;
            }
            for call in calls {
                let _ = call.await;
            }
        }));
    }
    for slot in slots {
        slot.await.context("a call task failed")?;
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(tally)
}

/// One call: its audio paced from `start`, `sent` told when the last chunk is handed over, its
/// figures added to `tally` at its end.
async fn one_call(
    mut client: attune_service::client::Client,
    header: pb::CallHeader,
    audio: ChunkedAudio,
    (speed, start): (f64, tokio::time::Instant),
    (quiet, format, printer): (bool, ReplayFormat, Arc<Mutex<std::io::Stdout>>),
    sent: tokio::sync::oneshot::Sender<()>,
    tally: Arc<Mutex<Tally>>,
) {
    let call_id = header.call_id.clone();
    let (tx, rx) = mpsc::channel(4);
    let sender_audio = audio.clone();
    let sender = tokio::spawn(async move {
        let report = send_paced(&sender_audio, speed, start, tx).await;
        let _ = sent.send(());
        report
    });
    let mut acks = Vec::new();
    let mut cues = Vec::new();
    let mut ended = None;
    let status = ingest_call(&mut client, header, rx, |response, at| match response.msg {
        Some(ingest_response::Msg::Ack(ack)) => {
            acks.push((ack.highest_contiguous_seq, at));
        }
        Some(ingest_response::Msg::Event(event)) => {
            if !quiet {
                print_event(&printer, format, &event);
            }
            match event.kind {
                Some(Kind::Cue(cue)) => cues.push((cue, at)),
                Some(Kind::CallEnded(summary)) => ended = Some(summary),
                _ => {}
            }
        }
        None => {}
    })
    .await;
    let pacing = sender.await.unwrap_or_default();
    let result = CallResult {
        call_id,
        pacing,
        acks,
        cues,
        ended,
        status,
    };
    tally
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .add(&audio, &result);
}

fn print_event(printer: &Mutex<std::io::Stdout>, format: ReplayFormat, event: &pb::Event) {
    let line = match format {
        ReplayFormat::Json => event_json(event).to_string(),
        ReplayFormat::Text => super::watch::event_text(event),
    };
    let out = printer.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(&*out, "{line}");
}

fn summarise(args: &ReplayArgs, audio: &ChunkedAudio, tally: Tally, wall_s: f64) -> Value {
    let chunk_s = audio.chunk_s();
    let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    let mut summary = json!({
        "latency_ms": percentiles_ms(tally.cue_latency_ms),
        "cues_seen": tally.cues_seen,
        "chunks_sent": tally.chunks_sent,
        "chunks_acked": tally.chunks_acked,
        "chunks_late": tally.chunks_late,
        "send_lag_ms": percentiles_ms(widen(tally.send_lag_ms)),
        "ack_latency_ms": percentiles_ms(widen(tally.ack_latency_ms)),
        "calls": tally.calls,
        "calls_failed": tally.calls_failed,
        "errors": tally.errors,
        "end_reasons": tally.end_reasons,
        "chunk_ms": args.chunk_ms,
        "encoding": audio.encoding,
        "speed": args.speed,
        "audio_s": audio.chunks.len() as f64 * chunk_s,
        "wall_s": (wall_s * 100.0).round() / 100.0,
    });
    if tally.keep_cues
        && let Value::Object(map) = &mut summary
    {
        map.insert("cues".into(), Value::Array(tally.cues));
    }
    if let (Some(s), Value::Object(map)) = (args.duration_s, &mut summary) {
        map.insert("duration_s".into(), json!(s));
        map.insert("live_slots".into(), json!(args.calls));
        map.insert("chunks_late_by_minute".into(), json!(tally.late_by_minute));
    }
    summary
}

fn lag_json(lags: &LagHistogram, lead_ms: f64) -> Value {
    let ms = |q: f64| lags.quantile_frames(q).map(|f| f as f64 * 10.0 + lead_ms);
    json!({
        "frames": lags.count(),
        "mean_ms": (lags.mean_frames() * 100.0).round() / 10.0 + lead_ms,
        "p50_ms": ms(0.5),
        "p95_ms": ms(0.95),
        "p99_ms": ms(0.99),
        "max_ms": ms(1.0),
    })
}

/// `--local`: the analysis part of the cue latency, without a server or a network.
fn local_breakdown(
    args: &ReplayArgs,
    audio: &AudioBuffer,
    chunked: &ChunkedAudio,
    agent_channel: u32,
) -> anyhow::Result<Value> {
    let model = Arc::new(
        attune_qa::files::model_or_embedded(args.model.as_deref())
            .context("cannot load the emotion model")?,
    );
    let config = CallConfig {
        sample_rate_hz: audio.sample_rate_hz,
        agent_channel: agent_channel as usize,
        early_silence_close: !args.no_early_silence_close,
        ..CallConfig::default()
    };
    let mut call = CallAnalyzer::new(config, model)?;
    let chunk_frames = chunked.frames_per_chunk;
    let chunk_s = chunked.chunk_s();
    let total = audio.channels[0].len().min(audio.channels[1].len());
    let mut events = Vec::new();
    let mut delays_ms: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut delays_by_event_ms: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut all_ms = Vec::new();
    let mut start = 0;
    let mut chunk = 0usize;
    while start < total {
        let end = (start + chunk_frames).min(total);
        call.push(0, &audio.channels[0][start..end], &mut events);
        call.push(1, &audio.channels[1][start..end], &mut events);
        for event in events.drain(..) {
            if let CallEvent::Cue(cue) = event {
                let containing = chunked.chunk_containing(cue.t_s);
                let delay_ms = (chunk as f64 - containing as f64) * chunk_s * 1e3;
                delays_ms
                    .entry(cue.kind.as_str())
                    .or_default()
                    .push(delay_ms);
                let event = match cue.event {
                    attune_core::cues::CueTransition::Open => "open",
                    attune_core::cues::CueTransition::Close => "close",
                };
                delays_by_event_ms
                    .entry(format!("{} {event}", cue.kind.as_str()))
                    .or_default()
                    .push(delay_ms);
                all_ms.push(delay_ms);
            }
        }
        start = end;
        chunk += 1;
    }
    let breakdown = call.latency_breakdown();
    let early_closes = call.early_silence_closes();
    call.finish(&mut events);
    let lead_ms = breakdown.window_lead_s * 1e3;
    let by_kind: serde_json::Map<String, Value> = delays_ms
        .into_iter()
        .map(|(kind, ms)| (kind.to_owned(), percentiles_ms(ms)))
        .collect();
    let by_event: serde_json::Map<String, Value> = delays_by_event_ms
        .into_iter()
        .map(|(cue, ms)| (cue, percentiles_ms(ms)))
        .collect();
    Ok(json!({
        "analysis_delay_ms": percentiles_ms(all_ms),
        "analysis_delay_ms_by_kind": by_kind,
        "analysis_delay_ms_by_cue": by_event,
        "frame_lag": {
            "window_lead_ms": lead_ms,
            "pitch": lag_json(&breakdown.channels.pitch, lead_ms),
            "voice_activity": lag_json(&breakdown.channels.voice_activity, lead_ms),
            "syllable": lag_json(&breakdown.channels.syllable, lead_ms),
            "call_step": lag_json(&breakdown.step, lead_ms),
        },
        "extended_silence_early_closes": early_closes,
        "chunk_ms": args.chunk_ms,
        "audio_s": total as f64 / audio.sample_rate_hz as f64,
    }))
}

/// `--protocol twilio|audiohook|audiosocket`: streams the recording as the platform would, as
/// `--calls` concurrent calls, and prints a JSON summary (frames sent and late, send lag, the
/// server's close codes). Cues appear in the console, `attune watch` and `/metrics`.
fn replay_telephony(
    args: &ReplayArgs,
    audio: &AudioBuffer,
    agent_channel: u32,
    base_id: &str,
) -> anyhow::Result<()> {
    use attune_service::ingest::clients::{
        StereoCall, stream_audiohook, stream_audiosocket, stream_twilio,
    };
    use base64::Engine as _;
    if audio.sample_rate_hz != 8000 {
        bail!(
            "{}: telephony protocols carry 8000 Hz audio; this recording is {} Hz",
            args.file.display(),
            audio.sample_rate_hz
        );
    }
    let agent = agent_channel as usize;
    let template = StereoCall {
        call_id: base_id.to_owned(),
        agent_id: args.agent_id.clone(),
        team: args.team.clone(),
        caller: audio.channels[1 - agent].clone(),
        agent: audio.channels[agent].clone(),
    };
    let secret = match &args.audiohook_secret {
        Some(s) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .context("--audiohook-secret is not base64")?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let monitored: Arc<Mutex<Vec<(String, f64, Instant)>>> = Arc::default();
    let monitor = match &args.monitor {
        Some(url) => Some(runtime.block_on(follow_cues(url, args, monitored.clone()))?),
        None => None,
    };
    let reports = runtime.block_on(async {
        let ramp = Duration::from_secs_f64(args.ramp_s.unwrap_or(0.02).max(0.0));
        let mut tasks = Vec::with_capacity(args.calls);
        for i in 0..args.calls {
            let mut call = template.clone();
            if args.calls > 1 {
                call.call_id = format!("{base_id}-{}", i + 1);
            }
            let server = match (args.server.as_str(), args.protocol) {
                ("http://127.0.0.1:50051", Protocol::Twilio | Protocol::Audiohook) => {
                    "ws://127.0.0.1:8080".to_owned()
                }
                (s, _) => s.to_owned(),
            };
            let (speed, protocol) = (args.speed, args.protocol);
            let token = args.twilio_auth_token.clone();
            let key = args.audiohook_key.clone().zip(secret.clone());
            let delay = ramp.mul_f64(i as f64 / args.calls as f64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let result = match protocol {
                    Protocol::Twilio => {
                        stream_twilio(&server, &call, speed, token.as_deref()).await
                    }
                    Protocol::Audiohook => {
                        let key = key.as_ref().map(|(k, s)| (k.as_str(), s.as_slice()));
                        stream_audiohook(&server, &call, speed, key).await
                    }
                    _ => {
                        let mut uuid = [0u8; 16];
                        let tag = format!("{:>16}", call.call_id);
                        for (b, c) in uuid.iter_mut().zip(tag.bytes().rev()) {
                            *b = c;
                        }
                        uuid[15] &= !1;
                        stream_audiosocket(&server, &call, speed, uuid).await
                    }
                };
                (call.call_id, result)
            }));
        }
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await?);
        }
        anyhow::Ok(out)
    })?;
    let wall_s = started.elapsed().as_secs_f64();
    if let Some(task) = monitor {
        // The cues closed at a call's end arrive just after its stream closes.
        runtime.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
        task.abort();
    }
    let mut cue_latency_ms = Vec::new();
    let by_call: BTreeMap<&str, &attune_service::ingest::clients::ClientReport> = reports
        .iter()
        .filter_map(|(id, r)| r.as_ref().ok().map(|r| (id.as_str(), r)))
        .collect();
    let monitored = std::mem::take(&mut *monitored.lock().unwrap_or_else(|p| p.into_inner()));
    for (call_id, t_s, at) in &monitored {
        let Some(report) = by_call.get(call_id.as_str()) else {
            continue;
        };
        let frame = ((t_s / 0.020).floor().max(0.0) as usize)
            .min(report.send_lag_ms.len().saturating_sub(1));
        if let Some(sent_at) = report.frame_sent_at(frame) {
            cue_latency_ms.push(at.saturating_duration_since(sent_at).as_secs_f64() * 1e3);
        }
    }
    let mut lags = Vec::new();
    let (mut sent, mut late, mut failed) = (0u64, 0u64, 0usize);
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (_, result) in &reports {
        match result {
            Ok(r) => {
                sent += r.frames_sent;
                late += r.frames_late;
                lags.extend_from_slice(&r.send_lag_ms);
                let key = r
                    .close
                    .as_ref()
                    .map_or("none".to_owned(), |(code, reason)| {
                        format!("{code} {reason}")
                    });
                *closes.entry(key).or_default() += 1;
            }
            Err(e) => {
                failed += 1;
                *errors.entry(e.to_string()).or_default() += 1;
            }
        }
    }
    let summary = json!({
        "protocol": format!("{:?}", args.protocol).to_lowercase(),
        "calls": reports.len(),
        "calls_failed": failed,
        "frames_sent": sent,
        "frames_late": late,
        "send_lag_ms": percentiles_ms(lags),
        "closes": closes,
        "errors": errors,
        "cues_seen": if args.monitor.is_some() { json!(monitored.len()) } else { Value::Null },
        "latency_ms": if args.monitor.is_some() { percentiles_ms(cue_latency_ms) } else { Value::Null },
        "speed": args.speed,
        "audio_s": template.caller.len().min(template.agent.len()) as f64 / 8000.0,
        "wall_s": (wall_s * 100.0).round() / 100.0,
    });
    println!("{}", serde_json::to_string(&summary)?);
    if failed > 0 {
        bail!("{failed} of {} calls failed", reports.len());
    }
    Ok(())
}

/// `--monitor`: subscribes to the server's Monitor stream and records each cue of a call as
/// (call id, t_s, arrival). Returns once subscribed, so no cue of the replayed calls is missed.
async fn follow_cues(
    url: &str,
    args: &ReplayArgs,
    into: Arc<Mutex<Vec<(String, f64, Instant)>>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use attune_service::pb::monitor_response;
    let mut client = connect(url, &args.client.options()?)
        .await
        .with_context(|| format!("--monitor: cannot connect to {url}"))?;
    let mut stream = client
        .monitor(pb::MonitorRequest::default())
        .await
        .with_context(|| format!("--monitor {url}"))?
        .into_inner();
    Ok(tokio::spawn(async move {
        while let Ok(Some(message)) = stream.message().await {
            if let Some(monitor_response::Msg::Event(event)) = message.msg
                && let (Some(call), Some(Kind::Cue(cue))) = (event.call, event.kind)
            {
                into.lock().unwrap_or_else(|p| p.into_inner()).push((
                    call.call_id,
                    cue.t_s,
                    Instant::now(),
                ));
            }
        }
    }))
}
