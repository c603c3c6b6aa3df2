//! The live service over loopback: ingest faults (each with its status, other calls intact),
//! monitor streams (late joiners, slow readers), limits, HTTP metrics, and live = file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::Code;

use attune_core::call::{CallConfig, CallEvent, analyze_recording};
use attune_core::model::emotion::EmotionModel;
use attune_service::client::{ChunkedAudio, connect, ingest_call, send_paced};
use attune_service::grpc::SessionConfig;
use attune_service::hub::{CallFilter, Hub};
use attune_service::pb::{
    self, event::Kind, ingest_request::Msg, ingest_response, monitor_response,
};
use attune_service::server::ServerConfig;
use attune_service::session::Encoding;

use crate::util::{TestServer, TestService, synthetic_voice};

fn model() -> Arc<EmotionModel> {
    Arc::new(attune_qa::files::load_model(Path::new("models/emotion.json")).expect("emotion model"))
}

async fn start(config: ServerConfig) -> TestServer {
    TestServer::start(TestService::new(config)).await
}

fn fast_config() -> ServerConfig {
    ServerConfig {
        max_calls: 16,
        session: SessionConfig {
            header_timeout: Duration::from_millis(400),
            idle_timeout: Duration::from_millis(600),
            // Calls are streamed as fast as they go: not paced (tests/it/limits.rs tests pacing).
            limits: attune_service::session::SessionLimits::default().unpaced(),
            ..SessionConfig::default()
        },
        analysis_threads: 2,
        ..ServerConfig::default()
    }
}

fn header(call_id: &str, team: &str) -> pb::CallHeader {
    pb::CallHeader {
        call_id: call_id.into(),
        agent_id: format!("agent-of-{call_id}"),
        team: team.into(),
        sample_rate_hz: 8000,
        encoding: pb::AudioEncoding::Pcm16le as i32,
        layout: pb::ChannelLayout::InterleavedStereo as i32,
        agent_channel: 0,
    }
}

/// A few seconds of two synthetic voices, as 100 ms PCM16 chunks.
fn synthetic_call(seconds: f64) -> ChunkedAudio {
    let agent = synthetic_voice(8000, seconds, 120.0, 0.25, true);
    let caller = synthetic_voice(8000, seconds, 210.0, 0.3, true);
    ChunkedAudio::interleaved([&agent, &caller], 8000, 800, Encoding::Pcm16le)
}

fn request(msg: Msg) -> pb::IngestRequest {
    pb::IngestRequest { msg: Some(msg) }
}

fn audio(seq: u64, bytes: &Bytes) -> pb::IngestRequest {
    request(Msg::Audio(pb::AudioChunk {
        seq,
        channel: 0,
        audio: bytes.clone(),
    }))
}

/// Sends `requests` (then keeps the stream open if `hold_open`), collects every response, and
/// returns them with the final status.
async fn exchange(
    url: &str,
    requests: Vec<pb::IngestRequest>,
    hold_open: bool,
) -> (Vec<pb::IngestResponse>, Result<(), tonic::Status>) {
    let mut client = connect(url, &Default::default()).await.expect("connect");
    let (tx, rx) = mpsc::channel(requests.len().max(1));
    for r in requests {
        tx.send(r).await.unwrap();
    }
    let keep = hold_open.then_some(tx);
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut responses = Vec::new();
    let status = async {
        let mut inbound = client.ingest(stream).await?.into_inner();
        while let Some(r) = inbound.message().await? {
            responses.push(r);
        }
        Ok(())
    }
    .await;
    drop(keep);
    (responses, status)
}

fn summary_of(responses: &[pb::IngestResponse]) -> Option<pb::CallSummary> {
    responses.iter().find_map(|r| match &r.msg {
        Some(ingest_response::Msg::Event(pb::Event {
            kind: Some(Kind::CallEnded(s)),
            ..
        })) => Some(s.clone()),
        _ => None,
    })
}

