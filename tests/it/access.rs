//! Identity beyond the role × endpoint matrix (tests/it/security.rs): a token that may resume a
//! stored call (gRPC), telephony calls tied to Attune tokens and teams (Twilio, AudioHook,
//! AudioSocket), and the console's admin page for users and tokens (allowed, forbidden, CSRF,
//! audited, and a created token that works).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use attune_qa::ScoringSetup;
use attune_qa::store::{AuditQuery, Store, TokenRecord, UserRecord};
use attune_service::auth::{Gate, GateConfig, StoreIdentities, secrets};
use attune_service::client::{ClientOptions, connect, ingest_call};
use attune_service::ingest::IngestConfig;
use attune_service::ingest::clients::{
    StereoCall, stream_audiohook, stream_audiosocket, stream_twilio_as,
};
use attune_service::metrics::ServiceMetrics;
use attune_service::pb;
use attune_service::recorder::CallRecorder;
use attune_service::server::{ServerConfig, Service};

use crate::console::{RawResponse, raw_request};

const PASSWORD: &str = "a long enough password";
const AUDIOHOOK_SECRET: &[u8] = b"audiohook client secret";

struct Tokens {
    ingest_t1: String,
    resume_t1: String,
    ingest_t2: String,
    monitor_t1: String,
}

