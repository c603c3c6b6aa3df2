//! Runs the service: the gRPC server (`LiveCalls`) and the HTTP server on already-bound
//! listeners, until a shutdown signal; then every live call ends (reason "shutdown", with its
//! summary) and both servers drain.
//!
//! The composition root of every command that serves (`attune serve`, `attune demo`, the
//! tests): [`Service::with_recorder`] builds the hub, the analysis pool and the shared state;
//! [`Service::http_router`] is the one HTTP application (health and metrics, the console, the
//! telephony routes); [`Service::serve`] (gRPC and HTTP) or [`Service::serve_http`] (HTTP
//! alone, for calls fed in this process) serves it through the HTTP edge
//! ([`super::http_conn`]: timeouts, connection cap) and drains it at the shutdown signal.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use attune_core::cues::CueRules;
use attune_core::model::emotion::EmotionModel;

use super::analysis::AnalysisPool;
use super::auth::Gate;
use super::grpc::{LiveCallsService, SessionConfig, Shared};
use super::http::AppState;
use super::hub::{Hub, SUBSCRIBER_BUFFER_EVENTS};
use super::ingest::IngestConfig;
use super::metrics::ServiceMetrics;
use super::pb::live_calls_server::LiveCallsServer;
use super::recorder::CallRecorder;

/// Largest gRPC message accepted, bytes (a chunk of 1 s of 48 kHz stereo F32 is 384 kB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// HTTP/2 streams a connection may open beyond `max_calls` (Monitor subscriptions).
const MONITOR_STREAMS_PER_CONNECTION: usize = 64;

/// How long a stopping service waits for the recordings of its ended calls to be finished.
const RECORDINGS_DRAIN_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// Settings of the whole service.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_calls: usize,
    pub session: SessionConfig,
    /// Analysis threads (the CPU work); default: one per core.
    pub analysis_threads: usize,
    pub max_message_bytes: usize,
    /// Events a monitor may fall behind the hub before it lags.
    pub subscriber_buffer_events: usize,
    /// Who may ingest, monitor and use the console ([`Gate::disabled`] by default, for library
    /// tests of other features; `attune serve` always passes an enforcing gate).
    pub gate: Arc<Gate>,
    /// Serve gRPC and HTTP over TLS with this certificate (None: plaintext).
    pub tls: Option<super::tls::TlsFiles>,
    /// Timeouts and connection cap of the HTTP listener.
    pub http: super::http_conn::HttpLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_calls: 2000,
            session: SessionConfig::default(),
            analysis_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            subscriber_buffer_events: SUBSCRIBER_BUFFER_EVENTS,
            gate: Arc::new(Gate::disabled()),
            tls: None,
            http: super::http_conn::HttpLimits::default(),
        }
    }
}

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] super::tls::TlsError),
}

/// A configured service: its hub and counters are reachable while it runs.
pub struct Service {
    pub hub: Arc<Hub>,
    pub metrics: Arc<ServiceMetrics>,
    config: ServerConfig,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Service {
    pub fn new(
        config: ServerConfig,
        rules: CueRules,
        model: Arc<EmotionModel>,
    ) -> std::io::Result<Self> {
        Self::with_recorder(config, rules, model, None)
    }

    /// As [`Self::new`], saving every ended call through `recorder` (scored with its rubric).
    /// The recorder's metrics should be this service's ([`Self::metrics`] is then taken from
    /// it, so `/metrics` counts store errors).
    pub fn with_recorder(
        config: ServerConfig,
        rules: CueRules,
        model: Arc<EmotionModel>,
        recorder: Option<(Arc<CallRecorder>, Arc<ServiceMetrics>)>,
    ) -> std::io::Result<Self> {
        let hub = Arc::new(Hub::with_subscriber_buffer(
            config.max_calls,
            config.subscriber_buffer_events,
        ));
        hub.set_take_a_moment_rule(rules.agent_take_a_moment);
        let (recorder, metrics) = match recorder {
            Some((recorder, metrics)) => (Some(recorder), metrics),
            None => (None, Arc::new(ServiceMetrics::default())),
        };
        let pool = Arc::new(AnalysisPool::new(config.analysis_threads, metrics.clone())?);
        let (stop, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            hub: hub.clone(),
            metrics: metrics.clone(),
            pool,
            config: config.session.clone(),
            rules,
            model,
            shutdown,
            recorder,
            gate: config.gate.clone(),
            limiter: crate::limits::CallLimiter::new(config.session.limits, metrics.clone()),
        });
        Ok(Self {
            hub,
            metrics,
            config,
            shared,
            stop,
        })
    }

    /// Fires when the service begins to shut down (for routes with long-lived responses, e.g.
    /// the console's event streams).
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// The HTTP state (for merging more routes into [`router`]).
    pub fn app_state(&self) -> AppState {
        AppState {
            hub: self.hub.clone(),
            metrics: self.metrics.clone(),
            gate: self.config.gate.clone(),
        }
    }

    /// The telephony WebSocket routes (`/ingest/twilio`, `/ingest/audiohook`), to merge into
    /// the HTTP router.
    pub fn ingest_routes(&self, config: Arc<IngestConfig>) -> axum::Router {
        super::ingest::routes(self.shared.clone(), config)
    }

