//! `attune serve`: the live service (gRPC ingest/monitor + HTTP /healthz, /metrics).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;

use attune_qa::ScoringSetup;
use attune_service::grpc::SessionConfig;
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
    /// A call whose stream is silent this long, or whose audio lags wall time since its start
    /// by more than this (a trickle of tiny chunks), ends ("timeout"), seconds.
    #[arg(long, default_value_t = 30.0)]
    idle_timeout_s: f64,
    /// Audio may arrive at most this many times faster than real time (beyond
    /// --ingest-burst-s); faster streams are read more slowly (back-pressure). 0: not paced.
    #[arg(long, default_value_t = attune_service::session::DEFAULT_MAX_SPEED)]
    max_ingest_speed: f64,
    /// Audio a call may send ahead of the pace before it is held back, seconds.
    #[arg(long, default_value_t = attune_service::session::DEFAULT_BURST_S)]
    ingest_burst_s: f64,
    /// Messages per second one call may send (a burst of one second's worth); more are read
    /// more slowly. 0: unlimited.
    #[arg(long, default_value_t = attune_service::session::DEFAULT_MAX_MESSAGES_PER_S)]
    max_messages_per_s: f64,
    /// Live calls one API token may ingest at once (default: --max-calls); more are refused
    /// with RESOURCE_EXHAUSTED naming the limit.
    #[arg(long, value_name = "N")]
    max_calls_per_token: Option<usize>,
    /// Live calls one gRPC connection may carry at once (default: --max-calls).
    #[arg(long, value_name = "N")]
    max_calls_per_connection: Option<usize>,
    /// Live telephony calls (Twilio, AudioHook, AudioSocket) from one peer address at once
    /// (default: --max-calls).
    #[arg(long, value_name = "N")]
    max_calls_per_peer: Option<usize>,
    /// A new stream must declare its call within this time, seconds.
    #[arg(long, default_value_t = 10.0)]
    header_timeout_s: f64,
    /// On SIGTERM or SIGINT, stop accepting, end and store the live calls, then exit; past
    /// this many seconds (or at a second signal) exit at once, seconds.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout_s: f64,
    #[command(flatten)]
    http_edge: HttpEdgeArgs,
    /// Analysis threads (default: one per core).
    #[arg(long)]
    analysis_threads: Option<usize>,
    /// The store: accounts, API tokens and the audit log, and every live call at its end,
    /// scored with the default QA rubric (SQLite file, or postgres://... with the `postgres`
    /// feature); the console's Recorded calls page and its upload read it.
    #[arg(long, value_name = "PATH|URL", env = "ATTUNE_DB", default_value = super::accounts::DEFAULT_DB)]
    db: String,
    /// The CA (PEM) a postgres:// store's certificate must chain to (adds `sslrootcert` to
    /// --db; put `sslmode=verify-full` in the URL to check the host name too).
    #[arg(long, value_name = "FILE")]
    db_ca: Option<PathBuf>,
    /// Serve gRPC and HTTP over TLS with this certificate chain (PEM; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow plaintext on a non-loopback address (credentials and audio then cross the
    /// network unencrypted).
    #[arg(long)]
    insecure_plaintext: bool,
    /// Also serve /metrics without authentication on this address (for a scraper on a private
    /// interface); on the main HTTP address /metrics needs a monitor or api token.
    #[arg(long, value_name = "ADDR")]
    metrics_http: Option<String>,
    /// Accept Twilio and AudioHook streams without platform signatures. Otherwise a platform
    /// without credentials (--twilio-auth-tokens, --audiohook-keys) is refused.
    #[arg(long)]
    allow_unsigned_telephony: bool,
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
    /// The Attune ingest token AudioSocket calls are ingested as (the protocol carries no
    /// credentials); needed once the store has accounts or tokens. Its teams must include
    /// --audiosocket-team.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ATTUNE_AUDIOSOCKET_TOKEN",
        hide_env_values = true
    )]
    audiosocket_token: Option<String>,
    /// A telephony stream that sends no audio this long is closed ("timeout"), seconds.
    #[arg(long, default_value_t = 10.0)]
    no_media_timeout_s: f64,
    #[command(flatten)]
    recordings: RecordingArgs,
    /// Where ended calls wait (on disk, fsynced) until the database has them, and where the
    /// live calls are journaled (a call live when the service is killed is stored as
    /// interrupted at the next start). Default: `<db>.spool` beside a SQLite file; a
    /// PostgreSQL store has no spool unless one is given.
    #[arg(long, value_name = "DIR", env = "ATTUNE_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,
    /// Keep ended calls in memory only until stored (no spool, no live-call journal): a
    /// killed process loses the calls not yet stored.
    #[arg(long, conflicts_with = "spool_dir")]
    no_spool: bool,
    /// A store write that fails (database locked, full or unreachable) is tried again with
    /// backoff for this long; then the call stays spooled (or, with --no-spool, is given up as
    /// not stored), seconds.
    #[arg(long, default_value_t = attune_service::recorder::STORE_RETRY_WINDOW.as_secs_f64(), value_name = "SECS")]
    store_retry_s: f64,
    /// How often the calls left spooled by a failing store are tried again, seconds.
    #[arg(long, default_value_t = attune_service::recorder::STUCK_RETRY_EVERY.as_secs_f64(), value_name = "SECS")]
    store_retry_every_s: f64,
    /// Join a cluster over NATS JetStream: `nats://HOST:PORT[,nats://HOST:PORT...]` (build
    /// with `--features cluster`). Every node's console then sees every call of the cluster;
    /// use one PostgreSQL store for all (--db postgres://...).
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// This node's id in the cluster (default: the host name and the process id).
    #[arg(long, value_name = "ID", requires = "cluster")]
    node_id: Option<String>,
    /// A node whose heartbeat is older than this is gone: its calls end as interrupted on
    /// the other nodes, seconds.
    #[arg(long, default_value_t = 5.0, requires = "cluster")]
    node_timeout_s: f64,
    /// Copies of the cluster's stream and buckets (at most the number of NATS servers).
    #[arg(long, default_value_t = 1, requires = "cluster")]
    cluster_replicas: usize,
    /// Take recordings queued by `attune analyze --cluster` and score them into the store, one
    /// at a time (`--no-batch-scoring`: leave them to other nodes).
    #[arg(long, requires = "cluster")]
    no_batch_scoring: bool,
}

