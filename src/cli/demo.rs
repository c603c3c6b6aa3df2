//! `attune demo`: the console on its embedded defaults (no database, no sound card) with the
//! bundled example calls streamed in as live calls, in a loop, several at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use attune::cues::CueRules;
use attune::model::emotion::EmotionModel;
use attune::service::console;
use attune::service::feeder::{self, DemoSettings, FeedPace, Recording};
use attune::service::hub::Hub;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address the HTTP console listens on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Calls live at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=500))]
    calls: u16,
    /// Folder of stereo example calls: NAME.wav with NAME.truth.json (its `agent_channel`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/calls"))]
    calls_dir: PathBuf,
    /// Emotion model file.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/models/emotion.json"))]
    model: PathBuf,
    /// Play the calls this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a number > 0, got {}", args.speed);
    }
    let model = Arc::new(
        EmotionModel::load(&args.model)
            .with_context(|| format!("cannot load the emotion model {}", args.model.display()))?,
    );
    let recordings = Recording::load_examples(&args.calls_dir).with_context(|| {
        format!(
            "cannot load example calls from {}",
            args.calls_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.http)
            .await
            .with_context(|| format!("cannot listen on {}", args.http))?;
        let address = listener.local_addr()?;
        let calls = usize::from(args.calls);
        let hub = Arc::new(Hub::new(calls.max(16) * 2));
        println!(
            "Attune demo: {calls} live calls from {} example recordings",
            recordings.len()
        );
        println!("  live wall     http://{address}/");
        println!("  alerts        http://{address}/alerts");
        println!("  agent view    http://{address}/agent/agent-01");
        println!("  JSON          http://{address}/api/calls");
        println!("Press Ctrl-C to stop.");
        let settings = DemoSettings {
            calls,
            stagger: Duration::from_secs(3),
            pace: FeedPace { speed: args.speed },
            ..DemoSettings::default()
        };
        let demo = tokio::spawn(feeder::run_demo_loop(
            hub.clone(),
            Arc::new(recordings),
            model,
            CueRules::default(),
            settings,
            |error| eprintln!("warning: a demo call failed: {error}"),
        ));
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let served = console::serve(listener, hub, shutdown).await;
        demo.abort();
        served.context("the console server failed")
    })
}
