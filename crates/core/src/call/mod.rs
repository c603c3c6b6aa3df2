//! One call's whole analysis, live or recorded: [`CallAnalyzer`] takes each channel's samples
//! as they arrive and returns [`CallEvent`]s in call time — periodic [`CallSnapshot`]s, emotion
//! and calmness judgements, dialog events and cues. The gRPC service, sound-card capture and the
//! batch scorer all run this same type, so a recording re-analysed gives what a supervisor saw
//! live, bit for bit.
//!
//! Pipeline per call: resample each channel to [`ANALYSIS_RATE_HZ`] → [`ChannelAnalyzer`] per
//! channel (frames out as soon as pitch and voice activity are decided; syllable marks follow
//! on the next speech frame, [`SyllableMarks::NextSpeechFrame`]) → frames paired by index → [`DialogTracker`] (turns, overlap, interruptions) → each
//! party's window functionals (windows of [`WINDOW_SPEECH_S`] of speech, staggered so a new
//! window closes every ~0.42 s of speech) → [`EmotionModel`] against the party's live
//! baseline (caller emotion; agent calmness), each window also judged cold (no baseline) for
//! the cue engine, which combines both → [`CueEngine`]. The caller also has short onset windows
//! (`[caller_upset_onset]` in the cue rules), judged cold for the caller_upset fast path only.
//!
//! Pure and synchronous; per frame it allocates nothing (events allocate when emitted).

mod recording;

pub use recording::{
    CallAnalysis, CallBackchannel, CallError, CallTalk, CallTurn, Party, PartyProsody,
    analysis_from_outcome,
};

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audio::{AudioError, Resampler};
use crate::cues::{
    CueEngine, CueEvent, CueInput, CueRules, EarlySilenceCloses, ONSET_WINDOW_LANES, PartyFrame,
};
use crate::dialog::Speaker;
use crate::dialog::{
    DialogConfig, DialogConfigError, DialogEvent, DialogReport, DialogTracker, LiveDialog, PerParty,
};
use crate::dsp::{ANALYSIS_RATE_HZ, FRAME_PERIOD_S};
use crate::empathy::turns::ProsodyFrame;
use crate::empathy::{EmpathyConfig, EmpathyInput, EmpathyReport, TurnProsody, TurnProsodyTracker};
use crate::features::{
    AnalyzerConfig, ChannelAnalyzer, ChannelSummary, FrameFeatures, LagHistogram, StageLags,
    SyllableMarks,
};
use crate::model::emotion::{EmotionModel, Prediction};
use crate::prosody::baseline::{Normalisation, SpeakerBaseline};
use crate::prosody::functionals::{FEATURE_COUNT, FunctionalsAccumulator};
use crate::prosody::windows::WINDOW_SPEECH_S;

/// Staggered windows per party: a window closes every `WINDOW_SPEECH_S / WINDOW_LANES` of speech.
pub(crate) const WINDOW_LANES: usize = 6;

/// Settings of one call's analysis.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// Sample rate of the incoming audio, Hz (resampled to [`ANALYSIS_RATE_HZ`]).
    pub sample_rate_hz: u32,
    /// Which input channel (0 or 1) is the agent; the other is the caller.
    pub agent_channel: usize,
    pub analyzer: AnalyzerConfig,
    pub dialog: DialogConfig,
    pub rules: CueRules,
    /// Call time between snapshots, seconds.
    pub snapshot_period_s: f64,
    /// Close extended_silence as soon as either channel's speech onset is known, decided or
    /// provisional ([`CallAnalyzer::early_silence_closes`]), instead of when the call steps
    /// the frame there. The close is the same event either way unless the provisional onset
    /// fails (then the silence reopens); off, it comes ~100 ms later.
    pub early_silence_close: bool,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: ANALYSIS_RATE_HZ,
            agent_channel: 0,
            // Frames do not wait for their syllable marks: every frame held back delays
            // every cue.
            analyzer: AnalyzerConfig {
                syllable_marks: SyllableMarks::NextSpeechFrame,
                ..AnalyzerConfig::default()
            },
            dialog: DialogConfig::default(),
            rules: CueRules::default(),
            snapshot_period_s: 1.0,
            early_silence_close: true,
        }
    }
}

/// What can go wrong setting up a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallSetupError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Dialog(#[from] DialogConfigError),
    #[error("agent channel {0} does not exist: a call has channels 0 and 1")]
    AgentChannel(usize),
    #[error("snapshot period {0} s must be a finite number > 0")]
    SnapshotPeriod(f64),
}

