//! Plays recorded calls into the [`Hub`] as if they were live, without the gRPC service: the
//! feed behind `attune demo`, the browser tests and the console latency measurement.
//!
//! - [`feed_call`] runs a [`Recording`] through a [`CallAnalyzer`] paced at real time (times
//!   `speed`), in chunks of [`FEED_CHUNK_S`], registering the call with the hub, publishing every
//!   snapshot, emotion judgement and cue, and ending the call at the end of the recording.
//! - [`replay_call`] publishes a [`ScriptedCall`] (a recording analysed once, up front) with the
//!   same pacing: the same events at the same call times, without the analysis CPU. It is how
//!   hundreds of calls are put on a console on a two-core machine.
//! - [`run_demo_loop`] keeps a few calls going: each slot feeds the recordings one after another
//!   with fresh call ids, forever.
//!
//! A small swappable piece: the service's gRPC ingest does the same with network audio.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::hub::{CallEnd, CallInfo, Hub, HubError, HubEventKind, now_unix_ms};
use crate::recorder::CallRecorder;
use crate::session::{CallSpec, CallSummary, Encoding, Layout, encode_chunk};
use attune_core::audio::AudioError;
use attune_core::call::{CallAnalyzer, CallConfig, CallEvent, CallSetupError};
use attune_core::cues::CueRules;
use attune_core::model::emotion::EmotionModel;
use prost::bytes::Bytes;

/// Audio pushed per tick, seconds of call time.
pub const FEED_CHUNK_S: f64 = 0.1;

/// What can go wrong feeding a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Setup(#[from] CallSetupError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("{path}: a call needs two channels (one per party); this recording has {channels}")]
    NotTwoChannels { path: String, channels: u16 },
    #[error("{path}: cannot read the agent channel: {reason}")]
    Truth { path: String, reason: String },
    #[error("speed {0} must be a finite number > 0")]
    Speed(f64),
    #[error("no example calls (*.wav) in {0}")]
    NoRecordings(String),
}

/// A stereo call held in memory (shared between the calls that replay it).
#[derive(Debug, Clone)]
pub struct Recording {
    /// File stem, e.g. `upset_caller`.
    pub name: String,
    pub sample_rate_hz: u32,
    /// Which channel (0 or 1) carries the agent.
    pub agent_channel: usize,
    /// Channel 0 and channel 1 samples.
    pub channels: [Vec<f32>; 2],
}

impl Recording {
    /// Reads a stereo WAV (any encoding [`AudioReader`] decodes).
    pub fn load(path: &Path, agent_channel: usize) -> Result<Self, FeedError> {
        let mut reader = attune_qa::files::open_wav(path)?;
        let spec = reader.spec().clone();
        if spec.channels < 2 {
            return Err(FeedError::NotTwoChannels {
                path: path.display().to_string(),
                channels: spec.channels,
            });
        }
        let mut channels = [Vec::new(), Vec::new()];
        let mut input = vec![Vec::new(); usize::from(spec.channels)];
        while reader.read_frames(16_384, &mut input)? > 0 {
            channels[0].extend_from_slice(&input[0]);
            channels[1].extend_from_slice(&input[1]);
        }
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        Ok(Self {
            name,
            sample_rate_hz: spec.sample_rate_hz,
            agent_channel: agent_channel.min(1),
            channels,
        })
    }