struct AccessServer {
    http: SocketAddr,
    grpc_url: String,
    audiosocket: SocketAddr,
    db: String,
    tokens: Tokens,
    metrics: Arc<ServiceMetrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

fn add_token(store: &mut Store, role: &str, teams: &[&str], may_resume: bool) -> String {
    let token = secrets::new_api_token();
    store
        .add_token_with(
            &TokenRecord {
                token_id: secrets::token_id(&token),
                name: format!("{role} access test"),
                role: role.into(),
                teams: teams.iter().map(|t| t.to_string()).collect(),
                token_sha256: secrets::sha256_hex(token.as_bytes()),
                created_at: "2026-12-07T00:00:00Z".into(),
                created_by: "test".into(),
                revoked_at: None,
                expires_at: None,
            },
            may_resume,
        )
        .unwrap();
    token
}

impl AccessServer {
    /// A server with accounts and tokens; AudioSocket calls (team t1) are ingested as the
    /// token `audiosocket` picks (None: no --audiosocket-token).
    async fn start(name: &str, audiosocket: fn(&Tokens) -> Option<String>) -> Self {
        let dir = crate::util::temp_dir(name);
        let db = dir.join("access.db").display().to_string();
        let mut store = Store::open(&db).unwrap();
        for (user, role, teams, agent) in [
            ("root", "admin", vec![], None),
            ("sue", "supervisor", vec!["t1".to_owned()], None),
        ] {
            store
                .add_user(&UserRecord {
                    name: user.into(),
                    role: role.into(),
                    teams,
                    agent_id: agent,
                    password_hash: secrets::hash_password(PASSWORD).unwrap(),
                    disabled: false,
                    created_at: String::new(),
                    updated_at: String::new(),
                })
                .unwrap();
        }
        let tokens = Tokens {
            ingest_t1: add_token(&mut store, "ingest", &["t1"], false),
            resume_t1: add_token(&mut store, "ingest", &["t1"], true),
            ingest_t2: add_token(&mut store, "ingest", &["t2"], false),
            monitor_t1: add_token(&mut store, "monitor", &["t1"], false),
        };
        let gate = Arc::new(Gate::new(
            Arc::new(StoreIdentities::new(store)),
            GateConfig {
                token_cache_ttl: Duration::ZERO,
                ..GateConfig::default()
            },
        ));
        let setup = Arc::new(ScoringSetup::load(None, None, None, 1).unwrap());
        let metrics = Arc::new(ServiceMetrics::default());
        let recorder = Arc::new(
            CallRecorder::start(Store::open(&db).unwrap(), setup.clone(), metrics.clone()).unwrap(),
        );
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
        let (http_addr, socket_addr) = (http.local_addr().unwrap(), socket.local_addr().unwrap());
        let config = ServerConfig {
            max_calls: 16,
            analysis_threads: 2,
            gate: gate.clone(),
            session: attune_service::grpc::SessionConfig {
                limits: attune_service::session::SessionLimits::default().unpaced(),
                ..Default::default()
            },
            ..ServerConfig::default()
        };
        let service = Service::with_recorder(
            config,
            setup.rules.clone(),
            setup.model.clone(),
            Some((recorder.clone(), metrics.clone())),
        )
        .unwrap();
        let console = attune_service::console::routes(
            service.app_state().hub,
            attune_service::console::StopSignal::from_receiver(service.stop_signal()),
            Some(recorder),
            gate,
        );
        let ingest = Arc::new(IngestConfig {
            // Platform signatures are tests/it/ingest.rs's business; identity is this file's.
            require_signatures: false,
            audiohook_keys: vec![
                (tokens.ingest_t1.clone(), AUDIOHOOK_SECRET.to_vec()),
                (tokens.monitor_t1.clone(), AUDIOHOOK_SECRET.to_vec()),
                ("not-an-attune-token".into(), AUDIOHOOK_SECRET.to_vec()),
            ],
            audiosocket_team: "t1".into(),
            audiosocket_token: audiosocket(&tokens),
            ..IngestConfig::default()
        });
        let app = attune_service::http::router(service.app_state())
            .merge(console)
            .merge(service.ingest_routes(ingest.clone()));
        service.spawn_audiosocket(socket, ingest);
        let metrics = service.metrics.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            service
                .serve(grpc, http, app, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Self {
            http: http_addr,
            grpc_url,
            audiosocket: socket_addr,
            db,
            tokens,
            metrics,
            stop: Some(stop),
            task,
        }
    }

    fn ws(&self) -> String {
        format!("ws://{}", self.http)
    }

    fn store(&self) -> Store {
        Store::open(&self.db).unwrap()
    }

    async fn wait_stored(&self, call_id: &str) {
        let id = call_id.to_owned();
        crate::console::wait_for(
            &format!("call {call_id} stored"),
            Duration::from_secs(30),
            || {
                let id = id.clone();
                async move { self.store().has_call(&id).unwrap().then_some(()) }
            },
        )
        .await;
    }

    /// Signs in; the Cookie header value and the CSRF token.
    async fn sign_in(&self, user: &str, password: &str) -> Result<(String, String), u16> {
        let form = format!("username={user}&password={}", password.replace(' ', "+"));
        let r = raw_request(
            self.http,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .await;
        if r.status != 303 {
            return Err(r.status);
        }
        let session = r.cookie("attune_session").expect("session cookie");
        let csrf = r.cookie("attune_csrf").expect("csrf cookie");
        let value = csrf.split_once('=').unwrap().1.to_owned();
        Ok((format!("{session}; {csrf}"), value))
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

fn header(call_id: &str, team: &str) -> pb::CallHeader {
    pb::CallHeader {
        call_id: call_id.into(),
        agent_id: "a1".into(),
        team: team.into(),
        sample_rate_hz: 8000,
        encoding: pb::AudioEncoding::Pcm16le as i32,
        layout: pb::ChannelLayout::InterleavedStereo as i32,
        agent_channel: 0,
    }
}

/// Streams one second of silence as `call_id` with `token`; the call's summary id or the status.
async fn ingest_second(
    server: &AccessServer,
    token: &str,
    call_id: &str,
    team: &str,
) -> Result<(), tonic::Status> {
    let options = ClientOptions {
        token: Some(token.to_owned()),
        ca_pem: None,
    };
    let mut client = connect(&server.grpc_url, &options).await.unwrap();
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::AudioChunk {
        seq: 0,
        channel: 0,
        audio: attune_service::pb::Bytes::from(vec![0u8; 8000 * 2 * 2]),
    })
    .await
    .unwrap();
    drop(tx);
    ingest_call(&mut client, header(call_id, team), rx, |_, _| {})
        .await
        .map(|_| ())
}

fn audit(server: &AccessServer, action: &str) -> Vec<attune_qa::store::AuditEntry> {
    server
        .store()
        .audit(&AuditQuery {
            action: Some(action.into()),
            ..AuditQuery::default()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_may_resume_continues_a_stored_call_as_a_new_part() {
    let server = AccessServer::start("access-resume", |_| None).await;
    ingest_second(&server, &server.tokens.ingest_t1, "r-1", "t1")
        .await
        .expect("a new call id");
    server.wait_stored("r-1").await;
    let original = server.store().report_json("r-1").unwrap().unwrap();

    // Without the capability: ALREADY_EXISTS, audited as refused.
    let refused = ingest_second(&server, &server.tokens.ingest_t1, "r-1", "t1")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().contains("--may-resume"), "{refused:?}");

    // With it: the session runs and is stored as the call's part 2; the record stays.
    ingest_second(&server, &server.tokens.resume_t1, "r-1", "t1")
        .await
        .expect("a token that may resume");
    server.wait_stored("r-1#2").await;
    assert_eq!(
        server.store().report_json("r-1").unwrap().unwrap(),
        original,
        "the stored record is never overwritten"
    );
    // Again: part 3.
    ingest_second(&server, &server.tokens.resume_t1, "r-1", "t1")
        .await
        .unwrap();
    server.wait_stored("r-1#3").await;
    // Resuming does not widen the teams.
    let other = ingest_second(&server, &server.tokens.resume_t1, "r-1", "t2")
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::PermissionDenied);

    let entries = audit(&server, "ingest.resume");
    let outcomes: Vec<&str> = entries.iter().map(|e| e.outcome.as_str()).collect();
    assert!(
        entries.iter().any(|e| e.target == "r-1"
            && e.outcome.starts_with("refused")
            && e.actor == format!("token:{}", secrets::token_id(&server.tokens.ingest_t1))),
        "{outcomes:?}"
    );
    assert!(
        entries.iter().any(|e| e.target == "r-1"
            && e.outcome.contains("r-1#2")
            && e.actor == format!("token:{}", secrets::token_id(&server.tokens.resume_t1))),
        "{outcomes:?}"
    );
    server.stop().await;
}

fn short_call(call_id: &str, team: &str) -> StereoCall {
    // Two seconds of a quiet tone on both parties.
    let tone: Vec<f32> = (0..16_000)
        .map(|i| 0.05 * (i as f32 * 0.05).sin())
        .collect();
    StereoCall {
        call_id: call_id.into(),
        agent_id: "a1".into(),
        team: team.into(),
        caller: tone.clone(),
        agent: tone,
    }
}

fn refused_identity(m: &ServiceMetrics) -> [u64; 3] {
    use std::sync::atomic::Ordering::Relaxed;
    let t = &m.telephony;
    [
        t.twilio.refused_identity.load(Relaxed),
        t.audiohook.refused_identity.load(Relaxed),
        t.audiosocket.refused_identity.load(Relaxed),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_and_audiohook_calls_need_an_ingest_token_of_their_team() {
    let server = AccessServer::start("access-telephony", |_| None).await;
    let ws = server.ws();
    let t = &server.tokens;

    // Twilio: no token, a token of another team, a monitor token: closed with 1008.
    for (token, call_id, why) in [
        (None, "tw-none", "no Attune ingest token"),
        (
            Some(t.ingest_t2.as_str()),
            "tw-team",
            "may not ingest calls of team",
        ),
        (
            Some(t.monitor_t1.as_str()),
            "tw-role",
            "need an ingest token",
        ),
        (Some("att_forged"), "tw-forged", "Attune token refused"),
    ] {
        let report = stream_twilio_as(&ws, &short_call(call_id, "t1"), 50.0, None, token)
            .await
            .unwrap();
        let (code, reason) = report.close.clone().expect("a close frame");
        assert_eq!(code, 1008, "{call_id}: {reason}");
        assert!(reason.contains(why), "{call_id}: {reason}");
    }
    assert_eq!(refused_identity(&server.metrics)[0], 4);
    // The right token: taken and stored; the same call id again is refused.
    let report = stream_twilio_as(
        &ws,
        &short_call("tw-ok", "t1"),
        50.0,
        None,
        Some(&t.ingest_t1),
    )
    .await
    .unwrap();
    assert_ne!(report.close.as_ref().map(|c| c.0), Some(1008), "{report:?}");
    server.wait_stored("tw-ok").await;
    let again = stream_twilio_as(
        &ws,
        &short_call("tw-ok", "t1"),
        50.0,
        None,
        Some(&t.ingest_t1),
    )
    .await
    .unwrap();
    let (code, reason) = again.close.expect("a close frame");
    assert!(
        code == 1008 && reason.contains("stored already"),
        "{code} {reason}"
    );
    // ...but a token that may resume continues it as part 2.
    let resumed = stream_twilio_as(
        &ws,
        &short_call("tw-ok", "t1"),
        50.0,
        None,
        Some(&t.resume_t1),
    )
    .await
    .unwrap();
    assert_ne!(
        resumed.close.as_ref().map(|c| c.0),
        Some(1008),
        "{resumed:?}"
    );
    server.wait_stored("tw-ok#2").await;

    // AudioHook: X-API-KEY is the Attune token (the signature still uses the client secret).
    // The session is `opened` first: a refusal is a `disconnect` (the client's error) or a
    // 1008 close once the call would start.
    let refused = |r: Result<
        attune_service::ingest::clients::ClientReport,
        attune_service::ingest::clients::ClientError,
    >| match r {
        Ok(report) => match report.close {
            Some((1008, reason)) => reason,
            other => panic!("taken: {other:?}"),
        },
        Err(e) => e.to_string(),
    };
    let e = refused(
        stream_audiohook(
            &ws,
            &short_call("ah-team", "t2"),
            50.0,
            Some((&t.ingest_t1, AUDIOHOOK_SECRET)),
        )
        .await,
    );
    assert!(e.contains("may not ingest calls of team"), "{e}");
    let e = refused(
        stream_audiohook(
            &ws,
            &short_call("ah-role", "t1"),
            50.0,
            Some((&t.monitor_t1, AUDIOHOOK_SECRET)),
        )
        .await,
    );
    assert!(e.contains("ingest token"), "{e}");
    let e = refused(
        stream_audiohook(
            &ws,
            &short_call("ah-unknown", "t1"),
            50.0,
            Some(("not-an-attune-token", AUDIOHOOK_SECRET)),
        )
        .await,
    );
    assert!(e.contains("Attune token refused"), "{e}");
    stream_audiohook(
        &ws,
        &short_call("ah-ok", "t1"),
        50.0,
        Some((&t.ingest_t1, AUDIOHOOK_SECRET)),
    )
    .await
    .expect("its own team");
    server.wait_stored("ah-ok").await;
    let e = refused(
        stream_audiohook(
            &ws,
            &short_call("ah-ok", "t1"),
            50.0,
            Some((&t.ingest_t1, AUDIOHOOK_SECRET)),
        )
        .await,
    );
    assert!(e.contains("stored already"), "{e}");
    assert_eq!(refused_identity(&server.metrics)[1], 4);
    // Nothing refused was stored.
    let mut store = server.store();
    for id in [
        "tw-none",
        "tw-team",
        "tw-role",
        "tw-forged",
        "ah-team",
        "ah-role",
        "ah-unknown",
    ] {
        assert!(!store.has_call(id).unwrap(), "{id} was stored");
    }
    server.stop().await;
}

const UUID: [u8; 16] = [
    0x4b, 0x1e, 0x2a, 0x10, 0x5c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd6,
];
const UUID_TEXT: &str = "4b1e2a10-5c3d-4e5f-6071-8293a4b5c6d6";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_calls_are_ingested_as_the_configured_token() {
    // No --audiosocket-token while the store has tokens: every call is refused.
    let none = AccessServer::start("access-as-none", |_| None).await;
    let addr = none.audiosocket.to_string();
    // The server hangs up on refusal: the client's later writes may fail.
    let _ = stream_audiosocket(&addr, &short_call("x", "t1"), 50.0, UUID).await;
    let m = none.metrics.clone();
    crate::console::wait_for("the refusal", Duration::from_secs(10), || async {
        (refused_identity(&m)[2] >= 1).then_some(())
    })
    .await;
    assert!(!none.store().has_call(UUID_TEXT).unwrap());
    none.stop().await;

    // A token of another team than --audiosocket-team: refused.
    let wrong = AccessServer::start("access-as-wrong", |t| Some(t.ingest_t2.clone())).await;
    let _ = stream_audiosocket(
        &wrong.audiosocket.to_string(),
        &short_call("x", "t1"),
        50.0,
        UUID,
    )
    .await;
    let m = wrong.metrics.clone();
    crate::console::wait_for("the refusal", Duration::from_secs(10), || async {
        (refused_identity(&m)[2] >= 1).then_some(())
    })
    .await;
    assert!(!wrong.store().has_call(UUID_TEXT).unwrap());
    wrong.stop().await;

    // The right one: stored; the same UUID again is refused (stored).
    let right = AccessServer::start("access-as-right", |t| Some(t.ingest_t1.clone())).await;
    let addr = right.audiosocket.to_string();
    stream_audiosocket(&addr, &short_call("x", "t1"), 50.0, UUID)
        .await
        .unwrap();
    right.wait_stored(UUID_TEXT).await;
    assert_eq!(refused_identity(&right.metrics)[2], 0);
    let _ = stream_audiosocket(&addr, &short_call("x", "t1"), 50.0, UUID).await;
    let m = right.metrics.clone();
    crate::console::wait_for(
        "the refusal of a stored id",
        Duration::from_secs(10),
        || async { (refused_identity(&m)[2] >= 1).then_some(()) },
    )
    .await;
    right.stop().await;
}

async fn admin_send(
    server: &AccessServer,
    session: Option<&(String, String)>,
    method: &str,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> RawResponse {
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some((cookie, csrf)) = session {
        headers.push(("Cookie", cookie));
        headers.push(("X-CSRF-Token", csrf));
    }
    headers.extend_from_slice(extra);
    raw_request(server.http, method, path, &headers, body.as_bytes()).await
}

fn json(r: &RawResponse) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_tokens_on_the_console() {
    let server = AccessServer::start("access-admin", |_| None).await;
    let admin = server.sign_in("root", PASSWORD).await.unwrap();
    let sup = server.sign_in("sue", PASSWORD).await.unwrap();

    // The page: admins only, its script from /static (no inline script).
    let page = admin_send(&server, Some(&admin), "GET", "/admin", "", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/static/admin.js"));
    assert!(!page.body.contains("<script>"), "inline script");
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") || csp.contains("default-src 'self'"),
        "{csp}"
    );
    assert_eq!(
        admin_send(&server, Some(&sup), "GET", "/admin", "", &[])
            .await
            .status,
        403
    );
    let js = admin_send(&server, None, "GET", "/static/admin.js", "", &[]).await;
    assert_eq!(js.status, 200);
    assert!(!js.body.contains("innerHTML"), "values are set as text");

    // Add a user, who can then sign in.
    let add =
        r#"{"name":"nia","role":"supervisor","teams":["t1"],"password":"nia's long password"}"#;
    let r = admin_send(&server, Some(&sup), "POST", "/api/admin/users", add, &[]).await;
    assert_eq!(r.status, 403, "a supervisor: {}", r.body);
    let (cookie, _) = &admin;
    let r = admin_send(
        &server,
        None,
        "POST",
        "/api/admin/users",
        add,
        &[("Cookie", cookie)],
    )
    .await;
    assert_eq!(r.status, 403, "no CSRF token: {}", r.body);
    let r = admin_send(
        &server,
        Some(&admin),
        "POST",
        "/api/admin/users",
        add,
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(r.status, 403, "another origin: {}", r.body);
    let r = admin_send(&server, Some(&admin), "POST", "/api/admin/users", add, &[]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(server.sign_in("nia", "nia's long password").await.is_ok());
    let r = admin_send(&server, Some(&admin), "POST", "/api/admin/users", add, &[]).await;
    assert_eq!(r.status, 400, "twice: {}", r.body);
    let bad = r#"{"name":"<b>x</b>","role":"agent","password":"long enough password"}"#;
    let r = admin_send(&server, Some(&admin), "POST", "/api/admin/users", bad, &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = admin_send(&server, Some(&admin), "POST", "/api/admin/users", "{", &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = raw_request(
        server.http,
        "POST",
        "/api/admin/users",
        &[
            ("Cookie", &admin.0),
            ("X-CSRF-Token", &admin.1),
            ("Content-Type", "text/plain"),
        ],
        add.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);

    // The list: no password hashes.
    let users = admin_send(&server, Some(&admin), "GET", "/api/admin/users", "", &[]).await;
    assert_eq!(users.status, 200);
    assert!(!users.body.contains("argon2"), "{}", users.body);
    let names: Vec<String> = json(&users)["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"nia".to_owned()), "{names:?}");

    // A new password, then disabled: she can no longer sign in.
    let r = admin_send(
        &server,
        Some(&admin),
        "POST",
        "/api/admin/users/nia/password",
        r#"{"password":"nia's newer password"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(server.sign_in("nia", "nia's long password").await.is_err());
    assert!(server.sign_in("nia", "nia's newer password").await.is_ok());
    let r = admin_send(
        &server,
        Some(&admin),
        "POST",
        "/api/admin/users/nia/disabled",
        r#"{"disabled":true}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(server.sign_in("nia", "nia's newer password").await.is_err());
    let r = admin_send(
        &server,
        Some(&admin),
        "POST",
        "/api/admin/users/nobody/disabled",
        r#"{"disabled":true}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A token: shown once in the answer, then it works over gRPC; revoked, it is refused.
    let r = admin_send(
        &server,
        Some(&admin),
        "POST",
        "/api/admin/tokens",
        r#"{"role":"ingest","teams":["t1"],"name":"<img src=x onerror=alert(1)>"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = json(&r);
    let token = created["token"].as_str().unwrap().to_owned();
    let token_id = created["token_id"].as_str().unwrap().to_owned();
    assert_eq!(created["may_resume"], false);
    ingest_second(&server, &token, "made-on-the-console", "t1")
        .await
        .expect("the created token ingests");
    let list = admin_send(&server, Some(&admin), "GET", "/api/admin/tokens", "", &[]).await;
    assert_eq!(list.status, 200);
    assert!(
        list.header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "JSON, never HTML"
    );
    assert!(!list.body.contains(&token), "the token is shown only once");
    assert!(list.body.contains(&token_id));
    let r = admin_send(
        &server,
        Some(&admin),
        "POST",
        "/api/admin/tokens",
        r#"{"role":"monitor","teams":["t1"],"may_resume":true}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 400, "resume is for ingest tokens: {}", r.body);
    let r = admin_send(
        &server,
        Some(&sup),
        "POST",
        &format!("/api/admin/tokens/{token_id}/revoke"),
        "",
        &[],
    )
    .await;
    assert_eq!(r.status, 403);
    let r = admin_send(
        &server,
        Some(&admin),
        "POST",
        &format!("/api/admin/tokens/{token_id}/revoke"),
        "",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refused = ingest_second(&server, &token, "after-revoke", "t1")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    // Every change is audited with who and from where.
    let mut store = server.store();
    let entries = store.audit(&AuditQuery::default()).unwrap();
    for (action, target) in [
        ("user_add", "nia"),
        ("user_passwd", "nia"),
        ("user_disable", "nia"),
        ("token_create", token_id.as_str()),
        ("token_revoke", token_id.as_str()),
    ] {
        assert!(
            entries.iter().any(|e| e.action == action
                && e.target == target
                && e.actor == "user:root"
                && e.source == "127.0.0.1"),
            "{action} {target}: {entries:?}"
        );
    }
    server.stop().await;
}
