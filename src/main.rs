//! The `attune` binary: the command-line edge over the Attune crates (`attune-core` analysis,
//! `attune-qa` scoring and store, `attune-service` live service, `attune-lab` corpora and
//! evaluations). It parses arguments, opens files and prints; everything it reports is
//! computed in the crates.
#[cfg(feature = "capture")]
mod capture;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
