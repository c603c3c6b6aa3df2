//! Ingest limits shared by every ingest path (gRPC and the telephony adapters, through the
//! session core: [`super::grpc`] and [`super::ingest::LiveCall`]), issue 17.
//!
//! - **Trickle-proof idle timeout** ([`CallPace::idle_deadline_s`]): a call ends ("timeout")
//!   once the audio it has received lags wall time since its start by more than the idle
//!   timeout (`--idle-timeout-s`, 30 s): it ends at `start + audio_s + idle_timeout`. Sending
//!   messages does not keep a call alive, only audio time does; telephony silence frames carry
//!   audio time, so a quiet party never trips it. One 10 ms chunk every 25 s buys 10 ms: such
//!   a call ends 30 s after it starts. (The old rule, no message at all for the idle timeout,
//!   still applies too.)
//! - **Pacing** ([`CallPace::pace_wait_s`]): audio may run ahead of wall time by at most
//!   `max_speed × wall + burst_s` (2× and 10 s by default, `--max-ingest-speed`,
//!   `--ingest-burst-s`). Beyond, the server stops reading the call's stream until the pace
//!   allows the audio received (back-pressure: nothing is dropped), counted in `/metrics`.
//! - **Message rate** ([`CallPace::message_wait_s`]): a token bucket of `max_messages_per_s`
//!   (200/s, burst one second's worth) per call; beyond, reading waits (back-pressure).
//! - **Concurrent calls** ([`CallLimiter`]): per token (principal), per gRPC connection and
//!   per peer address (telephony WebSockets and AudioSocket); over a limit the call is refused
//!   (`RESOURCE_EXHAUSTED`, WebSocket close 1008) with the limit named.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::metrics::ServiceMetrics;
use super::session::SessionLimits;

/// The pure pacing and idle arithmetic of one call: times are seconds since the call started.
#[derive(Debug, Clone)]
pub struct CallPace {
    max_speed: f64,
    burst_s: f64,
    max_messages_per_s: f64,
    /// Audio time received, seconds.
    audio_s: f64,
    /// Message tokens left (may go negative: then the reader waits).
    tokens: f64,
    tokens_at_s: f64,
}

impl CallPace {
    pub fn new(limits: &SessionLimits) -> Self {
        let rate = limits.max_messages_per_s;
        Self {
            max_speed: limits.max_speed,
            burst_s: limits.burst_s.max(0.0),
            max_messages_per_s: rate,
            audio_s: 0.0,
            tokens: rate.max(1.0),
            tokens_at_s: 0.0,
        }
    }

    /// Audio time received so far, seconds.
    pub fn audio_s(&self) -> f64 {
        self.audio_s
    }

    /// Notes `secs` more audio received.
    pub fn add_audio(&mut self, secs: f64) {
        if secs.is_finite() && secs > 0.0 {
            self.audio_s += secs;
        }
    }

    /// How long, from `now_s`, reading must wait for the audio received to be within the pace
    /// (`audio_s <= max_speed * t + burst_s`); 0 when within it or pacing is off.
    pub fn pace_wait_s(&self, now_s: f64) -> f64 {
        if !(self.max_speed.is_finite() && self.max_speed > 0.0) {
            return 0.0;
        }
        ((self.audio_s - self.burst_s) / self.max_speed - now_s).max(0.0)
    }

    /// Takes one message from the call's bucket at `now_s`; returns how long reading must wait
    /// before the next message (0 within the rate, or when the rate is unlimited).
    pub fn message_wait_s(&mut self, now_s: f64) -> f64 {
        let rate = self.max_messages_per_s;
        if !(rate.is_finite() && rate > 0.0) {
            return 0.0;
        }
        let capacity = rate.max(1.0);
        let elapsed = (now_s - self.tokens_at_s).max(0.0);
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.tokens_at_s = now_s;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            0.0
        } else {
            -self.tokens / rate
        }
    }

    /// When (seconds since the start) the call ends for lack of audio if no more arrives: its
    /// audio time plus the idle timeout.
    pub fn idle_deadline_s(&self, idle_s: f64) -> f64 {
        self.audio_s + idle_s
    }
}

/// A [`CallPace`] on the tokio clock, with its waits counted in `/metrics`.
pub struct CallPacer {
    pace: CallPace,
    start: tokio::time::Instant,
    idle: std::time::Duration,
    metrics: Arc<ServiceMetrics>,
}

