//! Service counters and their Prometheus text rendering (`/metrics`), with the process's CPU
//! time and resident memory read from `/proc/self`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::hub::Hub;

/// Counters of the ingest and monitor streams and of the analysis pool.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    pub chunks_received: AtomicU64,
    /// Chunks analysed and acknowledged (highest contiguous sequence + 1, summed over calls).
    pub chunks_acked: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Chunks that arrived ahead of a missing one (held and reordered).
    pub chunks_out_of_order: AtomicU64,
    /// Chunks whose sequence number was already received (dropped).
    pub chunks_duplicate: AtomicU64,
    /// Ingest streams that ended with an error status.
    pub ingest_errors: AtomicU64,
    pub monitors_active: AtomicU64,
    pub analysis_jobs: AtomicU64,
    pub analysis_busy_ns: AtomicU64,
    pub analysis_queue_wait_ns: AtomicU64,
    pub analysis_queue_wait_max_ns: AtomicU64,
    /// Ended live calls and uploaded recordings saved to the store.
    pub calls_stored: AtomicU64,
    /// Calls that could not be saved (store error, or the writer's queue was full): logged and
    /// counted, never fatal.
    pub store_errors: AtomicU64,
    /// Ended live calls not stored because they sent no audio.
    pub calls_not_stored_empty: AtomicU64,
    /// Ended live calls waiting for the store writer (gauge).
    pub store_queue_calls: AtomicU64,
    /// Store writes tried again after a failure (locked, full, unreachable database).
    pub store_retries: AtomicU64,
    /// Ended calls in the on-disk spool, not yet in the database (gauge).
    pub store_spooled_calls: AtomicU64,
    /// Spool faults: an ended call that could not be written to the spool (kept in memory
    /// only), a spooled file that could not be removed, a live-call marker not written.
    pub store_spool_errors: AtomicU64,
    /// Spool files that could not be read back (moved aside to `corrupt/`).
    pub store_spool_corrupt: AtomicU64,
    /// Calls found live at startup (the process died with them) stored as interrupted.
    pub calls_interrupted_stored: AtomicU64,
    /// Recordings finished and kept (live calls and uploads, [`super::recordings`]).
    pub recordings_saved: AtomicU64,
    /// Recording faults: a chunk left out because the writer fell behind, a file that could
    /// not be written, finished or kept. Logged (except per chunk) and counted, never fatal.
    pub recording_errors: AtomicU64,
    /// Recordings (and stale part files) deleted by the retention sweep.
    pub recordings_deleted: AtomicU64,
    /// Live calls being recorded now.
    pub recordings_active: AtomicU64,
    /// Times a call's reading was held back because its audio ran ahead of the pace
    /// ([`super::limits`]).
    pub ingest_paced: AtomicU64,
    /// Times a call's reading was held back because it sent messages above the rate.
    pub ingest_rate_limited: AtomicU64,
    /// Time reading was held back (pace and message rate), nanoseconds summed over calls.
    pub ingest_paced_ns: AtomicU64,
    /// Calls ended because their audio fell more than the idle timeout behind wall time.
    pub calls_idle_lagging: AtomicU64,
    /// Calls refused by the per-token limit of concurrent calls.
    pub calls_refused_token: AtomicU64,
    /// Calls refused by the per-connection limit (gRPC).
    pub calls_refused_connection: AtomicU64,
    /// Calls refused by the per-peer-address limit (telephony).
    pub calls_refused_peer: AtomicU64,
    /// Counters of the telephony adapters ([`super::ingest`]).
    pub telephony: super::ingest::IngestMetrics,
    /// Counters of the cluster bridge (shown once this node has joined a cluster).
    pub cluster: std::sync::Arc<ClusterCounters>,
    /// Counters of the HTTP listener's connections ([`super::http_conn`]).
    pub http: super::http_conn::HttpCounters,
}

/// Counters of the cluster bridge (`cluster` feature): zero and unshown on a lone node.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// Set once the node has joined: only then are these counters rendered.
    pub joined: std::sync::atomic::AtomicBool,
    pub events_sent: AtomicU64,
    pub events_received: AtomicU64,
    /// Peer payloads dropped: too large or not an event.
    pub events_rejected: AtomicU64,
    pub send_errors: AtomicU64,
    /// Peer calls ended as interrupted because their node went silent.
    pub calls_interrupted: AtomicU64,
    /// Local events the bridge missed because it fell behind the hub.
    pub events_lagged: AtomicU64,
    /// Peer nodes with a fresh heartbeat (gauge).
    pub peers_live: AtomicU64,
    /// Queued recordings this node scored and stored ([`super::backlog`]).
    pub backlog_scored: AtomicU64,
    /// Queued recordings given up (not a recording, not scorable).
    pub backlog_refused: AtomicU64,
}