    /// Reads an example call: `NAME.wav` with the agent channel from `NAME.truth.json`.
    pub fn load_example(wav: &Path) -> Result<Self, FeedError> {
        let truth_path = wav.with_extension("truth.json");
        let truth_error = |reason: String| FeedError::Truth {
            path: truth_path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&truth_path).map_err(|e| truth_error(e.to_string()))?;
        let truth: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| truth_error(e.to_string()))?;
        let agent_channel = match truth.get("agent_channel").and_then(|v| v.as_u64()) {
            Some(c @ (0 | 1)) => c as usize,
            other => {
                return Err(truth_error(format!(
                    "agent_channel must be 0 or 1, got {other:?}"
                )));
            }
        };
        Self::load(wav, agent_channel)
    }

    /// Every `*.wav` of a folder with its truth file, sorted by name.
    pub fn load_examples(dir: &Path) -> Result<Vec<Self>, FeedError> {
        let entries = std::fs::read_dir(dir).map_err(|e| AudioError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(FeedError::NoRecordings(dir.display().to_string()));
        }
        paths.iter().map(|p| Self::load_example(p)).collect()
    }

    /// Length, seconds.
    pub fn duration_s(&self) -> f64 {
        self.channels[0].len().max(self.channels[1].len()) as f64 / f64::from(self.sample_rate_hz)
    }

    fn call_config(&self, rules: &CueRules) -> CallConfig {
        CallConfig {
            sample_rate_hz: self.sample_rate_hz,
            agent_channel: self.agent_channel,
            rules: rules.clone(),
            ..CallConfig::default()
        }
    }
}

/// Pacing of a feed.
#[derive(Debug, Clone, Copy)]
pub struct FeedPace {
    /// Call time per wall-clock time: 1 = real time, 10 = ten times faster.
    pub speed: f64,
}

impl FeedPace {
    pub const REAL_TIME: FeedPace = FeedPace { speed: 1.0 };

    fn tick(self) -> Result<Duration, FeedError> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(FeedError::Speed(self.speed));
        }
        Ok(Duration::from_secs_f64(FEED_CHUNK_S / self.speed))
    }
}

/// Ends the call if the feed is dropped half-way (task aborted), so it does not stay "live".
struct LiveCallGuard<'a> {
    hub: &'a Hub,
    call: Arc<CallInfo>,
    fed_s: f64,
    ended: bool,
}

impl LiveCallGuard<'_> {
    fn end(mut self, reason: &str) {
        self.finish(reason);
    }

    fn finish(&mut self, reason: &str) {
        if !self.ended {
            self.ended = true;
            self.hub.end_call(
                &self.call,
                CallEnd {
                    reason: reason.to_owned(),
                    duration_s: self.fed_s,
                    ended_at_unix_ms: now_unix_ms(),
                    summary: None,
                },
            );
        }
    }
}

impl Drop for LiveCallGuard<'_> {
    fn drop(&mut self) {
        self.finish("disconnected");
    }
}

fn publish_call_event(hub: &Hub, call: &Arc<CallInfo>, event: CallEvent) {
    let kind = match event {
        CallEvent::Snapshot(s) => HubEventKind::Snapshot(s),
        CallEvent::Emotion(p) => HubEventKind::Emotion(p),
        CallEvent::Cue(c) => HubEventKind::Cue(c),
        CallEvent::Dialog(_) => return,
    };
    hub.publish(call, kind);
}

/// Feeds `recording` through a live [`CallAnalyzer`] into `hub` as call `info`, paced by `pace`;
/// returns when the recording has been played and the call ended. The analysis runs on the
/// calling task in [`FEED_CHUNK_S`] chunks (well under a millisecond of CPU each in a release
/// build), so it never holds a runtime worker for long.
pub async fn feed_call(
    hub: &Hub,
    info: CallInfo,
    recording: &Recording,
    model: Arc<EmotionModel>,
    rules: &CueRules,
    pace: FeedPace,
) -> Result<(), FeedError> {
    feed_call_recorded(hub, info, recording, model, rules, pace, None).await
}