impl CallPacer {
    pub fn new(
        limits: &SessionLimits,
        idle: std::time::Duration,
        metrics: Arc<ServiceMetrics>,
    ) -> Self {
        Self {
            pace: CallPace::new(limits),
            start: tokio::time::Instant::now(),
            idle,
            metrics,
        }
    }

    fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Audio time received so far, seconds.
    pub fn audio_s(&self) -> f64 {
        self.pace.audio_s()
    }

    /// Seconds since the call started.
    pub fn wall_s(&self) -> f64 {
        self.now_s()
    }

    /// Notes `secs` of audio received.
    pub fn add_audio(&mut self, secs: f64) {
        self.pace.add_audio(secs);
    }

    /// How long to hold off reading: over the pace or over the message rate (the longer of
    /// the two). Counted in `/metrics` when not zero. `message`: a message was just read.
    pub fn wait(&mut self, message: bool) -> std::time::Duration {
        let now = self.now_s();
        let message_wait = if message {
            self.pace.message_wait_s(now)
        } else {
            0.0
        };
        let pace_wait = self.pace.pace_wait_s(now);
        let m = &self.metrics;
        if message_wait > 0.0 {
            m.ingest_rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        if pace_wait > 0.0 {
            m.ingest_paced.fetch_add(1, Ordering::Relaxed);
        }
        let wait = message_wait.max(pace_wait);
        if wait > 0.0 {
            m.ingest_paced_ns
                .fetch_add((wait * 1e9) as u64, Ordering::Relaxed);
        }
        std::time::Duration::from_secs_f64(wait)
    }

    /// Holds off reading for [`Self::wait`].
    pub async fn hold(&mut self, message: bool) {
        let wait = self.wait(message);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// When the call ends for lack of audio (the trickle-proof idle rule).
    pub fn idle_deadline(&self) -> tokio::time::Instant {
        let at = self.pace.idle_deadline_s(self.idle.as_secs_f64());
        self.start + std::time::Duration::from_secs_f64(at.min(1e9))
    }

    /// Why the call ended at its idle deadline, for the client.
    pub fn idle_reason(&self) -> String {
        format!(
            "received {:.1} s of audio in {:.1} s: audio fell more than {:.1} s behind wall time (idle timeout)",
            self.audio_s(),
            self.now_s(),
            self.idle.as_secs_f64()
        )
    }
}

/// Which limit a call is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The API token (principal) that ingests the call.
    Token,
    /// The gRPC connection (client address and port) that carries the call.
    Connection,
    /// The peer's address (telephony WebSockets and AudioSocket).
    Peer,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Token => "token",
            LimitKind::Connection => "connection",
            LimitKind::Peer => "peer",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            LimitKind::Token => "--max-calls-per-token",
            LimitKind::Connection => "--max-calls-per-connection",
            LimitKind::Peer => "--max-calls-per-peer",
        }
    }
}

/// A call refused by a concurrent-call limit; the message names the limit and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many live calls for {kind} {key}: the limit per {kind} is {limit} ({flag})", kind = .kind.as_str(), flag = .kind.flag())]
pub struct LimitError {
    pub kind: LimitKind,
    pub key: String,
    pub limit: usize,
}

/// Live calls per token, connection and peer address.
#[derive(Debug)]
pub struct CallLimiter {
    limits: SessionLimits,
    counts: Mutex<HashMap<(LimitKind, String), usize>>,
    metrics: Arc<ServiceMetrics>,
}

impl CallLimiter {
    pub fn new(limits: SessionLimits, metrics: Arc<ServiceMetrics>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    fn limit(&self, kind: LimitKind) -> usize {
        match kind {
            LimitKind::Token => self.limits.max_calls_per_token,
            LimitKind::Connection => self.limits.max_calls_per_connection,
            LimitKind::Peer => self.limits.max_calls_per_peer,
        }
    }

    /// Counts a call against each of `keys` (all or none); the permit uncounts it when dropped.
    pub fn acquire(
        self: &Arc<Self>,
        keys: Vec<(LimitKind, String)>,
    ) -> Result<CallPermit, LimitError> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for (kind, key) in &keys {
            let limit = self.limit(*kind);
            if counts.get(&(*kind, key.clone())).copied().unwrap_or(0) >= limit {
                let m = &self.metrics;
                match kind {
                    LimitKind::Token => &m.calls_refused_token,
                    LimitKind::Connection => &m.calls_refused_connection,
                    LimitKind::Peer => &m.calls_refused_peer,
                }
                .fetch_add(1, Ordering::Relaxed);
                return Err(LimitError {
                    kind: *kind,
                    key: key.clone(),
                    limit,
                });
            }
        }
        for key in &keys {
            *counts.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(CallPermit {
            limiter: self.clone(),
            keys,
        })
    }

    /// Live calls counted against `kind` `key`.
    pub fn count(&self, kind: LimitKind, key: &str) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(&(kind, key.to_owned())).copied().unwrap_or(0)
    }
}

