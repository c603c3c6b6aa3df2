//! A cluster of Attune nodes over NATS JetStream (feature `cluster`; `attune serve --cluster
//! nats://HOST:PORT --node-id ID`). Each node ingests the calls connected to it and shares them
//! with the others, so every node's console, event streams, alerts and `Monitor` see every
//! call of the cluster:
//!
//! - **Events**: every event of a call live on this node (started, snapshot, emotion, cue,
//!   ended) is published as JSON on `attune.events.<team>.<call>` (team and call id
//!   hex-encoded, so any id is a valid subject token), captured by the JetStream stream
//!   `ATTUNE_EVENTS` (an hour kept). Every node subscribes to `attune.events.>` and mirrors the
//!   other nodes' calls into its [`Hub`] ([`Hub::start_remote_call`]).
//! - **Live state for late joiners**: each live call's latest snapshot and open cues sit in the
//!   key-value bucket `attune_calls` (one key per call, written at most every
//!   [`STATE_PUT_EVERY`] per call and at each cue; deleted when the call ends). A node that
//!   starts reads the bucket and shows every live call of the cluster at once.
//! - **Acknowledgements**: an alert acknowledged on one node is published on `attune.acks` and
//!   applied on every node ([`Hub::apply_remote_ack`]).
//! - **Heartbeats**: each node writes its key in the bucket `attune_nodes` every
//!   [`ClusterConfig::heartbeat`]; a node whose heartbeat is older than
//!   [`ClusterConfig::node_timeout`] is taken as gone and its calls end on every other node as
//!   `interrupted` (noticed within `node_timeout` plus one check period, [`CHECK_EVERY`]).
//!
//! Stored results go to the shared PostgreSQL (`--db postgres://…`): each node stores the calls
//! it ingested. Tokens and accounts live there too, so they are valid on every node.
//!
//! Nothing from a peer is trusted further than its shape: payloads over [`MAX_EVENT_BYTES`]
//! or that do not parse are counted and dropped, ids are checked by the hub, and a node mirrors
//! at most [`crate::hub::REMOTE_CALLS_MAX`] calls.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::StreamExt;

use crate::hub::{
    AlertAck, CallEnd, CallFilter, CallInfo, Hub, HubEvent, HubEventKind, now_unix_ms,
};
use crate::metrics::ClusterCounters;
use attune_core::call::CallSnapshot;
use attune_core::cues::{CueEvent, CueTransition};

/// The JetStream stream capturing every call event.
pub const EVENTS_STREAM: &str = "ATTUNE_EVENTS";
/// Subjects of call events: `attune.events.<team hex>.<call id hex>`.
pub const EVENTS_SUBJECT_PREFIX: &str = "attune.events";
/// Subject of acknowledgements.
pub const ACKS_SUBJECT: &str = "attune.acks";
/// Key-value bucket of live calls' state (late joiners).
pub const CALLS_BUCKET: &str = "attune_calls";
/// Key-value bucket of node heartbeats.
pub const NODES_BUCKET: &str = "attune_nodes";
/// How long the events stream keeps events.
pub const EVENTS_KEPT: Duration = Duration::from_secs(3_600);
/// Largest event payload read from a peer, bytes.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// A live call's state is written to the bucket at most this often (and at each cue).
pub const STATE_PUT_EVERY: Duration = Duration::from_secs(2);
/// How often a node checks its peers' heartbeats.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS servers, `nats://HOST:PORT` (several: comma-separated in the flag).
    pub servers: Vec<String>,
    /// This node's id (unique in the cluster).
    pub node_id: String,
    /// How often this node writes its heartbeat.
    pub heartbeat: Duration,
    /// A peer silent this long is gone: its calls end as `interrupted`.
    pub node_timeout: Duration,
    /// Replicas of the stream and buckets (the NATS servers holding a copy; 1 on one server).
    pub replicas: usize,
}