    /// Accepts Asterisk AudioSocket connections on `listener` (until the service stops).
    pub fn spawn_audiosocket(&self, listener: TcpListener, config: Arc<IngestConfig>) {
        tokio::spawn(super::ingest::audiosocket::serve(
            listener,
            self.shared.clone(),
            config,
        ));
    }

    /// The service's HTTP application, as every command serves it: `/healthz` and `/metrics`,
    /// the console under the service's gate (with the recorded calls when it stores calls;
    /// its event streams end at the shutdown signal), the telephony routes with `ingest`'s
    /// settings, and `Strict-Transport-Security` under TLS. Merge more routes into it, or
    /// serve it as it is.
    pub fn http_router(&self, ingest: Arc<IngestConfig>) -> axum::Router {
        let console = super::console::routes(
            self.hub.clone(),
            super::console::StopSignal::from_receiver(self.stop_signal()),
            self.shared.recorder.clone(),
            self.config.gate.clone(),
        );
        let app = super::http::router(self.app_state())
            .merge(console)
            .merge(self.ingest_routes(ingest));
        if self.config.tls.is_some() {
            super::http::with_hsts(app)
        } else {
            app
        }
    }

    /// Serves gRPC on `grpc` and `http_router` on `http` until `shutdown` completes.
    pub async fn serve(
        self,
        grpc: TcpListener,
        http: TcpListener,
        http_router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.run(Some(grpc), http, http_router, shutdown).await
    }

    /// Serves `http_router` on `http` alone, without gRPC ingest (the demo, whose calls are fed
    /// into the hub in this process), with the same HTTP edge, stop signal and drain as
    /// [`Self::serve`].
    pub async fn serve_http(
        self,
        http: TcpListener,
        http_router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.run(None, http, http_router, shutdown).await
    }

    async fn run(
        self,
        grpc: Option<TcpListener>,
        http: TcpListener,
        http_router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let service = LiveCallsServer::new(LiveCallsService::new(self.shared.clone()))
            .max_decoding_message_size(self.config.max_message_bytes)
            .max_encoding_message_size(64 << 20);
        let mut stopped = self.stop.subscribe();
        let grpc_stopped = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let mut stopped = self.stop.subscribe();
        let http_stopped = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let router = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(20)))
            // One connection may carry every call the server accepts plus a few monitors, and
            // no more: streams that never declare a call are also bounded by the header timeout.
            .max_concurrent_streams(Some(
                u32::try_from(
                    self.config
                        .max_calls
                        .saturating_add(MONITOR_STREAMS_PER_CONNECTION),
                )
                .unwrap_or(u32::MAX),
            ))
            .add_service(service);
        let grpc_tls = match &self.config.tls {
            Some(tls) => Some(tls.grpc_server_config()?),
            None => None,
        };
        type GrpcServing =
            std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;
        let grpc_server = grpc.map(|grpc| -> GrpcServing {
            match grpc_tls {
                // TLS accepted here, over buffered reads (see `tls`), not by tonic.
                Some(config) => Box::pin(router.serve_with_incoming_shutdown(
                    super::tls::grpc_incoming(grpc, config),
                    grpc_stopped,
                )),
                None => Box::pin(router.serve_with_incoming_shutdown(
                    // Small messages (acks, cues) must not wait for Nagle's algorithm: with many
                    // calls on one connection it held them for the peer's delayed ACK (~20 ms at
                    // p50 under load). tonic sets this only on listeners it binds itself.
                    TcpListenerStream::new(grpc).map(|accepted| {
                        accepted.and_then(|stream| stream.set_nodelay(true).map(|()| stream))
                    }),
                    grpc_stopped,
                )),
            }
        });
        let grpc_server = async move {
            match grpc_server {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let http_tls = self.config.tls.clone();
        let (http_limits, metrics) = (self.config.http, self.metrics.clone());
        let http_server = async move {
            let tls = match &http_tls {
                Some(tls) => Some(tls.server_config()?),
                None => None,
            };
            super::http_conn::serve(http, http_router, tls, http_limits, metrics, http_stopped)
                .await?;
            Ok::<(), ServeError>(())
        };
        let stop = self.stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let (grpc_result, http_result) = tokio::join!(grpc_server, http_server);
        self.shared.pool.shutdown();
        if let Some(recorder) = &self.shared.recorder {
            // Ended calls still queued are saved before the service returns.
            recorder.close();
            // So are the recordings of the calls that ended (bounded: a stuck disk must not
            // hold the shutdown forever).
            if let Some(recordings) = recorder.recordings().cloned() {
                let finished = tokio::task::spawn_blocking(move || {
                    recordings.wait_idle(RECORDINGS_DRAIN_BOUND)
                })
                .await
                .unwrap_or(false);
                if !finished {
                    eprintln!(
                        "attune: some recordings were not finished within {} s of the shutdown (left as .wav.part)",
                        RECORDINGS_DRAIN_BOUND.as_secs()
                    );
                }
            }
        }
        grpc_result?;
        http_result?;
        Ok(())
    }
}
