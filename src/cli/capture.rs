//! `attune capture`: the agent's sound card as a live call (cargo feature `capture`), analysed
//! locally with alerts in the terminal, or streamed to an `attune serve` (`--server URL`) over
//! the same gRPC ingest protocol `attune replay` uses, printing the call's cues as they come
//! back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::capture::{Capture, CaptureConfig, list_input_devices};
use attune_core::call::{CallAnalyzer, CallConfig, CallEvent};
use attune_core::cues::CueRules;
use attune_service::client::{connect, ingest_call};
use attune_service::convert::event_json;
use attune_service::pb::{self, event::Kind, ingest_response};
use attune_service::session::{Encoding, encode_chunk};

/// How long without audio before capture gives up, seconds.
const NO_AUDIO_TIMEOUT_S: u64 = 5;

/// Captured chunks (100 ms each) waiting to be sent to the server.
const SEND_QUEUE_CHUNKS: usize = 32;

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Print the input devices and exit.
    #[arg(long)]
    list: bool,
    /// Input device id (see --list); the default device otherwise.
    #[arg(long)]
    device: Option<String>,
    /// Capture rate, Hz.
    #[arg(long, default_value_t = 16_000)]
    sample_rate: u32,
    /// 2: agent and far end on one stereo input (one party per channel); 1: agent only.
    #[arg(long, default_value_t = 2)]
    channels: u16,
    /// Which channel is the agent's microphone.
    #[arg(long, default_value_t = 0)]
    agent_channel: usize,
    /// Stop after this many samples per channel (a file-fed device repeats stale data after its
    /// end); runs until Ctrl-C otherwise.
    #[arg(long)]
    max_frames: Option<u64>,
    /// Wait for the analysis instead of dropping audio (for file-fed devices only).
    #[arg(long)]
    lossless: bool,
    /// Also write what was captured to this WAV file (16-bit).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Cue rules TOML (the shipped rules otherwise); with --server, the server's rules apply.
    #[arg(long, conflicts_with = "server")]
    rules: Option<PathBuf>,
    /// Emotion model file (JSON from `attune train`); the shipped model, embedded in the
    /// binary, when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Output: human-readable alerts, or one JSON event per line.
    #[arg(long, value_enum, default_value_t = CaptureFormat::Text)]
    format: CaptureFormat,
    /// Stream the call to this `attune serve` (gRPC, e.g. http://127.0.0.1:50051) instead of
    /// analysing it here; the call's cues and caller states come back from the server.
    #[arg(long)]
    server: Option<String>,
    #[command(flatten)]
    client: super::accounts::ClientArgs,
    /// Call id on the server (default: capture-<unix time ms>).
    #[arg(long)]
    call_id: Option<String>,
    /// Agent id on the server.
    #[arg(long, default_value = "agent-1")]
    agent_id: String,
    /// Team on the server.
    #[arg(long, default_value = "default")]
    team: String,
}

/// Where captured audio goes: the analyzer here, or a server.
enum Sink {
    Local {
        call: Box<CallAnalyzer>,
        events: Vec<CallEvent>,
    },
    Server(ServerStream),
}

/// One call streamed to a server: chunks go through `chunks` to the ingest task, which prints
/// what comes back.
struct ServerStream {
    runtime: tokio::runtime::Runtime,
    chunks: Option<tokio::sync::mpsc::Sender<pb::AudioChunk>>,
    task: tokio::task::JoinHandle<Result<IngestTally, tonic::Status>>,
    url: String,
    next_seq: u64,
    encoded: Vec<u8>,
}

/// What the server sent back over one call.
#[derive(Debug, Default)]
struct IngestTally {
    highest_acked_seq: i64,
    cue_events: u64,
    /// The server's summary of the call (reason, duration), when it ended normally.
    ended: Option<pb::CallSummary>,
}

