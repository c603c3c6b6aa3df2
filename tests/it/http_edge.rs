//! The HTTP listener under abuse (issue 17): slowloris connections closed at the header
//! timeout while normal requests go on, keep-alive connections closed at the idle timeout,
//! the connection cap (more connections wait at accept, counted in /metrics), and uploads:
//! refused before their body is read when every permit is taken, 413 while streaming past
//! the limit, and a normal upload still scored.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use attune_qa::ScoringSetup;
use attune_qa::store::Store;
use attune_service::http_conn::HttpLimits;
use attune_service::metrics::ServiceMetrics;
use attune_service::recorder::CallRecorder;
use attune_service::server::ServerConfig;

use crate::console::{examples_dir, http_bytes};
use crate::util::{TestServer, TestService, temp_dir};

/// A service with these HTTP limits and, when `db` is given, a store (uploads up to
/// `max_upload_bytes`).
async fn start(limits: HttpLimits, db: Option<(&Path, usize)>) -> TestServer {
    let config = ServerConfig {
        max_calls: 4,
        analysis_threads: 1,
        http: limits,
        ..ServerConfig::default()
    };
    let service = match db {
        Some((db, max_upload_bytes)) => {
            let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emotion.json");
            let setup = Arc::new(ScoringSetup::load(Some(&model), None, None, 0).unwrap());
            let metrics = Arc::new(ServiceMetrics::default());
            let store = Store::open(&db.display().to_string()).unwrap();
            let mut recorder = CallRecorder::start(store, setup, metrics.clone()).unwrap();
            recorder.max_upload_bytes = max_upload_bytes;
            TestService::with_recorder(config, Arc::new(recorder), metrics)
        }
        None => TestService::new(config),
    };
    TestServer::start(service).await
}

fn limits(header_s: f64, idle_s: f64, max_connections: usize) -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs_f64(header_s),
        idle_timeout: Duration::from_secs_f64(idle_s),
        max_connections,
    }
}

/// Waits until the server closes `stream` (EOF or reset), reading and dropping what it sends;
/// None if it is still open after `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// Reads one response head and a body of Content-Length bytes from a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read response");
        assert!(n > 0, "connection closed before a response");
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).await.expect("read body");
                assert!(n > 0, "connection closed in a body");
                data.extend_from_slice(&buf[..n]);
            }
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string();
            return (status, body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_at_the_header_timeout_while_requests_go_on() {
    let server = start(limits(1.0, 2.5, 4096), None).await;
    let start = Instant::now();
    // 200 clients send a request line and then one header byte every 300 ms, for ever.
    let mut clients = Vec::new();
    for _ in 0..200 {
        let addr = server.http;
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
            let (mut read, mut write) = stream.into_split();
            let trickle = tokio::spawn(async move {
                while write.write_all(b"a").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            });
            let mut buf = [0u8; 1024];
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => return Instant::now(),
                        Ok(_) => {}
                    }
                }
            })
            .await
            .ok();
            trickle.abort();
            closed
        }));
    }
    // Meanwhile a normal request is answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = http_bytes(server.http, "GET", "/healthz", "text/plain", b"").await;
    assert_eq!(status, 200, "{body}");
    let mut latest = Duration::ZERO;
    for client in clients {
        let closed = client
            .await
            .unwrap()
            .expect("a slowloris connection was still open 5 s after it started");
        latest = latest.max(closed - start);
    }
    // 1 s of header timeout, plus the time to open 200 connections on a busy machine.
    assert!(
        latest < Duration::from_millis(3000),
        "the last slowloris connection closed after {latest:?}"
    );
    assert!(server.metric("attune_http_header_timeouts_total").await >= 200.0);

    // A keep-alive connection outlives the header timeout between requests, and is closed at
    // the idle timeout.
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    let idle = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection was not closed");
    assert!(
        idle >= Duration::from_millis(2000) && idle < Duration::from_millis(4000),
        "closed after {idle:?} (idle timeout 2.5 s)"
    );
    assert!(server.metric("attune_http_idle_timeouts_total").await >= 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_others_close_and_are_counted() {
    let server = start(limits(10.0, 10.0, 4), None).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(server.http).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = &server.metrics.http;
    assert_eq!(http.connections_open.load(Ordering::Relaxed), 4);
    // The fifth connects (the kernel queues it) but is not served while the four are open.
    let mut fifth = TcpStream::connect(server.http).await.unwrap();
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), fifth.read(&mut buf))
            .await
            .is_err(),
        "a connection beyond the cap was served"
    );
    assert!(http.connection_limit_waits.load(Ordering::Relaxed) >= 1);
    assert_eq!(http.connections_open.load(Ordering::Relaxed), 4);
    // One closes: the fifth is served.
    drop(held.pop());
    let (status, _) = tokio::time::timeout(Duration::from_secs(3), read_response(&mut fifth))
        .await
        .expect("the waiting connection was not served after a slot was freed");
    assert_eq!(status, 200);
    drop(fifth);
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.metric("attune_http_connection_limit").await, 4.0);
    assert!(
        server
            .metric("attune_http_connection_limit_waits_total")
            .await
            >= 1.0
    );
    assert!(
        server
            .metric("attune_http_connections_accepted_total")
            .await
            >= 6.0
    );
    server.stop().await;
}

