//! Stop signals for the long-running commands (`serve`, `demo`): SIGINT (Ctrl-C) and SIGTERM
//! (what systemd, Docker and Kubernetes send) both start a graceful drain; a second signal, or
//! the drain outliving its bound, exits at once.

use std::time::Duration;

/// Exit code when the process is stopped without finishing its drain (128 + SIGINT).
const EXIT_UNDRAINED: i32 = 130;

/// Waits for the first SIGINT or SIGTERM, then arms the hard stop: a second signal, or
/// `drain_bound` passing, ends the process at once. `command` names the process in messages.
pub async fn drain_requested(command: &'static str, drain_bound: Duration) {
    let first = next_signal().await;
    eprintln!(
        "attune {command}: {first}: draining (ending live calls and storing them, at most {:.0} s; a second signal stops at once)",
        drain_bound.as_secs_f64()
    );
    tokio::spawn(async move {
        tokio::select! {
            second = next_signal() => {
                eprintln!("attune {command}: {second} again: stopping now, without finishing the drain");
            }
            () = tokio::time::sleep(drain_bound) => {
                eprintln!("attune {command}: the drain took longer than {:.0} s: stopping now", drain_bound.as_secs_f64());
            }
        }
        std::process::exit(EXIT_UNDRAINED);
    });
}

/// The name of the next stop signal to arrive.
#[cfg(unix)]
async fn next_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        Err(error) => {
            eprintln!("warning: cannot listen for SIGTERM ({error}); only Ctrl-C drains");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn next_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