impl ServerStream {
    fn start(args: &CaptureArgs, url: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let mut client = runtime
            .block_on(connect(url, &args.client.options()?))
            .with_context(|| format!("cannot connect to {url}"))?;
        let call_id = args.call_id.clone().unwrap_or_else(|| {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            format!("capture-{ms}")
        });
        let header = pb::CallHeader {
            call_id,
            agent_id: args.agent_id.clone(),
            team: args.team.clone(),
            sample_rate_hz: args.sample_rate,
            encoding: Encoding::Pcm16le.to_proto() as i32,
            // Always two channels on the wire: a mono capture sends the far end as silence,
            // exactly as the local analysis does.
            layout: pb::ChannelLayout::InterleavedStereo as i32,
            agent_channel: args.agent_channel as u32,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(SEND_QUEUE_CHUNKS);
        let format = args.format;
        let task = runtime.spawn(async move {
            let mut tally = IngestTally {
                highest_acked_seq: -1,
                ..IngestTally::default()
            };
            let stdout = std::io::stdout();
            ingest_call(&mut client, header, rx, |response, _| match response.msg {
                Some(ingest_response::Msg::Ack(ack)) => {
                    tally.highest_acked_seq = ack.highest_contiguous_seq;
                }
                Some(ingest_response::Msg::Event(event)) => {
                    match &event.kind {
                        Some(Kind::Cue(_)) => tally.cue_events += 1,
                        Some(Kind::CallEnded(summary)) => tally.ended = Some(summary.clone()),
                        _ => {}
                    }
                    // Printing is best effort: a closed stdout must not end the call.
                    let _ = print_server_event(&mut stdout.lock(), &event, format);
                }
                None => {}
            })
            .await?;
            Ok(tally)
        });
        Ok(Self {
            runtime,
            chunks: Some(tx),
            task,
            url: url.to_owned(),
            next_seq: 0,
            encoded: Vec::with_capacity(8192),
        })
    }

    /// Sends one chunk of both channels (waits while the send queue is full). Err when the
    /// server ended the call.
    fn send(&mut self, agent_and_caller: [&[f32]; 2]) -> Result<(), ()> {
        self.encoded.clear();
        encode_chunk(Encoding::Pcm16le, &agent_and_caller, &mut self.encoded);
        let chunk = pb::AudioChunk {
            seq: self.next_seq,
            channel: 0,
            audio: attune_service::pb::Bytes::copy_from_slice(&self.encoded),
        };
        self.next_seq += 1;
        match &self.chunks {
            Some(tx) => tx.blocking_send(chunk).map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Ends the call and waits for the server's summary.
    fn finish(mut self) -> anyhow::Result<(u64, IngestTally)> {
        drop(self.chunks.take());
        let tally = self
            .runtime
            .block_on(self.task)
            .context("the ingest task failed")?
            .map_err(|status| {
                anyhow::anyhow!(
                    "the server {} ended the call: {} ({:?})",
                    self.url,
                    status.message(),
                    status.code()
                )
            })?;
        Ok((self.next_seq, tally))
    }
}

/// Prints an event the server sent: cues and caller states as local mode prints them (text),
/// or the service's event JSON (as `attune replay --format json` prints it), one per line.
fn print_server_event(
    out: &mut impl Write,
    event: &pb::Event,
    format: CaptureFormat,
) -> std::io::Result<()> {
    match (format, &event.kind) {
        (_, Some(Kind::Snapshot(_))) | (_, None) => return Ok(()),
        (CaptureFormat::Jsonl, _) => writeln!(out, "{}", event_json(event))?,
        (CaptureFormat::Text, Some(Kind::Cue(cue))) => write_cue_line(
            out,
            cue.t_s,
            [&cue.event, &cue.kind, &cue.party, &cue.severity],
            cue.evidence.iter().map(|v| (v.name.as_str(), v.value)),
            (!cue.guidance.is_empty()).then_some(cue.guidance.as_str()),
        )?,
        (CaptureFormat::Text, Some(Kind::Emotion(p))) if p.party == "caller" => writeln!(
            out,
            "{:>8.2} s  caller {} (arousal {:.2}, valence {:+.2}, confidence {:.2})",
            p.t_s,
            if p.emotion.is_empty() {
                "listening…"
            } else {
                &p.emotion
            },
            p.arousal,
            p.valence,
            p.confidence
        )?,
        (CaptureFormat::Text, _) => {}
    }
    out.flush()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptureFormat {
    Text,
    Jsonl,
}

pub fn run(args: &CaptureArgs) -> anyhow::Result<()> {
    if args.list {
        for id in list_input_devices() {
            println!("{id}");
        }
        return Ok(());
    }
    if args.agent_channel >= usize::from(args.channels.max(1)) {
        bail!(
            "--agent-channel {} does not exist with --channels {}",
            args.agent_channel,
            args.channels
        );
    }
    let mut sink = match &args.server {
        Some(url) => Sink::Server(ServerStream::start(args, url)?),
        None => {
            let model = Arc::new(attune_qa::files::model_or_embedded(args.model.as_deref())?);
            let rules = match &args.rules {
                Some(path) => attune_qa::files::load_cue_rules(path)?,
                None => CueRules::default(),
            };
            let config = CallConfig {
                sample_rate_hz: args.sample_rate,
                agent_channel: args.agent_channel,
                rules,
                ..CallConfig::default()
            };
            Sink::Local {
                call: Box::new(CallAnalyzer::new(config, model)?),
                events: Vec::with_capacity(64),
            }
        }
    };
    let capture = Capture::start(&CaptureConfig {
        device: args.device.clone(),
        sample_rate_hz: args.sample_rate,
        channels: args.channels,
        chunk_frames: (args.sample_rate / 10) as usize,
        lossless: args.lossless,
    })?;
    eprintln!(
        "capturing from {} ({} Hz, {} channel(s), agent on channel {})",
        capture.device_name, args.sample_rate, args.channels, args.agent_channel
    );
    let mut recorder = args
        .record
        .as_deref()
        .map(|path| open_recorder(path, args.sample_rate, args.channels))
        .transpose()?;
    let channels = usize::from(args.channels);
    let mut per_channel = [Vec::new(), Vec::new()];
    let silent = vec![0.0f32; args.sample_rate as usize / 10];
    // stdout is locked per print, never across a send: in server mode the ingest task prints
    // while this thread may wait for room in the send queue.
    let mut frames_seen: u64 = 0;
    let limit = args.max_frames.unwrap_or(u64::MAX);
    while frames_seen < limit {
        let mut chunk = match capture.next_chunk(Duration::from_secs(NO_AUDIO_TIMEOUT_S)) {
            Ok(chunk) => chunk,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "no audio from {} for {NO_AUDIO_TIMEOUT_S} s",
                    capture.device_name
                )
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let frames = (chunk.len() / channels) as u64;
        if frames_seen + frames > limit {
            chunk.truncate(((limit - frames_seen) as usize) * channels);
        }
        frames_seen += (chunk.len() / channels) as u64;
        if let Some(writer) = recorder.as_mut() {
            for &s in &chunk {
                writer
                    .write_sample((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
                    .context("writing the --record file")?;
            }
        }
        for (c, buf) in per_channel.iter_mut().enumerate().take(channels) {
            buf.clear();
            buf.extend(chunk.iter().skip(c).step_by(channels));
        }
        // Channel 0 and 1 as captured; a mono capture is the agent, the far end silent.
        let n = per_channel[0].len();
        let both: [&[f32]; 2] = if channels == 2 {
            [&per_channel[0], &per_channel[1]]
        } else if args.agent_channel == 0 {
            [&per_channel[0], &silent[..n.min(silent.len())]]
        } else {
            [&silent[..n.min(silent.len())], &per_channel[0]]
        };
        let sent = match &mut sink {
            Sink::Local { call, events } => {
                call.push(0, both[0], events);
                call.push(1, both[1], events);
                print_events(&mut std::io::stdout().lock(), events, args.format)?;
                true
            }
            Sink::Server(stream) => stream.send(both).is_ok(),
        };
        capture.recycle(chunk);
        if !sent {
            // The server ended the call early: its status is reported below.
            break;
        }
    }
    if let Some(writer) = recorder {
        writer.finalize().context("finishing the --record file")?;
    }
    let dropped = capture.stats.dropped_samples.load(Ordering::Relaxed);
    let stream_errors = capture.stats.stream_errors.load(Ordering::Relaxed);
    match sink {
        Sink::Local {
            mut call,
            mut events,
        } => {
            let outcome = call.finish(&mut events);
            print_events(&mut std::io::stdout().lock(), &mut events, args.format)?;
            eprintln!(
                "captured {frames_seen} frames ({:.1} s); {} cue events; {dropped} samples dropped; {stream_errors} stream errors",
                outcome.duration_s,
                outcome.cues.len(),
            );
        }
        Sink::Server(stream) => {
            let url = stream.url.clone();
            let (chunks_sent, tally) = stream.finish()?;
            eprintln!(
                "captured {frames_seen} frames; streamed {chunks_sent} chunks to {url} ({} acknowledged); the server analysed {:.1} s ({}); {} cue events; {dropped} samples dropped; {stream_errors} stream errors",
                tally.highest_acked_seq + 1,
                tally.ended.as_ref().map_or(0.0, |s| s.duration_s),
                tally
                    .ended
                    .as_ref()
                    .map_or("no summary", |s| s.reason.as_str()),
                tally.cue_events,
            );
        }
    }
    Ok(())
}

fn open_recorder(
    path: &Path,
    sample_rate: u32,
    channels: u16,
) -> anyhow::Result<hound::WavWriter<std::io::BufWriter<std::fs::File>>> {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(path, spec).with_context(|| format!("creating {}", path.display()))
}

fn print_events(
    out: &mut impl Write,
    events: &mut Vec<CallEvent>,
    format: CaptureFormat,
) -> anyhow::Result<()> {
    for event in events.drain(..) {
        match format {
            CaptureFormat::Jsonl => {
                if !matches!(event, CallEvent::Snapshot(_)) {
                    writeln!(out, "{}", serde_json::to_string(&event)?)?;
                }
            }
            CaptureFormat::Text => match &event {
                CallEvent::Cue(cue) => write_cue_line(
                    out,
                    cue.t_s,
                    [
                        cue.event.as_str(),
                        cue.kind.as_str(),
                        cue.party.as_str(),
                        cue.severity.as_str(),
                    ],
                    cue.evidence.values.iter().map(|v| (v.name, v.value)),
                    cue.guidance,
                )?,
                CallEvent::Emotion(p) if p.party == attune_core::dialog::Speaker::Caller => {
                    writeln!(
                        out,
                        "{:>8.2} s  caller {} (arousal {:.2}, valence {:+.2}, confidence {:.2})",
                        p.t_s,
                        p.emotion.unwrap_or("listening…"),
                        p.arousal,
                        p.valence,
                        p.confidence
                    )?;
                }
                _ => {}
            },
        }
    }
    out.flush()?;
    Ok(())
}

/// One cue as a terminal line: `t_s  OPEN kind (party, severity): evidence — guidance`.
fn write_cue_line<'a>(
    out: &mut impl Write,
    t_s: f64,
    [event, kind, party, severity]: [&str; 4],
    values: impl Iterator<Item = (&'a str, f64)>,
    guidance: Option<&str>,
) -> std::io::Result<()> {
    let values: Vec<String> = values
        .map(|(name, value)| format!("{name} {value:.2}"))
        .collect();
    writeln!(
        out,
        "{t_s:>8.2} s  {} {kind} ({party}, {severity}): {}{}",
        event.to_uppercase(),
        values.join(", "),
        guidance.map(|g| format!(" — {g}")).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::write_cue_line;

    #[test]
    fn a_cue_line_names_event_kind_party_severity_evidence_and_guidance() {
        let mut out = Vec::new();
        write_cue_line(
            &mut out,
            12.25,
            ["open", "caller_upset", "caller", "warning"],
            [("arousal", 0.914), ("p_angry", 0.7)].into_iter(),
            Some("Acknowledge the feeling first."),
        )
        .unwrap();
        write_cue_line(
            &mut out,
            3.0,
            ["close", "extended_silence", "both", "info"],
            [("silence_s", 6.0)].into_iter(),
            None,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "   12.25 s  OPEN caller_upset (caller, warning): arousal 0.91, p_angry 0.70 — \
             Acknowledge the feeling first.\n    3.00 s  CLOSE extended_silence (both, info): \
             silence_s 6.00\n"
        );
    }
}
