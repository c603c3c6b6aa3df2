//! Command-line arguments and the commands behind them. Parsing and printing live here; every
//! figure comes from the library.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use attune_core::audio::{AudioReader, RawFormat, SampleEncoding};
use attune_core::features::{self, AnalyzerConfig};

mod accounts;
mod analyze;
mod calls;
#[cfg(feature = "capture")]
mod capture;
mod compose;
mod demo;
mod emotion;
mod eval_cues;
mod eval_dialog;
mod eval_empathy;
mod replay;
mod serve;
mod shutdown;
mod watch;

/// Attune: real-time call-center audio analysis from the sound alone.
#[derive(Debug, Parser)]
#[command(name = "attune", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-frame prosody of every channel of a recording (10 ms frames), or its summary.
    Features(FeaturesArgs),
    /// Score recorded calls: conversation dynamics, caller emotion, agent calmness, cues and
    /// the QA rubric; one file to stdout, or a batch with --out DIR (parallel, resumable).
    Analyze(analyze::AnalyzeArgs),
    /// Stored calls by agent, team, date, score and what happened; per-agent trends.
    Calls(calls::CallsArgs),
    /// Accuracy against reference corpora.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Build test calls with exact ground truth (from a timeline spec, or at random).
    Compose(compose::ComposeArgs),
    /// Train the caller-emotion model (writes models/emotion.json and models/MODEL_CARD.md).
    Train(emotion::TrainArgs),
    /// Caller emotion, arousal, valence and calmness of each file, one JSON line per file.
    Classify(emotion::ClassifyArgs),
    /// The agent's sound card as a live call: local analysis with alerts in the terminal
    /// (cargo feature `capture`).
    #[cfg(feature = "capture")]
    Capture(capture::CaptureArgs),
    /// The supervisor console with the bundled example calls streamed in as live calls.
    Demo(demo::DemoArgs),
    /// Run the live service: gRPC ingest and monitor streams, HTTP /healthz and /metrics.
    Serve(Box<serve::ServeArgs>),
    /// Stream a recording to a server as one or more live calls; print events and a summary.
    Replay(replay::ReplayArgs),
    /// Follow live calls in the terminal.
    Watch(watch::WatchArgs),
    /// People's accounts: add, list, disable, passwd.
    #[command(subcommand)]
    Users(accounts::UsersCommand),
    /// Machines' API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Tokens(accounts::TokensCommand),
    /// The audit log: sign-ins, changes, reads of stored reports.
    Audit(accounts::AuditArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RawEncoding {
    Mulaw,
    Alaw,
    Pcm16le,
    F32le,
}

#[derive(Debug, clap::Args)]
struct FeaturesArgs {
    /// A WAV file (PCM, float, G.711), or a headerless stream with --raw.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
    format: OutputFormat,
    /// Print one summary per channel instead of the frames.
    #[arg(long)]
    summary: bool,
    /// Treat FILE as a headerless stream in this encoding.
    #[arg(long, value_enum)]
    raw: Option<RawEncoding>,
    /// Sample rate of a --raw stream, Hz.
    #[arg(long, default_value_t = 8000)]
    sample_rate: u32,
    /// Interleaved channels of a --raw stream.
    #[arg(long, default_value_t = 1)]
    channels: u16,
    /// Print the analysis speed (times real time) to stderr.
    #[arg(long)]
    timing: bool,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Gross pitch error, fine pitch error and voicing error against reference F0 tracks.
    Pitch(EvalPitchArgs),
    /// Speaking rate against syllable labels (EmoDB layout: wav/ and labsilb/).
    Rate(EvalRateArgs),
    /// Dialog tracking (interruptions, overlap onsets, talk time) against composed calls.
    Dialog(eval_dialog::EvalDialogArgs),
    /// Caller emotion, leave-one-speaker-out (UAR, confusion matrices, calmness ROC AUC).
    Emotion(emotion::EvalEmotionArgs),
    /// Cue accuracy on composed calls: caller_upset delay on upset callers, false cues on calm
    /// calls.
    Cues(eval_cues::EvalCuesArgs),
    /// How well each empathy measure (active listening, attunement, de-escalation) separates
    /// scripted behaviours, on callers the model never heard.
    Empathy(eval_empathy::EvalEmpathyArgs),
}

#[derive(Debug, clap::Args)]
struct EvalPitchArgs {
    /// Folders of WAV files with reference tracks (FDA `.f0ref` beside each file, or a
    /// pitchref_world set whose `f0/` folder sits beside it).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = EvalFormat::Text)]
    format: EvalFormat,
}

#[derive(Debug, clap::Args)]
struct EvalRateArgs {
    /// The corpus folder (with `wav/` and `labsilb/`).
    dir: PathBuf,
    /// Pass each file through a telephone channel (8 kHz, 300–3400 Hz, G.711 mu-law) first.
    #[arg(long)]
    telephone: bool,
    /// Only these speakers (comma-separated file-name prefixes, e.g. 03,08).
    #[arg(long, value_delimiter = ',')]
    speakers: Vec<String>,
    #[arg(long, value_enum, default_value_t = EvalFormat::Text)]
    format: EvalFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EvalFormat {
    Text,
    Json,
}

/// Runs the command line; errors are printed with their causes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Features(args) => run_features(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Calls(args) => calls::run(&args),
        Command::Eval(EvalCommand::Pitch(args)) => run_eval_pitch(&args),
        Command::Eval(EvalCommand::Rate(args)) => run_eval_rate(&args),
        Command::Eval(EvalCommand::Dialog(args)) => eval_dialog::run(&args),
        Command::Compose(args) => compose::run(&args),
        Command::Train(args) => emotion::run_train(&args),
        Command::Classify(args) => emotion::run_classify(&args),
        #[cfg(feature = "capture")]
        Command::Capture(args) => capture::run(&args),
        Command::Eval(EvalCommand::Emotion(args)) => emotion::run_eval(&args),
        Command::Eval(EvalCommand::Cues(args)) => eval_cues::run(&args),
        Command::Eval(EvalCommand::Empathy(args)) => eval_empathy::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Serve(mut args) => args.resolve_db_ca().and_then(|()| serve::run(&args)),
        Command::Replay(args) => replay::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Users(command) => accounts::run_users(&command),
        Command::Tokens(command) => accounts::run_tokens(&command),
        Command::Audit(args) => accounts::run_audit(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_audio(path: &Path, args: &FeaturesArgs) -> anyhow::Result<AudioReader> {
    let reader = match args.raw {
        None => attune_qa::files::open_wav(path),
        Some(raw) => {
            let encoding = match raw {
                RawEncoding::Mulaw => SampleEncoding::MuLaw,
                RawEncoding::Alaw => SampleEncoding::ALaw,
                RawEncoding::Pcm16le => SampleEncoding::Pcm16,
                RawEncoding::F32le => SampleEncoding::Float32,
            };
            attune_qa::files::open_raw(
                path,
                RawFormat {
                    encoding,
                    sample_rate_hz: args.sample_rate,
                    channels: args.channels,
                },
            )
        }
    };
    reader.with_context(|| format!("cannot analyse {}", path.display()))
}

fn run_features(args: &FeaturesArgs) -> anyhow::Result<()> {
    let mut reader = open_audio(&args.file, args)?;
    let spec = reader.spec().clone();
    let config = AnalyzerConfig::default();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let started = Instant::now();
    let started_cpu_s = thread_cpu_time_s();
    let file_name = args.file.display().to_string();

    let summaries = if args.summary {
        features::analyze_audio(&mut reader, &config, |_, _| {})?
    } else {
        let mut line = String::with_capacity(512);
        let mut write_error = None;
        let mut first = true;
        match args.format {
            OutputFormat::Csv => writeln!(out, "{}", features::csv_header())?,
            OutputFormat::Json => write!(
                out,
                "{{\"file\":{},\"sample_rate_hz\":{},\"channels\":{},\"frames\":[",
                serde_json::to_string(&file_name)?,
                spec.sample_rate_hz,
                spec.channels
            )?,
        }
        let summaries = features::analyze_audio(&mut reader, &config, |channel, frame| {
            if write_error.is_some() {
                return;
            }
            line.clear();
            let result = match args.format {
                OutputFormat::Csv => {
                    features::write_csv_row(&mut line, channel, frame);
                    writeln!(out, "{line}")
                }
                OutputFormat::Json => {
                    let separator = if first { "" } else { "," };
                    first = false;
                    write!(out, "{separator}{}", features::frame_json(channel, frame))
                }
            };
            if let Err(error) = result {
                write_error = Some(error);
            }
        })?;
        if let Some(error) = write_error {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(error).context("cannot write the frames");
        }
        if args.format == OutputFormat::Json {
            write!(out, "]}}")?;
            writeln!(out)?;
        }
        summaries
    };
    let elapsed_s = started.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_time_s()
        .zip(started_cpu_s)
        .map(|(end, start)| end - start);
    let warnings = input_warnings(&reader);
    for warning in &warnings {
        eprintln!("warning: {}: {warning}", args.file.display());
    }

    if args.summary {
        match args.format {
            OutputFormat::Json => {
                let doc = serde_json::json!({
                    "file": file_name,
                    "sample_rate_hz": spec.sample_rate_hz,
                    "encoding": spec.encoding,
                    "warnings": warnings,
                    "channels": summaries,
                });
                serde_json::to_writer_pretty(&mut out, &doc)?;
                writeln!(out)?;
            }
            OutputFormat::Csv => {
                writeln!(
                    out,
                    "channel,duration_s,speech_duration_s,syllable_count,speaking_rate_syl_per_s,\
                     articulation_rate_syl_per_s,f0_median_hz"
                )?;
                for s in &summaries {
                    writeln!(
                        out,
                        "{},{:.2},{:.2},{},{:.3},{:.3},{:.1}",
                        s.channel,
                        s.duration_s,
                        s.speech_duration_s,
                        s.syllable_count,
                        s.speaking_rate_syl_per_s,
                        s.articulation_rate_syl_per_s,
                        s.f0_median_hz
                    )?;
                }
            }
        }
    }
    out.flush()?;
    if args.timing {
        let audio_s = summaries.first().map_or(0.0, |s| s.duration_s);
        let channel_s = audio_s * summaries.len() as f64;
        let cpu = cpu_s.map_or(String::new(), |cpu_s| {
            format!(
                "; {cpu_s:.3} s of CPU: {:.0}x real time per channel per core",
                channel_s / cpu_s.max(1e-9)
            )
        });
        eprintln!(
            "analysed {channel_s:.1} s of channel audio in {elapsed_s:.3} s wall: {:.0}x real time per channel{cpu} (one thread, including decoding, resampling{})",
            channel_s / elapsed_s.max(1e-9),
            if args.summary { "" } else { " and writing" }
        );
    }
    Ok(())
}

/// CPU time this thread has used, seconds (Linux `/proc/thread-self/schedstat`; None elsewhere).
/// On a shared machine it measures the work itself, where wall time also counts waiting.
fn thread_cpu_time_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}

/// What the reader noticed about the input that a user should know.
fn input_warnings(reader: &AudioReader) -> Vec<String> {
    let mut warnings = Vec::new();
    if reader.truncated() {
        warnings.push(
            "the file ends before the data size its header announces: analysed what is there"
                .to_owned(),
        );
    }
    if reader.nonfinite_samples() > 0 {
        warnings.push(format!(
            "{} NaN or infinite samples were read as silence",
            reader.nonfinite_samples()
        ));
    }
    warnings
}

fn print_report<T: serde::Serialize + std::fmt::Debug>(
    report: &T,
    format: EvalFormat,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    match format {
        EvalFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        EvalFormat::Text => print!("{}", text(report)),
    }
    Ok(())
}

fn run_eval_pitch(args: &EvalPitchArgs) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for dir in &args.dirs {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
        let report = attune_lab::eval::pitch::evaluate(dir)?;
        reports.push(serde_json::json!({"set": dir.display().to_string(), "report": report}));
    }
    print_report(&reports, args.format, |reports| {
        let mut text = format!(
            "{:<40} {:>6} {:>8} {:>8} {:>10} {:>8}\n",
            "set", "files", "frames", "GPE %", "FPE cents", "VDE %"
        );
        for r in reports {
            let rep = &r["report"];
            text.push_str(&format!(
                "{:<40} {:>6} {:>8} {:>8.2} {:>10.1} {:>8.2}\n",
                r["set"].as_str().unwrap_or(""),
                rep["files"],
                rep["frames"],
                rep["gpe_pct"].as_f64().unwrap_or(f64::NAN),
                rep["fpe_cents"].as_f64().unwrap_or(f64::NAN),
                rep["vde_pct"].as_f64().unwrap_or(f64::NAN),
            ));
        }
        text
    })
}

fn run_eval_rate(args: &EvalRateArgs) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let options = attune_lab::eval::rate::RateEvalOptions {
        telephone: args.telephone,
        speakers: args.speakers.clone(),
    };
    let report =
        attune_lab::eval::rate::evaluate_with_audio(&args.dir, &args.dir.join("wav"), &options)?;
    print_report(&report, args.format, |r| {
        format!(
            "files {}  pearson_r {:.3}  mae {:.3} syl/s\n",
            r.files, r.pearson_r, r.mae_syl_per_s
        )
    })
}
