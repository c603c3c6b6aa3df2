//! `attune capture`: the agent's sound card as a live call, analysed locally with alerts in the
//! terminal (cargo feature `capture`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};

use attune::audio::capture::{Capture, CaptureConfig, list_input_devices};
use attune::call::{CallAnalyzer, CallConfig, CallEvent};
use attune::cues::CueRules;
use attune::model::emotion::EmotionModel;

/// How long without audio before capture gives up, seconds.
const NO_AUDIO_TIMEOUT_S: u64 = 5;

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
    /// Cue rules TOML (the shipped rules otherwise).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Emotion model file.
    #[arg(long, default_value = "models/emotion.json")]
    model: PathBuf,
    /// Output: human-readable alerts, or one JSON event per line.
    #[arg(long, value_enum, default_value_t = CaptureFormat::Text)]
    format: CaptureFormat,
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
    let model = Arc::new(EmotionModel::load(&args.model)?);
    let rules = match &args.rules {
        Some(path) => CueRules::load(path)?,
        None => CueRules::default(),
    };
    let config = CallConfig {
        sample_rate_hz: args.sample_rate,
        agent_channel: args.agent_channel,
        rules,
        ..CallConfig::default()
    };
    let mut call = CallAnalyzer::new(config, model)?;
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
    let mut events = Vec::with_capacity(64);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
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
        if channels == 2 {
            call.push(0, &per_channel[0], &mut events);
            call.push(1, &per_channel[1], &mut events);
        } else {
            // Agent only: the far end is silent.
            let n = per_channel[0].len();
            call.push(args.agent_channel, &per_channel[0], &mut events);
            call.push(
                1 - args.agent_channel,
                &silent[..n.min(silent.len())],
                &mut events,
            );
        }
        capture.recycle(chunk);
        print_events(&mut out, &mut events, args.format)?;
    }
    let outcome = call.finish(&mut events);
    print_events(&mut out, &mut events, args.format)?;
    if let Some(writer) = recorder {
        writer.finalize().context("finishing the --record file")?;
    }
    let dropped = capture.stats.dropped_samples.load(Ordering::Relaxed);
    eprintln!(
        "captured {frames_seen} frames ({:.1} s); {} cue events; {dropped} samples dropped; {} stream errors",
        outcome.duration_s,
        outcome.cues.len(),
        capture.stats.stream_errors.load(Ordering::Relaxed)
    );
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
                CallEvent::Cue(cue) => {
                    let values: Vec<String> = cue
                        .evidence
                        .values
                        .iter()
                        .map(|v| format!("{} {:.2}", v.name, v.value))
                        .collect();
                    writeln!(
                        out,
                        "{:>8.2} s  {} {} ({}, {}): {}{}",
                        cue.t_s,
                        cue.event.as_str().to_uppercase(),
                        cue.kind.as_str(),
                        cue.party.as_str(),
                        cue.severity.as_str(),
                        values.join(", "),
                        cue.guidance.map(|g| format!(" — {g}")).unwrap_or_default()
                    )?;
                }
                CallEvent::Emotion(p) if p.party == attune::dialog::Speaker::Caller => {
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