impl ClusterConfig {
    pub fn new(servers: &str, node_id: &str) -> Result<Self, ClusterError> {
        let servers: Vec<String> = servers
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(ClusterError::Config(
                "--cluster needs nats://HOST:PORT".into(),
            ));
        }
        for s in &servers {
            if !s.starts_with("nats://") {
                return Err(ClusterError::Config(format!(
                    "--cluster {s:?}: expected nats://HOST:PORT"
                )));
            }
        }
        let id_ok = !node_id.is_empty()
            && node_id.len() <= 64
            && node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(ClusterError::Config(format!(
                "--node-id {node_id:?}: 1..=64 characters of A-Z a-z 0-9 - _"
            )));
        }
        Ok(Self {
            servers,
            node_id: node_id.to_owned(),
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(5),
            replicas: 1,
        })
    }
}

/// Why the cluster could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach NATS at {servers}: {message}")]
    Connect { servers: String, message: String },
    #[error("JetStream ({what}): {message} (is nats-server running with -js?)")]
    JetStream { what: &'static str, message: String },
}

/// One call event on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireEvent {
    node: String,
    published_at_unix_ms: u64,
    call: CallInfo,
    #[serde(flatten)]
    kind: HubEventKind,
}

/// A live call's state in the calls bucket.
#[derive(Debug, Serialize, Deserialize)]
struct LiveState {
    node: String,
    call: CallInfo,
    latest: Option<Box<CallSnapshot>>,
    open_cues: Vec<CueEvent>,
}

/// A node's heartbeat in the nodes bucket.
#[derive(Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub at_unix_ms: u64,
    pub live_calls: usize,
}

/// An acknowledgement on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireAck {
    node: String,
    ack: AlertAck,
}