/// One judgement of a party's emotional state, over the window that closed at `t_s`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmotionPoint {
    pub t_s: f64,
    pub party: Speaker,
    /// `None` when abstaining (see `abstain_reason`). Read back (a cluster peer's event), a
    /// label that is not one of the model's classes is `None`.
    pub emotion: Option<&'static str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstain_reason: Option<String>,
    /// angry, anxious, sad, happy, neutral.
    pub probabilities: [f32; 5],
    pub arousal: f32,
    pub valence: f32,
    pub confidence: f32,
    /// 0–100.
    pub calmness: f32,
    /// Whether the window was judged against the party's own baseline.
    pub normalisation: Normalisation,
    pub speech_s: f64,
}

/// [`EmotionPoint`] as read back, its label as text.
#[derive(Deserialize)]
struct EmotionPointRead {
    t_s: f64,
    party: Speaker,
    emotion: Option<String>,
    #[serde(default)]
    abstain_reason: Option<String>,
    probabilities: [f32; 5],
    arousal: f32,
    valence: f32,
    confidence: f32,
    calmness: f32,
    normalisation: Normalisation,
    speech_s: f64,
}

impl<'de> Deserialize<'de> for EmotionPoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EmotionPointRead::deserialize(deserializer).map(Into::into)
    }
}

impl From<EmotionPointRead> for EmotionPoint {
    fn from(p: EmotionPointRead) -> Self {
        EmotionPoint {
            t_s: p.t_s,
            party: p.party,
            emotion: p
                .emotion
                .as_deref()
                .and_then(crate::model::labels::class_name),
            abstain_reason: p.abstain_reason,
            probabilities: p.probabilities,
            arousal: p.arousal,
            valence: p.valence,
            confidence: p.confidence,
            calmness: p.calmness,
            normalisation: p.normalisation,
            speech_s: p.speech_s,
        }
    }
}

impl EmotionPoint {
    fn new(t_s: f64, party: Speaker, p: &Prediction) -> Self {
        Self {
            t_s,
            party,
            emotion: p.emotion,
            abstain_reason: p.abstain_reason.clone(),
            probabilities: p.probabilities,
            arousal: p.arousal,
            valence: p.valence,
            confidence: p.confidence,
            calmness: p.calmness,
            normalisation: p.normalisation,
            speech_s: p.speech_s,
        }
    }
}

/// Per-party figures of the last snapshot period.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PartyNow {
    /// The party is in a turn.
    pub talking: bool,
    /// Mean loudness of the period's speech frames, dBFS; None without speech.
    pub loudness_db: Option<f32>,
    /// Mean F0 of the period's voiced speech frames, Hz; None without.
    pub pitch_hz: Option<f32>,
}

/// The call's state, every `snapshot_period_s` of call time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSnapshot {
    pub t_s: f64,
    pub agent: PartyNow,
    pub caller: PartyNow,
    pub dialog: LiveDialog,
    /// The caller's latest judgement; None until the first window ("listening").
    pub caller_emotion: Option<EmotionPoint>,
    /// The agent's latest calmness, 0–100; None until the first window.
    pub agent_calmness: Option<f32>,
    /// Cues open now.
    pub open_cues: Vec<CueEvent>,
}

/// Something the analysis decided, in call time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    Snapshot(Box<CallSnapshot>),
    /// A judged window of the caller (emotion) or the agent (calmness).
    Emotion(EmotionPoint),
    Dialog(DialogEvent),
    Cue(CueEvent),
}

/// Everything known about a call once it ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallOutcome {
    pub duration_s: f64,
    pub dialog: DialogReport,
    /// Prosody summary of the agent and the caller channel.
    pub prosody: PerParty<ChannelSummary>,
    /// The caller's judged windows in time order.
    pub caller_emotion: Vec<EmotionPoint>,
    /// The agent's judged windows (calmness) in time order.
    pub agent_emotion: Vec<EmotionPoint>,
    /// Every cue event in time order.
    pub cues: Vec<CueEvent>,
    /// Every turn with its prosody (pitch, loudness, rate), in the order decided.
    pub turn_prosody: Vec<TurnProsody>,
    /// Active listening, attunement and de-escalation ([`crate::empathy`]).
    pub empathy: EmpathyReport,
}

/// Windows of a fixed length of speech, `LANES` of them started one after the other so a
/// window closes every `window_speech_s / LANES` of speech.
struct StaggeredWindows<const LANES: usize> {
    lanes: [FunctionalsAccumulator; LANES],
    active_lanes: usize,
    window_speech_s: f64,
    stagger_frames: u64,
}

