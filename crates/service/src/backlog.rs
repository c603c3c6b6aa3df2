//! Batch scoring across the cluster (feature `cluster`): `attune analyze --cluster` puts
//! recordings on a JetStream work queue — the audio in the object store bucket
//! [`BACKLOG_BUCKET`], one [`WorkItem`] per recording on [`WORK_SUBJECT`] — and every
//! `attune serve --cluster` node takes items one at a time, scores each with the default rubric
//! and stores it under an id made from the audio's SHA-256 (`bq-` and 16 hex digits). So an item
//! delivered twice (a node died while scoring it) or a recording queued twice is stored once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, object_store, stream};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio_stream::StreamExt;

use crate::cluster::{ClusterConfig, ClusterError, connect, js_error};
use crate::metrics::ClusterCounters;
use crate::recorder::{CallRecorder, MAX_UPLOAD_BYTES, UploadError, UploadInfo};

/// The work queue's stream (work-queue retention: an item is gone once acknowledged).
pub const WORK_STREAM: &str = "ATTUNE_WORK";
pub const WORK_SUBJECT: &str = "attune.work.score";
/// The queued recordings' audio.
pub const BACKLOG_BUCKET: &str = "attune_backlog";
/// The durable consumer every node pulls from.
pub const SCORERS: &str = "attune_scorers";
/// Queued work older than this is dropped.
pub const BACKLOG_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// A node holding an item this long without finishing it loses it to another node.
pub const ACK_WAIT: Duration = Duration::from_secs(600);
/// How long an item that could not be stored waits before it is offered again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Deliveries of one item before it is given up.
pub const MAX_DELIVER: i64 = 20;

/// One recording to score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The stored call's id: `bq-` and the first 16 hex digits of the audio's SHA-256.
    pub call_id: String,
    /// The audio's object in [`BACKLOG_BUCKET`] (its full SHA-256, hex).
    pub object: String,
    /// File name shown for the call.
    pub name: String,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub agent_channel: u16,
    pub size_bytes: u64,
}

/// A recording to queue.
#[derive(Debug, Clone)]
pub struct Submission {
    pub name: String,
    pub bytes: Vec<u8>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub agent_channel: u16,
}

