//! `attune demo`: the console on its embedded defaults (no sound card) with the bundled example
//! calls streamed in as live calls, in a loop, several at once. Ended calls are scored and
//! stored (the Recorded calls page) in a SQLite file in the system's temporary folder unless
//! `--db` names another store or `--no-db` turns storing off.
//!
//! Sign-in is on as in `attune serve`: the demo keeps a `demo-admin` account in its store (an
//! in-memory one with `--no-db`) and prints a one-time sign-in link for it. It listens on
//! loopback only.
//!
//! The service is composed as `attune serve` composes it ([`Service`], its
//! [`Service::http_router`], served through the same HTTP edge, limits and drain by
//! [`Service::serve_http`]); only the calls differ: they are fed into the hub in this process
//! instead of arriving over gRPC or telephony (whose routes refuse unsigned streams here).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use attune_qa::ScoringSetup;
use attune_service::feeder::{self, DemoSettings, FeedPace, Recording};
use attune_service::ingest::IngestConfig;
use attune_service::metrics::ServiceMetrics;
use attune_service::recorder::CallRecorder;
use attune_service::server::{ServerConfig, Service};

/// How long the demo may take to end its calls after SIGTERM or Ctrl-C.
const DEMO_DRAIN_BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address the HTTP console listens on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Calls live at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=500))]
    calls: u16,
    /// Folder of stereo example calls: NAME.wav with NAME.truth.json (its `agent_channel`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/calls"))]
    calls_dir: PathBuf,
    /// Emotion model file (JSON from `attune train`); the shipped model, embedded in the
    /// binary, when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Play the calls this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Store ended calls here (SQLite file, or postgres://... with the `postgres` feature).
    /// Default: attune-demo.db in a fresh private folder (mode 0700, random name) in the system's
    /// temporary folder (when it cannot be opened the
    /// demo runs without storing, with a warning).
    #[arg(long, value_name = "PATH|URL", conflicts_with = "no_db")]
    db: Option<String>,
    /// Do not store calls (the Recorded calls page then says there is no database).
    #[arg(long)]
    no_db: bool,
    #[command(flatten)]
    recordings: super::serve::RecordingArgs,
    #[command(flatten)]
    http_edge: super::serve::HttpEdgeArgs,
}

/// The demo's admin account.
pub const DEMO_ADMIN: &str = "demo-admin";

