//! The HTTP listener's connections (console, JSON API, telephony WebSockets), served with
//! hyper directly because `axum::serve` has no timeouts and no connection cap (issue 17:
//! 1000 half-open connections stayed open indefinitely).
//!
//! - **Header timeout**: a request head must be complete within this time of the connection's
//!   start (after its TLS handshake, which has the same bound) or of the first byte of a
//!   following request on a keep-alive connection. The clock is not reset by bytes, so a
//!   trickle of one header byte every few seconds is closed when the time is up.
//! - **Idle timeout**: a keep-alive connection with no request in flight and no byte of a new
//!   one is closed after this time. A request being answered (an event stream, an upload
//!   being scored) is never idle; a connection upgraded to a WebSocket leaves these clocks
//!   (the telephony and console sockets have their own).
//! - **Connection cap**: at most `max_connections` connections are open at once, WebSockets
//!   included. At the cap the listener stops accepting: new connections wait in the kernel's
//!   accept queue (and are served as others close) instead of being refused; each time the
//!   cap is reached it is counted (`attune_http_connection_limit_waits_total`).
//!
//! Graceful shutdown: when `stop` completes the listener closes, idle connections close at
//! once, requests in flight are answered (keep-alive off), and [`serve`] returns when every
//! connection has ended. WebSocket upgrades work as with `axum::serve` (`with_upgrades`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::metrics::ServiceMetrics;
use crate::tls::PeerAddr;

/// Default time a request head (and a TLS handshake) may take.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a keep-alive connection may wait for its next request.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on open HTTP connections (WebSockets included).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The bounds of the HTTP listener's connections; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Counters of the HTTP listener (`attune_http_*` in `/metrics`).
#[derive(Debug, Default)]
pub struct HttpCounters {
    pub connections_accepted: AtomicU64,
    /// Open connections now (gauge), WebSockets included.
    pub connections_open: AtomicU64,
    /// The cap (gauge; 0 until the listener runs).
    pub connection_limit: AtomicU64,
    /// Times the listener found every slot taken and stopped accepting until one was freed.
    pub connection_limit_waits: AtomicU64,
    /// Connections closed because a request head (or TLS handshake) took too long.
    pub header_timeouts: AtomicU64,
    /// Keep-alive connections closed after the idle timeout.
    pub idle_timeouts: AtomicU64,
}

impl HttpCounters {
    /// `(name, kind, help, value)` of each counter, for the Prometheus rendering.
    pub fn rows(&self) -> [(&'static str, &'static str, &'static str, u64); 6] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            (
                "attune_http_connections_accepted_total",
                "counter",
                "HTTP connections accepted (console, API, telephony WebSockets).",
                get(&self.connections_accepted),
            ),
            (
                "attune_http_connections_open",
                "gauge",
                "HTTP connections open now, WebSockets included.",
                get(&self.connections_open),
            ),
            (
                "attune_http_connection_limit",
                "gauge",
                "Most HTTP connections open at once (--http-max-connections).",
                get(&self.connection_limit),
            ),
            (
                "attune_http_connection_limit_waits_total",
                "counter",
                "Times every HTTP connection slot was taken and new connections waited at accept.",
                get(&self.connection_limit_waits),
            ),
            (
                "attune_http_header_timeouts_total",
                "counter",
                "HTTP connections closed because a request head or TLS handshake took too long.",
                get(&self.header_timeouts),
            ),
            (
                "attune_http_idle_timeouts_total",
                "counter",
                "Idle keep-alive HTTP connections closed.",
                get(&self.idle_timeouts),
            ),
        ]
    }
}