/// A window that closed: its functionals, its lane and how much speech it held.
struct ClosedWindow {
    lane: usize,
    features: [f32; FEATURE_COUNT],
    speech_s: f64,
    voiced_s: f64,
}

impl<const LANES: usize> StaggeredWindows<LANES> {
    fn new(window_speech_s: f64) -> Self {
        Self {
            lanes: std::array::from_fn(|_| FunctionalsAccumulator::new()),
            active_lanes: 1,
            window_speech_s,
            stagger_frames: (window_speech_s / LANES as f64 / FRAME_PERIOD_S) as u64,
        }
    }

    /// Adds a frame (`speech_frames`: the party's speech frames so far, this one included);
    /// returns the window that closed with it, if one did (its lane starts afresh).
    fn push(&mut self, frame: &FrameFeatures, speech_frames: u64) -> Option<ClosedWindow> {
        if self.active_lanes < LANES
            && speech_frames >= self.stagger_frames * self.active_lanes as u64
        {
            self.active_lanes += 1;
        }
        let mut closed = None;
        for (i, lane) in self.lanes[..self.active_lanes].iter_mut().enumerate() {
            lane.push(frame);
            if lane.speech_s() >= self.window_speech_s {
                closed = Some(i);
            }
        }
        let i = closed?;
        let lane = &mut self.lanes[i];
        let window = ClosedWindow {
            lane: i,
            features: lane.features(),
            speech_s: lane.speech_s(),
            voiced_s: lane.voiced_s(),
        };
        lane.reset();
        Some(window)
    }
}

/// Short caller windows judged cold for the upset onset only
/// ([`crate::cues::UpsetOnsetRule`]).
struct OnsetWindows {
    windows: StaggeredWindows<ONSET_WINDOW_LANES>,
    latest: Option<Prediction>,
}

impl OnsetWindows {
    fn new(window_speech_s: f64) -> Self {
        Self {
            windows: StaggeredWindows::new(window_speech_s),
            latest: None,
        }
    }

    /// Adds a frame; true when a window closed and was judged (`latest`).
    fn push(&mut self, frame: &FrameFeatures, speech_frames: u64, model: &EmotionModel) -> bool {
        let Some(w) = self.windows.push(frame, speech_frames) else {
            return false;
        };
        self.latest = Some(model.predict(&w.features, w.speech_s, w.voiced_s, None));
        true
    }
}

/// Window functionals of one party: staggered accumulators and the live baseline.
struct PartyWindows {
    windows: StaggeredWindows<WINDOW_LANES>,
    speech_frames: u64,
    baseline: SpeakerBaseline,
    latest: Option<Prediction>,
    /// The latest window judged cold (population normalisation), when `latest` was judged
    /// against the baseline; the cue engine combines both.
    latest_cold: Option<Prediction>,
    /// Short windows for the caller's upset onset, when the rules ask for them.
    onset: Option<Box<OnsetWindows>>,
    /// An onset window closed at the latest frame.
    onset_judged: bool,
    loudness_sum_db: f64,
    loudness_frames: u32,
    pitch_sum_hz: f64,
    pitch_frames: u32,
}

impl PartyWindows {
    fn new(onset_window_speech_s: Option<f64>) -> Self {
        Self {
            windows: StaggeredWindows::new(WINDOW_SPEECH_S),
            speech_frames: 0,
            baseline: SpeakerBaseline::new(),
            latest: None,
            latest_cold: None,
            onset: onset_window_speech_s.map(|s| Box::new(OnsetWindows::new(s))),
            onset_judged: false,
            loudness_sum_db: 0.0,
            loudness_frames: 0,
            pitch_sum_hz: 0.0,
            pitch_frames: 0,
        }
    }

    /// Adds a frame; returns a judgement when a window closed.
    fn push(&mut self, frame: &FrameFeatures, model: &EmotionModel) -> Option<&Prediction> {
        let speech = frame.activity == crate::dsp::vad::VoiceActivity::Speech;
        if speech {
            self.speech_frames += 1;
            if frame.loudness_db.is_finite() {
                self.loudness_sum_db += f64::from(frame.loudness_db);
                self.loudness_frames += 1;
            }
            if frame.voiced && frame.f0_hz > 0.0 {
                self.pitch_sum_hz += f64::from(frame.f0_hz);
                self.pitch_frames += 1;
            }
        }
        self.onset_judged = match &mut self.onset {
            Some(onset) => onset.push(frame, self.speech_frames, model),
            None => false,
        };
        let w = self.windows.push(frame, self.speech_frames)?;
        let prediction = model.predict(&w.features, w.speech_s, w.voiced_s, Some(&self.baseline));
        self.latest_cold = (prediction.normalisation == Normalisation::Speaker)
            .then(|| model.predict(&w.features, w.speech_s, w.voiced_s, None));
        // Only one lane feeds the baseline, so each stretch of speech counts once.
        if w.lane == 0 {
            self.baseline.add(&w.features, w.speech_s);
        }
        self.latest = Some(prediction);
        self.latest.as_ref()
    }

