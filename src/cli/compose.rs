//! `attune compose`: builds test calls with exact ground truth, from a timeline spec or at random.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

use attune_lab::compose::empathy::{Scenario, scripted_spec};
use attune_lab::compose::random::{Catalog, RandomCallConfig, random_spec};
use attune_lab::compose::{self, CallSpec, ComposedCall, OutputEncoding, SourceCache};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    Mulaw,
    Pcm16,
}

/// Build a stereo test call (WAV + CALL.truth.json) from a timeline spec, or N random calls.
#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    /// A timeline spec (JSON); omit with --random or --empathy.
    #[arg(required_unless_present_any = ["random", "empathy"], conflicts_with_all = ["random", "empathy"])]
    spec: Option<PathBuf>,
    /// Output: the WAV for a spec (truth beside it), or the folder for --random.
    #[arg(long)]
    out: PathBuf,
    /// Generate this many random calls.
    #[arg(long, conflicts_with = "empathy")]
    random: Option<u32>,
    /// One scripted empathy call (docs/empathy.md): interrupts_upset_caller,
    /// lets_upset_caller_finish, mirrors_loud_caller, stays_slow_and_soft,
    /// mirrors_caller_stays_upset or backchannels; --seed picks the voices and sentences.
    #[arg(long, value_name = "CASE")]
    empathy: Option<String>,
    /// Seed of the random calls.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Length of each random call in minutes: `M` or `MIN-MAX`.
    #[arg(long, default_value = "1-3")]
    minutes: String,
    /// Fixed crosstalk of random calls, dB (default: drawn in -35..-25).
    #[arg(long, allow_hyphen_values = true)]
    crosstalk_db: Option<f64>,
    /// Fixed line noise of random calls, dBFS (default: drawn in -60..-45).
    #[arg(long, allow_hyphen_values = true)]
    noise_dbfs: Option<f64>,
    /// Data folder the sources are relative to (default: the spec's, else ../shared/data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Soft-spoken callers in random calls: sad utterances, --quiet-db below the usual level.
    #[arg(long)]
    quiet_caller: bool,
    /// How far below the usual caller level a --quiet-caller speaks, dB.
    #[arg(long, default_value_t = 12.0)]
    quiet_db: f64,
    /// Breaths and lip clicks before utterances of random calls (never speech in the truth).
    #[arg(long)]
    breaths: bool,
    /// Sample encoding of random calls.
    #[arg(long, value_enum, default_value_t = EncodingArg::Mulaw)]
    encoding: EncodingArg,
}

fn parse_minutes(text: &str) -> anyhow::Result<(f64, f64)> {
    let parse = |s: &str| {
        s.trim()
            .parse::<f64>()
            .with_context(|| format!("--minutes {text}: expected M or MIN-MAX"))
    };
    let (low, high) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let m = parse(text)?;
            (m, m)
        }
    };
    if !(low > 0.0 && low <= high && high <= 60.0) {
        bail!("--minutes {text}: need 0 < MIN <= MAX <= 60");
    }
    Ok((low, high))
}

fn report(call: &ComposedCall, wav: &Path) {
    let a = &call.annotation;
    eprintln!(
        "{}: {:.1} s, {} turns, {} interruptions, {} backchannels, overlap {:.1} s, silence {:.1} s{}",
        wav.display(),
        a.duration_s,
        a.turns.len(),
        a.interruptions.len(),
        a.backchannels.len(),
        a.talk.overlap_s,
        a.talk.silence_s,
        if call.clipped_samples > 0 {
            format!(" ({} samples clipped)", call.clipped_samples)
        } else {
            String::new()
        }
    );
}

/// Runs `attune compose`.
pub fn run(args: &ComposeArgs) -> anyhow::Result<()> {
    if let Some(case) = &args.empathy {
        return run_empathy(args, case);
    }
    match (args.random, &args.spec) {
        (Some(count), _) => run_random(args, count),
        (None, Some(spec_path)) => {
            let text = std::fs::read_to_string(spec_path)
                .with_context(|| format!("cannot read {}", spec_path.display()))?;
            let spec = CallSpec::from_json(&text)
                .with_context(|| format!("{} is not a call spec", spec_path.display()))?;
            let data_dir = compose::data_dir_for(&spec, args.data_dir.as_deref());
            let call = compose::compose(&spec, &data_dir)
                .with_context(|| format!("cannot compose {}", spec_path.display()))?;
            compose::write_call(&call, &args.out)?;
            report(&call, &args.out);
            Ok(())
        }
        (None, None) => bail!("give a spec file or --random N"),
    }
}

fn run_empathy(args: &ComposeArgs, case: &str) -> anyhow::Result<()> {
    let Some(scenario) = Scenario::parse(case) else {
        let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.as_str()).collect();
        bail!("--empathy {case}: expected one of {}", known.join(", "));
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(compose::spec::DEFAULT_DATA_DIR));
    let catalog = Catalog::scan(&data_dir)?;
    let mut cache = SourceCache::new(&data_dir, 8_000, true);
    let spec = scripted_spec(scenario.script(), args.seed, 0, &catalog, &mut cache)?;
    let call = compose::compose_with(&spec, &mut cache)
        .with_context(|| format!("cannot compose the {case} call"))?;
    compose::write_call(&call, &args.out)?;
    let spec_path = args.out.with_extension("spec.json");
    std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)? + "\n")
        .with_context(|| format!("cannot write {}", spec_path.display()))?;
    report(&call, &args.out);
    Ok(())
}

fn run_random(args: &ComposeArgs, count: u32) -> anyhow::Result<()> {
    let (min_minutes, max_minutes) = parse_minutes(&args.minutes)?;
    let config = RandomCallConfig {
        seed: args.seed,
        min_minutes,
        max_minutes,
        crosstalk_db: args.crosstalk_db,
        noise_dbfs: args.noise_dbfs,
        quiet_caller_db: args.quiet_caller.then_some(args.quiet_db),
        mouth_noises: args.breaths,
        encoding: match args.encoding {
            EncodingArg::Mulaw => OutputEncoding::Mulaw,
            EncodingArg::Pcm16 => OutputEncoding::Pcm16,
        },
        ..RandomCallConfig::default()
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(compose::spec::DEFAULT_DATA_DIR));
    let catalog = Catalog::scan(&data_dir)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut cache = SourceCache::new(&data_dir, config.sample_rate_hz, config.telephone);
    for index in 0..count {
        let spec = random_spec(&config, u64::from(index), &catalog, &mut cache)?;
        let call = compose::compose_with(&spec, &mut cache)
            .with_context(|| format!("cannot compose random call {index}"))?;
        let wav = args.out.join(format!("call_{index:03}.wav"));
        compose::write_call(&call, &wav)?;
        let spec_path = args.out.join(format!("call_{index:03}.spec.json"));
        std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)? + "\n")
            .with_context(|| format!("cannot write {}", spec_path.display()))?;
        report(&call, &wav);
    }
    Ok(())
}