/// A call counted by a [`CallLimiter`] while it lives.
#[derive(Debug)]
pub struct CallPermit {
    limiter: Arc<CallLimiter>,
    keys: Vec<(LimitKind, String)>,
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for key in self.keys.drain(..) {
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits::default()
    }

    #[test]
    fn real_time_with_jitter_is_never_paced_nor_idle() {
        let mut p = CallPace::new(&limits());
        // 100 ms chunks at real time with up to 2 s of jitter and bursts of 5 s catching up.
        let mut t = 0.0f64;
        for i in 0..36_000u32 {
            let jitter: f64 = if i % 700 == 0 { 2.0 } else { 0.0 };
            t += 0.1;
            let arrival = (t + jitter - if i % 900 == 0 { 5.0 } else { 0.0 }).max(0.0);
            p.add_audio(0.1);
            assert_eq!(p.pace_wait_s(arrival), 0.0, "paced at {arrival}");
            assert!(p.idle_deadline_s(30.0) > arrival + 25.0);
            assert_eq!(p.message_wait_s(arrival), 0.0);
        }
    }

    #[test]
    fn fast_ingest_is_held_to_the_pace() {
        let mut p = CallPace::new(&limits());
        // An hour sent at once: it may run 10 s ahead, then 2× real time.
        p.add_audio(3600.0);
        assert!((p.pace_wait_s(0.0) - 1795.0).abs() < 1e-9);
        assert!((p.pace_wait_s(1000.0) - 795.0).abs() < 1e-9);
        assert_eq!(p.pace_wait_s(1795.0), 0.0);
        let mut q = CallPace::new(&limits());
        q.add_audio(10.0);
        assert_eq!(q.pace_wait_s(0.0), 0.0, "the burst allowance");
        let off = SessionLimits {
            max_speed: f64::INFINITY,
            ..limits()
        };
        let mut r = CallPace::new(&off);
        r.add_audio(3600.0);
        assert_eq!(r.pace_wait_s(0.0), 0.0);
    }

    #[test]
    fn a_trickle_does_not_hold_the_call() {
        let mut p = CallPace::new(&limits());
        // 10 ms every 25 s: the call ends 30.03 s after its start, whatever it keeps sending.
        let mut t = 0.0;
        let mut ended_at = None;
        while t < 300.0 {
            if t >= p.idle_deadline_s(30.0) {
                ended_at = Some(t);
                break;
            }
            p.add_audio(0.01);
            t += 25.0;
        }
        assert_eq!(ended_at, Some(50.0), "past 30.02 s at the third chunk");
        assert!((p.idle_deadline_s(30.0) - 30.02).abs() < 1e-9);
    }

    #[test]
    fn message_rate_is_a_bucket() {
        let l = SessionLimits {
            max_messages_per_s: 10.0,
            ..limits()
        };
        let mut p = CallPace::new(&l);
        for _ in 0..10 {
            assert_eq!(p.message_wait_s(0.0), 0.0);
        }
        assert!((p.message_wait_s(0.0) - 0.1).abs() < 1e-9);
        assert_eq!(p.message_wait_s(0.2), 0.0);
    }

    #[test]
    fn limiter_counts_and_releases() {
        let l = SessionLimits {
            max_calls_per_token: 2,
            ..limits()
        };
        let limiter = CallLimiter::new(l, Arc::default());
        let key = || vec![(LimitKind::Token, "token:7".to_owned())];
        let a = limiter.acquire(key()).unwrap();
        let _b = limiter.acquire(key()).unwrap();
        let e = limiter.acquire(key()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "too many live calls for token token:7: the limit per token is 2 (--max-calls-per-token)"
        );
        drop(a);
        assert_eq!(limiter.count(LimitKind::Token, "token:7"), 1);
        let _c = limiter.acquire(key()).unwrap();
        assert_eq!(
            limiter.metrics.calls_refused_token.load(Ordering::Relaxed),
            1
        );
    }
}