/// Serves `router` on `listener` (TLS when `tls` is given) within `limits` until `stop`
/// completes and every connection has ended; see the module docs.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: HttpLimits,
    counters: Arc<ServiceMetrics>,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let cap = limits.max_connections.max(1);
    counters
        .http
        .connection_limit
        .store(cap as u64, Ordering::Relaxed);
    let slots = Arc::new(Semaphore::new(cap));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stopping_tx, stopping) = watch::channel(false);
    // Every connection task holds a receiver: the sender is closed when all have ended.
    let (alive_tx, alive) = watch::channel(());
    tokio::pin!(stop);
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                counters
                    .http
                    .connection_limit_waits
                    .fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut stop => break,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                ) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    eprintln!("attune: HTTP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = tcp.set_nodelay(true);
        let http = &counters.http;
        http.connections_accepted.fetch_add(1, Ordering::Relaxed);
        http.connections_open.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            _permit: permit,
            counters: counters.clone(),
        };
        let (router, acceptor, counters) = (router.clone(), acceptor.clone(), counters.clone());
        let (stopping, alive) = (stopping.clone(), alive.clone());
        tokio::spawn(async move {
            let _alive = alive;
            match acceptor {
                None => serve_connection(tcp, peer, router, limits, counters, slot, stopping).await,
                Some(acceptor) => {
                    // A failed or too slow handshake drops the client (plaintext to the TLS
                    // port ends here).
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(
                                stream, peer, router, limits, counters, slot, stopping,
                            )
                            .await;
                        }
                        Ok(Err(_)) => {}
                        Err(_) => {
                            counters
                                .http
                                .header_timeouts
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    drop(alive);
    alive_tx.closed().await;
    Ok(())
}

/// A connection slot: held by the connection's I/O (so by its WebSocket after an upgrade).
struct Slot {
    _permit: OwnedSemaphorePermit,
    counters: Arc<ServiceMetrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counters
            .http
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection is doing, for its timeouts.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A request head is expected or partly read: the header timeout runs.
    Head,
    /// Between requests, nothing of the next one yet: the idle timeout runs.
    Idle,
    /// Requests in flight (being handled or their responses sent): no timeout.
    Busy(usize),
}

struct Clock {
    state: Mutex<(Phase, Instant)>,
    changed: Notify,
}

impl Clock {
    fn new() -> Self {
        Self {
            state: Mutex::new((Phase::Head, Instant::now())),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Instant)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived.
    fn on_read(&self) {
        let mut state = self.lock();
        if matches!(state.0, Phase::Idle) {
            *state = (Phase::Head, Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A request head was read.
    fn begin(self: &Arc<Self>) -> RequestGuard {
        let mut state = self.lock();
        state.0 = match state.0 {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
        drop(state);
        self.changed.notify_one();
        RequestGuard(self.clone())
    }

    /// The response of a request was sent (or dropped).
    fn end(&self) {
        let mut state = self.lock();
        *state = match state.0 {
            Phase::Busy(n) if n > 1 => (Phase::Busy(n - 1), state.1),
            _ => (Phase::Idle, Instant::now()),
        };
        drop(state);
        self.changed.notify_one();
    }

    /// When the connection is to be closed, and whether it is the header timeout.
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, bool)> {
        let state = self.lock();
        match state.0 {
            Phase::Head => Some((state.1 + limits.header_timeout, true)),
            Phase::Idle => Some((state.1 + limits.idle_timeout, false)),
            Phase::Busy(_) => None,
        }
    }
}

struct RequestGuard(Arc<Clock>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    router: axum::Router,
    limits: HttpLimits,
    counters: Arc<ServiceMetrics>,
    slot: Slot,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Arc::new(Clock::new());
    let io = Tracked {
        inner: io,
        clock: clock.clone(),
        _slot: slot,
    };
    let service = ConnService {
        router,
        peer,
        clock: clock.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timeout is ours (hyper's would also cut keep-alive waits at that time).
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    let mut draining = false;
    loop {
        let deadline = clock.deadline(&limits);
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = expired => {
                if let Some((at, header)) = clock.deadline(&limits)
                    && at <= Instant::now()
                {
                    let http = &counters.http;
                    let counter = if header { &http.header_timeouts } else { &http.idle_timeouts };
                    counter.fetch_add(1, Ordering::Relaxed);
                    // Dropping the connection closes it.
                    return;
                }
            }
            () = clock.changed.notified() => {}
            () = &mut stopped, if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The connection's I/O: reads move its clock; it holds the connection's slot.
struct Tracked<I> {
    inner: I,
    clock: Arc<Clock>,
    _slot: Slot,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.on_read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router, called with the connection's peer address (`ConnectInfo<PeerAddr>`).
#[derive(Clone)]
struct ConnService {
    router: axum::Router,
    peer: SocketAddr,
    clock: Arc<Clock>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for ConnService {
    type Response = hyper::Response<TrackedBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let guard = self.clock.begin();
        req.extensions_mut()
            .insert(ConnectInfo(PeerAddr(self.peer)));
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = tower_service::Service::call(&mut router, req).await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// A response body that ends its request (for the idle clock) when it is sent or dropped.
struct TrackedBody {
    inner: axum::body::Body,
    _guard: RequestGuard,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
