//! Who may see and do what, tried as outside clients would: a role × endpoint matrix over every
//! route and gRPC method, forged and revoked tokens, CSRF and Origin checks, login throttling,
//! XSS payloads in ids, server-issued upload ids, stored calls never replaced, the audit log,
//! and TLS (a client with the wrong CA and plaintext to the TLS port are refused).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use attune_qa::ScoringSetup;
use attune_qa::store::{Store, TokenRecord, UserRecord};
use attune_service::auth::{Gate, GateConfig, StoreIdentities, secrets};
use attune_service::client::{ClientOptions, connect, ingest_call};
use attune_service::hub::{CallInfo, HubEventKind};
use attune_service::ingest::IngestConfig;
use attune_service::metrics::ServiceMetrics;
use attune_service::pb;
use attune_service::recorder::CallRecorder;
use attune_service::recordings::{RecordTeams, RecordingPolicy, Recordings};
use attune_service::server::ServerConfig;
use attune_service::tls::TlsFiles;

use crate::console::{RawResponse, open_cue, raw_request};
use crate::util::{TestServer, TestService};

const PASSWORD: &str = "a long enough password";

/// Tokens of the fixture, by role.
struct Tokens {
    ingest_t1: String,
    monitor_t1: String,
    api_t1: String,
    revoked: String,
    expired: String,
}

/// The service under a gate of the fixture's accounts and tokens (its addresses and hub through
/// [`TestServer`]).
struct SecureServer {
    server: TestServer,
    db: String,
    tokens: Tokens,
}

impl std::ops::Deref for SecureServer {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

fn add_user(store: &mut Store, name: &str, role: &str, teams: &[&str], agent_id: Option<&str>) {
    store
        .add_user(&UserRecord {
            name: name.into(),
            role: role.into(),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            agent_id: agent_id.map(str::to_owned),
            password_hash: secrets::hash_password(PASSWORD).unwrap(),
            disabled: false,
            created_at: String::new(),
            updated_at: String::new(),
        })
        .unwrap();
}

fn add_token(store: &mut Store, role: &str, teams: &[&str]) -> String {
    add_token_expiring(store, role, teams, None)
}

fn add_token_expiring(
    store: &mut Store,
    role: &str,
    teams: &[&str],
    expires_at: Option<&str>,
) -> String {
    let token = secrets::new_api_token();
    store
        .add_token(&TokenRecord {
            token_id: secrets::token_id(&token),
            name: format!("{role} test"),
            role: role.into(),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            token_sha256: secrets::sha256_hex(token.as_bytes()),
            created_at: "2026-12-03T00:00:00Z".into(),
            created_by: "test".into(),
            revoked_at: None,
            expires_at: expires_at.map(str::to_owned),
        })
        .unwrap();
    token
}

impl SecureServer {
    async fn start(name: &str, tls: Option<TlsFiles>) -> Self {
        let dir = crate::util::temp_dir(name);
        let db = dir.join("secure.db").display().to_string();
        let mut store = Store::open(&db).unwrap();
        add_user(&mut store, "root", "admin", &[], None);
        add_user(&mut store, "sue", "supervisor", &["t1"], None);
        add_user(&mut store, "al", "agent", &[], Some("a1"));
        add_user(&mut store, "quinn", "qa", &[], None);
        let tokens = Tokens {
            ingest_t1: add_token(&mut store, "ingest", &["t1"]),
            monitor_t1: add_token(&mut store, "monitor", &["t1"]),
            api_t1: add_token(&mut store, "api", &["t1"]),
            revoked: add_token(&mut store, "monitor", &["*"]),
            expired: add_token_expiring(
                &mut store,
                "monitor",
                &["*"],
                Some("2026-01-01T00:00:00Z"),
            ),
        };
        store
            .revoke_token(&secrets::token_id(&tokens.revoked))
            .unwrap();
        let gate = Arc::new(Gate::new(
            Arc::new(StoreIdentities::new(store)),
            GateConfig {
                // Revocations apply at once in tests.
                token_cache_ttl: Duration::ZERO,
                secure_cookies: tls.is_some(),
                ..GateConfig::default()
            },
        ));
        let setup = Arc::new(ScoringSetup::load(None, None, None, 1).unwrap());
        let metrics = Arc::new(ServiceMetrics::default());
        // Every team's calls are recorded: who may hear a recording is checked too.
        let recordings = Recordings::open(
            RecordingPolicy {
                dir: dir.join("secure.db.recordings"),
                teams: RecordTeams::All,
                retention_days: 30,
            },
            metrics.clone(),
        )
        .unwrap();
        let recorder = Arc::new(
            CallRecorder::start(Store::open(&db).unwrap(), setup.clone(), metrics.clone())
                .unwrap()
                .with_recordings(recordings),
        );
        let config = ServerConfig {
            max_calls: 16,
            analysis_threads: 2,
            gate,
            tls,
            ..ServerConfig::default()
        };
        let server = TestServer::start(TestService {
            ingest: IngestConfig {
                require_signatures: true,
                ..IngestConfig::default()
            },
            ..TestService::with_recorder(config, recorder, metrics)
        })
        .await;
        Self { server, db, tokens }
    }