fn render_cluster(out: &mut String, c: &ClusterCounters) {
    if !c.joined.load(Ordering::Relaxed) {
        return;
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let rows: [(&str, &str, &str, u64); 9] = [
        (
            "attune_cluster_events_sent_total",
            "counter",
            "Local call events published to the cluster.",
            get(&c.events_sent),
        ),
        (
            "attune_cluster_events_received_total",
            "counter",
            "Peer call events applied to this node's console.",
            get(&c.events_received),
        ),
        (
            "attune_cluster_events_rejected_total",
            "counter",
            "Peer payloads dropped (too large, not an event).",
            get(&c.events_rejected),
        ),
        (
            "attune_cluster_send_errors_total",
            "counter",
            "Publishes to NATS that failed (logged; the call goes on).",
            get(&c.send_errors),
        ),
        (
            "attune_cluster_calls_interrupted_total",
            "counter",
            "Peer calls ended as interrupted because their node went silent.",
            get(&c.calls_interrupted),
        ),
        (
            "attune_cluster_events_lagged_total",
            "counter",
            "Local events the bridge missed because it fell behind the hub.",
            get(&c.events_lagged),
        ),
        (
            "attune_cluster_peers_live",
            "gauge",
            "Peer nodes with a fresh heartbeat.",
            get(&c.peers_live),
        ),
        (
            "attune_cluster_backlog_scored_total",
            "counter",
            "Queued recordings this node scored and stored.",
            get(&c.backlog_scored),
        ),
        (
            "attune_cluster_backlog_refused_total",
            "counter",
            "Queued recordings given up (not scorable).",
            get(&c.backlog_refused),
        ),
    ];
    for (name, kind, help, value) in rows {
        metric(out, name, kind, help, value);
    }
}

/// Process CPU time (user + system), seconds, from `/proc/self/stat`.
pub fn process_cpu_seconds() -> Option<f64> {
    attune_qa::process::cpu_seconds()
}

/// Resident memory, bytes, from `/proc/self/statm`.
pub fn process_resident_bytes() -> Option<u64> {
    attune_qa::process::resident_bytes()
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Renders every counter in the Prometheus text exposition format.
pub fn render_prometheus(hub: &Hub, m: &ServiceMetrics) -> String {
    let mut out = String::with_capacity(4096);
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let h = &hub.counters;
    metric(
        &mut out,
        "attune_calls_stored_total",
        "counter",
        "Ended live calls and uploaded recordings saved to the store.",
        get(&m.calls_stored),
    );
    metric(
        &mut out,
        "attune_calls_not_stored_empty_total",
        "counter",
        "Ended live calls not stored because they sent no audio.",
        get(&m.calls_not_stored_empty),
    );
    metric(
        &mut out,
        "attune_store_errors_total",
        "counter",
        "Calls that could not be saved to the store (logged; the service goes on).",
        get(&m.store_errors),
    );
    metric(
        &mut out,
        "attune_store_queue_calls",
        "gauge",
        "Ended live calls waiting to be scored and saved.",
        get(&m.store_queue_calls),
    );
    metric(
        &mut out,
        "attune_store_retries_total",
        "counter",
        "Store writes tried again after the database failed (locked, full, unreachable).",
        get(&m.store_retries),
    );
    metric(
        &mut out,
        "attune_store_spooled_calls",
        "gauge",
        "Ended calls kept in the on-disk spool, not yet in the database.",
        get(&m.store_spooled_calls),
    );
    metric(
        &mut out,
        "attune_store_spool_errors_total",
        "counter",
        "Spool faults: a call not written to the spool (kept in memory only), a file not removed, a live marker not written.",
        get(&m.store_spool_errors),
    );
    metric(
        &mut out,
        "attune_store_spool_corrupt_total",
        "counter",
        "Spool files that could not be read back (moved aside to corrupt/).",
        get(&m.store_spool_corrupt),
    );
    metric(
        &mut out,
        "attune_calls_interrupted_stored_total",
        "counter",
        "Calls found live at startup (the process died with them) stored as interrupted.",
        get(&m.calls_interrupted_stored),
    );
    metric(
        &mut out,
        "attune_recordings_saved_total",
        "counter",
        "Call recordings finished and kept (live calls and uploads).",
        get(&m.recordings_saved),
    );
    metric(
        &mut out,
        "attune_recording_errors_total",
        "counter",
        "Recording faults: chunks left out (writer behind), files not written or kept (the analysis goes on).",
        get(&m.recording_errors),
    );
    metric(
        &mut out,
        "attune_recordings_deleted_total",
        "counter",
        "Recordings deleted by the retention sweep.",
        get(&m.recordings_deleted),
    );
    metric(
        &mut out,
        "attune_recordings_active",
        "gauge",
        "Live calls being recorded now.",
        get(&m.recordings_active),
    );
    metric(
        &mut out,
        "attune_live_calls",
        "gauge",
        "Calls live now.",
        hub.live_count(),
    );
    metric(
        &mut out,
        "attune_max_calls",
        "gauge",
        "Configured limit of live calls.",
        hub.max_calls(),
    );
    metric(
        &mut out,
        "attune_calls_started_total",
        "counter",
        "Calls registered.",
        get(&h.calls_started),
    );
    metric(
        &mut out,
        "attune_calls_ended_total",
        "counter",
        "Calls ended (any reason).",
        get(&h.calls_ended),
    );
    metric(
        &mut out,
        "attune_calls_rejected_total",
        "counter",
        "Calls refused (limit, duplicate or bad id).",
        get(&h.calls_rejected),
    );
    metric(
        &mut out,
        "attune_ingest_errors_total",
        "counter",
        "Ingest streams ended with an error status.",
        get(&m.ingest_errors),
    );
    metric(
        &mut out,
        "attune_ingest_paced_total",
        "counter",
        "Times a call's reading was held back: its audio ran ahead of the pace (max speed and burst).",
        get(&m.ingest_paced),
    );
    metric(
        &mut out,
        "attune_ingest_rate_limited_total",
        "counter",
        "Times a call's reading was held back: it sent more messages per second than allowed.",
        get(&m.ingest_rate_limited),
    );
    metric(
        &mut out,
        "attune_ingest_paced_seconds_total",
        "counter",
        "Time calls' reading was held back by the pace and the message rate.",
        ns_to_s(&m.ingest_paced_ns),
    );
    metric(
        &mut out,
        "attune_calls_idle_lagging_total",
        "counter",
        "Calls ended because their audio fell more than the idle timeout behind wall time.",
        get(&m.calls_idle_lagging),
    );
    let _ = writeln!(
        out,
        "# HELP attune_calls_refused_limit_total Calls refused by a limit of concurrent calls per token, connection or peer address.\n# TYPE attune_calls_refused_limit_total counter"
    );
    for (limit, counter) in [
        ("token", &m.calls_refused_token),
        ("connection", &m.calls_refused_connection),
        ("peer", &m.calls_refused_peer),
    ] {
        let _ = writeln!(
            out,
            "attune_calls_refused_limit_total{{limit=\"{limit}\"}} {}",
            get(counter)
        );
    }
    metric(
        &mut out,
        "attune_chunks_received_total",
        "counter",
        "Audio chunks received.",
        get(&m.chunks_received),
    );
    metric(
        &mut out,
        "attune_chunks_acked_total",
        "counter",
        "Audio chunks analysed and acknowledged.",
        get(&m.chunks_acked),
    );
    metric(
        &mut out,
        "attune_audio_bytes_received_total",
        "counter",
        "Audio payload bytes received.",
        get(&m.bytes_received),
    );
    metric(
        &mut out,
        "attune_chunks_out_of_order_total",
        "counter",
        "Chunks that arrived ahead of a missing one (held, then analysed in order).",
        get(&m.chunks_out_of_order),
    );
    metric(
        &mut out,
        "attune_chunks_duplicate_total",
        "counter",
        "Chunks whose sequence number was already received (dropped).",
        get(&m.chunks_duplicate),
    );
    metric(
        &mut out,
        "attune_events_published_total",
        "counter",
        "Events published to the hub.",
        get(&h.events_published),
    );
    metric(
        &mut out,
        "attune_events_dropped_slow_subscribers_total",
        "counter",
        "Events monitors missed because they read too slowly.",
        get(&h.events_dropped_slow_subscribers),
    );
    metric(
        &mut out,
        "attune_monitors_active",
        "gauge",
        "Monitor streams open now.",
        get(&m.monitors_active),
    );
    metric(
        &mut out,
        "attune_analysis_jobs_total",
        "counter",
        "Analysis jobs run (one per batch of chunks).",
        get(&m.analysis_jobs),
    );
    metric(
        &mut out,
        "attune_analysis_busy_seconds_total",
        "counter",
        "Time the analysis threads spent analysing.",
        ns_to_s(&m.analysis_busy_ns),
    );
    metric(
        &mut out,
        "attune_analysis_queue_wait_seconds_total",
        "counter",
        "Time analysis jobs waited for a thread.",
        ns_to_s(&m.analysis_queue_wait_ns),
    );
    metric(
        &mut out,
        "attune_analysis_queue_wait_max_seconds",
        "gauge",
        "Longest wait of one analysis job for a thread.",
        ns_to_s(&m.analysis_queue_wait_max_ns),
    );
    if let Some(cpu_s) = process_cpu_seconds() {
        metric(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time of the process.",
            cpu_s,
        );
    }
    if let Some(bytes) = process_resident_bytes() {
        metric(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the process.",
            bytes,
        );
    }
    super::ingest::render_metrics(&mut out, &m.telephony);
    render_cluster(&mut out, &m.cluster);
    for (name, kind, help, value) in m.http.rows() {
        metric(&mut out, name, kind, help, value);
    }
    out
}

/// Counter helper: nanoseconds as seconds.
fn ns_to_s(counter: &std::sync::atomic::AtomicU64) -> f64 {
    counter.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9
}