/// The HTTP edge's bounds (the options `attune serve` and `attune demo` share).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpEdgeArgs {
    /// An HTTP request head (and a TLS handshake) must arrive within this time of the
    /// connection's start or of its first byte; a slower client is disconnected, seconds.
    #[arg(long, default_value_t = 10.0)]
    http_header_timeout_s: f64,
    /// A keep-alive HTTP connection waiting this long for its next request is closed, seconds.
    #[arg(long, default_value_t = 60.0)]
    http_idle_timeout_s: f64,
    /// Most HTTP connections open at once (WebSockets included); more wait at accept until
    /// one closes.
    #[arg(long, default_value_t = attune_service::http_conn::DEFAULT_MAX_CONNECTIONS)]
    http_max_connections: usize,
}

impl HttpEdgeArgs {
    /// The validated limits of the HTTP listener.
    pub fn limits(&self) -> anyhow::Result<attune_service::http_conn::HttpLimits> {
        Ok(attune_service::http_conn::HttpLimits {
            header_timeout: seconds("http-header-timeout-s", self.http_header_timeout_s)?,
            idle_timeout: seconds("http-idle-timeout-s", self.http_idle_timeout_s)?,
            max_connections: self.http_max_connections.max(1),
        })
    }
}

/// Recording of calls (the options `attune serve` and `attune demo` share).
#[derive(Debug, Clone, clap::Args)]
pub struct RecordingArgs {
    /// Record the live calls (and keep the uploads' audio) of these teams as stereo WAV files
    /// (caller left, agent right): `TEAM[,TEAM...]`, or `*` for every team. Default: nothing
    /// is recorded.
    #[arg(long, value_name = "TEAM[,TEAM...]")]
    record_teams: Option<String>,
    /// Where recordings are kept. Default: beside the SQLite store, `<db file>.recordings/`;
    /// required with a PostgreSQL store.
    #[arg(long, value_name = "DIR")]
    recordings_dir: Option<PathBuf>,
    /// Days a recording is kept after its call ends (or its upload); older ones are deleted at
    /// start and then hourly.
    #[arg(long, value_name = "N", default_value_t = attune_service::recordings::DEFAULT_RETENTION_DAYS)]
    recording_retention_days: u32,
}