    /// The onset window judged at the latest frame, if one closed.
    fn onset_latest(&self) -> Option<&Prediction> {
        self.onset
            .as_ref()
            .filter(|_| self.onset_judged)
            .and_then(|o| o.latest.as_ref())
    }

    fn take_period(&mut self, talking: bool) -> PartyNow {
        let now = PartyNow {
            talking,
            loudness_db: (self.loudness_frames > 0)
                .then(|| (self.loudness_sum_db / f64::from(self.loudness_frames)) as f32),
            pitch_hz: (self.pitch_frames > 0)
                .then(|| (self.pitch_sum_hz / f64::from(self.pitch_frames)) as f32),
        };
        self.loudness_sum_db = 0.0;
        self.loudness_frames = 0;
        self.pitch_sum_hz = 0.0;
        self.pitch_frames = 0;
        now
    }
}

fn party_frame(f: &FrameFeatures) -> PartyFrame {
    PartyFrame {
        speech: f.activity == crate::dsp::vad::VoiceActivity::Speech,
        loudness_db: f.loudness_db,
        f0_hz: if f.voiced { f.f0_hz } else { 0.0 },
        syllable_nucleus: f.syllable_nucleus,
    }
}

fn prosody_frame(f: &FrameFeatures) -> ProsodyFrame {
    ProsodyFrame {
        speech: f.activity == crate::dsp::vad::VoiceActivity::Speech,
        loudness_db: f.loudness_db,
        f0_hz: if f.voiced { f.f0_hz } else { 0.0 },
        syllable_nucleus: f.syllable_nucleus,
    }
}

fn add_turns(tracker: &mut TurnProsodyTracker, events: &[DialogEvent]) {
    for e in events {
        if let DialogEvent::Turn(t) = e {
            tracker.add_turn(t);
        }
    }
}

/// One call's analysis. See the module docs.
pub struct CallAnalyzer {
    config: CallConfig,
    model: Arc<EmotionModel>,
    resamplers: [Resampler; 2],
    resampled: [Vec<f32>; 2],
    channels: [ChannelAnalyzer; 2],
    /// Frames of each input channel waiting for the other channel's frame of the same index
    /// (at most [`MAX_PENDING_FRAMES`] after each push).
    pending: [VecDeque<FrameFeatures>; 2],
    /// Per input channel, frames taken as silent because the other ran too far ahead.
    frames_taken_as_silent: [u64; 2],
    tracker: DialogTracker,
    /// Agent, caller.
    parties: [PartyWindows; 2],
    cues: CueEngine,
    /// Per-turn prosody for the empathy measures.
    turn_prosody: Box<TurnProsodyTracker>,
    frames: u64,
    next_snapshot_s: f64,
    outcome_caller: Vec<EmotionPoint>,
    outcome_agent: Vec<EmotionPoint>,
    outcome_cues: Vec<CueEvent>,
    cue_scratch: Vec<CueEvent>,
    dialog_scratch: Vec<DialogEvent>,
    /// Frames analysed (both channels) past each frame when the call stepped it.
    step_lags: LagHistogram,
    finished: bool,
}

/// Where a call's frames waited before the dialog tracker and the cue engine saw them: each
/// channel's stages (cumulative) and the call step, which pairs the channels by frame index.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyBreakdown {
    /// Both channels' stages merged.
    pub channels: StageLags,
    /// Frames analysed on both channels past a frame when it was stepped.
    pub step: LagHistogram,
    /// Audio past a frame's centre its analysis windows need, seconds.
    pub window_lead_s: f64,
}

const AGENT: usize = 0;
const CALLER: usize = 1;

/// Frames one input channel may run ahead of the other (10 s at 10 ms), e.g. when one of two
/// mono streams stops sending. Past it, the lagging channel is taken as silent for the excess
/// frames (counted in [`CallAnalyzer::frames_taken_as_silent`]), so the call goes on and memory
/// stays bounded; that channel's frames for those moments are dropped if they arrive later.
pub const MAX_PENDING_FRAMES: usize = 1_000;