/// A well-behaved call streamed at `speed`; returns its summary (asserting it ended cleanly
/// with every chunk acknowledged).
async fn healthy_call(url: String, call_id: String, seconds: f64, speed: f64) -> pb::CallSummary {
    let audio = synthetic_call(seconds);
    let mut client = connect(&url, &Default::default()).await.expect("connect");
    let (tx, rx) = mpsc::channel(4);
    let pacer_audio = audio.clone();
    let pacer = tokio::spawn(async move {
        send_paced(&pacer_audio, speed, tokio::time::Instant::now(), tx).await
    });
    let mut last_ack = -1;
    let mut summary = None;
    ingest_call(
        &mut client,
        header(&call_id, "steady"),
        rx,
        |r, _| match r.msg {
            Some(ingest_response::Msg::Ack(a)) => last_ack = a.highest_contiguous_seq,
            Some(ingest_response::Msg::Event(pb::Event {
                kind: Some(Kind::CallEnded(s)),
                ..
            })) => summary = Some(s),
            _ => {}
        },
    )
    .await
    .expect("the healthy call ends OK");
    pacer.await.unwrap();
    assert_eq!(last_ack, audio.chunks.len() as i64 - 1, "every chunk acked");
    let summary = summary.expect("summary");
    assert_eq!(summary.reason, "ended");
    assert_eq!(summary.chunks_received, audio.chunks.len() as u64);
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_faults_get_precise_statuses_and_spare_other_calls() {
    let server = start(fast_config()).await;
    let steady = tokio::spawn(healthy_call(
        server.grpc_url.clone(),
        "steady-1".into(),
        3.0,
        2.0,
    ));
    let chunk = synthetic_call(0.1).chunks[0].clone();

    // Never sends the header.
    let started = Instant::now();
    let (_, status) = exchange(&server.grpc_url, vec![], true).await;
    let status = status.expect_err("no header");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("no call header"), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Audio before the header.
    let (_, status) = exchange(&server.grpc_url, vec![audio(0, &chunk)], true).await;
    let status = status.expect_err("audio first");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("audio chunk 0"), "{status:?}");

    // A sample rate no telephone line has.
    let mut lying = header("liar", "t");
    lying.sample_rate_hz = 3;
    let (_, status) = exchange(&server.grpc_url, vec![request(Msg::Header(lying))], true).await;
    let status = status.expect_err("bad rate");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("sample rate 3 Hz"), "{status:?}");

    // A 1 MB agent id (just under the 1 MiB message cap) and a team with terminal escapes: refused, naming the field.
    let mut huge = header("huge", "t");
    huge.agent_id = "a".repeat(1_000_000);
    let (_, status) = exchange(&server.grpc_url, vec![request(Msg::Header(huge))], true).await;
    let status = status.expect_err("1 MB agent id");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("agent_id: 1000000 bytes is too long"),
        "{status:?}"
    );
    let mut escapes = header("escapes", "t\x1b[2J\x07");
    escapes.call_id = "escapes".into();
    let (_, status) = exchange(&server.grpc_url, vec![request(Msg::Header(escapes))], true).await;
    let status = status.expect_err("control chars");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("team: control character U+001B"),
        "{status:?}"
    );

    // Bytes that are not whole stereo PCM16 frames (a stream lying about its format).
    let odd = Bytes::from_static(&[1, 2, 3]);
    let (responses, status) = exchange(
        &server.grpc_url,
        vec![request(Msg::Header(header("odd", "t"))), audio(0, &odd)],
        true,
    )
    .await;
    let status = status.expect_err("misaligned");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("3 bytes"), "{status:?}");
    assert_eq!(summary_of(&responses).expect("summary").reason, "error");

    steady.await.unwrap();
    assert_eq!(server.hub.live_count(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_chunks_are_reordered_duplicates_dropped_gaps_refused() {
    let server = start(fast_config()).await;
    let audio_chunks = synthetic_call(0.6).chunks.clone();
    let c = |seq: usize| audio(seq as u64, &audio_chunks[seq]);
    let (responses, status) = exchange(
        &server.grpc_url,
        vec![
            request(Msg::Header(header("shuffled", "t"))),
            c(0),
            c(2),
            c(1),
            c(1),
            c(4),
            c(3),
            c(5),
            request(Msg::End(pb::EndCall {})),
        ],
        false,
    )
    .await;
    status.expect("reordered call ends OK");
    let summary = summary_of(&responses).expect("summary");
    assert_eq!(summary.reason, "ended");
    assert_eq!(summary.chunks_out_of_order, 2);
    assert_eq!(summary.chunks_duplicate, 1);
    let last_ack = responses
        .iter()
        .filter_map(|r| match &r.msg {
            Some(ingest_response::Msg::Ack(a)) => Some(a.highest_contiguous_seq),
            _ => None,
        })
        .max();
    assert_eq!(last_ack, Some(5));
    assert!(
        (summary.duration_s - 0.6).abs() < 0.05,
        "{}",
        summary.duration_s
    );

    // A gap wider than the reorder window.
    let (responses, status) = exchange(
        &server.grpc_url,
        vec![
            request(Msg::Header(header("gappy", "t"))),
            c(0),
            audio(500, &audio_chunks[1]),
        ],
        true,
    )
    .await;
    let status = status.expect_err("gap");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("chunk 1 is still missing"),
        "{status:?}"
    );
    assert_eq!(summary_of(&responses).expect("summary").reason, "error");
    assert_eq!(server.metric("attune_chunks_out_of_order_total").await, 2.0);
    assert_eq!(server.metric("attune_chunks_duplicate_total").await, 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_call_times_out_and_a_dropped_one_ends_with_a_summary() {
    let server = start(fast_config()).await;
    let steady = tokio::spawn(healthy_call(
        server.grpc_url.clone(),
        "steady-2".into(),
        3.0,
        2.0,
    ));
    let chunks = synthetic_call(0.5).chunks.clone();
    let mut requests = vec![request(Msg::Header(header("stalled", "t")))];
    requests.extend((0..5).map(|i| audio(i as u64, &chunks[i])));
    let started = Instant::now();
    let (responses, status) = exchange(&server.grpc_url, requests.clone(), true).await;
    let status = status.expect_err("stall");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("call ended"), "{status:?}");
    assert!(started.elapsed() >= Duration::from_millis(600));
    let summary = summary_of(&responses).expect("summary");
    assert_eq!(summary.reason, "timeout");
    assert_eq!(summary.chunks_received, 5);
    let ended = server.hub.ended_calls(&CallFilter {
        call_id: Some("stalled".into()),
        ..CallFilter::default()
    });
    assert_eq!(ended[0].end.as_ref().unwrap().reason, "timeout");

    // Disconnect mid-call: the client task is dropped with the stream open.
    requests[0] = request(Msg::Header(header("dropped", "t")));
    let url = server.grpc_url.clone();
    let client = tokio::spawn(async move { exchange(&url, requests, true).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .hub
        .live_calls(&CallFilter::default())
        .iter()
        .all(|c| c.call.call_id != "dropped")
    {
        assert!(Instant::now() < deadline, "call never went live");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.abort();
    let filter = CallFilter {
        call_id: Some("dropped".into()),
        ..CallFilter::default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let ended = loop {
        if let Some(view) = server.hub.ended_calls(&filter).pop() {
            break view;
        }
        assert!(Instant::now() < deadline, "dropped call never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let end = ended.end.expect("end");
    assert_eq!(end.reason, "disconnected");
    let summary = end.summary.expect("summary published to the hub");
    assert_eq!(summary.chunks_received, 5);
    assert!(summary.outcome.is_some());
    steady.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_too_many_calls_are_resource_exhausted() {
    let mut config = fast_config();
    config.max_calls = 2;
    let server = start(config).await;
    let steady = tokio::spawn(healthy_call(
        server.grpc_url.clone(),
        "steady-3".into(),
        3.0,
        2.0,
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hub.live_count() == 0 {
        assert!(Instant::now() < deadline, "steady call never went live");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // 100 MB in one message.
    let huge = Bytes::from(vec![0u8; 100 << 20]);
    let (responses, status) = exchange(
        &server.grpc_url,
        vec![request(Msg::Header(header("huge", "t"))), audio(0, &huge)],
        true,
    )
    .await;
    drop(huge);
    let status = status.expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    assert_eq!(summary_of(&responses).expect("summary").reason, "error");

    // A second call fits (limit 2); a third is refused.
    let url = server.grpc_url.clone();
    let second = tokio::spawn(async move {
        exchange(
            &url,
            vec![request(Msg::Header(header("second", "t")))],
            true,
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hub.live_count() < 2 {
        assert!(Instant::now() < deadline, "second call never went live");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, status) = exchange(
        &server.grpc_url,
        vec![request(Msg::Header(header("third", "t")))],
        true,
    )
    .await;
    let status = status.expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit is 2"), "{status:?}");
    let (_, status) = second.await.unwrap();
    assert_eq!(status.expect_err("idle").code(), Code::DeadlineExceeded);
    steady.await.unwrap();
    assert!(server.metric("attune_calls_rejected_total").await >= 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_get_live_calls_first_and_slow_ones_never_slow_ingest() {
    let mut config = fast_config();
    config.subscriber_buffer_events = 32;
    config.session.monitor_buffer = 64;
    // Ten snapshots a second of call time: plenty of events.
    config.session.snapshot_period_s = 0.1;
    let server = start(config).await;

    // A call is live before the monitor joins.
    let url = server.grpc_url.clone();
    let first = tokio::spawn(async move { healthy_call(url, "early".into(), 2.0, 1.0).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hub.live_count() == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut client = connect(&server.grpc_url, &Default::default())
        .await
        .unwrap();
    let mut watcher = client
        .monitor(pb::MonitorRequest {
            team: "steady".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let joined = watcher.message().await.unwrap().expect("first message");
    match joined.msg {
        Some(monitor_response::Msg::LiveCall(live)) => {
            assert_eq!(live.call.unwrap().call_id, "early")
        }
        other => panic!("expected the live call first, got {other:?}"),
    }
    // A second monitor that never reads.
    // A small HTTP/2 window, so that the transport does not absorb what the monitor ignores.
    let channel = tonic::transport::Endpoint::from_shared(server.grpc_url.clone())
        .unwrap()
        .initial_stream_window_size(Some(16 * 1024))
        .initial_connection_window_size(Some(16 * 1024))
        .connect()
        .await
        .unwrap();
    let mut slow_client = pb::live_calls_client::LiveCallsClient::new(channel);
    let slow = slow_client
        .monitor(pb::MonitorRequest::default())
        .await
        .unwrap()
        .into_inner();
    first.await.unwrap();
    // The filtered watcher saw the early call end.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = watcher.next().await {
            if let Some(monitor_response::Msg::Event(pb::Event {
                kind: Some(Kind::CallEnded(s)),
                call: Some(call),
                ..
            })) = m.msg
            {
                return (call.call_id, s.reason);
            }
        }
        panic!("monitor closed")
    })
    .await
    .expect("call end seen");
    assert_eq!(ended, ("early".to_owned(), "ended".to_owned()));

    // Fast calls produce far more events than the slow monitor's buffers hold; they must
    // finish as fast as with nobody watching.
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..4 {
        calls.push(tokio::spawn(healthy_call(
            server.grpc_url.clone(),
            format!("fast-{i}"),
            20.0,
            40.0,
        )));
    }
    for call in calls {
        call.await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        server
            .metric("attune_events_dropped_slow_subscribers_total")
            .await
            > 0.0
    );

    // The slow monitor, when it finally reads, is told what it missed.
    let missed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut slow = slow;
        while let Some(Ok(m)) = slow.next().await {
            if let Some(monitor_response::Msg::MissedEvents(n)) = m.msg {
                return n;
            }
        }
        0
    })
    .await
    .expect("reads");
    assert!(missed > 0);
    let (status, healthz) =
        crate::console::http_bytes(server.http, "GET", "/healthz", "text/plain", b"").await;
    assert_eq!((status, healthz.trim()), (200, "ok"));
    assert!(server.metric("process_resident_memory_bytes").await > 0.0);
    assert!(
        server
            .metrics
            .chunks_acked
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    server.stop().await;
}

/// The cues (kind, event, t_s) and outcome of upset_caller.wav analysed as a file: the
/// reference a live stream of it must reproduce.
pub(crate) fn upset_call_analysed_as_a_file(
    path: &Path,
) -> (Vec<(String, String, f64)>, attune_core::call::CallOutcome) {
    let config = CallConfig {
        agent_channel: 1,
        ..CallConfig::default()
    };
    let mut reader = attune_qa::files::open_wav(path).unwrap();
    let mut file_cues = Vec::new();
    let recording = analyze_recording(
        &mut reader,
        config,
        model(),
        |e| {
            if let CallEvent::Cue(c) = e {
                file_cues.push((
                    c.kind.as_str().to_owned(),
                    c.event.as_str().to_owned(),
                    c.t_s,
                ));
            }
        },
        |_| {},
    )
    .unwrap();
    let outcome = recording.outcome.expect("a stereo call has an outcome");
    assert!(!file_cues.is_empty(), "the upset call raises cues");
    (file_cues, outcome)
}

/// The outcome of an example call analysed as a file (agent on `agent_channel`, as its spec
/// says).
fn example_outcome(name: &str, agent_channel: usize) -> attune_core::call::CallOutcome {
    let config = CallConfig {
        agent_channel,
        ..CallConfig::default()
    };
    let mut reader = attune_qa::files::open_wav(&Path::new("examples/calls").join(name)).unwrap();
    analyze_recording(&mut reader, config, model(), |_| {}, |_| {})
        .unwrap()
        .outcome
        .expect("a stereo call has an outcome")
}

#[test]
fn the_hub_tells_the_agent_to_take_a_moment_after_a_hard_call_only() {
    use attune_service::hub::{AlertFilter, CallEnd, CallInfo, HubEventKind};
    use attune_service::session::CallSummary;
    let calm = example_outcome("calm.wav", 0);
    let upset = example_outcome("upset_caller.wav", 1);
    let hub = Hub::new(8);
    let (_, mut events) = hub.subscribe(&CallFilter::default());
    let mut run = |call_id: &str, outcome: &attune_core::call::CallOutcome| {
        let call = hub
            .start_call(CallInfo {
                call_id: call_id.into(),
                agent_id: "agent-7".into(),
                team: "t".into(),
                started_at_unix_ms: 0,
            })
            .unwrap();
        hub.end_call(
            &call,
            CallEnd {
                reason: "ended".into(),
                duration_s: outcome.duration_s,
                ended_at_unix_ms: attune_service::hub::now_unix_ms(),
                summary: Some(Arc::new(CallSummary {
                    reason: "ended".into(),
                    duration_s: outcome.duration_s,
                    chunks_received: 1,
                    bytes_received: 1,
                    chunks_out_of_order: 0,
                    chunks_duplicate: 0,
                    outcome: Some(outcome.clone()),
                    continued: None,
                })),
            },
        );
        let mut kinds = Vec::new();
        while let Ok(e) = events.try_recv() {
            kinds.push(match &e.kind {
                HubEventKind::Cue(c) => c.kind.as_str().to_owned(),
                HubEventKind::CallEnded(_) => "ended".to_owned(),
                _ => String::new(),
            });
        }
        kinds.retain(|k| !k.is_empty());
        kinds
    };
    assert_eq!(
        run("calm-1", &calm),
        ["ended"],
        "a calm call asks nothing: {:?}",
        hub.alerts(&AlertFilter::default(), 10)
            .iter()
            .map(|a| a.cue.evidence.rule.clone())
            .collect::<Vec<_>>()
    );
    // The upset example keeps caller_upset open for ~51 s (>= hard_call_upset_s 30).
    assert_eq!(run("upset-1", &upset), ["agent_take_a_moment", "ended"]);
    let alerts = hub.alerts(&AlertFilter::default(), 10);
    let moment = alerts
        .iter()
        .find(|a| a.cue.kind.as_str() == "agent_take_a_moment")
        .expect("an alert for the supervisor");
    assert_eq!(moment.call.call_id, "upset-1");
    assert_eq!(moment.cue.party.as_str(), "agent");
    assert!(
        moment.cue.evidence.rule.contains("caller upset for"),
        "{}",
        moment.cue.evidence.rule
    );
    assert!(
        upset.cues.iter().all(|c| c.cue_id < moment.cue.cue_id),
        "its cue id is new in the call"
    );
    // A second hard call within min_gap_s: no second nudge; switched off: none.
    assert_eq!(run("upset-2", &upset), ["ended"]);
    hub.set_take_a_moment_rule(None);
    assert_eq!(run("upset-3", &upset), ["ended"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_streamed_live_gives_the_same_cues_as_the_file() {
    let path = Path::new("examples/calls/upset_caller.wav");
    let (file_cues, outcome) = upset_call_analysed_as_a_file(path);

    let server = start(fast_config()).await;
    let buffer = attune_qa::files::read_wav(path).unwrap();
    let audio = ChunkedAudio::interleaved(
        [&buffer.channels[0], &buffer.channels[1]],
        buffer.sample_rate_hz,
        800,
        Encoding::Mulaw,
    );
    let mut client = connect(&server.grpc_url, &Default::default())
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let pacer_audio = audio.clone();
    tokio::spawn(
        async move { send_paced(&pacer_audio, 1000.0, tokio::time::Instant::now(), tx).await },
    );
    let mut head = header("upset-live", "t");
    head.encoding = pb::AudioEncoding::Mulaw as i32;
    head.agent_channel = 1;
    let mut live_cues = Vec::new();
    let mut duration_s = 0.0;
    ingest_call(&mut client, head, rx, |r, _| match r.msg {
        Some(ingest_response::Msg::Event(pb::Event {
            kind: Some(Kind::Cue(c)),
            ..
        })) => live_cues.push((c.kind, c.event, c.t_s)),
        Some(ingest_response::Msg::Event(pb::Event {
            kind: Some(Kind::CallEnded(s)),
            ..
        })) => duration_s = s.duration_s,
        _ => {}
    })
    .await
    .unwrap();
    assert_eq!(live_cues, file_cues);
    assert_eq!(duration_s, outcome.duration_s);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_streamed_as_two_mono_streams_gives_the_same_cues_as_the_stereo_file() {
    let path = Path::new("examples/calls/upset_caller.wav");
    let (file_cues, outcome) = upset_call_analysed_as_a_file(path);

    // Each party's channel as its own mono stream of 100 ms mu-law chunks; the agent's
    // (channel 1) runs two chunks ahead of the caller's, as two independent sources would.
    let buffer = attune_qa::files::read_wav(path).unwrap();
    let mono_chunks = |channel: &[f32]| -> Vec<Bytes> {
        channel
            .chunks(800)
            .map(|samples| {
                let mut bytes = Vec::with_capacity(samples.len());
                attune_service::session::encode_chunk(Encoding::Mulaw, &[samples], &mut bytes);
                Bytes::from(bytes)
            })
            .collect()
    };
    let caller = mono_chunks(&buffer.channels[0]);
    let agent = mono_chunks(&buffer.channels[1]);
    let mut order: Vec<(u32, Bytes)> = Vec::with_capacity(caller.len() + agent.len());
    let lead = 2;
    for k in 0..caller.len().max(agent.len()) + lead {
        if let Some(a) = agent.get(k) {
            order.push((1, a.clone()));
        }
        if let Some(c) = k.checked_sub(lead).and_then(|k| caller.get(k)) {
            order.push((0, c.clone()));
        }
    }
    assert_eq!(order.len(), caller.len() + agent.len());

    let server = start(fast_config()).await;
    let mut client = connect(&server.grpc_url, &Default::default())
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        for (seq, (channel, audio)) in order.into_iter().enumerate() {
            let chunk = pb::AudioChunk {
                seq: seq as u64,
                channel,
                audio,
            };
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    let mut head = header("two-mono", "t");
    head.encoding = pb::AudioEncoding::Mulaw as i32;
    head.layout = pb::ChannelLayout::TwoMono as i32;
    head.agent_channel = 1;
    let mut live_cues = Vec::new();
    let mut summary = None;
    ingest_call(&mut client, head, rx, |r, _| match r.msg {
        Some(ingest_response::Msg::Event(pb::Event {
            kind: Some(Kind::Cue(c)),
            ..
        })) => live_cues.push((c.kind, c.event, c.t_s)),
        Some(ingest_response::Msg::Event(pb::Event {
            kind: Some(Kind::CallEnded(s)),
            ..
        })) => summary = Some(s),
        _ => {}
    })
    .await
    .unwrap();
    let summary = summary.expect("a summary at the end");
    assert_eq!(summary.reason, "ended");
    assert_eq!(summary.chunks_received, (caller.len() + agent.len()) as u64);
    assert_eq!(live_cues, file_cues);
    assert_eq!(summary.duration_s, outcome.duration_s);
    server.stop().await;
}

/// SIGTERM (what systemd, Docker and Kubernetes send) drains like Ctrl-C: the live call is
/// ended and stored, and `attune serve` exits cleanly instead of dying with its calls.
#[cfg(unix)]
#[test]
fn sigterm_drains_the_live_calls_into_the_store_and_exits_cleanly() {
    use std::process::Stdio;

    use crate::util::{ServeProcess, attune, run_ok, temp_dir};

    let dir = temp_dir("sigterm-drain");
    let db = dir.join("attune.db");
    let db = db.to_str().unwrap();
    let token = run_ok(&[
        "tokens", "create", "--role", "ingest", "--teams", "*", "--db", db,
    ])
    .trim()
    .to_owned();
    let server = ServeProcess::start(&["--db", db, "--record-teams", "t1"]);
    let call = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/calls/calm.wav");
    let mut replay = attune()
        .args([
            "replay",
            call,
            "--server",
            &server.grpc_url(),
            "--token",
            &token,
        ])
        .args([
            "--call-id",
            "drain-1",
            "--agent-id",
            "a1",
            "--team",
            "t1",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run attune replay");
    std::thread::sleep(Duration::from_secs(4));
    let (status, log) = server.terminate(Duration::from_secs(40));
    let _ = replay.kill();
    let _ = replay.wait();
    assert!(
        status.success(),
        "serve exited with {status} after SIGTERM: {log}"
    );
    assert!(log.contains("SIGTERM: draining"), "{log}");
    let stored = run_ok(&["calls", "--db", db, "--format", "json"]);
    assert!(
        stored.contains("\"drain-1\""),
        "the call live at SIGTERM is stored: {stored}"
    );
    // Its team is recorded: the recording is finished too, beside the store, under its name.
    let recordings = dir.join("attune.db.recordings");
    let names: Vec<String> = std::fs::read_dir(&recordings)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["drain-1.wav"], "{log}");
    let wav = hound::WavReader::open(recordings.join("drain-1.wav")).unwrap();
    assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 8000));
    assert!(wav.duration() > 8000 * 2, "{} frames", wav.duration());
    assert!(log.contains("recording the calls of team t1"), "{log}");
}

/// Recording flags are checked before anything starts, each error naming its flag.
#[test]
fn bad_recording_flags_are_named() {
    let dir = crate::util::temp_dir("recording-flags");
    let db = dir.join("a.db").display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--record-teams", "t1", "--recording-retention-days", "0"],
            "--recording-retention-days must be at least 1 (got 0)",
        ),
        (
            &["--record-teams", "a,,b"],
            "--record-teams: an empty team name",
        ),
        (
            &["--record-teams", "*,north"],
            "--record-teams: `*` means every team",
        ),
        (
            &[
                "--record-teams",
                "t1",
                "--recordings-dir",
                "/proc/attune-recordings",
            ],
            "--recordings-dir /proc/attune-recordings: cannot create the folder",
        ),
    ];
    for (flags, says) in cases {
        let mut args = vec![
            "serve",
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--db",
            &db,
        ];
        args.extend_from_slice(flags);
        let err = crate::util::run_err(&args);
        assert!(err.contains(says), "{flags:?}: {err}");
    }
    let err = crate::util::run_err(&[
        "serve",
        "--db",
        "postgres://nobody@127.0.0.1:1/none",
        "--record-teams",
        "t1",
    ]);
    assert!(err.contains("--recordings-dir DIR is required"), "{err}");
}
