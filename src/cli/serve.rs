//! `attune serve`: the live service (gRPC ingest/monitor + HTTP /healthz, /metrics).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use attune_qa::ScoringSetup;
use attune_service::grpc::SessionConfig;
use attune_service::http::router;
use attune_service::metrics::ServiceMetrics;
use attune_service::recorder::CallRecorder;
use attune_service::server::{ServerConfig, Service};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// gRPC listen address (ingest and monitor streams).
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc: String,
    /// HTTP listen address (/healthz, /metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
    /// Cue rules (TOML); default: the shipped rules/cues.toml.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Most live calls at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 2000)]
    max_calls: usize,
    /// Emotion model file (JSON from `attune train`); the shipped model, embedded in the
    /// binary, when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// A call whose stream is silent this long ends ("timeout"), seconds.
    #[arg(long, default_value_t = 30.0)]
    idle_timeout_s: f64,
    /// A new stream must declare its call within this time, seconds.
    #[arg(long, default_value_t = 10.0)]
    header_timeout_s: f64,
    /// Analysis threads (default: one per core).
    #[arg(long)]
    analysis_threads: Option<usize>,
    /// Store every live call at its end, scored with the default QA rubric (SQLite file, or
    /// postgres://... with the `postgres` feature); also enables the console's Recorded calls
    /// page and its upload. Default: calls are not stored.
    #[arg(long, value_name = "PATH|URL")]
    db: Option<String>,
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{name} must be a number of seconds > 0, got {value}"))
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    // The model and cue rules live calls are analysed with are the ones they are scored with.
    let setup = Arc::new(
        ScoringSetup::load(args.model.as_deref(), args.rules.as_deref(), None, 0)
            .context("cannot load the emotion model or the cue rules")?,
    );
    let metrics = Arc::new(ServiceMetrics::default());
    let recorder = match &args.db {
        None => None,
        Some(location) => {
            let store = attune_qa::store::Store::open(location)?;
            Some(Arc::new(CallRecorder::start(
                store,
                setup.clone(),
                metrics.clone(),
            )?))
        }
    };
    let mut config = ServerConfig {
        max_calls: args.max_calls,
        session: SessionConfig {
            idle_timeout: seconds("idle-timeout-s", args.idle_timeout_s)?,
            header_timeout: seconds("header-timeout-s", args.header_timeout_s)?,
            ..SessionConfig::default()
        },
        ..ServerConfig::default()
    };
    if let Some(threads) = args.analysis_threads {
        config.analysis_threads = threads.max(1);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let grpc = tokio::net::TcpListener::bind(&args.grpc)
            .await
            .with_context(|| format!("cannot listen on {} (gRPC)", args.grpc))?;
        let http = tokio::net::TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("cannot listen on {} (HTTP)", args.http))?;
        eprintln!(
            "attune serve: gRPC on {}, HTTP on {} (max {} calls, {} analysis threads); Ctrl-C stops",
            grpc.local_addr()?,
            http.local_addr()?,
            config.max_calls,
            config.analysis_threads
        );
        if let Some(recorder) = &recorder {
            eprintln!("attune serve: storing ended calls in {}", recorder.location());
        }
        let service = Service::with_recorder(
            config,
            setup.rules.clone(),
            setup.model.clone(),
            recorder.clone().map(|r| (r, metrics.clone())),
        )?;
        // /healthz and /metrics, plus the supervisor console, the agent view and the
        // recorded calls.
        let console = attune_service::console::routes(
            service.app_state().hub,
            attune_service::console::StopSignal::from_receiver(service.stop_signal()),
            recorder,
        );
        let app = router(service.app_state()).merge(console);
        service
            .serve(grpc, http, app, async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("attune serve: shutting down (ending live calls)");
            })
            .await?;
        anyhow::Ok(())
    })
}
