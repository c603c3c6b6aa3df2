//! `attune serve`: the live service (gRPC ingest/monitor + HTTP /healthz, /metrics).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;

use attune_qa::ScoringSetup;
use attune_service::grpc::SessionConfig;
use attune_service::http::router;
use attune_service::ingest::IngestConfig;
use attune_service::ingest::twilio::Track;
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
    /// Twilio auth tokens, one a line: `/ingest/twilio` then requires a valid
    /// X-Twilio-Signature (closed with 1008 otherwise). Default: signatures are not checked.
    #[arg(long, value_name = "FILE")]
    twilio_auth_tokens: Option<PathBuf>,
    /// Which Twilio track is the agent (the other is the caller).
    #[arg(long, value_enum, default_value_t = AgentTrack::Outbound)]
    twilio_agent_track: AgentTrack,
    /// The public base URL platforms connect to (e.g. wss://attune.example.com), to check
    /// Twilio signatures behind a proxy. Default: wss:// and the request's Host.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// AudioHook credentials, one `API_KEY CLIENT_SECRET` (base64, as Genesys shows it) a line:
    /// `/ingest/audiohook` then requires X-API-KEY and a valid HTTP message signature.
    /// Default: not checked.
    #[arg(long, value_name = "FILE")]
    audiohook_keys: Option<PathBuf>,
    /// Accept Asterisk AudioSocket connections on this TCP address. AudioSocket has no
    /// authentication: keep it on loopback or a private interface.
    #[arg(long, value_name = "ADDR")]
    audiosocket: Option<String>,
    /// Agent id of AudioSocket calls (the protocol carries none).
    #[arg(long, default_value = "unknown")]
    audiosocket_agent: String,
    /// Team of AudioSocket calls.
    #[arg(long, default_value = "default")]
    audiosocket_team: String,
    /// A telephony stream that sends no audio this long is closed ("timeout"), seconds.
    #[arg(long, default_value_t = 10.0)]
    no_media_timeout_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentTrack {
    Inbound,
    Outbound,
}

/// The telephony adapters' settings from the flags (secrets read from files).
fn ingest_config(args: &ServeArgs) -> anyhow::Result<IngestConfig> {
    let read = |path: &PathBuf| -> anyhow::Result<Vec<String>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    };
    let twilio_auth_tokens = match &args.twilio_auth_tokens {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    let mut audiohook_keys = Vec::new();
    if let Some(path) = &args.audiohook_keys {
        for (i, line) in read(path)?.iter().enumerate() {
            let mut parts = line.split_whitespace();
            let (Some(key), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
                bail!(
                    "{}: line {}: expected `API_KEY CLIENT_SECRET`",
                    path.display(),
                    i + 1
                );
            };
            let secret = base64::engine::general_purpose::STANDARD
                .decode(secret)
                .with_context(|| {
                    format!(
                        "{}: line {}: the client secret is not base64",
                        path.display(),
                        i + 1
                    )
                })?;
            audiohook_keys.push((key.to_owned(), secret));
        }
    }
    Ok(IngestConfig {
        twilio_auth_tokens,
        public_base_url: args.public_url.clone(),
        twilio_agent_track: match args.twilio_agent_track {
            AgentTrack::Inbound => Track::Inbound,
            AgentTrack::Outbound => Track::Outbound,
        },
        audiohook_keys,
        audiosocket_agent_id: args.audiosocket_agent.clone(),
        audiosocket_team: args.audiosocket_team.clone(),
        no_media_timeout: seconds("no-media-timeout-s", args.no_media_timeout_s)?,
        ..IngestConfig::default()
    })
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
    let ingest = Arc::new(ingest_config(args)?);
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
        let audiosocket = match &args.audiosocket {
            None => None,
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (AudioSocket)"))?,
            ),
        };
        eprintln!(
            "attune serve: telephony: ws://{}/ingest/twilio (signatures {}), ws://{}/ingest/audiohook (signatures {}){}",
            http.local_addr()?,
            if ingest.twilio_auth_tokens.is_empty() { "NOT checked" } else { "checked" },
            http.local_addr()?,
            if ingest.audiohook_keys.is_empty() { "NOT checked" } else { "checked" },
            match &audiosocket {
                Some(l) => format!(", AudioSocket on {} (no authentication)", l.local_addr()?),
                None => String::new(),
            }
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
        let app = router(service.app_state())
            .merge(console)
            .merge(service.ingest_routes(ingest.clone()));
        if let Some(listener) = audiosocket {
            service.spawn_audiosocket(listener, ingest.clone());
        }
        service
            .serve(grpc, http, app, async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("attune serve: shutting down (ending live calls)");
            })
            .await?;
        anyhow::Ok(())
    })
}