/// The demo's gate: accounts in `location`, with `demo-admin` created (with a random password
/// nobody is shown) when missing. Returns the gate and the admin's principal.
fn demo_gate(
    location: &str,
) -> anyhow::Result<(
    Arc<attune_service::auth::Gate>,
    attune_service::auth::Principal,
)> {
    use attune_service::auth::{gate::user_principal, secrets};
    let mut store = attune_qa::store::Store::open(location)
        .with_context(|| format!("cannot open the demo's account store {location}"))?;
    if store.user(DEMO_ADMIN)?.is_none() {
        store.add_user(&attune_qa::store::UserRecord {
            name: DEMO_ADMIN.to_owned(),
            role: "admin".to_owned(),
            teams: Vec::new(),
            agent_id: None,
            password_hash: secrets::hash_password(&secrets::random_hex(24))?,
            disabled: false,
            created_at: String::new(),
            updated_at: String::new(),
        })?;
    }
    let admin = store
        .user(DEMO_ADMIN)?
        .context("the demo admin account is missing")?;
    let principal = user_principal(&admin).map_err(|e| anyhow::anyhow!("{e}"))?;
    let gate = attune_service::auth::Gate::new(
        Arc::new(attune_service::auth::StoreIdentities::new(store)),
        attune_service::auth::GateConfig::default(),
    );
    Ok((Arc::new(gate), principal))
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a number > 0, got {}", args.speed);
    }
    if !args.http.ip().is_loopback() {
        anyhow::bail!(
            "attune demo listens on loopback only (got {}); run `attune serve` to serve a network",
            args.http
        );
    }
    let setup = Arc::new(
        ScoringSetup::load(args.model.as_deref(), None, None, 0)
            .context("cannot load the emotion model")?,
    );
    if args.no_db && args.recordings.records_any() {
        anyhow::bail!("--record-teams needs a store to keep calls in: drop --no-db");
    }
    // Bad recording flags are named before anything is opened.
    args.recordings
        .policy(args.db.as_deref().unwrap_or("attune-demo.db"))?;
    let metrics = Arc::new(ServiceMetrics::default());
    let recorder = if args.no_db {
        None
    } else {
        match &args.db {
            Some(location) => {
                let store = attune_qa::store::Store::open(location)
                    .with_context(|| format!("cannot open the database {location}"))?;
                Some(CallRecorder::start(store, setup.clone(), metrics.clone())?)
            }
            // The default store must never stop the demo: without it, calls are not stored.
            None => {
                let opened = private_demo_dir(&std::env::temp_dir()).and_then(|dir| {
                    let location = dir.join("attune-demo.db");
                    attune_qa::store::Store::open(&location.display().to_string())
                        .map_err(|e| anyhow::anyhow!("{e}"))
                });
                match opened {
                    Ok(store) => Some(CallRecorder::start(store, setup.clone(), metrics.clone())?),
                    Err(e) => {
                        eprintln!("warning: calls will not be stored: {e}");
                        None
                    }
                }
            }
        }
    };
    // Recordings sit beside the store (the demo's calls are of teams north and south).
    let call_recordings = match &recorder {
        Some(r) => args.recordings.open(r.location(), &metrics)?,
        None => None,
    };
    let recorder = recorder.map(|r| match &call_recordings {
        Some(recordings) => Arc::new(r.with_recordings(recordings.clone())),
        None => Arc::new(r),
    });
    // Accounts live beside the stored calls; without a store, in a store in memory.
    let accounts = match &recorder {
        Some(r) => r.location().to_owned(),
        None => ":memory:".to_owned(),
    };
    let (gate, admin) = demo_gate(&accounts)?;
    let calls = usize::from(args.calls);
    let config = ServerConfig {
        max_calls: calls.max(16) * 2,
        // The demo's calls are analysed by the feeder; the pool only serves gRPC ingest.
        analysis_threads: 1,
        gate: gate.clone(),
        http: args.http_edge.limits()?,
        ..ServerConfig::default()
    };
    // No telephony credentials: the telephony routes refuse every stream.
    let ingest = Arc::new(IngestConfig {
        require_signatures: true,
        ..IngestConfig::default()
    });
    let recordings = Recording::load_examples(&args.calls_dir).with_context(|| {
        format!(
            "cannot load example calls from {}",
            args.calls_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.http)
            .await
            .with_context(|| format!("cannot listen on {}", args.http))?;
        let address = listener.local_addr()?;
        let service = Service::with_recorder(
            config,
            setup.rules.clone(),
            setup.model.clone(),
            recorder.clone().map(|r| (r, metrics.clone())),
        )?;
        let hub = service.hub.clone();
        println!(
            "Attune demo: {calls} live calls from {} example recordings",
            recordings.len()
        );
        let secret = gate.issue_sign_in_link(admin);
        println!("  sign in       http://{address}/login/once?secret={secret}   (one-time link for {DEMO_ADMIN})");
        println!("  live wall     http://{address}/");
        println!("  alerts        http://{address}/alerts");
        println!("  agent view    http://{address}/agent/agent-01");
        println!("  JSON          http://{address}/api/calls");
        match &recorder {
            Some(r) => println!(
                "  recorded      http://{address}/recorded   (ended calls stored in {})",
                r.location()
            ),
            None => println!("  recorded      (calls are not stored)"),
        }
        if let Some(recordings) = &call_recordings {
            let policy = recordings.policy();
            println!(
                "  recordings    the calls of {} in {} (kept {} days)",
                policy.teams,
                policy.dir.display(),
                policy.retention_days
            );
        }
        println!("Press Ctrl-C to stop.");
        let settings = DemoSettings {
            calls,
            stagger: Duration::from_secs(3),
            pace: FeedPace { speed: args.speed },
            recorder: recorder.clone(),
            ..DemoSettings::default()
        };
        let demo = tokio::spawn(feeder::run_demo_loop(
            hub,
            Arc::new(recordings),
            setup.model.clone(),
            setup.rules.clone(),
            settings,
            |error| eprintln!("warning: a demo call failed: {error}"),
        ));
        // At the stop signal no new demo call starts; the service then drains its HTTP
        // connections and stores the ended calls still queued.
        let feeding = demo.abort_handle();
        let shutdown = async move {
            super::shutdown::drain_requested("demo", DEMO_DRAIN_BOUND).await;
            feeding.abort();
        };
        let app = service.http_router(ingest);
        let served = service.serve_http(listener, app, shutdown).await;
        demo.abort();
        let _ = demo.await;
        if let Some(recordings) = call_recordings {
            tokio::task::spawn_blocking(move || recordings.close(Duration::from_secs(10)))
                .await
                .ok();
        }
        served.context("the demo's server failed")
    })
}

/// Makes a fresh directory `attune-demo-<random>` under `parent` that only this user may enter
/// (mode 0700 on Unix), for the demo's default database: a fixed path in a shared temporary
/// folder could be pre-created or linked by another user. Creation fails if the name exists, so
/// a planted directory or symlink is never used; another random name is tried.
fn private_demo_dir(parent: &std::path::Path) -> anyhow::Result<PathBuf> {
    use std::hash::{BuildHasher, Hasher};
    let mut last = None;
    for attempt in 0..16u32 {
        // RandomState is seeded from the OS's randomness once per process; mixing in the
        // attempt, the pid and the clock gives a new name per try.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempt);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let dir = parent.join(format!("attune-demo-{:016x}", h.finish()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot create a private folder in {}: {e}",
                    parent.display()
                ));
            }
        }
    }
    Err(anyhow::anyhow!(
        "cannot create a private folder in {}: {}",
        parent.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

#[cfg(test)]
mod private_dir_tests {
    use super::private_demo_dir;

    #[test]
    fn demo_dir_is_fresh_private_and_random() {
        let parent = std::env::temp_dir();
        let a = private_demo_dir(&parent).unwrap();
        let b = private_demo_dir(&parent).unwrap();
        assert_ne!(a, b);
        assert!(
            a.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("attune-demo-")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{mode:o}");
        }
        std::fs::remove_dir(&a).unwrap();
        std::fs::remove_dir(&b).unwrap();
    }
}