/// A silent frame of a channel at `index` (a lagging or ended channel's stand-in).
fn silent_frame(index: u64) -> FrameFeatures {
    FrameFeatures {
        index,
        loudness_db: -120.0,
        ..FrameFeatures::default()
    }
}

/// Queues a channel's next frame unless its moment was already taken as silent (the frame
/// arrives after [`CallAnalyzer::bound_pending`] filled it in): `next_pair` is the index of the
/// next frame pair to step.
fn keep_frame(pending: &mut VecDeque<FrameFeatures>, next_pair: u64, frame: &FrameFeatures) {
    if frame.index >= next_pair + pending.len() as u64 {
        pending.push_back(*frame);
    }
}

impl CallAnalyzer {
    pub fn new(config: CallConfig, model: Arc<EmotionModel>) -> Result<Self, CallSetupError> {
        if config.agent_channel > 1 {
            return Err(CallSetupError::AgentChannel(config.agent_channel));
        }
        if !(config.snapshot_period_s.is_finite() && config.snapshot_period_s > 0.0) {
            return Err(CallSetupError::SnapshotPeriod(config.snapshot_period_s));
        }
        let resampler = || Resampler::try_new(config.sample_rate_hz, ANALYSIS_RATE_HZ);
        let resamplers = [resampler()?, resampler()?];
        let tracker = DialogTracker::new(DialogConfig {
            agent_channel: 0,
            ..config.dialog.clone()
        })?;
        Ok(Self {
            resamplers,
            resampled: [Vec::with_capacity(8192), Vec::with_capacity(8192)],
            channels: [
                ChannelAnalyzer::new(0, &config.analyzer),
                ChannelAnalyzer::new(1, &config.analyzer),
            ],
            pending: [VecDeque::with_capacity(256), VecDeque::with_capacity(256)],
            frames_taken_as_silent: [0, 0],
            tracker,
            parties: [
                PartyWindows::new(None),
                PartyWindows::new(config.rules.caller_upset_onset.map(|o| o.window_speech_s)),
            ],
            cues: CueEngine::new(config.rules.clone()),
            turn_prosody: Box::new(TurnProsodyTracker::new()),
            frames: 0,
            next_snapshot_s: config.snapshot_period_s,
            outcome_caller: Vec::new(),
            outcome_agent: Vec::new(),
            outcome_cues: Vec::new(),
            cue_scratch: Vec::with_capacity(8),
            dialog_scratch: Vec::with_capacity(8),
            step_lags: LagHistogram::default(),
            finished: false,
            model,
            config,
        })
    }

    pub fn config(&self) -> &CallConfig {
        &self.config
    }

    /// Call time analysed so far (both channels), seconds.
    pub fn analysed_s(&self) -> f64 {
        self.frames as f64 * FRAME_PERIOD_S
    }

    /// Where the frames stepped so far waited (see [`LatencyBreakdown`]).
    pub fn latency_breakdown(&self) -> LatencyBreakdown {
        let mut channels = self.channels[0].stage_lags().clone();
        let other = self.channels[1].stage_lags();
        channels.pitch.merge(&other.pitch);
        channels.voice_activity.merge(&other.voice_activity);
        channels.syllable.merge(&other.syllable);
        LatencyBreakdown {
            channels,
            step: self.step_lags.clone(),
            window_lead_s: self.channels[0].window_lead_s(),
        }
    }

    /// Adds samples of one input channel (0 or 1) at the configured rate; events decided are
    /// appended to `out`. Channels may arrive unevenly: frames are paired as both arrive.
    pub fn push(&mut self, channel: usize, samples: &[f32], out: &mut Vec<CallEvent>) {
        if self.finished || channel > 1 {
            return;
        }
        let buf = &mut self.resampled[channel];
        buf.clear();
        self.resamplers[channel].process(samples, buf);
        let next = self.frames;
        let pending = &mut self.pending[channel];
        self.channels[channel].push(buf, &mut |f| keep_frame(pending, next, f));
        self.drain_pairs(out);
        self.bound_pending(out);
        self.close_silence_early(out);
    }