impl RecordingArgs {
    /// Whether any team's calls are to be recorded.
    pub fn records_any(&self) -> bool {
        self.record_teams.is_some()
    }

    /// The validated policy for the store at `db` (None: nothing to record or serve); checks
    /// the flags only, before anything is opened.
    pub fn policy(
        &self,
        db: &str,
    ) -> anyhow::Result<Option<attune_service::recordings::RecordingPolicy>> {
        Ok(attune_service::recordings::RecordingPolicy::from_flags(
            self.record_teams.as_deref(),
            self.recordings_dir.as_deref(),
            self.recording_retention_days,
            db,
        )?)
    }

    /// The recordings of the store at `db` (None: nothing to record or serve), opened: the
    /// folder made, the first retention sweep run and the hourly one started.
    pub fn open(
        &self,
        db: &str,
        metrics: &Arc<ServiceMetrics>,
    ) -> anyhow::Result<Option<Arc<attune_service::recordings::Recordings>>> {
        use attune_service::recordings::Recordings;
        let Some(policy) = self.policy(db)? else {
            return Ok(None);
        };
        let recordings = Recordings::open(policy, metrics.clone())?;
        recordings
            .start_sweeper()
            .context("cannot start the recordings' retention sweep")?;
        Ok(Some(recordings))
    }
}

fn telephony_state(signed: bool, unsigned_allowed: bool) -> &'static str {
    match (signed, unsigned_allowed) {
        (true, _) => "signatures checked",
        (false, true) => "signatures NOT checked",
        (false, false) => "off: give its credentials, or --allow-unsigned-telephony",
    }
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
        require_signatures: !args.allow_unsigned_telephony,
        audiosocket_agent_id: args.audiosocket_agent.clone(),
        audiosocket_team: args.audiosocket_team.clone(),
        audiosocket_token: args.audiosocket_token.clone(),
        no_media_timeout: seconds("no-media-timeout-s", args.no_media_timeout_s)?,
        ..IngestConfig::default()
    })
}

/// The ingest limits of `attune serve` (issue 17; see docs/operations.md, "Limits").
fn session_limits(args: &ServeArgs) -> anyhow::Result<attune_service::session::SessionLimits> {
    let off_if_zero = |name: &str, value: f64| -> anyhow::Result<f64> {
        if !(value.is_finite() && value >= 0.0) {
            bail!("--{name} must be a number >= 0, got {value}");
        }
        Ok(if value == 0.0 { f64::INFINITY } else { value })
    };
    let max_speed = off_if_zero("max-ingest-speed", args.max_ingest_speed)?;
    if max_speed < 1.0 {
        bail!(
            "--max-ingest-speed must be at least 1 (real time), or 0 to not pace; got {}",
            args.max_ingest_speed
        );
    }
    if !(args.ingest_burst_s.is_finite() && args.ingest_burst_s >= 0.0) {
        bail!(
            "--ingest-burst-s must be a number of seconds >= 0, got {}",
            args.ingest_burst_s
        );
    }
    let calls = |name: &str, value: Option<usize>| -> anyhow::Result<usize> {
        match value {
            Some(0) => bail!("--{name} must be at least 1"),
            Some(n) => Ok(n),
            None => Ok(args.max_calls),
        }
    };
    Ok(attune_service::session::SessionLimits {
        max_speed,
        burst_s: args.ingest_burst_s,
        max_messages_per_s: off_if_zero("max-messages-per-s", args.max_messages_per_s)?,
        max_calls_per_token: calls("max-calls-per-token", args.max_calls_per_token)?,
        max_calls_per_connection: calls("max-calls-per-connection", args.max_calls_per_connection)?,
        max_calls_per_peer: calls("max-calls-per-peer", args.max_calls_per_peer)?,
        ..attune_service::session::SessionLimits::default()
    })
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{name} must be a number of seconds > 0, got {value}"))
}

