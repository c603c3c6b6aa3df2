//! The `attune` binary: the command-line edge over the `attune` library.
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