fn upload_head(length: Option<usize>, expect_continue: bool) -> String {
    let mut head = String::from(
        "POST /api/recordings?name=calm.wav&agent=ann HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n",
    );
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_before_their_body_when_busy_and_streamed_within_the_limit() {
    let dir = temp_dir("http-edge-uploads");
    let db = dir.join("calls.db");
    let limit = 1_000_000;
    let server = start(limits(10.0, 10.0, 64), Some((&db, limit))).await;
    let wav = std::fs::read(examples_dir().join("calm.wav")).unwrap();
    assert!(wav.len() < limit);

    // Two slow uploads take both permits: each sent its head and 1000 bytes of its body.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.http).await.unwrap();
        stream
            .write_all(upload_head(Some(wav.len()), false).as_bytes())
            .await
            .unwrap();
        stream.write_all(&wav[..1000]).await.unwrap();
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A third is refused at once, without its body being asked for (no 100 Continue) or sent.
    let mut third = TcpStream::connect(server.http).await.unwrap();
    third
        .write_all(upload_head(Some(wav.len()), true).as_bytes())
        .await
        .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(3), read_response(&mut third))
        .await
        .expect("a refused upload was not answered before its body");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("uploads are being scored already"), "{body}");

    // A body over the limit: declared, refused before it is sent; streamed (chunked), 413
    // once past the limit.
    let mut declared = TcpStream::connect(server.http).await.unwrap();
    declared
        .write_all(upload_head(Some(limit + 1), true).as_bytes())
        .await
        .unwrap();
    let (status, body) = read_response(&mut declared).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("over the upload limit"), "{body}");

    // The first slow upload finishes: scored and stored.
    let mut first = slow.remove(0);
    first.write_all(&wav[1000..]).await.unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(60), read_response(&mut first))
        .await
        .expect("the upload was not scored");
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"score_pct\""), "{body}");
    // The second gives up: its permit is freed.
    drop(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut chunked = TcpStream::connect(server.http).await.unwrap();
    chunked
        .write_all(upload_head(None, false).as_bytes())
        .await
        .unwrap();
    let piece = vec![0u8; 16 * 1024];
    let mut sent = 0;
    while sent <= limit + 32 * 1024 {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(&piece);
        chunk.extend_from_slice(b"\r\n");
        if chunked.write_all(&chunk).await.is_err() {
            break;
        }
        sent += piece.len();
    }
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut chunked))
        .await
        .expect("no answer to an oversized upload");
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("over the upload limit of 1000000 bytes"),
        "{body}"
    );

    // A normal upload still scores.
    let (status, body) = http_bytes(
        server.http,
        "POST",
        "/api/recordings?name=calm.wav&agent=bo",
        "audio/wav",
        &wav,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}