    /// While extended_silence is open: if either channel has speech coming (decided, waiting
    /// for the other channel's frames, or provisional: [`ChannelAnalyzer::speech_onset_hint`]),
    /// closes the cue now at that onset instead of when the frames get there (the voice-activity
    /// detector's look-ahead and the pairing of the channels later). The frames there confirm
    /// it or reopen the silence ([`CueEngine::close_silence_at_onset`]).
    fn close_silence_early(&mut self, out: &mut Vec<CallEvent>) {
        if !self.config.early_silence_close || !self.cues.silence_open() {
            return;
        }
        let next_pair = self.frames;
        let mut onset: Option<u64> = None;
        let mut undecided_from: Option<u64> = None;
        for c in 0..2 {
            // Frames decided, waiting for the other channel: the first that is speech for
            // either detector (the turn-taking one starts turns, which end a silence too).
            let speech = crate::dsp::vad::VoiceActivity::Speech;
            let decided = self.pending[c]
                .iter()
                .find(|f| f.activity == speech || f.dialog_activity == speech);
            let hint = match decided {
                Some(f) if f.activity == speech => crate::features::SpeechOnsetHint {
                    onset: Some(f.index),
                    undecided_from: None,
                },
                Some(f) => crate::features::SpeechOnsetHint {
                    onset: None,
                    undecided_from: Some(f.index),
                },
                None => self.channels[c].speech_onset_hint(),
            };
            let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            onset = min(onset, hint.onset);
            undecided_from = min(undecided_from, hint.undecided_from);
        }
        // Only when nothing before the onset may still turn out to be talk (on either
        // channel, for either detector): the close is then the one the frames will give.
        let Some(index) =
            onset.filter(|&i| i >= next_pair && undecided_from.is_none_or(|u| u >= i))
        else {
            return;
        };
        // The frame at `index` steps at this call time (see `step`).
        let onset_t_s = (index + 1) as f64 * FRAME_PERIOD_S;
        self.cue_scratch.clear();
        self.cues
            .close_silence_at_onset(onset_t_s, &mut self.cue_scratch);
        for cue in self.cue_scratch.drain(..) {
            record_in_time_order(&mut self.outcome_cues, cue.clone());
            out.push(CallEvent::Cue(cue));
        }
    }

    /// How the early closes of extended_silence turned out so far.
    pub fn early_silence_closes(&self) -> EarlySilenceCloses {
        self.cues.early_silence_closes()
    }

    /// Per input channel, frames taken as silent because the other channel ran more than
    /// [`MAX_PENDING_FRAMES`] ahead (a stalled stream).
    pub fn frames_taken_as_silent(&self) -> [u64; 2] {
        self.frames_taken_as_silent
    }

    /// Frames waiting for the other channel, per input channel.
    pub fn pending_frames(&self) -> [usize; 2] {
        [self.pending[0].len(), self.pending[1].len()]
    }

    /// Keeps the channel running ahead at most [`MAX_PENDING_FRAMES`] ahead: the other is
    /// taken as silent for the excess.
    fn bound_pending(&mut self, out: &mut Vec<CallEvent>) {
        for ahead in 0..2 {
            let behind = 1 - ahead;
            let excess = self.pending[ahead].len().saturating_sub(MAX_PENDING_FRAMES);
            if excess == 0 || !self.pending[behind].is_empty() {
                continue;
            }
            for k in 0..excess {
                self.pending[behind].push_back(silent_frame(self.frames + k as u64));
            }
            self.frames_taken_as_silent[behind] += excess as u64;
            self.drain_pairs(out);
        }
    }