    /// Signs in; returns the Cookie header value and the CSRF token.
    async fn sign_in(&self, user: &str) -> (String, String) {
        let form = format!("username={user}&password={}", PASSWORD.replace(' ', "+"));
        let r = raw_request(
            self.http,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 303, "sign-in of {user}: {}", r.body);
        let session = r.cookie("attune_session").expect("session cookie");
        let csrf = r.cookie("attune_csrf").expect("csrf cookie");
        let set = r
            .headers
            .iter()
            .find(|(k, v)| k == "set-cookie" && v.starts_with("attune_session="))
            .unwrap()
            .1
            .clone();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let csrf_value = csrf.split_once('=').unwrap().1.to_owned();
        (format!("{session}; {csrf}"), csrf_value)
    }

    async fn stop(self) {
        let _ = self.server.shut_down().await;
    }
}

/// Who makes a request.
#[derive(Clone)]
enum As {
    Nobody,
    Session(String, String),
    Bearer(String),
}

async fn send(server: &SecureServer, who: &As, method: &str, path: &str) -> RawResponse {
    send_body(server, who, method, path, "application/json", b"").await
}

async fn send_body(
    server: &SecureServer,
    who: &As,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> RawResponse {
    let auth;
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", content_type)];
    match who {
        As::Nobody => {}
        As::Session(cookie, csrf) => {
            headers.push(("Cookie", cookie));
            headers.push(("X-CSRF-Token", csrf));
        }
        As::Bearer(token) => {
            auth = format!("Bearer {token}");
            headers.push(("Authorization", &auth));
        }
    }
    raw_request(server.http, method, path, &headers, body).await
}

/// Two live calls: `c1` (team t1, agent a1) with an open alert, and `c2` (team t2, agent a2).
fn live_calls(server: &SecureServer) {
    for (id, agent, team) in [("c1", "a1", "t1"), ("c2", "a2", "t2")] {
        let call = server
            .hub
            .start_call(CallInfo {
                call_id: id.into(),
                agent_id: agent.into(),
                team: team.into(),
                started_at_unix_ms: 0,
            })
            .unwrap();
        server.hub.publish(&call, HubEventKind::Cue(open_cue(1)));
    }
}

fn upload_wav() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/calls/upset_caller.wav"
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_its_rights_say() {
    let server = SecureServer::start("sec-matrix", None).await;
    live_calls(&server);
    let session = |(cookie, csrf): (String, String)| As::Session(cookie, csrf);
    let admin = session(server.sign_in("root").await);
    let sup = session(server.sign_in("sue").await);
    let agent = session(server.sign_in("al").await);
    let qa = session(server.sign_in("quinn").await);
    let ingest = As::Bearer(server.tokens.ingest_t1.clone());
    let monitor = As::Bearer(server.tokens.monitor_t1.clone());
    let api = As::Bearer(server.tokens.api_t1.clone());
    let forged = As::Bearer(format!("att_{}", "0".repeat(64)));
    let revoked = As::Bearer(server.tokens.revoked.clone());
    let who: [(&str, &As); 10] = [
        ("nobody", &As::Nobody),
        ("admin", &admin),
        ("supervisor", &sup),
        ("agent", &agent),
        ("qa", &qa),
        ("ingest", &ingest),
        ("monitor", &monitor),
        ("api", &api),
        ("forged", &forged),
        ("revoked", &revoked),
    ];
    // Expected status per principal, in the order of `who`. 303: to the sign-in page.
    #[rustfmt::skip]
    let matrix: &[(&str, &str, [u16; 10])] = &[
        //                                        nobody admin sup agent qa ingest monitor api forged revoked
        ("GET", "/",                              [303, 200, 200, 303, 303, 403, 200, 200, 401, 401]),
        ("GET", "/alerts",                        [303, 200, 200, 403, 403, 403, 200, 200, 401, 401]),
        ("GET", "/calls/c1",                      [303, 200, 200, 200, 404, 404, 200, 200, 401, 401]),
        ("GET", "/calls/c2",                      [303, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
        ("GET", "/agent",                         [303, 403, 403, 303, 403, 403, 403, 403, 401, 401]),
        ("GET", "/agent/a1",                      [303, 200, 200, 200, 403, 403, 200, 200, 401, 401]),
        ("GET", "/agent/a2",                      [303, 200, 404, 403, 403, 403, 404, 404, 401, 401]),
        ("GET", "/recorded",                      [303, 200, 200, 403, 200, 403, 403, 200, 401, 401]),
        ("GET", "/recorded/nothere",              [303, 404, 404, 403, 404, 403, 403, 404, 401, 401]),
        ("GET", "/coaching",                      [303, 200, 200, 403, 200, 403, 403, 200, 401, 401]),
        ("GET", "/coaching/agent/a1",             [303, 200, 200, 403, 200, 403, 403, 200, 401, 401]),
        ("GET", "/coaching/nonsense/a1",          [303, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        ("GET", "/admin/audit",                   [303, 200, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("GET", "/admin",                         [303, 200, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("GET", "/api/admin/users",               [401, 200, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("GET", "/api/admin/tokens",              [401, 200, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("POST", "/api/admin/users",              [401, 400, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("POST", "/api/admin/users/al/disabled",  [401, 400, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("POST", "/api/admin/users/al/password",  [401, 400, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("POST", "/api/admin/tokens",             [401, 400, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("POST", "/api/admin/tokens/nothere/revoke", [401, 404, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("GET", "/api/calls",                     [401, 200, 200, 200, 403, 403, 200, 200, 401, 401]),
        ("GET", "/api/calls/c1",                  [401, 200, 200, 200, 404, 404, 200, 200, 401, 401]),
        ("GET", "/api/calls/c2",                  [401, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
        ("GET", "/api/alerts",                    [401, 200, 200, 200, 403, 403, 200, 200, 401, 401]),
        ("GET", "/api/recorded",                  [401, 200, 200, 403, 200, 403, 403, 200, 401, 401]),
        ("GET", "/api/recorded/nothere",          [401, 404, 404, 403, 404, 403, 403, 404, 401, 401]),
        ("GET", "/api/recorded/nothere/audio",    [401, 404, 404, 403, 404, 403, 403, 404, 401, 401]),
        ("GET", "/api/coaching/roster",           [401, 200, 200, 403, 200, 403, 403, 200, 401, 401]),
        ("GET", "/api/coaching?agent=a1",         [401, 200, 200, 403, 200, 403, 403, 200, 401, 401]),
        ("GET", "/api/coaching?team=t1",          [401, 200, 200, 403, 200, 403, 403, 200, 401, 401]),
        ("GET", "/api/coaching?team=t2",          [401, 200, 403, 403, 200, 403, 403, 403, 401, 401]),
        ("GET", "/api/coaching",                  [401, 400, 400, 403, 400, 403, 403, 400, 401, 401]),
        ("GET", "/api/audit",                     [401, 200, 403, 403, 403, 403, 403, 403, 401, 401]),
        ("GET", "/api/me",                        [401, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
        ("GET", "/metrics",                       [401, 200, 403, 403, 403, 403, 200, 200, 401, 401]),
        ("GET", "/healthz",                       [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        ("GET", "/static/common.js",              [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        ("POST", "/api/alerts/c2/1/ack",          [401, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
        ("POST", "/api/recordings",               [401, 415, 403, 403, 415, 403, 403, 403, 401, 401]),
    ];
    let mut wrong = Vec::new();
    for (method, path, expected) in matrix {
        for ((name, principal), want) in who.iter().zip(expected) {
            let r = send(&server, principal, method, path).await;
            if r.status != *want {
                wrong.push(format!(
                    "{method} {path} as {name}: {} (expected {want}) {}",
                    r.status,
                    r.body.chars().take(120).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let expired = As::Bearer(server.tokens.expired.clone());
    let r = send(&server, &expired, "GET", "/api/calls").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);

    // What each sees in the lists, not only whether the door opens.
    let ids = |r: RawResponse| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["call"]["call_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(send(&server, &admin, "GET", "/api/calls").await),
        ["c1", "c2"]
    );
    assert_eq!(ids(send(&server, &sup, "GET", "/api/calls").await), ["c1"]);
    // An agent asking for another agent's calls still gets only their own.
    assert_eq!(
        ids(send(&server, &agent, "GET", "/api/calls?agent_id=a2").await),
        ["c1"]
    );
    let alerts = send(&server, &sup, "GET", "/api/alerts").await;
    assert!(
        alerts.body.contains("\"c1\"") && !alerts.body.contains("\"c2\""),
        "{}",
        alerts.body
    );
    // The supervisor acknowledges their own team's alert: stored with who did it.
    let ack = send(&server, &sup, "POST", "/api/alerts/c1/1/ack").await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    assert!(ack.body.contains("\"by\":\"sue\""), "{}", ack.body);
    let acks = crate::console::wait_for("the stored ack", Duration::from_secs(5), || async {
        let acks = Store::open(&server.db).unwrap().acks("c1").unwrap();
        (!acks.is_empty()).then_some(acks)
    })
    .await;
    assert_eq!(acks[0].by, "sue");
    // An agent sees no ack events and cannot acknowledge.
    let denied = send(&server, &agent, "POST", "/api/alerts/c1/1/ack").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_need_the_csrf_token_and_the_own_origin() {
    let server = SecureServer::start("sec-csrf", None).await;
    live_calls(&server);
    let (cookie, csrf) = server.sign_in("sue").await;
    let path = "/api/alerts/c1/1/ack";
    let post = |headers: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        let http = server.http;
        async move {
            let mut h: Vec<(&str, &str)> = vec![("Cookie", &cookie)];
            for (k, v) in &headers {
                h.push((k, v));
            }
            raw_request(http, "POST", path, &h, b"").await
        }
    };
    let r = post(vec![]).await;
    assert_eq!(r.status, 403, "no CSRF token: {}", r.body);
    assert!(r.body.contains("CSRF"), "{}", r.body);
    let r = post(vec![("X-CSRF-Token", "0".repeat(64))]).await;
    assert_eq!(r.status, 403, "a wrong CSRF token: {}", r.body);
    let r = post(vec![
        ("X-CSRF-Token", csrf.clone()),
        ("Origin", "https://evil.example".into()),
    ])
    .await;
    assert_eq!(r.status, 403, "another origin: {}", r.body);
    assert!(r.body.contains("origin"), "{}", r.body);
    let r = post(vec![
        ("X-CSRF-Token", csrf.clone()),
        ("Origin", format!("http://{}", server.http)),
    ])
    .await;
    assert_eq!(r.status, 200, "own origin and token: {}", r.body);
    // A cross-site sign-in form is refused too.
    let r = raw_request(
        server.http,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "https://evil.example"),
        ],
        b"username=sue&password=x",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Signing out ends the session.
    let out = raw_request(
        server.http,
        "POST",
        "/logout",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        b"",
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.body);
    let after = raw_request(
        server.http,
        "GET",
        "/api/calls",
        &[("Cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(after.status, 401, "{}", after.body);
    // Every response carries the security headers.
    let page = raw_request(server.http, "GET", "/login", &[], b"").await;
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("script-src 'self' 'unsafe-inline'")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_sign_ins_are_held_off_and_audited() {
    let server = SecureServer::start("sec-brute", None).await;
    let attempt = |password: &'static str| {
        let http = server.http;
        async move {
            raw_request(
                http,
                "POST",
                "/login",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                format!("username=sue&password={password}").as_bytes(),
            )
            .await
        }
    };
    for _ in 0..5 {
        let r = attempt("guess").await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.body.contains("wrong user name or password"));
    }
    // Even the right password is held off now.
    let r = attempt("a+long+enough+password").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    let admin = server.sign_in("root").await;
    let audit = send(
        &server,
        &As::Session(admin.0, admin.1),
        "GET",
        "/api/audit?action=login_failed",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&audit.body).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 5, "{}", audit.body);
    assert_eq!(v["entries"][0]["source"], "127.0.0.1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_markup_are_shown_as_text() {
    let server = SecureServer::start("sec-xss", None).await;
    let admin = server.sign_in("root").await;
    let admin = As::Session(admin.0, admin.1);
    let payload = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    for path in [format!("/calls/{payload}"), format!("/recorded/{payload}")] {
        let r = send(&server, &admin, "GET", &path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("<script>alert"), "{path}: {}", r.body);
        assert!(r.body.contains("&lt;script&gt;"), "{path}: {}", r.body);
    }
    let r = send(&server, &admin, "GET", &format!("/api/calls/{payload}")).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{}",
        r.body
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_get_server_ids_and_stored_calls_are_never_replaced() {
    let server = SecureServer::start("sec-records", None).await;
    let qa = server.sign_in("quinn").await;
    let qa = As::Session(qa.0, qa.1);
    let bytes = upload_wav();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = send_body(
            &server,
            &qa,
            "POST",
            "/api/recordings?agent=a1&team=t1",
            "audio/wav",
            &bytes,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["content_sha256"], secrets::sha256_hex(&bytes));
        ids.push(v["call_id"].as_str().unwrap().to_owned());
    }
    assert!(ids.iter().all(|id| id.starts_with("up-")), "{ids:?}");
    assert_ne!(
        ids[0], ids[1],
        "the same bytes again get a new id, never the old record"
    );
    // A form cannot post an upload.
    let r = send_body(
        &server,
        &qa,
        "POST",
        "/api/recordings",
        "text/plain",
        &bytes,
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    // The QA analyst reads the report; the read is audited.
    let r = send(&server, &qa, "GET", &format!("/api/recorded/{}", ids[0])).await;
    assert_eq!(r.status, 200);
    // A live call for t1 with the ingest token, then the same id again: refused.
    let header = |team: &str| pb::CallHeader {
        call_id: "live-1".into(),
        agent_id: "a1".into(),
        team: team.into(),
        sample_rate_hz: 8000,
        encoding: pb::AudioEncoding::Pcm16le as i32,
        layout: pb::ChannelLayout::InterleavedStereo as i32,
        agent_channel: 0,
    };
    let options = ClientOptions {
        token: Some(server.tokens.ingest_t1.clone()),
        ca_pem: None,
    };
    let mut client = connect(&server.grpc_url, &options).await.unwrap();
    let silence = attune_service::pb::Bytes::from(vec![0u8; 8000 * 2 * 2]);
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::AudioChunk {
        seq: 0,
        channel: 0,
        audio: silence,
    })
    .await
    .unwrap();
    drop(tx);
    ingest_call(&mut client, header("t1"), rx, |_, _| {})
        .await
        .expect("a call of its own team");
    crate::console::wait_for("the stored live call", Duration::from_secs(20), || async {
        Store::open(&server.db)
            .unwrap()
            .has_call("live-1")
            .unwrap()
            .then_some(())
    })
    .await;
    let (_tx, rx) = mpsc::channel(1);
    let again = ingest_call(&mut client, header("t1"), rx, |_, _| {}).await;
    assert_eq!(
        again.unwrap_err().code(),
        tonic::Code::AlreadyExists,
        "a stored call id is refused"
    );
    let (_tx, rx) = mpsc::channel(1);
    let other_team = ingest_call(&mut client, header("t2"), rx, |_, _| {}).await;
    assert_eq!(
        other_team.unwrap_err().code(),
        tonic::Code::PermissionDenied,
        "an ingest token ingests only for its teams"
    );
    let mut store = Store::open(&server.db).unwrap();
    let audit = store
        .audit(&attune_qa::store::AuditQuery::default())
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"upload"), "{actions:?}");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "report_read" && e.target == ids[0] && e.actor == "user:quinn"),
        "{audit:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_heard_only_by_who_may_read_its_call_and_every_listen_is_audited() {
    let server = SecureServer::start("sec-listen", None).await;
    let session = |(cookie, csrf): (String, String)| As::Session(cookie, csrf);
    let qa = session(server.sign_in("quinn").await);
    let bytes = upload_wav();
    let mut ids = Vec::new();
    for team in ["t1", "t2"] {
        let r = send_body(
            &server,
            &qa,
            "POST",
            &format!("/api/recordings?agent=a1&team={team}&agent_channel=1"),
            "audio/wav",
            &bytes,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert!(v["audio_url"].is_string(), "{}", r.body);
        ids.push(v["call_id"].as_str().unwrap().to_owned());
    }
    let (t1, t2) = (ids[0].as_str(), ids[1].as_str());
    let admin = session(server.sign_in("root").await);
    let sup = session(server.sign_in("sue").await);
    let agent = session(server.sign_in("al").await);
    let api = As::Bearer(server.tokens.api_t1.clone());
    let monitor = As::Bearer(server.tokens.monitor_t1.clone());
    let ingest = As::Bearer(server.tokens.ingest_t1.clone());
    // Exactly who may read the call's report; a call one may not read is not found.
    let cases: [(&str, &As, &str, u16); 12] = [
        ("admin", &admin, t1, 200),
        ("admin", &admin, t2, 200),
        ("qa", &qa, t2, 200),
        ("supervisor of t1", &sup, t1, 200),
        ("supervisor of t1", &sup, t2, 404),
        ("api token of t1", &api, t1, 200),
        ("api token of t1", &api, t2, 404),
        ("agent", &agent, t1, 403),
        ("monitor token", &monitor, t1, 403),
        ("ingest token", &ingest, t1, 403),
        ("nobody", &As::Nobody, t1, 401),
        ("supervisor of t1, a clip", &sup, t1, 200),
    ];
    for (i, (name, who, id, want)) in cases.iter().enumerate() {
        let path = if i == cases.len() - 1 {
            format!("/api/recorded/{id}/audio?from_s=1&to_s=2")
        } else {
            format!("/api/recorded/{id}/audio")
        };
        let r = send(&server, who, "GET", &path).await;
        assert_eq!(r.status, *want, "{name} {path}: {}", r.body);
        if *want == 200 {
            assert_eq!(r.header("content-type"), Some("audio/wav"), "{name}");
            assert_eq!(r.header("cache-control"), Some("no-store"), "{name}");
        }
        // The report page answers the same.
        let page = send(&server, who, "GET", &format!("/recorded/{id}")).await;
        let page_want = if *want == 401 { 303 } else { *want };
        assert_eq!(page.status, page_want, "{name} report of {id}");
        if page.status == 200 {
            assert!(page.body.contains("id='call-audio'"), "{name}: the player");
        }
    }
    let audit = crate::console::wait_for("the listens audited", Duration::from_secs(5), || async {
        let entries = Store::open(&server.db)
            .unwrap()
            .audit(&attune_qa::store::AuditQuery {
                action: Some("recording_listen".into()),
                ..Default::default()
            })
            .unwrap();
        (entries.len() >= 8).then_some(entries)
    })
    .await;
    let has = |actor: &str, target: &str, outcome: &str| {
        audit
            .iter()
            .any(|e| e.actor == actor && e.target == target && e.outcome.starts_with(outcome))
    };
    assert!(has("user:sue", t1, "ok whole"), "{audit:?}");
    assert!(has("user:sue", t1, "ok clip 1-2 s"), "{audit:?}");
    assert!(has("user:sue", t2, "not found"), "{audit:?}");
    assert!(has("user:quinn", t2, "ok"), "{audit:?}");

    // The coaching view counts only the calls the viewer may read: a1 took one call in t1 and
    // one in t2; the supervisor of t1 sees one, the admin both; the roster the same.
    let calls_of = |r: RawResponse| -> (u64, Vec<String>) {
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let calls = v["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["calls"].as_u64().unwrap())
            .sum();
        let moments = v["moments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["call_id"].as_str().unwrap().to_owned())
            .collect();
        (calls, moments)
    };
    let (n, moments) =
        calls_of(send(&server, &admin, "GET", "/api/coaching?agent=a1&period=day").await);
    assert_eq!(n, 2);
    assert!(moments.iter().any(|m| m == t2), "{moments:?}");
    let (n, moments) =
        calls_of(send(&server, &sup, "GET", "/api/coaching?agent=a1&period=day").await);
    assert_eq!(n, 1);
    assert!(moments.iter().all(|m| m == t1), "{moments:?}");
    let roster = send(&server, &sup, "GET", "/api/coaching/roster").await;
    assert!(
        roster.body.contains("\"t1\"") && !roster.body.contains("\"t2\""),
        "{}",
        roster.body
    );
    let refused = send(&server, &sup, "GET", "/api/coaching?team=t2").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let coaching_audit = crate::console::wait_for(
        "the coaching reads audited",
        Duration::from_secs(5),
        || async {
            let entries = Store::open(&server.db)
                .unwrap()
                .audit(&attune_qa::store::AuditQuery {
                    action: Some("coaching_read".into()),
                    ..Default::default()
                })
                .unwrap();
            (entries.len() >= 3).then_some(entries)
        },
    )
    .await;
    assert!(
        coaching_audit
            .iter()
            .any(|e| e.actor == "user:sue" && e.target == "team:t2" && e.outcome == "forbidden"),
        "{coaching_audit:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_methods_need_a_token_of_the_right_role() {
    let server = SecureServer::start("sec-grpc", None).await;
    live_calls(&server);
    let t = &server.tokens;
    let cases: [(&str, Option<&str>, tonic::Code, tonic::Code); 7] = [
        // (who, token, Ingest, Monitor)
        (
            "none",
            None,
            tonic::Code::Unauthenticated,
            tonic::Code::Unauthenticated,
        ),
        (
            "forged",
            Some("att_forged"),
            tonic::Code::Unauthenticated,
            tonic::Code::Unauthenticated,
        ),
        (
            "revoked",
            Some(&t.revoked),
            tonic::Code::Unauthenticated,
            tonic::Code::Unauthenticated,
        ),
        (
            "expired",
            Some(&t.expired),
            tonic::Code::Unauthenticated,
            tonic::Code::Unauthenticated,
        ),
        (
            "ingest",
            Some(&t.ingest_t1),
            tonic::Code::Ok,
            tonic::Code::PermissionDenied,
        ),
        (
            "monitor",
            Some(&t.monitor_t1),
            tonic::Code::PermissionDenied,
            tonic::Code::Ok,
        ),
        (
            "api",
            Some(&t.api_t1),
            tonic::Code::PermissionDenied,
            tonic::Code::Ok,
        ),
    ];
    for (name, token, ingest_code, monitor_code) in cases {
        let options = ClientOptions {
            token: token.map(str::to_owned),
            ca_pem: None,
        };
        let mut client = connect(&server.grpc_url, &options).await.unwrap();
        // Ingest: a header for t1 and no audio.
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let header = pb::CallHeader {
            call_id: format!("grpc-{name}"),
            agent_id: "a1".into(),
            team: "t1".into(),
            sample_rate_hz: 8000,
            encoding: pb::AudioEncoding::Pcm16le as i32,
            layout: pb::ChannelLayout::InterleavedStereo as i32,
            agent_channel: 0,
        };
        let got = ingest_call(&mut client, header, rx, |_, _| {})
            .await
            .map_or_else(|s| s.code(), |()| tonic::Code::Ok);
        assert_eq!(got, ingest_code, "Ingest as {name}");
        let got = match client.monitor(pb::MonitorRequest::default()).await {
            Err(s) => s.code(),
            Ok(stream) => {
                // A monitor of team t1 sees c1's current state and never c2's.
                let mut stream = stream.into_inner();
                let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
                    .await
                    .expect("a first message")
                    .expect("ok");
                let text = format!("{first:?}");
                assert!(
                    text.contains("\"c1\"") && !text.contains("\"c2\""),
                    "{name}: {text}"
                );
                tonic::Code::Ok
            }
        };
        assert_eq!(got, monitor_code, "Monitor as {name}");
    }
    server.stop().await;
}

/// A self-signed certificate for 127.0.0.1 and localhost (its own CA): (cert PEM, key PEM).
fn self_signed() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_and_plaintext_to_the_tls_ports_is_refused() {
    let (cert, key) = self_signed();
    let tls = TlsFiles {
        cert_pem: cert.clone().into_bytes(),
        key_pem: key.into_bytes(),
    };
    let server = SecureServer::start("sec-tls", Some(tls)).await;
    // The right CA: the TLS handshake works and the server asks for a token.
    let right = ClientOptions {
        token: None,
        ca_pem: Some(cert.clone().into_bytes()),
    };
    let mut client = connect(&server.grpc_url, &right)
        .await
        .expect("TLS with the right CA");
    let status = client
        .monitor(pb::MonitorRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
    let with_token = ClientOptions {
        token: Some(server.tokens.monitor_t1.clone()),
        ..right.clone()
    };
    let mut client = connect(&server.grpc_url, &with_token).await.unwrap();
    assert!(client.monitor(pb::MonitorRequest::default()).await.is_ok());
    // Another CA: refused.
    let (other, _) = self_signed();
    let wrong = ClientOptions {
        token: Some(server.tokens.monitor_t1.clone()),
        ca_pem: Some(other.into_bytes()),
    };
    let refused = match connect(&server.grpc_url, &wrong).await {
        Err(_) => true,
        Ok(mut c) => c.monitor(pb::MonitorRequest::default()).await.is_err(),
    };
    assert!(refused, "a server certificate from another CA is refused");
    // Plaintext gRPC to the TLS port fails.
    let plain_url = server.grpc_url.replacen("https://", "http://", 1);
    let plaintext_ok = match connect(&plain_url, &with_token).await {
        Err(_) => false,
        Ok(mut c) => c.monitor(pb::MonitorRequest::default()).await.is_ok(),
    };
    assert!(!plaintext_ok, "plaintext gRPC to the TLS port is refused");
    // Plaintext HTTP to the TLS port gets no HTTP answer; HTTPS does, with Secure cookies.
    let plain = raw_request(server.http, "GET", "/healthz", &[], b"").await;
    assert_eq!(plain.status, 0, "plaintext HTTP answered: {}", plain.body);
    let body = https_get(server.http, &cert, "/healthz").await;
    assert!(body.ends_with("ok\n"), "{body}");
    server.stop().await;
}

/// GET over TLS, trusting `ca_pem`; returns the raw response.
async fn https_get(address: SocketAddr, ca_pem: &str, path: &str) -> String {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Signs in through the page's form, as a person would.
async fn browser_sign_in(browser: &crate::console::Browser, base: &str, user: &str) {
    use fantoccini::Locator;
    let client = &browser.client;
    client.goto(&format!("{base}/login")).await.unwrap();
    client
        .find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    client
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_an_agent_sees_only_their_call_and_a_supervisor_only_their_teams() {
    if !crate::console::browser_available("security::in_chromium") {
        return;
    }
    use fantoccini::Locator;
    let server = SecureServer::start("sec-browser", None).await;
    live_calls(&server);
    let base = format!("http://{}", server.http);
    let browser = crate::console::Browser::start().await;
    let wait = Duration::from_secs(10);

    // The agent signs in and lands on their own view, with their own call's tip.
    browser_sign_in(&browser, &base, "al").await;
    crate::console::wait_for("the agent's own view", wait, || async {
        let url = browser.client.current_url().await.ok()?;
        let title = browser.text("#title").await?;
        let tips = browser.text("#tips").await.unwrap_or_default();
        (url.path() == "/agent/a1" && title.contains("a1") && tips.contains("Slow down"))
            .then_some(())
    })
    .await;
    let who = crate::console::wait_for("who is signed in", wait, || async {
        browser.text("#who").await.filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(who, "al (agent)");
    // Another agent's view is refused, whatever the URL says.
    browser
        .client
        .goto(&format!("{base}/agent/a2"))
        .await
        .unwrap();
    let body = browser.text("body").await.unwrap_or_default();
    assert!(body.contains("forbidden"), "{body}");
    // Signing out ends the session.
    browser.client.goto(&format!("{base}/agent")).await.unwrap();
    let sign_out = crate::console::wait_for("the sign-out button", wait, || async {
        browser.client.find(Locator::Css("#sign-out")).await.ok()
    })
    .await;
    sign_out.click().await.unwrap();
    crate::console::wait_for("the sign-in page after signing out", wait, || async {
        let url = browser.client.current_url().await.ok()?;
        (url.path() == "/login").then_some(())
    })
    .await;
    browser
        .client
        .goto(&format!("{base}/agent/a1"))
        .await
        .unwrap();
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/login", "signed out, the view asks to sign in");

    // The supervisor of t1 sees t1's call on the wall and never t2's.
    browser_sign_in(&browser, &base, "sue").await;
    crate::console::wait_for("t1's call on the wall", wait, || async {
        (browser.count("li.call[data-call-id='c1']").await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.count("li.call[data-call-id='c2']").await, 0);
    assert_eq!(browser.count("li.call").await, 1);
    browser.screenshot("console-supervisor-signed-in.png").await;
    let _ = browser.client.clone().close().await;
    server.stop().await;
}