/// As [`feed_call`], and at the end hands the call to `recorder` (scored and stored like a live
/// call of the gRPC service); a call of a recorded team is recorded as the service records one
/// ([`crate::recordings`]).
pub async fn feed_call_recorded(
    hub: &Hub,
    info: CallInfo,
    recording: &Recording,
    model: Arc<EmotionModel>,
    rules: &CueRules,
    pace: FeedPace,
    recorder: Option<&CallRecorder>,
) -> Result<(), FeedError> {
    let tick = pace.tick()?;
    let mut analyzer = CallAnalyzer::new(recording.call_config(rules), model)?;
    let call = hub.start_call(info)?;
    let mut guard = LiveCallGuard {
        hub,
        call: call.clone(),
        fed_s: 0.0,
        ended: false,
    };
    let mut tap = recorder
        .and_then(CallRecorder::recordings)
        .and_then(|recordings| {
            recordings.start_live(&CallSpec {
                call_id: call.call_id.clone(),
                agent_id: call.agent_id.clone(),
                team: call.team.clone(),
                sample_rate_hz: recording.sample_rate_hz,
                encoding: Encoding::Pcm16le,
                layout: Layout::InterleavedStereo,
                agent_channel: recording.agent_channel,
            })
        });
    let chunk = ((FEED_CHUNK_S * f64::from(recording.sample_rate_hz)).round() as usize).max(1);
    let total = recording.channels[0].len().max(recording.channels[1].len());
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = Vec::with_capacity(64);
    let mut start = 0;
    while start < total {
        interval.tick().await;
        let end = (start + chunk).min(total);
        let slices = recording
            .channels
            .each_ref()
            .map(|samples| &samples[start.min(samples.len())..end.min(samples.len())]);
        for (c, slice) in slices.iter().enumerate() {
            analyzer.push(c, slice, &mut events);
        }
        if let Some(tap) = &mut tap {
            // The demo's feed, not the service's real-time path: one buffer per chunk.
            let mut bytes = Vec::with_capacity(slices[0].len() * 4);
            encode_chunk(Encoding::Pcm16le, &slices, &mut bytes);
            tap.push(0, Bytes::from(bytes));
        }
        for event in events.drain(..) {
            publish_call_event(hub, &call, event);
        }
        start = end;
        guard.fed_s = start as f64 / f64::from(recording.sample_rate_hz);
    }
    let outcome = analyzer.finish(&mut events);
    drop(tap);
    for event in events.drain(..) {
        publish_call_event(hub, &call, event);
    }
    guard.end("ended");
    if let Some(recorder) = recorder {
        let frames = total as u64;
        let summary = CallSummary {
            reason: "ended".to_owned(),
            duration_s: outcome.duration_s,
            chunks_received: frames.div_ceil(chunk as u64),
            bytes_received: frames * 2 * 2,
            chunks_out_of_order: 0,
            chunks_duplicate: 0,
            outcome: Some(outcome),
            continued: None,
        };
        recorder.record_live(
            &call,
            recording.sample_rate_hz,
            recording.agent_channel,
            summary.bytes_received,
            Arc::new(summary),
        );
    }
    Ok(())
}

/// A recording analysed once: its hub events at their call times.
#[derive(Debug, Clone)]
pub struct ScriptedCall {
    pub name: String,
    pub duration_s: f64,
    /// (call time s, event), in order.
    pub events: Vec<(f64, HubEventKind)>,
}

impl ScriptedCall {
    /// Runs `recording` through a [`CallAnalyzer`] as fast as possible, keeping its events.
    pub fn analyse(
        recording: &Recording,
        model: Arc<EmotionModel>,
        rules: &CueRules,
    ) -> Result<Self, FeedError> {
        let mut analyzer = CallAnalyzer::new(recording.call_config(rules), model)?;
        let mut out = Vec::new();
        let chunk = ((FEED_CHUNK_S * f64::from(recording.sample_rate_hz)) as usize).max(1);
        let mut calls = Vec::new();
        let total = recording.channels[0].len().max(recording.channels[1].len());
        let mut start = 0;
        while start < total {
            let end = (start + chunk).min(total);
            for (c, samples) in recording.channels.iter().enumerate() {
                analyzer.push(
                    c,
                    &samples[start.min(samples.len())..end.min(samples.len())],
                    &mut out,
                );
            }
            start = end;
        }
        let outcome = analyzer.finish(&mut out);
        for event in out {
            let entry = match event {
                CallEvent::Snapshot(s) => (s.t_s, HubEventKind::Snapshot(s)),
                CallEvent::Emotion(p) => (p.t_s, HubEventKind::Emotion(p)),
                CallEvent::Cue(c) => (c.t_s, HubEventKind::Cue(c)),
                CallEvent::Dialog(_) => continue,
            };
            calls.push(entry);
        }
        Ok(Self {
            name: recording.name.clone(),
            duration_s: outcome.duration_s,
            events: calls,
        })
    }
}