    /// Ends the call: flushes both channels, closes open cues, and returns the whole outcome.
    /// Further pushes are ignored. The outcome's lists (emotion points, cues) are moved out, not
    /// copied, so a long call's lists exist once: a second `finish` returns them empty.
    pub fn finish(&mut self, out: &mut Vec<CallEvent>) -> CallOutcome {
        if !self.finished {
            for c in 0..2 {
                let buf = &mut self.resampled[c];
                buf.clear();
                self.resamplers[c].finish(buf);
                let next = self.frames;
                let pending = &mut self.pending[c];
                self.channels[c].push(buf, &mut |f| keep_frame(pending, next, f));
                self.channels[c].finish(&mut |f| keep_frame(pending, next, f));
            }
            // A channel that ended early is padded with silence.
            let longest = self.pending[0].len().max(self.pending[1].len());
            for c in 0..2 {
                let next_index = self.frames + self.pending[c].len() as u64;
                for k in 0..(longest - self.pending[c].len()) {
                    self.pending[c].push_back(silent_frame(next_index + k as u64));
                }
            }
            // Flushed frames are not counted in the step lags.
            self.finished = true;
            self.drain_pairs(out);
            self.dialog_scratch.clear();
            self.dialog_scratch.extend_from_slice(self.tracker.finish());
            add_turns(&mut self.turn_prosody, &self.dialog_scratch);
            for e in &self.dialog_scratch {
                out.push(CallEvent::Dialog(*e));
            }
            self.cue_scratch.clear();
            self.cues.finish(self.analysed_s(), &mut self.cue_scratch);
            for cue in self.cue_scratch.drain(..) {
                self.outcome_cues.push(cue.clone());
                out.push(CallEvent::Cue(cue));
            }
            out.push(CallEvent::Snapshot(Box::new(
                self.snapshot(self.analysed_s()),
            )));
        }
        let agent_channel = self.config.agent_channel;
        let dialog = self.tracker.report();
        let caller_emotion = std::mem::take(&mut self.outcome_caller);
        let cues = std::mem::take(&mut self.outcome_cues);
        let turn_prosody = self.turn_prosody.take_turns();
        let empathy = crate::empathy::assess(
            &EmpathyInput {
                duration_s: self.analysed_s(),
                turns: &turn_prosody,
                interruptions: &dialog.interruptions,
                overlaps: &dialog.overlaps,
                caller_talk_s: dialog.talk.caller_s,
                caller_emotion: &caller_emotion,
                cues: &cues,
            },
            &EmpathyConfig::default(),
        );
        CallOutcome {
            duration_s: self.analysed_s(),
            dialog,
            prosody: PerParty {
                agent: self.channels[agent_channel].summary(),
                caller: self.channels[1 - agent_channel].summary(),
            },
            caller_emotion,
            agent_emotion: std::mem::take(&mut self.outcome_agent),
            cues,
            turn_prosody,
            empathy,
        }
    }

    fn drain_pairs(&mut self, out: &mut Vec<CallEvent>) {
        while !self.pending[0].is_empty() && !self.pending[1].is_empty() {
            let a = self.pending[0].pop_front().unwrap_or_default();
            let b = self.pending[1].pop_front().unwrap_or_default();
            if !self.finished {
                let analysed = self.channels[0]
                    .frames_analysed()
                    .min(self.channels[1].frames_analysed());
                self.step_lags.add(analysed.saturating_sub(a.index + 1));
            }
            let (agent, caller) = if self.config.agent_channel == 0 {
                (a, b)
            } else {
                (b, a)
            };
            self.step(&agent, &caller, out);
        }
    }

    fn step(&mut self, agent: &FrameFeatures, caller: &FrameFeatures, out: &mut Vec<CallEvent>) {
        self.frames += 1;
        let t_s = self.analysed_s();
        self.dialog_scratch.clear();
        self.dialog_scratch
            .extend_from_slice(self.tracker.push(agent, caller));
        self.turn_prosody.push(
            self.frames - 1,
            &prosody_frame(agent),
            &prosody_frame(caller),
        );
        add_turns(&mut self.turn_prosody, &self.dialog_scratch);
        for e in &self.dialog_scratch {
            out.push(CallEvent::Dialog(*e));
        }
        let agent_judged = self.parties[AGENT].push(agent, &self.model).is_some();
        let caller_judged = self.parties[CALLER].push(caller, &self.model).is_some();
        if agent_judged && let Some(p) = &self.parties[AGENT].latest {
            let point = EmotionPoint::new(t_s, Speaker::Agent, p);
            self.outcome_agent.push(point.clone());
            out.push(CallEvent::Emotion(point));
        }
        if caller_judged && let Some(p) = &self.parties[CALLER].latest {
            let point = EmotionPoint::new(t_s, Speaker::Caller, p);
            self.outcome_caller.push(point.clone());
            out.push(CallEvent::Emotion(point));
        }
        let live = self.tracker.live();
        let input = CueInput {
            t_s,
            agent: party_frame(agent),
            caller: party_frame(caller),
            dialog: &live,
            dialog_events: &self.dialog_scratch,
            caller_emotion: if caller_judged {
                self.parties[CALLER].latest.as_ref()
            } else {
                None
            },
            agent_emotion: if agent_judged {
                self.parties[AGENT].latest.as_ref()
            } else {
                None
            },
            caller_emotion_cold: if caller_judged {
                self.parties[CALLER].latest_cold.as_ref()
            } else {
                None
            },
            agent_emotion_cold: if agent_judged {
                self.parties[AGENT].latest_cold.as_ref()
            } else {
                None
            },
            caller_onset: self.parties[CALLER].onset_latest(),
        };
        self.cue_scratch.clear();
        self.cues.push(&input, &mut self.cue_scratch);
        for cue in self.cue_scratch.drain(..) {
            record_in_time_order(&mut self.outcome_cues, cue.clone());
            out.push(CallEvent::Cue(cue));
        }
        if t_s + 1e-9 >= self.next_snapshot_s {
            self.next_snapshot_s += self.config.snapshot_period_s;
            out.push(CallEvent::Snapshot(Box::new(self.snapshot(t_s))));
        }
    }