/// A running cluster membership (its tasks stop when the process ends).
pub struct Cluster {
    pub config: ClusterConfig,
    pub counters: Arc<ClusterCounters>,
    client: async_nats::Client,
    nodes: jetstream::kv::Store,
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn events_subject(call: &CallInfo) -> String {
    // An empty team still needs a token.
    let team = if call.team.is_empty() {
        "_".to_owned()
    } else {
        hex(&call.team)
    };
    format!("{EVENTS_SUBJECT_PREFIX}.{team}.{}", hex(&call.call_id))
}

/// Maps a JetStream error to a [`ClusterError`] naming what failed.
pub(crate) fn js_error(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ClusterError {
    move |e| ClusterError::JetStream {
        what,
        message: e.to_string(),
    }
}

/// Connects to the NATS servers of `config` (the client moves between them on failures).
pub async fn connect(config: &ClusterConfig) -> Result<async_nats::Client, ClusterError> {
    let addrs: Vec<async_nats::ServerAddr> = config
        .servers
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| ClusterError::Config(format!("--cluster {s:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    async_nats::ConnectOptions::new()
        .name(format!("attune-{}", config.node_id))
        .connection_timeout(Duration::from_secs(5))
        .connect(addrs)
        .await
        .map_err(|e| ClusterError::Connect {
            servers: config.servers.join(","),
            message: e.to_string(),
        })
}

/// The current values of a bucket's keys (deleted keys left out), at most `limit`, read from
/// its stream's leader: the subjects the server lists, then each one's last message. (The
/// client's `keys()` walks an ordered consumer, which can miss keys written meanwhile.)
async fn current_values(store: &jetstream::kv::Store, limit: usize) -> Vec<Bytes> {
    let mut subjects = Vec::new();
    match store
        .stream
        .info_with_subjects(format!("{}>", store.prefix))
        .await
    {
        Ok(mut info) => {
            while let Some(Ok((subject, _))) = info.next().await {
                subjects.push(subject);
                if subjects.len() >= limit {
                    break;
                }
            }
        }
        Err(e) => eprintln!("attune: cluster: cannot list {}: {e}", store.name),
    }
    let mut values = Vec::with_capacity(subjects.len());
    for subject in subjects {
        if let Ok(message) = store.stream.get_last_raw_message_by_subject(&subject).await {
            let operation = message.headers.get("KV-Operation").map(|v| v.as_str());
            // A delete or purge marker, or an empty value: the key is gone.
            if !message.payload.is_empty() && operation.is_none_or(|op| op == "PUT") {
                values.push(message.payload);
            }
        }
    }
    values
}

async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<jetstream::kv::Store, ClusterError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    // The bucket's stream made directly, as the client would: its `create_key_value` first
    // reads the account info, which it cannot parse from nats-server 2.9 (Debian's).
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        max_message_size: MAX_EVENT_BYTES as i32,
        allow_rollup: true,
        deny_delete: true,
        // Reads go to the stream's leader: a direct get may be answered by a replica that
        // has not caught up (a late joiner would miss live calls or take a node for gone).
        allow_direct: false,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| js_error("key-value bucket")(&e))?;
    js.get_key_value(name)
        .await
        .map_err(|e| js_error("key-value bucket")(&e))
}

impl Cluster {
    /// Joins the cluster: connects, makes sure the stream and buckets exist, shows the live
    /// calls of the other nodes in `hub`, and starts sharing this node's.
    pub async fn join(
        config: ClusterConfig,
        hub: Arc<Hub>,
        counters: Arc<ClusterCounters>,
    ) -> Result<Arc<Self>, ClusterError> {
        let client = connect(&config).await?;
        let js = jetstream::new(client.clone());
        js.get_or_create_stream(jetstream::stream::Config {
            name: EVENTS_STREAM.to_owned(),
            subjects: vec![format!("{EVENTS_SUBJECT_PREFIX}.>")],
            max_age: EVENTS_KEPT,
            max_bytes: 1 << 30,
            max_message_size: MAX_EVENT_BYTES as i32,
            discard: jetstream::stream::DiscardPolicy::Old,
            num_replicas: config.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| js_error("events stream")(&e))?;
        let calls = bucket(&js, CALLS_BUCKET, EVENTS_KEPT, config.replicas).await?;
        let nodes = bucket(&js, NODES_BUCKET, config.node_timeout * 4, config.replicas).await?;
        let cluster = Arc::new(Self {
            config,
            counters,
            client,
            nodes,
        });
        // Subscribe before reading the bucket, so nothing falls in between.
        let events = cluster
            .client
            .subscribe(format!("{EVENTS_SUBJECT_PREFIX}.>"))
            .await
            .map_err(|e| ClusterError::Connect {
                servers: cluster.config.servers.join(","),
                message: e.to_string(),
            })?;
        let acks =
            cluster
                .client
                .subscribe(ACKS_SUBJECT)
                .await
                .map_err(|e| ClusterError::Connect {
                    servers: cluster.config.servers.join(","),
                    message: e.to_string(),
                })?;
        cluster.heartbeat_once(&hub).await;
        cluster.counters.joined.store(true, Ordering::Relaxed);
        let mirror = Arc::new(std::sync::Mutex::new(Mirror::default()));
        cluster.seed(&hub, &calls, &mirror).await;
        tokio::spawn(cluster.clone().share_local(hub.clone(), calls));
        tokio::spawn(
            cluster
                .clone()
                .mirror_peers(hub.clone(), events, mirror.clone()),
        );
        tokio::spawn(
            cluster
                .clone()
                .share_acks(hub.clone(), acks, mirror.clone()),
        );
        tokio::spawn(cluster.clone().beat(hub.clone()));
        tokio::spawn(cluster.clone().watch_nodes(hub, mirror));
        Ok(cluster)
    }

    /// The NATS connection (for the batch queue's scorer).
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }

    async fn heartbeat_once(&self, hub: &Hub) {
        let beat = Heartbeat {
            node: self.config.node_id.clone(),
            at_unix_ms: now_unix_ms(),
            live_calls: hub.live_count(),
        };
        let payload = serde_json::to_vec(&beat).unwrap_or_default();
        if let Err(e) = self.nodes.put(&self.config.node_id, payload.into()).await {
            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("attune: cluster: heartbeat: {e}");
        }
    }

    /// The cluster's nodes as their heartbeats say.
    pub async fn heartbeats(&self) -> Vec<Heartbeat> {
        current_values(&self.nodes, 10_000)
            .await
            .iter()
            .filter_map(|value| serde_json::from_slice::<Heartbeat>(value).ok())
            .collect()
    }

    /// Shows the other nodes' live calls (from the calls bucket) in `hub`.
    async fn seed(&self, hub: &Hub, calls: &jetstream::kv::Store, mirror: &SharedMirror) {
        let alive: HashSet<String> = self
            .heartbeats()
            .await
            .into_iter()
            // Generous here: a call of a node that is in fact gone is ended as interrupted
            // by the next check anyway.
            .filter(|b| now_unix_ms().saturating_sub(b.at_unix_ms) <= 2 * self.timeout_ms())
            .map(|b| b.node)
            .collect();
        let mut seeded = 0usize;
        for value in current_values(calls, crate::hub::REMOTE_CALLS_MAX).await {
            if value.len() > MAX_EVENT_BYTES {
                continue;
            }
            let Ok(state) = serde_json::from_slice::<LiveState>(&value) else {
                self.counters
                    .events_rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if state.node == self.config.node_id || !alive.contains(&state.node) {
                continue;
            }
            let Ok(info) = hub.start_remote_call(state.call) else {
                continue;
            };
            lock(mirror)
                .owner
                .insert(info.call_id.clone(), state.node.clone());
            if let Some(snapshot) = state.latest {
                hub.publish(&info, HubEventKind::Snapshot(snapshot));
            }
            for cue in state.open_cues {
                hub.publish(&info, HubEventKind::Cue(cue));
            }
            seeded += 1;
        }
        if seeded > 0 {
            eprintln!(
                "attune: cluster: node {} shows {seeded} live calls of other nodes",
                self.config.node_id
            );
        }
    }

    fn timeout_ms(&self) -> u64 {
        self.config.node_timeout.as_millis() as u64
    }

    /// Publishes this node's calls' events and keeps their state in the calls bucket.
    async fn share_local(self: Arc<Self>, hub: Arc<Hub>, calls: jetstream::kv::Store) {
        struct Local {
            state: LiveState,
            put_at: Option<Instant>,
        }
        let (_, mut events) = hub.subscribe(&CallFilter::default());
        let mut local: HashMap<String, Local> = HashMap::new();
        loop {
            let event: Arc<HubEvent> = match events.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    self.counters.events_lagged.fetch_add(n, Ordering::Relaxed);
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let call_id = &event.call.call_id;
            if let HubEventKind::CallStarted = event.kind {
                match hub.live_call(call_id) {
                    Some((_, false)) => {
                        local.insert(
                            call_id.clone(),
                            Local {
                                state: LiveState {
                                    node: self.config.node_id.clone(),
                                    call: (*event.call).clone(),
                                    latest: None,
                                    open_cues: Vec::new(),
                                },
                                put_at: None,
                            },
                        );
                    }
                    _ => continue,
                }
            }
            let Some(entry) = local.get_mut(call_id) else {
                continue;
            };
            let wire = WireEvent {
                node: self.config.node_id.clone(),
                published_at_unix_ms: event.published_at_unix_ms,
                call: (*event.call).clone(),
                kind: event.kind.clone(),
            };
            match serde_json::to_vec(&wire) {
                Ok(payload) if payload.len() <= MAX_EVENT_BYTES => {
                    match self
                        .client
                        .publish(events_subject(&event.call), Bytes::from(payload))
                        .await
                    {
                        Ok(()) => {
                            self.counters.events_sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                _ => {
                    self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let key = hex(call_id);
            let mut put_now = false;
            match &event.kind {
                HubEventKind::CallEnded(_) => {
                    local.remove(call_id);
                    let _ = calls.delete(&key).await;
                    continue;
                }
                HubEventKind::Snapshot(snap) => {
                    entry.state.latest = Some(snap.clone());
                }
                HubEventKind::Cue(cue) => {
                    match cue.event {
                        CueTransition::Open => entry.state.open_cues.push(cue.clone()),
                        CueTransition::Close => {
                            entry.state.open_cues.retain(|c| c.cue_id != cue.cue_id)
                        }
                    }
                    put_now = true;
                }
                HubEventKind::CallStarted => put_now = true,
                HubEventKind::Emotion(_) => {}
            }
            let due = entry
                .put_at
                .is_none_or(|at| at.elapsed() >= STATE_PUT_EVERY);
            if put_now || due {
                entry.put_at = Some(Instant::now());
                if let Ok(payload) = serde_json::to_vec(&entry.state)
                    && payload.len() <= MAX_EVENT_BYTES
                    && calls.put(&key, payload.into()).await.is_err()
                {
                    self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Mirrors the other nodes' calls into `hub`.
    async fn mirror_peers(
        self: Arc<Self>,
        hub: Arc<Hub>,
        mut events: async_nats::Subscriber,
        mirror: SharedMirror,
    ) {
        while let Some(message) = events.next().await {
            if message.payload.len() > MAX_EVENT_BYTES {
                self.counters
                    .events_rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Ok(wire) = serde_json::from_slice::<WireEvent>(&message.payload) else {
                self.counters
                    .events_rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if wire.node == self.config.node_id {
                continue;
            }
            self.counters
                .events_received
                .fetch_add(1, Ordering::Relaxed);
            let call_id = wire.call.call_id.clone();
            let known = match hub.live_call(&call_id) {
                Some((info, true)) => Some(info),
                // The same id live here: this node's own call wins.
                Some((_, false)) => continue,
                None => None,
            };
            match wire.kind {
                HubEventKind::CallEnded(end) => {
                    if let Some(info) = known {
                        hub.end_call(&info, end);
                    }
                    lock(&mirror).owner.remove(&call_id);
                }
                kind => {
                    let info = match known {
                        Some(info) => {
                            // A call another node took over (its client reconnected there).
                            let mut m = lock(&mirror);
                            if m.owner.get(&call_id) != Some(&wire.node) {
                                m.owner.insert(call_id, wire.node);
                            }
                            info
                        }
                        None => match hub.start_remote_call(wire.call) {
                            Ok(info) => {
                                lock(&mirror).owner.insert(call_id, wire.node);
                                info
                            }
                            Err(_) => continue,
                        },
                    };
                    if !matches!(kind, HubEventKind::CallStarted) {
                        hub.publish(&info, kind);
                    }
                }
            }
        }
    }

    /// Shares acknowledgements both ways.
    async fn share_acks(
        self: Arc<Self>,
        hub: Arc<Hub>,
        mut incoming: async_nats::Subscriber,
        mirror: SharedMirror,
    ) {
        let mut local = hub.subscribe_acks();
        loop {
            tokio::select! {
                ack = local.recv() => match ack {
                    Ok(ack) => {
                        let key = (ack.call.call_id.clone(), ack.cue_id, ack.at_unix_ms);
                        if lock(&mirror).applied_acks.remove(&key) {
                            continue; // applied from a peer: not ours to send
                        }
                        let wire = WireAck { node: self.config.node_id.clone(), ack };
                        if let Ok(payload) = serde_json::to_vec(&wire)
                            && self.client.publish(ACKS_SUBJECT, payload.into()).await.is_err()
                        {
                            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
                message = incoming.next() => {
                    let Some(message) = message else { return };
                    if message.payload.len() > MAX_EVENT_BYTES {
                        continue;
                    }
                    let Ok(wire) = serde_json::from_slice::<WireAck>(&message.payload) else {
                        self.counters.events_rejected.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if wire.node == self.config.node_id {
                        continue;
                    }
                    let key = (wire.ack.call.call_id.clone(), wire.ack.cue_id, wire.ack.at_unix_ms);
                    {
                        let mut m = lock(&mirror);
                        if m.applied_acks.len() > 10_000 {
                            m.applied_acks.clear();
                        }
                        m.applied_acks.insert(key.clone());
                    }
                    if hub.apply_remote_ack(&wire.ack).is_none() {
                        lock(&mirror).applied_acks.remove(&key);
                    }
                }
            }
        }
    }

    /// Writes this node's heartbeat every [`ClusterConfig::heartbeat`], on a task of its own so
    /// slow reads elsewhere never delay it.
    async fn beat(self: Arc<Self>, hub: Arc<Hub>) {
        loop {
            tokio::time::sleep(self.config.heartbeat).await;
            self.heartbeat_once(&hub).await;
        }
    }

    /// Ends the calls of peers gone silent as interrupted.
    async fn watch_nodes(self: Arc<Self>, hub: Arc<Hub>, mirror: SharedMirror) {
        loop {
            tokio::time::sleep(CHECK_EVERY.min(self.config.heartbeat)).await;
            let owners: Vec<(String, String)> = lock(&mirror)
                .owner
                .iter()
                .map(|(c, n)| (c.clone(), n.clone()))
                .collect();
            let now = now_unix_ms();
            let alive: HashSet<String> = self
                .heartbeats()
                .await
                .into_iter()
                .filter(|b| now.saturating_sub(b.at_unix_ms) <= self.timeout_ms())
                .map(|b| b.node)
                .collect();
            let peers = alive.iter().filter(|n| **n != self.config.node_id).count();
            self.counters
                .peers_live
                .store(peers as u64, Ordering::Relaxed);
            for (call_id, node) in owners {
                if alive.contains(&node) {
                    continue;
                }
                if let Some((info, true)) = hub.live_call(&call_id) {
                    let ended_at = now_unix_ms();
                    hub.end_call(
                        &info,
                        CallEnd {
                            reason: "interrupted".into(),
                            duration_s: ended_at.saturating_sub(info.started_at_unix_ms) as f64
                                / 1000.0,
                            ended_at_unix_ms: ended_at,
                            summary: None,
                        },
                    );
                    self.counters
                        .calls_interrupted
                        .fetch_add(1, Ordering::Relaxed);
                }
                lock(&mirror).owner.remove(&call_id);
            }
        }
    }
}

/// Which node holds each mirrored call, and the acknowledgements applied from peers.
#[derive(Default)]
struct Mirror {
    owner: HashMap<String, String>,
    applied_acks: HashSet<(String, u64, u64)>,
}

type SharedMirror = Arc<std::sync::Mutex<Mirror>>;

fn lock(m: &SharedMirror) -> std::sync::MutexGuard<'_, Mirror> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked_and_ids_make_valid_subjects() {
        assert!(ClusterConfig::new("nats://127.0.0.1:4222", "node-1").is_ok());
        let two = ClusterConfig::new("nats://a:1, nats://b:2", "n").unwrap();
        assert_eq!(two.servers, ["nats://a:1", "nats://b:2"]);
        assert!(ClusterConfig::new("", "n").is_err());
        assert!(ClusterConfig::new("http://a:1", "n").is_err());
        assert!(ClusterConfig::new("nats://a:1", "no.dots").is_err());
        assert!(ClusterConfig::new("nats://a:1", "").is_err());
        let call = CallInfo {
            call_id: "a.b *>c".into(),
            agent_id: "x".into(),
            team: "".into(),
            started_at_unix_ms: 0,
        };
        let subject = events_subject(&call);
        assert_eq!(subject, "attune.events._.612e62202a3e63");
        assert!(!subject[EVENTS_SUBJECT_PREFIX.len() + 1..].contains(['*', '>', ' ']));
    }
}