/// Publishes `script` into `hub` as call `info`, each event when its call time has come
/// (checked every [`FEED_CHUNK_S`] of call time), then ends the call.
pub async fn replay_call(
    hub: &Hub,
    info: CallInfo,
    script: &ScriptedCall,
    pace: FeedPace,
) -> Result<(), FeedError> {
    let tick = pace.tick()?;
    let call = hub.start_call(info)?;
    let mut guard = LiveCallGuard {
        hub,
        call: call.clone(),
        fed_s: 0.0,
        ended: false,
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = 0;
    let mut call_time_s = 0.0;
    while next < script.events.len() {
        interval.tick().await;
        call_time_s += FEED_CHUNK_S;
        while let Some((t_s, kind)) = script.events.get(next) {
            if *t_s > call_time_s + 1e-9 {
                break;
            }
            hub.publish(&call, kind.clone());
            next += 1;
        }
        guard.fed_s = call_time_s.min(script.duration_s);
    }
    guard.fed_s = script.duration_s;
    guard.end("ended");
    Ok(())
}

/// Settings of [`run_demo_loop`].
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// Calls live at once (slots).
    pub calls: usize,
    /// Wall-clock delay between the starts of consecutive slots, and the pause between two
    /// calls of one slot.
    pub stagger: Duration,
    pub pace: FeedPace,
    pub teams: Vec<String>,
    /// Where ended calls are scored and stored (none: not stored).
    pub recorder: Option<Arc<CallRecorder>>,
    /// Part of every call id of this run, so a new demo run does not overwrite the stored
    /// calls of an earlier one (default: the start time, seconds since 1970, in hex).
    pub run_tag: String,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            calls: 4,
            stagger: Duration::from_secs(3),
            pace: FeedPace::REAL_TIME,
            teams: vec!["north".into(), "south".into()],
            recorder: None,
            run_tag: format!(
                "{:x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ),
        }
    }
}

/// The call id, agent and team of slot `slot`'s `round`th call.
pub fn demo_call_info(settings: &DemoSettings, slot: usize, round: u64) -> CallInfo {
    let team = settings
        .teams
        .get(slot % settings.teams.len().max(1))
        .cloned()
        .unwrap_or_else(|| "demo".into());
    CallInfo {
        call_id: format!("demo-{}-{round}-{:02}", settings.run_tag, slot + 1),
        agent_id: format!("agent-{:02}", slot + 1),
        team,
        started_at_unix_ms: 0,
    }
}

/// Keeps `settings.calls` calls live, staggered, each slot feeding the recordings in turn with
/// fresh call ids; runs until dropped. A feed that fails is reported through `on_error` and the
/// slot moves on.
pub async fn run_demo_loop(
    hub: Arc<Hub>,
    recordings: Arc<Vec<Recording>>,
    model: Arc<EmotionModel>,
    rules: CueRules,
    settings: DemoSettings,
    on_error: impl Fn(&FeedError) + Send + Sync + 'static,
) {
    if recordings.is_empty() {
        return;
    }
    let on_error = Arc::new(on_error);
    let rules = Arc::new(rules);
    let mut slots = tokio::task::JoinSet::new();
    for slot in 0..settings.calls {
        let (hub, recordings, model, rules, settings, on_error) = (
            hub.clone(),
            recordings.clone(),
            model.clone(),
            rules.clone(),
            settings.clone(),
            on_error.clone(),
        );
        slots.spawn(async move {
            tokio::time::sleep(settings.stagger * slot as u32).await;
            for round in 1.. {
                let recording = &recordings[(slot + round as usize - 1) % recordings.len()];
                let info = demo_call_info(&settings, slot, round);
                let fed = feed_call_recorded(
                    &hub,
                    info,
                    recording,
                    model.clone(),
                    &rules,
                    settings.pace,
                    settings.recorder.as_deref(),
                )
                .await;
                if let Err(error) = fed {
                    on_error(&error);
                }
                tokio::time::sleep(settings.stagger).await;
            }
        });
    }
    while slots.join_next().await.is_some() {}
}
