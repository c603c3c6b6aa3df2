//! What security costs per request and per chunk: an API token check (cached, as every gRPC
//! stream start and JSON request with a token pays it), a console session look-up (every
//! signed-in request), an argon2id password check (every sign-in), and TLS on one 100 ms
//! stereo G.711 chunk (1600 bytes plus framing: encrypt on the client, decrypt on the server,
//! through rustls in memory, as the gRPC and HTTP listeners do under `--tls-cert`).

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use attune_qa::store::{Store, TokenRecord};
use attune_service::auth::{Gate, GateConfig, Principal, StoreIdentities, secrets};

fn gate_with_token() -> (Gate, String) {
    let dir = std::env::temp_dir().join(format!("attune-bench-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = Store::open(&dir.join("bench.db").display().to_string()).unwrap();
    let token = secrets::new_api_token();
    store
        .add_token(&TokenRecord {
            token_id: secrets::token_id(&token),
            name: "bench".into(),
            role: "ingest".into(),
            teams: vec!["*".into()],
            token_sha256: secrets::sha256_hex(token.as_bytes()),
            created_at: "2026-12-03T00:00:00Z".into(),
            created_by: "bench".into(),
            revoked_at: None,
            expires_at: None,
        })
        .unwrap();
    let gate = Gate::new(
        Arc::new(StoreIdentities::new(store)),
        GateConfig {
            token_cache_ttl: Duration::from_secs(3600),
            ..GateConfig::default()
        },
    );
    (gate, token)
}

/// A client and a server rustls connection with the handshake done.
fn tls_pair() -> (rustls::ClientConnection, rustls::ServerConnection) {
    use rustls_pki_types::pem::PemObject;
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let files = attune_service::tls::TlsFiles {
        cert_pem: certified.cert.pem().into_bytes(),
        key_pem: certified.signing_key.serialize_pem().into_bytes(),
    };
    let server_config = files.server_config().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&files.cert_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
    let mut server = rustls::ServerConnection::new(server_config).unwrap();
    let mut wire = Vec::new();
    for _ in 0..10 {
        wire.clear();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        server.read_tls(&mut wire.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        wire.clear();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        client.read_tls(&mut wire.as_slice()).unwrap();
        client.process_new_packets().unwrap();
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    (client, server)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("auth");
    group.sample_size(20);
    let (gate, token) = gate_with_token();
    gate.bearer(&token).unwrap();
    group.bench_function("api_token_check_cached", |b| {
        b.iter(|| black_box(gate.bearer(black_box(&token)).is_ok()))
    });
    let session = gate.start_session(Principal::unauthenticated_admin());
    group.bench_function("session_lookup", |b| {
        b.iter(|| black_box(gate.session(black_box(&session.session_id)).is_some()))
    });
    let hash = secrets::hash_password("a long enough password").unwrap();
    group.bench_function("argon2id_password_check", |b| {
        b.iter(|| black_box(secrets::verify_password("a long enough password", &hash)))
    });
    let (mut client, mut server) = tls_pair();
    let chunk = vec![0x55u8; 1600];
    let mut wire = Vec::with_capacity(4096);
    let mut plain = vec![0u8; 4096];
    group.bench_function("tls_100ms_stereo_mulaw_chunk", |b| {
        b.iter(|| {
            client.writer().write_all(black_box(&chunk)).unwrap();
            wire.clear();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            server.read_tls(&mut wire.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            let n = server.reader().read(&mut plain).unwrap();
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
