//! `attune analyze CALL.wav`: the conversation dynamics of a two-party call (one channel per
//! party), with each party's prosody summary, as JSON (or a short text summary).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;

use attune::audio::AudioReader;
use attune::dialog::{self, DialogConfig};
use attune::features::AnalyzerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeFormat {
    Json,
    Text,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A stereo WAV file, one party per channel (mono is accepted with a warning).
    file: PathBuf,
    /// Channel carrying the agent (the other carries the caller); use 1 for swapped recordings.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1))]
    agent_channel: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AnalyzeFormat::Json)]
    format: AnalyzeFormat,
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<()> {
    let mut reader = AudioReader::open(&args.file)
        .with_context(|| format!("cannot analyse {}", args.file.display()))?;
    let config = DialogConfig {
        agent_channel: args.agent_channel,
        ..DialogConfig::default()
    };
    let analysis = dialog::analyze_call(&mut reader, &AnalyzerConfig::default(), &config, |w| {
        eprintln!("warning: {w}");
    })
    .with_context(|| format!("cannot analyse {}", args.file.display()))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        AnalyzeFormat::Json => {
            #[derive(serde::Serialize)]
            struct Document<'a> {
                file: String,
                #[serde(flatten)]
                analysis: &'a dialog::CallAnalysis,
            }
            let doc = Document {
                file: args.file.display().to_string(),
                analysis: &analysis,
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        AnalyzeFormat::Text => {
            let t = &analysis.talk;
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            writeln!(out, "file        {}", args.file.display())?;
            writeln!(out, "duration    {:.2} s", analysis.duration_s)?;
            writeln!(
                out,
                "talk        agent {} s  caller {} s  overlap {} s  silence {:.2} s",
                f(t.agent_s),
                f(t.caller_s),
                f(t.overlap_s),
                t.silence_s
            )?;
            writeln!(
                out,
                "turns       {}  interruptions {} (agent {}, caller {})  backchannels {}",
                analysis.turns.len(),
                analysis.interruptions.len(),
                analysis.interruption_count.agent,
                analysis.interruption_count.caller,
                analysis.backchannels.len()
            )?;
            let l = &analysis.response_latency_s;
            writeln!(
                out,
                "latency     agent median {} s  caller median {} s",
                f(l.agent_median),
                f(l.caller_median)
            )?;
            for w in &analysis.warnings {
                writeln!(out, "warning     {w}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
