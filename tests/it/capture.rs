//! `attune capture` through a real ALSA device: the ALSA `file` plugin feeds a raw recording as
//! the capture device (no sound card needed). Checks the samples arrive bit-exact and the live
//! analysis — local, or streamed to a real server over loopback (`--server`) — gives the same
//! cues as the file analysed directly.

use std::path::Path;
use std::sync::Arc;

use attune_core::call::{CallConfig, analyze_recording};

use crate::util::{attune, temp_dir};

const CALL: &str = "examples/calls/upset_caller.wav";
const AGENT_CHANNEL: usize = 1;

fn read_stereo(path: &Path) -> (Vec<f32>, Vec<f32>) {
    let mut reader = attune_qa::files::open_wav(path).unwrap();
    let mut channels = [Vec::new(), Vec::new()];
    let mut chunk = vec![Vec::new(), Vec::new()];
    while reader.read_frames(8_000, &mut chunk).unwrap() > 0 {
        channels[0].extend_from_slice(&chunk[0]);
        channels[1].extend_from_slice(&chunk[1]);
    }
    let [a, b] = channels;
    (a, b)
}

/// An ALSA configuration whose default capture device plays `CALL` (as raw 16-bit stereo);
/// returns the `ALSA_CONFIG_PATH` value and the call's frames per channel.
fn alsa_file_device(dir: &Path) -> (String, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (left, right) = read_stereo(&root.join(CALL));
    // G.711 decodes to exact 16-bit values: the raw file holds the same samples.
    let mut raw = Vec::with_capacity(left.len() * 4);
    for (l, r) in left.iter().zip(&right) {
        for s in [l, r] {
            raw.extend_from_slice(&((s * 32768.0).round() as i16).to_le_bytes());
        }
    }
    let raw_path = dir.join("call.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let conf = dir.join("asound.conf");
    std::fs::write(
        &conf,
        format!(
            "pcm.!default {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  \
             infile \"{}\"\n  format \"raw\"\n}}\n",
            raw_path.display()
        ),
    )
    .unwrap();
    (
        format!("/usr/share/alsa/alsa.conf:{}", conf.display()),
        left.len(),
    )
}

/// `(kind, event, t_s)` of every cue of `CALL` analysed as a file.
fn file_cues() -> Vec<(String, String, f64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = Arc::new(attune_qa::files::load_model(&root.join("models/emotion.json")).unwrap());
    let mut reader = attune_qa::files::open_wav(&root.join(CALL)).unwrap();
    let config = CallConfig {
        agent_channel: AGENT_CHANNEL,
        ..CallConfig::default()
    };
    let outcome = analyze_recording(&mut reader, config, model, |_| {}, |_| {})
        .unwrap()
        .outcome
        .unwrap();
    let cues: Vec<(String, String, f64)> = outcome
        .cues
        .iter()
        .map(|c| {
            (
                c.kind.as_str().to_owned(),
                c.event.as_str().to_owned(),
                c.t_s,
            )
        })
        .collect();
    assert!(
        cues.iter()
            .any(|(k, e, _)| k == "caller_upset" && e == "open"),
        "{cues:?}"
    );
    cues
}

#[test]
fn capture_from_an_alsa_file_device_is_bit_exact_and_gives_the_files_cues() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("capture_alsa_file");
    let (left, right) = read_stereo(&root.join(CALL));
    let (alsa_config, _) = alsa_file_device(&dir);
    let recorded = dir.join("captured.wav");
    let output = attune()
        .current_dir(root)
        .env("ALSA_CONFIG_PATH", alsa_config)
        .args([
            "capture",
            "--sample-rate",
            "8000",
            "--channels",
            "2",
            "--agent-channel",
            &AGENT_CHANNEL.to_string(),
            "--lossless",
            "--format",
            "jsonl",
            "--max-frames",
            &left.len().to_string(),
            "--record",
        ])
        .arg(&recorded)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "capture failed: {stderr}");
    assert!(stderr.contains("0 samples dropped"), "{stderr}");

    // Bit-exact: every captured sample equals the file's.
    let (cap_left, cap_right) = read_stereo(&recorded);
    assert_eq!(cap_left.len(), left.len(), "frames captured");
    assert!(
        cap_left == left && cap_right == right,
        "captured samples differ"
    );

    // The live analysis found the same cues, at the same call times, as the file analysed
    // directly.
    let live_cues: Vec<(String, String, f64)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["type"] == "cue")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["event"].as_str().unwrap().to_owned(),
                e["t_s"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(live_cues, file_cues());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_streams_to_a_server_and_gets_the_files_cues_back() {
    use attune_core::cues::CueRules;
    use attune_service::http::router;
    use attune_service::server::{ServerConfig, Service};

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("capture_to_server");
    let (alsa_config, frames) = alsa_file_device(&dir);
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", grpc.local_addr().unwrap());
    let model = Arc::new(attune_qa::files::load_model(&root.join("models/emotion.json")).unwrap());
    let service = Service::new(ServerConfig::default(), CueRules::default(), model).unwrap();
    let hub = service.hub.clone();
    let app = router(service.app_state());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        service
            .serve(grpc, http, app, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });

    let capture_url = url.clone();
    let output = tokio::task::spawn_blocking(move || {
        attune()
            .current_dir(root)
            .env("ALSA_CONFIG_PATH", alsa_config)
            .args([
                "capture",
                "--server",
                &capture_url,
                "--call-id",
                "desk-7",
                "--agent-id",
                "ana",
                "--team",
                "blue",
                "--sample-rate",
                "8000",
                "--channels",
                "2",
                "--agent-channel",
                &AGENT_CHANNEL.to_string(),
                "--lossless",
                "--format",
                "jsonl",
                "--max-frames",
                &frames.to_string(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "capture failed: {stderr}");
    assert!(stderr.contains("0 samples dropped"), "{stderr}");
    // Every chunk acknowledged, and the call ended normally on the server.
    let chunks = frames.div_ceil(800);
    assert!(
        stderr.contains(&format!(
            "streamed {chunks} chunks to {url} ({chunks} acknowledged)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("(ended)"), "{stderr}");

    // The cues that came back from the server: the file's, at the same call times.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let live_cues: Vec<(String, String, f64)> = events
        .iter()
        .filter(|e| e["type"] == "cue")
        .map(|e| {
            assert_eq!(e["call_id"], "desk-7");
            let c = &e["cue"];
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["event"].as_str().unwrap().to_owned(),
                c["t_s"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(live_cues, file_cues());
    assert!(events.iter().any(|e| e["type"] == "call_ended"));
    // The server knew the call by the given ids.
    let ended = hub.ended_calls(&attune_service::hub::CallFilter::default());
    assert!(
        ended.iter().any(|v| v.call.call_id == "desk-7"
            && v.call.agent_id == "ana"
            && v.call.team == "blue"),
        "{ended:?}"
    );
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .unwrap();
}

#[test]
fn capture_rejects_a_bad_layout_before_touching_the_device() {
    let out = attune()
        .args(["capture", "--channels", "2", "--agent-channel", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agent-channel 2"));
}