/// The gate of a served store: accounts and tokens from it, cookies `Secure` under TLS.
pub fn enforcing_gate(
    location: &str,
    secure_cookies: bool,
) -> anyhow::Result<Arc<attune_service::auth::Gate>> {
    use attune_service::auth::{Gate, GateConfig, StoreIdentities};
    let store = attune_qa::store::Store::open(location)
        .with_context(|| format!("cannot open the store {location}"))?;
    Ok(Arc::new(Gate::new(
        Arc::new(StoreIdentities::new(store)),
        GateConfig {
            secure_cookies,
            ..GateConfig::default()
        },
    )))
}

/// Refuses plaintext on an address other hosts can reach, unless told to.
pub fn check_plaintext(
    what: &str,
    addr: std::net::SocketAddr,
    tls: bool,
    insecure_plaintext: bool,
) -> anyhow::Result<()> {
    if !tls && !insecure_plaintext && !addr.ip().is_loopback() {
        bail!(
            "refusing to serve {what} in plaintext on {addr}: give --tls-cert FILE --tls-key FILE, \
             or --insecure-plaintext if the network is private"
        );
    }
    Ok(())
}

impl ServeArgs {
    /// Folds `--db-ca` into `--db` (as `sslrootcert`), once, before anything opens the store.
    pub fn resolve_db_ca(&mut self) -> anyhow::Result<()> {
        if let Some(ca) = self.db_ca.take() {
            self.db = super::accounts::db_location(&self.db, Some(&ca))?;
        }
        Ok(())
    }
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    // The model and cue rules live calls are analysed with are the ones they are scored with.
    let setup = Arc::new(
        ScoringSetup::load(args.model.as_deref(), args.rules.as_deref(), None, 0)
            .context("cannot load the emotion model or the cue rules")?,
    );
    let metrics = Arc::new(ServiceMetrics::default());
    // Bad recording flags are named before anything is opened.
    args.recordings.policy(&args.db)?;
    let mut store = attune_qa::store::Store::open(&args.db)
        .with_context(|| format!("cannot open the store {}", args.db))?;
    check_store_integrity(&mut store)?;
    let spool = open_spool(args)?;
    let recordings = args.recordings.open(&args.db, &metrics)?;
    let retry = attune_service::recorder::StoreRetry {
        window: seconds("store-retry-s", args.store_retry_s)?,
        stuck_every: seconds("store-retry-every-s", args.store_retry_every_s)?,
    };
    let mut recorder =
        CallRecorder::start_with_retry(store, setup.clone(), metrics.clone(), spool, retry)?;
    if let Some(recordings) = &recordings {
        recorder = recorder.with_recordings(recordings.clone());
    }
    let recorder = Some(Arc::new(recorder));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(attune_service::tls::TlsFiles {
            cert_pem: std::fs::read(cert)
                .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?,
            key_pem: std::fs::read(key)
                .with_context(|| format!("cannot read --tls-key {}", key.display()))?,
        }),
        _ => None,
    };
    if let Some(tls) = &tls {
        // A bad certificate or key is named now, not at the first connection.
        tls.server_config()?;
    }
    let gate = enforcing_gate(&args.db, tls.is_some())?;
    {
        let mut store = attune_qa::store::Store::open(&args.db)?;
        if store.users()?.is_empty() && store.tokens()?.is_empty() {
            eprintln!(
                "attune serve: no accounts or tokens yet in {}: add one with\n  attune users add NAME --role admin --password-stdin --db {}\n  attune tokens create --role ingest --db {}",
                args.db, args.db, args.db
            );
        }
    }
    let mut config = ServerConfig {
        max_calls: args.max_calls,
        session: SessionConfig {
            idle_timeout: seconds("idle-timeout-s", args.idle_timeout_s)?,
            header_timeout: seconds("header-timeout-s", args.header_timeout_s)?,
            limits: session_limits(args)?,
            ..SessionConfig::default()
        },
        gate,
        tls: tls.clone(),
        http: args.http_edge.limits()?,
        ..ServerConfig::default()
    };
    if let Some(threads) = args.analysis_threads {
        config.analysis_threads = threads.max(1);
    }
    let ingest = Arc::new(ingest_config(args)?);
    let drain_bound = seconds("drain-timeout-s", args.drain_timeout_s)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async {
        let grpc = tokio::net::TcpListener::bind(&args.grpc)
            .await
            .with_context(|| format!("cannot listen on {} (gRPC)", args.grpc))?;
        let http = tokio::net::TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("cannot listen on {} (HTTP)", args.http))?;
        check_plaintext("gRPC", grpc.local_addr()?, tls.is_some(), args.insecure_plaintext)?;
        check_plaintext("HTTP", http.local_addr()?, tls.is_some(), args.insecure_plaintext)?;
        eprintln!(
            "attune serve: gRPC on {}, HTTP on {} (max {} calls, {} analysis threads); SIGTERM or Ctrl-C drains and stops",
            grpc.local_addr()?,
            http.local_addr()?,
            config.max_calls,
            config.analysis_threads
        );
        let audiosocket = match &args.audiosocket {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (AudioSocket)"))?;
                // AudioSocket has neither TLS nor credentials.
                check_plaintext("AudioSocket", listener.local_addr()?, false, args.insecure_plaintext)?;
                Some(listener)
            }
        };
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        eprintln!(
            "attune serve: telephony: {scheme}://{}/ingest/twilio ({}), {scheme}://{}/ingest/audiohook ({}){}",
            http.local_addr()?,
            telephony_state(!ingest.twilio_auth_tokens.is_empty(), args.allow_unsigned_telephony),
            http.local_addr()?,
            telephony_state(!ingest.audiohook_keys.is_empty(), args.allow_unsigned_telephony),
            match &audiosocket {
                Some(l) => format!(", AudioSocket on {} (no authentication)", l.local_addr()?),
                None => String::new(),
            }
        );
        if let Some(recorder) = &recorder {
            eprintln!("attune serve: storing ended calls in {}", recorder.location());
            match recorder.spool() {
                Some(spool) => eprintln!(
                    "attune serve: ended calls are spooled in {} until stored; live calls are journaled there",
                    spool.dir().display()
                ),
                None => eprintln!(
                    "attune serve: no spool: ended calls wait for the store in memory only (lost if the process is killed)"
                ),
            }
            if let Some(recordings) = recorder.recordings() {
                let policy = recordings.policy();
                eprintln!(
                    "attune serve: recording the calls of {} in {} (kept {} days)",
                    policy.teams,
                    policy.dir.display(),
                    policy.retention_days
                );
            }
        }
        let service = Service::with_recorder(
            config,
            setup.rules.clone(),
            setup.model.clone(),
            recorder.clone().map(|r| (r, metrics.clone())),
        )?;
        if let Some(recorder) = &recorder {
            recorder
                .journal_live_calls(&service.app_state().hub)
                .context("cannot start the journal of live calls")?;
        }
        join_cluster(args, &service, recorder.clone()).await?;
        // /healthz and /metrics, the supervisor console, the agent view and the recorded calls;
        // each telephony route refuses unsigned upgrades unless allowed (telephony_state).
        let app = service.http_router(ingest.clone());
        if let Some(addr) = &args.metrics_http {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (metrics)"))?;
            eprintln!("attune serve: /metrics without authentication on {}", listener.local_addr()?);
            attune_service::http::spawn_metrics_only(listener, service.app_state());
        }
        if let Some(listener) = audiosocket {
            service.spawn_audiosocket(listener, ingest.clone());
        }
        service
            .serve(grpc, http, app, super::shutdown::drain_requested("serve", drain_bound))
            .await?;
        anyhow::Ok(())
    });
    // Calls cut off by the runtime's end finish their recordings too.
    drop(runtime);
    if let Some(recordings) = recordings
        && !recordings.close(Duration::from_secs(10))
    {
        eprintln!("attune serve: some recordings were not finished (left as .wav.part)");
    }
    served
}

