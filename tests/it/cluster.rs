//! A cluster of three `attune serve` processes over a NATS JetStream cluster of three servers
//! and one PostgreSQL store, driven as an operator would: calls replayed into different nodes
//! are live on every node (a late joiner too); a session and an acknowledgement made on one node
//! hold on the others; a killed node's calls end as interrupted on the others within the node
//! timeout, and its client's reconnect to another node continues the call (with a notice of the
//! gap); a killed NATS server of three leaves the cluster serving; recordings queued for batch
//! scoring are stored once each; every stored call is listed on any node. Needs the `cluster`
//! and `postgres` features, `ATTUNE_TEST_NATS_URL` and `ATTUNE_TEST_POSTGRES_URL`
//! (`.ci/with-nats` and `.ci/with-postgres` set them).

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::console::{examples_dir, raw_request, wait_for};

/// The node timeout the test runs with, seconds.
const NODE_TIMEOUT_S: f64 = 2.0;

/// One `attune serve` process in the cluster; killed when dropped.
struct Node {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
}

impl Node {
    fn start(node_id: &str, db: &str, nats: &str) -> Self {
        // Three copies of the stream and buckets on a three-server NATS cluster.
        let replicas = nats.split(',').count().min(3).to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_attune"))
            .args([
                "serve",
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--db",
                db,
                "--cluster",
                nats,
                "--node-id",
                node_id,
                "--node-timeout-s",
                &NODE_TIMEOUT_S.to_string(),
                // The replays run at 4× real time: not paced.
                "--max-ingest-speed",
                "0",
                "--cluster-replicas",
                &replicas,
                "--analysis-threads",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run attune serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let name = node_id.to_owned();
        std::thread::spawn(move || {
            let mut addresses = None;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.strip_prefix("attune serve: gRPC on ") {
                    addresses = Some(rest.to_owned());
                }
                // Ready once it has joined the cluster (its addresses are printed before).
                if line.starts_with("attune serve: cluster node ")
                    && let Some(addresses) = addresses.take()
                {
                    let _ = tx.send(addresses);
                }
                eprintln!("[{name}] {line}");
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the node prints its addresses and joins the cluster");
        // "A, HTTP on B (max ...".
        let (grpc, rest) = line.split_once(", HTTP on ").unwrap();
        let http = rest.split_whitespace().next().unwrap();
        Self {
            child,
            grpc: grpc.parse().unwrap(),
            http: http.parse().unwrap(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `attune replay`; killed when dropped.
struct Replay(Child);

impl Replay {
    fn start(node: &Node, token: &str, file: &str, call_id: &str, team: &str, speed: f64) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_attune"))
            .args([
                "replay",
                &examples_dir().join(file).display().to_string(),
                "--server",
                &format!("http://{}", node.grpc),
                "--token",
                token,
                "--call-id",
                call_id,
                "--team",
                team,
                "--agent-id",
                &format!("agent-{call_id}"),
                "--speed",
                &speed.to_string(),
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run attune replay");
        Self(child)
    }

    fn wait_ok(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert!(status.success(), "replay failed: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "replay did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn token(db: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_attune"))
        .args(["tokens", "create", "--role", role, "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

/// Signs the admin in on `node`: the session and CSRF cookies, and the CSRF token.
async fn sign_in_admin(node: SocketAddr) -> (String, String) {
    let r = raw_request(
        node,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!(
            "username=admin&password={}",
            ADMIN_PASSWORD.replace(' ', "+")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "sign-in: {}", r.body);
    let session = r.cookie("attune_session").expect("a session cookie");
    let csrf = r.cookie("attune_csrf").expect("a CSRF cookie");
    let token = csrf.split_once('=').unwrap().1.to_owned();
    (format!("{session}; {csrf}"), token)
}

const ADMIN_PASSWORD: &str = "cluster admin password";

fn add_admin(db: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_attune"))
        .args([
            "users",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            "--db",
            db,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{ADMIN_PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn get_json(node: SocketAddr, token: &str, path: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let r = raw_request(node, "GET", path, &[("Authorization", &auth)], b"").await;
    assert_eq!(r.status, 200, "GET {path} on {node}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

/// The live call ids a node shows.
async fn live_ids(node: SocketAddr, token: &str) -> Vec<String> {
    let calls = get_json(node, token, "/api/calls").await;
    calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["call"]["call_id"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until `node` shows every call of `ids` live.
async fn wait_live(node: &Node, token: &str, ids: &[&String], what: &str, timeout_s: f64) {
    wait_for(what, Duration::from_secs_f64(timeout_s), || async {
        let live = live_ids(node.http, token).await;
        ids.iter().all(|c| live.contains(c)).then_some(())
    })
    .await;
}

async fn metric(node: SocketAddr, token: &str, name: &str) -> f64 {
    let auth = format!("Bearer {token}");
    let r = raw_request(node, "GET", "/metrics", &[("Authorization", &auth)], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_live_calls_and_a_killed_nodes_calls_end_as_interrupted() {
    let (Ok(nats), Ok(pg)) = (
        std::env::var("ATTUNE_TEST_NATS_URL"),
        std::env::var("ATTUNE_TEST_POSTGRES_URL"),
    ) else {
        eprintln!(
            "skipping: ATTUNE_TEST_NATS_URL and ATTUNE_TEST_POSTGRES_URL not set (.ci/run sets them)"
        );
        return;
    };
    if !cfg!(feature = "postgres") {
        eprintln!("skipping: built without the `postgres` feature");
        return;
    }
    let run = std::process::id();
    let db = tokio::task::spawn_blocking(move || {
        attune_qa::store::fresh_postgres_database_for_tests(&pg, &format!("attune_cluster_{run}"))
    })
    .await
    .unwrap()
    .unwrap();
    let ingest = token(&db, "ingest");
    let api = token(&db, "api");
    add_admin(&db);
    // Ids unique to this run: the NATS server may hold calls of an earlier run.
    let id = |name: &str| format!("{name}-{run}");
    let node_a = Node::start(&id("a"), &db, &nats);
    let node_b = Node::start(&id("b"), &db, &nats);
    let (call_a, call_b, call_c) = (id("on-a"), id("on-b"), id("on-c"));
    let replay_a = Replay::start(&node_a, &ingest, "upset_caller.wav", &call_a, "north", 4.0);
    let replay_b = Replay::start(&node_b, &ingest, "calm.wav", &call_b, "south", 4.0);
    for node in [&node_a, &node_b] {
        wait_live(
            node,
            &api,
            &[&call_a, &call_b],
            "both calls on every node",
            10.0,
        )
        .await;
    }
    // A late joiner sees the calls already live (from the calls bucket), then its own.
    let mut node_c = Node::start(&id("c"), &db, &nats);
    let live = live_ids(node_c.http, &api).await;
    assert!(
        live.contains(&call_a) && live.contains(&call_b),
        "a node that joins late shows the live calls at once: {live:?}"
    );
    let replay_c = Replay::start(&node_c, &ingest, "upset_caller.wav", &call_c, "north", 1.0);
    for node in [&node_a, &node_b] {
        wait_live(node, &api, &[&call_c], "node c's call everywhere", 10.0).await;
    }
    // A call of another node is read like a local one, with its latest snapshot.
    let detail = wait_for("a judged remote call", Duration::from_secs(10), || async {
        let d = get_json(node_a.http, &api, &format!("/api/calls/{call_b}")).await;
        let judged =
            d["view"]["latest"]["t_s"].as_f64().is_some() && !d["snapshots"].as_array()?.is_empty();
        judged.then_some(d)
    })
    .await;
    assert_eq!(detail["view"]["call"]["team"], "south", "{detail}");
    assert_eq!(detail["view"]["live"], true, "{detail}");
    // A session started on b works on a, and an acknowledgement made on a (of a's call's
    // alert) shows on b.
    let (cookie, csrf) = sign_in_admin(node_b.http).await;
    let me = raw_request(node_a.http, "GET", "/api/me", &[("Cookie", &cookie)], b"").await;
    assert_eq!(me.status, 200, "a session of node b on node a: {}", me.body);
    let cue_id = {
        let call_a = call_a.clone();
        wait_for(
            "an alert of a's call on b",
            Duration::from_secs(30),
            || async {
                let alerts = get_json(node_b.http, &api, "/api/alerts").await;
                alerts["alerts"]
                    .as_array()?
                    .iter()
                    .find(|a| a["call"]["call_id"] == call_a.as_str())
                    .and_then(|a| a["cue"]["cue_id"].as_u64())
            },
        )
        .await
    };
    let ack = raw_request(
        node_a.http,
        "POST",
        &format!("/api/alerts/{call_a}/{cue_id}/ack"),
        &[
            ("Cookie", &cookie),
            ("X-CSRF-Token", &csrf),
            ("Content-Type", "application/json"),
        ],
        b"",
    )
    .await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    {
        let call_a = call_a.clone();
        wait_for(
            "the acknowledgement on b",
            Duration::from_secs(5),
            || async {
                let alerts = get_json(node_b.http, &api, "/api/alerts").await;
                let acked = alerts["alerts"].as_array()?.iter().any(|a| {
                    a["call"]["call_id"] == call_a.as_str()
                        && a["cue"]["cue_id"].as_u64() == Some(cue_id)
                        && a["ack"]["by"] == "admin"
                });
                acked.then_some(())
            },
        )
        .await;
    }
    // Kill node c without a word: its call ends as interrupted on a and b.
    let _ = node_c.child.kill();
    let _ = node_c.child.wait();
    drop(replay_c);
    let killed_at = Instant::now();
    for node in [&node_a, &node_b] {
        let call_c = call_c.clone();
        wait_for(
            "the killed node's call ended",
            Duration::from_secs_f64(NODE_TIMEOUT_S + 4.0),
            || async { (!live_ids(node.http, &api).await.contains(&call_c)).then_some(()) },
        )
        .await;
    }
    let ended_after_s = killed_at.elapsed().as_secs_f64();
    eprintln!("a killed node's call ended on its peers after {ended_after_s:.2} s");
    assert!(metric(node_a.http, &api, "attune_cluster_calls_interrupted_total").await >= 1.0);
    assert!(metric(node_a.http, &api, "attune_cluster_events_received_total").await >= 1.0);
    assert_eq!(
        metric(node_a.http, &api, "attune_cluster_peers_live").await,
        1.0,
        "a sees b, not the killed c"
    );
    // The killed node's client reconnects the same call to node a: a continues it, and the
    // stored result says where the gap was.
    let replay_c2 = Replay::start(&node_a, &ingest, "calm.wav", &call_c, "north", 4.0);
    wait_live(&node_b, &api, &[&call_c], "the call continued on a", 10.0).await;
    // A NATS server of the three is killed: the nodes move to the others and go on sharing.
    let nats_pids = std::env::var("ATTUNE_TEST_NATS_PIDS").unwrap_or_default();
    let nats_pids: Vec<&str> = nats_pids.split_whitespace().collect();
    let call_b2 = id("on-b-after");
    let replay_b2 = if nats_pids.len() == 3 {
        let killed = Command::new("kill")
            .args(["-9", nats_pids[0]])
            .status()
            .unwrap();
        assert!(killed.success(), "kill the first NATS server");
        let killed_at = Instant::now();
        let replay = Replay::start(&node_b, &ingest, "calm.wav", &call_b2, "south", 4.0);
        wait_live(
            &node_a,
            &api,
            &[&call_b2],
            "a new call after a NATS server died",
            20.0,
        )
        .await;
        eprintln!(
            "after a NATS server died, a new call on b was live on a {:.2} s later",
            killed_at.elapsed().as_secs_f64()
        );
        Some(replay)
    } else {
        eprintln!("one NATS server: the NATS failure part is left out");
        None
    };
    // The calls of a and b end, are stored once in the shared store and listed on any node.
    replay_a.wait_ok(Duration::from_secs(40));
    replay_b.wait_ok(Duration::from_secs(40));
    let mut ids = vec![call_a.clone(), call_b.clone()];
    if let Some(replay) = replay_b2 {
        replay.wait_ok(Duration::from_secs(40));
        ids.push(call_b2.clone());
    }
    replay_c2.wait_ok(Duration::from_secs(40));
    ids.push(call_c.clone());
    for node in [&node_a, &node_b] {
        let ids = ids.clone();
        wait_for(
            "both stored calls on every node",
            Duration::from_secs(15),
            || async {
                let recorded = get_json(node.http, &api, "/api/recorded").await;
                let stored: Vec<&str> = recorded["calls"]
                    .as_array()?
                    .iter()
                    .filter_map(|c| c["call_id"].as_str())
                    .collect();
                let once = ids
                    .iter()
                    .all(|c| stored.iter().filter(|s| **s == c.as_str()).count() == 1);
                once.then_some(())
            },
        )
        .await;
        let live = live_ids(node.http, &api).await;
        assert!(
            ids.iter().all(|c| !live.contains(c)),
            "ended calls leave every wall: {live:?}"
        );
    }
    // Batch scoring across the nodes: two recordings queued (one of them twice) are scored
    // once each, by whichever nodes take them, and listed on any node.
    let queue = |files: &[&str]| {
        let mut args = vec!["analyze".to_owned()];
        args.extend(
            files
                .iter()
                .map(|f| examples_dir().join(f).display().to_string()),
        );
        args.extend([
            "--cluster".into(),
            nats.clone(),
            "--team".into(),
            "batch".into(),
        ]);
        let out = Command::new(env!("CARGO_BIN_EXE_attune"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["call_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    let queued = queue(&["calm.wav", "agent_interrupts.wav"]);
    let again = queue(&["calm.wav"]);
    assert_eq!(queued.len(), 2);
    assert_eq!(again[0], queued[0], "the same audio, the same id");
    assert!(
        queued
            .iter()
            .all(|id| id.starts_with("bq-") && id.len() == 19),
        "{queued:?}"
    );
    let batch = wait_for(
        "the queued recordings stored",
        Duration::from_secs(90),
        || async {
            let recorded = get_json(node_b.http, &api, "/api/recorded?team=batch").await;
            let rows = recorded["calls"].as_array()?.clone();
            (rows.len() >= 2).then_some(rows)
        },
    )
    .await;
    eprintln!(
        "two queued recordings (and one queued again) scored and stored {:.1} s after the first was queued",
        started.elapsed().as_secs_f64()
    );
    let mut stored: Vec<&str> = batch.iter().filter_map(|c| c["call_id"].as_str()).collect();
    stored.sort();
    let mut want: Vec<&str> = queued.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(stored, want, "each queued recording stored once");
    // The item queued twice is acknowledged without a second score.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let scored = metric(node_a.http, &api, "attune_cluster_backlog_scored_total").await
        + metric(node_b.http, &api, "attune_cluster_backlog_scored_total").await;
    assert_eq!(scored, 2.0, "scored once each");

    let auth = format!("Bearer {api}");
    let stored = raw_request(
        node_b.http,
        "GET",
        &format!("/api/recorded/{call_c}"),
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert!(
        stored
            .body
            .contains("continued from another node of the cluster"),
        "the continued call's result notes the gap: {}",
        stored.body.chars().take(2000).collect::<String>()
    );
}