/// The work stream and the audio bucket, made when missing.
async fn queue(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<(stream::Stream, object_store::ObjectStore), ClusterError> {
    let work = js
        .get_or_create_stream(stream::Config {
            name: WORK_STREAM.to_owned(),
            subjects: vec![WORK_SUBJECT.to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            max_age: BACKLOG_KEPT,
            max_message_size: 64 * 1024,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| js_error("work queue")(&e))?;
    let audio = match js.get_object_store(BACKLOG_BUCKET).await {
        Ok(store) => store,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: BACKLOG_BUCKET.to_owned(),
                max_age: BACKLOG_KEPT,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| js_error("backlog audio bucket")(&e))?,
    };
    Ok((work, audio))
}

/// The id a recording is stored under.
pub fn call_id_of(sha256_hex: &str) -> String {
    format!("bq-{}", &sha256_hex[..16.min(sha256_hex.len())])
}

/// Queues recordings for the cluster's nodes to score; returns each one's work item.
pub async fn submit(
    config: &ClusterConfig,
    recordings: Vec<Submission>,
) -> Result<Vec<WorkItem>, ClusterError> {
    let client = connect(config).await?;
    let js = jetstream::new(client.clone());
    let (_, audio) = queue(&js, config.replicas).await?;
    let mut items = Vec::with_capacity(recordings.len());
    for r in recordings {
        if r.bytes.is_empty() || r.bytes.len() > MAX_UPLOAD_BYTES {
            return Err(ClusterError::Config(format!(
                "{}: {} bytes (a recording is 1..={MAX_UPLOAD_BYTES} bytes)",
                r.name,
                r.bytes.len()
            )));
        }
        let sha = crate::auth::secrets::sha256_hex(&r.bytes);
        let item = WorkItem {
            call_id: call_id_of(&sha),
            object: sha.clone(),
            name: r.name.chars().take(200).collect(),
            agent: r.agent,
            team: r.team,
            agent_channel: r.agent_channel.min(1),
            size_bytes: r.bytes.len() as u64,
        };
        if audio.info(&sha).await.is_err() {
            audio
                .put(sha.as_str(), &mut r.bytes.as_slice())
                .await
                .map_err(|e| js_error("backlog audio")(&e))?;
        }
        let payload = serde_json::to_vec(&item).map_err(|e| js_error("work item")(&e))?;
        js.publish(WORK_SUBJECT, payload.into())
            .await
            .map_err(|e| js_error("work queue")(&e))?
            .await
            .map_err(|e| js_error("work queue")(&e))?;
        items.push(item);
    }
    client
        .flush()
        .await
        .map_err(|e| js_error("work queue")(&e))?;
    Ok(items)
}

/// What became of one item on a node.
enum Outcome {
    Stored,
    AlreadyStored,
    /// The recording cannot be scored (not a WAV, mono, truncated…): given up.
    Refused(String),
    /// The store failed: tried again later (by any node).
    Retry(String),
}

/// Takes the cluster's queued recordings on this node, one at a time, until the process
/// ends (reconnecting after NATS failures).
pub fn spawn_scorer(
    client: async_nats::Client,
    replicas: usize,
    recorder: Arc<CallRecorder>,
    counters: Arc<ClusterCounters>,
) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = score_queue(&client, replicas, &recorder, &counters).await {
                eprintln!("attune: cluster: batch scoring paused: {e}");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

async fn score_queue(
    client: &async_nats::Client,
    replicas: usize,
    recorder: &Arc<CallRecorder>,
    counters: &ClusterCounters,
) -> Result<(), ClusterError> {
    let mut js = jetstream::new(client.clone());
    // Patient with a cluster that is electing leaders (a NATS server just failed).
    js.set_timeout(Duration::from_secs(15));
    let (work, audio) = queue(&js, replicas).await?;
    let scorers = work
        .get_or_create_consumer(
            SCORERS,
            consumer::pull::Config {
                durable_name: Some(SCORERS.to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_deliver: MAX_DELIVER,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| js_error("work queue consumer")(&e))?;
    let mut messages = scorers
        .stream()
        .max_messages_per_batch(1)
        // Short pulls with heartbeats: after a NATS server or the consumer's leader fails,
        // the node asks again within seconds instead of waiting out a long pull.
        .expires(Duration::from_secs(5))
        .heartbeat(Duration::from_secs(2))
        .messages()
        .await
        .map_err(|e| js_error("work queue consumer")(&e))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| js_error("work queue")(&e))?;
        let item = match serde_json::from_slice::<WorkItem>(&message.payload) {
            Ok(item) if item_is_valid(&item) => item,
            _ => {
                counters.backlog_refused.fetch_add(1, Ordering::Relaxed);
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            }
        };
        let outcome = score_item(&audio, recorder, &item).await;
        let ack = match &outcome {
            Outcome::Stored => {
                counters.backlog_scored.fetch_add(1, Ordering::Relaxed);
                AckKind::Ack
            }
            Outcome::AlreadyStored => AckKind::Ack,
            Outcome::Refused(why) => {
                counters.backlog_refused.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "attune: cluster: {} ({}) not scored: {why}",
                    item.name, item.call_id
                );
                AckKind::Term
            }
            Outcome::Retry(why) => {
                eprintln!(
                    "attune: cluster: {} ({}) not stored, tried again later: {why}",
                    item.name, item.call_id
                );
                AckKind::Nak(Some(RETRY_AFTER))
            }
        };
        if !matches!(outcome, Outcome::Retry(_)) {
            // Another item may share the audio (queued twice): delete only once stored.
            let _ = audio.delete(&item.object).await;
        }
        let _ = message.ack_with(ack).await;
    }
    Ok(())
}

/// Whether a work item (from anyone who may publish on the subject) is well formed: its id
/// matches its audio's hash and its names pass the service's id checks.
fn item_is_valid(item: &WorkItem) -> bool {
    use crate::session::check_client_id;
    item.object.len() == 64
        && item.object.bytes().all(|b| b.is_ascii_hexdigit())
        && item.call_id == call_id_of(&item.object)
        && check_client_id("name", &item.name).is_ok()
        && item
            .agent
            .as_deref()
            .is_none_or(|a| check_client_id("agent", a).is_ok())
        && item
            .team
            .as_deref()
            .is_none_or(|t| check_client_id("team", t).is_ok())
        && item.agent_channel <= 1
}

async fn score_item(
    audio: &object_store::ObjectStore,
    recorder: &Arc<CallRecorder>,
    item: &WorkItem,
) -> Outcome {
    let rec = recorder.clone();
    let id = item.call_id.clone();
    match tokio::task::spawn_blocking(move || rec.has_call(&id)).await {
        Ok(Ok(true)) => return Outcome::AlreadyStored,
        Ok(Ok(false)) => {}
        Ok(Err(e)) => return Outcome::Retry(e.to_string()),
        Err(e) => return Outcome::Retry(e.to_string()),
    }
    if item.size_bytes as usize > recorder.max_upload_bytes {
        return Outcome::Refused(format!(
            "{} bytes is over the {} byte limit",
            item.size_bytes, recorder.max_upload_bytes
        ));
    }
    let mut object = match audio.get(&item.object).await {
        Ok(object) => object,
        // Gone: scored and deleted by another delivery, or expired.
        Err(e) => return Outcome::Refused(format!("its audio is not in the backlog: {e}")),
    };
    let mut bytes = Vec::with_capacity(item.size_bytes as usize);
    let limit = recorder.max_upload_bytes as u64 + 1;
    if let Err(e) = (&mut object).take(limit).read_to_end(&mut bytes).await {
        return Outcome::Retry(format!("reading its audio: {e}"));
    }
    let info = UploadInfo {
        name: Some(item.name.clone()),
        agent: item.agent.clone(),
        team: item.team.clone(),
        agent_channel: item.agent_channel,
        keep_audio: false,
        call_id: Some(item.call_id.clone()),
    };
    let rec = recorder.clone();
    let id = item.call_id.clone();
    match tokio::task::spawn_blocking(move || rec.score_upload(&info, bytes)).await {
        Ok(Ok(_)) => Outcome::Stored,
        Ok(Err(UploadError::Store(e))) => {
            // Stored meanwhile by another node (the id is the store's key)?
            let rec = recorder.clone();
            match tokio::task::spawn_blocking(move || rec.has_call(&id)).await {
                Ok(Ok(true)) => Outcome::AlreadyStored,
                _ => Outcome::Retry(e.to_string()),
            }
        }
        Ok(Err(e)) => Outcome::Refused(e.to_string()),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_items_id_comes_from_its_audio() {
        let sha = crate::auth::secrets::sha256_hex(b"RIFF");
        assert_eq!(call_id_of(&sha), format!("bq-{}", &sha[..16]));
        let item = WorkItem {
            call_id: call_id_of(&sha),
            object: sha,
            name: "a.wav".into(),
            agent: None,
            team: Some("north".into()),
            agent_channel: 0,
            size_bytes: 4,
        };
        let back: WorkItem = serde_json::from_slice(&serde_json::to_vec(&item).unwrap()).unwrap();
        assert_eq!(back, item);
        assert!(item_is_valid(&item));
        let forged = WorkItem {
            call_id: "bq-0000000000000000".into(),
            ..item.clone()
        };
        assert!(!item_is_valid(&forged), "an id not from its audio");
        let escape = WorkItem {
            team: Some("north\u{1b}[2J".into()),
            ..item.clone()
        };
        assert!(!item_is_valid(&escape), "a control character in a name");
        let path = WorkItem {
            object: "../../etc/passwd".into(),
            ..item
        };
        assert!(!item_is_valid(&path));
    }
}