/// SQLite files up to this size get the thorough `integrity_check` at startup; larger ones the
/// quicker `quick_check`.
const FULL_CHECK_MAX_BYTES: u64 = 256 << 20;

/// Checks the store's file before serving (SQLite; nothing to do on PostgreSQL): a damaged
/// file is refused, naming the problems.
fn check_store_integrity(store: &mut attune_qa::store::Store) -> anyhow::Result<()> {
    let full = store
        .sqlite_file_bytes()
        .is_some_and(|b| b <= FULL_CHECK_MAX_BYTES);
    let started = std::time::Instant::now();
    let problems = store
        .check_integrity(full)
        .with_context(|| format!("cannot check the store {}", store.location()))?;
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(10).map(String::as_str).collect();
        bail!(
            "the store {} failed its integrity check ({} problems): {}\nrestore it from a backup, or recover it with `sqlite3 {} .recover`",
            store.location(),
            problems.len(),
            shown.join("; "),
            store.location()
        );
    }
    if store.sqlite_file_bytes().is_some() {
        eprintln!(
            "attune serve: store {}: {} ok ({:.2} s)",
            store.location(),
            if full {
                "integrity_check"
            } else {
                "quick_check"
            },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The spool of ended calls: `--spool-dir`, or `<db>.spool` beside a SQLite store.
fn open_spool(args: &ServeArgs) -> anyhow::Result<Option<attune_service::spool::Spool>> {
    if args.no_spool {
        return Ok(None);
    }
    let Some(dir) = args
        .spool_dir
        .clone()
        .or_else(|| attune_service::spool::default_dir(&args.db))
    else {
        eprintln!(
            "attune serve: no spool for a database URL: give --spool-dir DIR so that ended calls survive a killed process"
        );
        return Ok(None);
    };
    let spool = attune_service::spool::Spool::open(&dir)
        .with_context(|| format!("cannot open the spool {}", dir.display()))?;
    Ok(Some(spool))
}

/// Joins the cluster when `--cluster` is given.
#[cfg(feature = "cluster")]
async fn join_cluster(
    args: &ServeArgs,
    service: &Service,
    recorder: Option<Arc<CallRecorder>>,
) -> anyhow::Result<()> {
    let Some(servers) = &args.cluster else {
        return Ok(());
    };
    let node_id = match &args.node_id {
        Some(id) => id.clone(),
        None => default_node_id(),
    };
    let mut config = attune_service::cluster::ClusterConfig::new(servers, &node_id)?;
    if !(args.node_timeout_s.is_finite() && args.node_timeout_s >= 1.0) {
        bail!(
            "--node-timeout-s must be at least 1, got {}",
            args.node_timeout_s
        );
    }
    config.node_timeout = Duration::from_secs_f64(args.node_timeout_s);
    config.heartbeat = (config.node_timeout / 5).max(Duration::from_millis(200));
    config.replicas = args.cluster_replicas.clamp(1, 5);
    let cluster = attune_service::cluster::Cluster::join(
        config,
        service.hub.clone(),
        service.metrics.cluster.clone(),
    )
    .await?;
    eprintln!(
        "attune serve: cluster node {} on {} (peers gone after {:.1} s)",
        cluster.config.node_id,
        cluster.config.servers.join(","),
        cluster.config.node_timeout.as_secs_f64()
    );
    if let Some(recorder) = recorder.filter(|_| !args.no_batch_scoring) {
        attune_service::backlog::spawn_scorer(
            cluster.client(),
            cluster.config.replicas,
            recorder,
            service.metrics.cluster.clone(),
        );
        eprintln!(
            "attune serve: scoring recordings queued on the cluster (attune analyze --cluster)"
        );
    }
    Ok(())
}

#[cfg(feature = "cluster")]
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let host = if host.is_empty() {
        "node".to_owned()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

#[cfg(not(feature = "cluster"))]
async fn join_cluster(
    args: &ServeArgs,
    _service: &Service,
    _recorder: Option<Arc<CallRecorder>>,
) -> anyhow::Result<()> {
    let _ = (
        &args.node_id,
        args.node_timeout_s,
        args.cluster_replicas,
        args.no_batch_scoring,
    );
    if args.cluster.is_some() {
        bail!(
            "this build has no cluster support: build with `cargo build --release --features cluster`"
        );
    }
    Ok(())
}