    fn snapshot(&mut self, t_s: f64) -> CallSnapshot {
        let live = self.tracker.live();
        let caller_emotion = self.outcome_caller.last().cloned();
        let agent_calmness = self.parties[AGENT]
            .latest
            .as_ref()
            .filter(|p| p.emotion.is_some())
            .map(|p| p.calmness);
        CallSnapshot {
            t_s,
            agent: self.parties[AGENT].take_period(live.turn_start_s.agent.is_some()),
            caller: self.parties[CALLER].take_period(live.turn_start_s.caller.is_some()),
            dialog: live,
            caller_emotion,
            agent_calmness,
            open_cues: self.cues.open_cues().to_vec(),
        }
    }
}

/// Appends `cue` to the outcome's list, keeping it in time order: an early extended_silence
/// close ([`CallAnalyzer::close_silence_early`]) is dated ahead of the frames stepped so far.
fn record_in_time_order(cues: &mut Vec<CueEvent>, cue: CueEvent) {
    let at = cues
        .iter()
        .rposition(|c| c.t_s <= cue.t_s)
        .map_or(0, |i| i + 1);
    cues.insert(at, cue);
}

/// Reading chunk of [`analyze_recording`], frames (3 s at 8 kHz).
const RECORDING_CHUNK_FRAMES: usize = 24_000;

/// What can go wrong analysing a recording with [`analyze_recording`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Setup(#[from] CallSetupError),
    #[error(transparent)]
    Dialog(#[from] CallError),
}

/// What a recording gives: the dialog document (every recording), and for a two-party call the
/// whole outcome of [`CallAnalyzer`] (caller emotion, agent calmness, cues).
#[derive(Debug)]
pub struct RecordingAnalysis {
    /// Conversation dynamics and each party's prosody, with the warnings found.
    pub dialog: CallAnalysis,
    /// `None` for a mono recording: emotion and cues need one channel per party.
    pub outcome: Option<CallOutcome>,
}

/// The one entry point for "analyse this recording". A stereo call runs through
/// [`CallAnalyzer`] exactly as a live call would (streaming, bounded memory; `on_event` sees
/// every event; channels beyond the first two are ignored, with a warning). A mono recording
/// gets the dialog document only, with a warning saying why. `config.sample_rate_hz` is taken
/// from the recording; `warn` receives each warning as it is found.
pub fn analyze_recording(
    reader: &mut crate::audio::AudioReader,
    mut config: CallConfig,
    model: Arc<EmotionModel>,
    mut on_event: impl FnMut(&CallEvent),
    mut warn: impl FnMut(&str),
) -> Result<RecordingAnalysis, RecordingError> {
    let spec = reader.spec().clone();
    if spec.channels < 2 {
        let dialog = recording::analyze_dialog_only(
            reader,
            &crate::features::AnalyzerConfig::default(),
            &config.dialog,
            &mut warn,
        )?;
        return Ok(RecordingAnalysis {
            dialog,
            outcome: None,
        });
    }
    config.sample_rate_hz = spec.sample_rate_hz;
    let agent_channel = config.dialog.agent_channel;
    let mut call = CallAnalyzer::new(config, model)?;
    let mut input: Vec<Vec<f32>> =
        vec![Vec::with_capacity(RECORDING_CHUNK_FRAMES); spec.channels as usize];
    let mut events = Vec::with_capacity(64);
    loop {
        let read = reader.read_frames(RECORDING_CHUNK_FRAMES, &mut input)?;
        if read == 0 {
            break;
        }
        call.push(0, &input[0], &mut events);
        call.push(1, &input[1], &mut events);
        events.drain(..).for_each(|e| on_event(&e));
    }
    let outcome = call.finish(&mut events);
    events.drain(..).for_each(|e| on_event(&e));
    let dialog = recording::analysis_from_outcome(
        &outcome,
        spec.sample_rate_hz,
        spec.channels,
        agent_channel,
    );
    for w in &dialog.warnings {
        warn(w);
    }
    Ok(RecordingAnalysis {
        dialog,
        outcome: Some(outcome),
    })
}
