//! The engine: runs every rule of [`CueRules`] over a call's frames and turns crossings into
//! open/close [`CueEvent`]s. Per frame it updates a few running means and state machines of
//! fixed size; it allocates only when a cue opens or closes (the event, its evidence and rule
//! text).
//!
//! What each rule measures (thresholds in `rules/cues.toml`):
//! - agent prosody (min durations count the agent's speech time): recent syllable rate / the
//!   agent's own rate so far (quickly, slowly); recent loudness − own baseline loudness (raised
//!   voice, low energy);
//! - agent tension: the agent's cold calmness over the last windows, points below its own mean
//!   so far;
//! - timing: the agent's turn length, gaps before agent responses, interruptions by the agent,
//!   silence and overlap spans (from the dialog tracker);
//! - caller emotion per judged window (about every 0.8 s of caller speech): angry, anxious and
//!   happy probabilities combining the cold judgement with the judgement against the caller's
//!   own baseline (weighted geometric mean, [`CueRules::caller_baseline_weight`]); escalation from the cold judgements'
//!   arousal and valence trend; calmed down after an upset. caller_upset also opens at once on
//!   strong short onset windows (or strong full-length ones), see [`CueRules::caller_upset_onset`].

use super::rules::{EventRule, Hysteresis, SpanRule, UpsetStrongRule};
use super::state::{EventState, LevelState, PartyFrame, ProsodyTrack, Step, WindowSeries};
use super::{
    CueEvent, CueKind, CueParty, CueRules, CueTransition, Evidence, EvidenceValue, Severity,
};
use crate::dialog::Speaker;
use crate::dialog::{DialogEvent, LiveDialog};
use crate::model::emotion::Prediction;
use crate::model::labels::CLASS_NAMES;
use crate::prosody::baseline::Normalisation;

/// Everything the rules see at one frame of the call.
#[derive(Debug, Clone, Copy)]
pub struct CueInput<'a> {
    /// Call time of the frame, seconds.
    pub t_s: f64,
    pub agent: PartyFrame,
    pub caller: PartyFrame,
    /// The conversation as decided so far.
    pub dialog: &'a LiveDialog,
    /// Dialog events decided at this frame.
    pub dialog_events: &'a [DialogEvent],
    /// A caller emotion window judged at this frame (against the caller's live baseline once it
    /// holds enough speech).
    pub caller_emotion: Option<&'a Prediction>,
    /// An agent emotion window judged at this frame (its calmness).
    pub agent_emotion: Option<&'a Prediction>,
    /// The same caller window judged cold (population normalisation, no baseline): immune to
    /// a drifting baseline. None falls back to `caller_emotion`.
    pub caller_emotion_cold: Option<&'a Prediction>,
    /// The same agent window judged cold.
    pub agent_emotion_cold: Option<&'a Prediction>,
    /// A short caller onset window judged cold at this frame
    /// ([`CueRules::caller_upset_onset`]); None without that rule.
    pub caller_onset: Option<&'a Prediction>,
}

const ANGRY: usize = 0;
const ANXIOUS: usize = 1;
const HAPPY: usize = 3;

/// The caller's judged windows, as series the rules average.
#[derive(Debug, Clone, Copy, Default)]
struct CallerSeries {
    angry: WindowSeries,
    anxious: WindowSeries,
    happy: WindowSeries,
    /// The same, only windows judged while the class's cue was closed: the caller's habitual
    /// level (an upset stretch does not become the caller's normal).
    angry_habitual: WindowSeries,
    anxious_habitual: WindowSeries,
    happy_habitual: WindowSeries,
    /// Cold judgements only.
    arousal_cold: WindowSeries,
    valence_cold: WindowSeries,
    /// Angry probability of the short onset windows judged while caller_upset was closed.
    onset_angry_habitual: WindowSeries,
}

/// Consecutive caller windows that passed a fast-open rule of caller_upset, and the call time
/// the first of them was judged.
#[derive(Debug, Clone, Copy, Default)]
struct Streak {
    windows: usize,
    since_s: f64,
    angry_sum: f64,
    arousal_sum: f64,
}

impl Streak {
    fn update(&mut self, passed: bool, t_s: f64, angry: f64, arousal: f64) {
        if !passed {
            *self = Self::default();
            return;
        }
        if self.windows == 0 {
            self.since_s = t_s;
        }
        self.windows += 1;
        self.angry_sum += angry;
        self.arousal_sum += arousal;
    }
}

/// Whether one cold window passes a fast-open rule of caller_upset.
fn strong_window(p: &Prediction, angry_excess: f64, rule: &UpsetStrongRule) -> bool {
    p.emotion.is_some()
        && f64::from(p.probabilities[ANGRY]) - angry_excess >= rule.angry_probability_min
        && f64::from(p.arousal) >= rule.arousal_probability_min
        && f64::from(p.confidence) >= rule.confidence_min
}

/// Per-rule state.
#[derive(Debug, Clone, Copy, Default)]
struct RuleStates {
    quickly: LevelState,
    slowly: LevelState,
    low_energy: LevelState,
    raised_voice: LevelState,
    tension: LevelState,
    continuous: LevelState,
    interrupting: EventState,
    slow_response: EventState,
    silence: LevelState,
    overlap: LevelState,
    upset: LevelState,
    anxious: LevelState,
    escalating: LevelState,
    calmed: LevelState,
    positive: LevelState,
    pressing: LevelState,
}

/// Runs the rules over one call. See the module docs.
#[derive(Debug, Clone)]
pub struct CueEngine {
    rules: CueRules,
    next_cue_id: u64,
    agent: ProsodyTrack,
    agent_calmness_cold: WindowSeries,
    caller: CallerSeries,
    states: RuleStates,
    /// A caller_upset cue has closed and no calmed-down cue followed yet.
    calm_armed: bool,
    /// The caller's speech while the upset, anxious and positive cues were closed, seconds:
    /// their habitual levels rest on it, and count once it reaches `baseline_min_speech_s`
    /// (a caller upset from the first words has no habitual level to be judged against).
    closed_speech_s: [f64; 3],
    /// Fast opens of caller_upset: strong full-length windows, strong onset windows.
    strong_streak: Streak,
    onset_streak: Streak,
    /// Call time of the agent's latest speech frame and of its latest interruption, seconds.
    agent_spoke_s: Option<f64>,
    agent_interrupted_s: Option<f64>,
    open_cues: Vec<CueEvent>,
    /// extended_silence was closed ahead of the frames at the speech onset at this call time
    /// ([`CueEngine::close_silence_at_onset`]); the silence rule waits for the frame there.
    silence_closed_until_s: Option<f64>,
    early_closes: EarlySilenceCloses,
}

/// How the early closes of extended_silence ([`CueEngine::close_silence_at_onset`]) turned out
/// once the frames reached the onset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EarlySilenceCloses {
    /// Closes issued ahead of the frames.
    pub issued: u64,
    /// The frame at the onset was talk, and none before it: the close is the one the frames
    /// give.
    pub confirmed: u64,
    /// The frame at the onset was not talk (the provisional onset did not hold): the silence
    /// reopened there as a new cue with the same start.
    pub reopened: u64,
    /// Talk came before the onset (another detector, the other party): the close is late by
    /// that much.
    pub talk_before_onset: u64,
}

impl CueEngine {
    pub fn new(rules: CueRules) -> Self {
        Self {
            agent: ProsodyTrack::new(rules.recent_speech_s, rules.recent_rate_speech_s),
            rules,
            next_cue_id: 1,
            agent_calmness_cold: WindowSeries::default(),
            caller: CallerSeries::default(),
            states: RuleStates::default(),
            calm_armed: false,
            closed_speech_s: [0.0; 3],
            strong_streak: Streak::default(),
            onset_streak: Streak::default(),
            agent_spoke_s: None,
            agent_interrupted_s: None,
            open_cues: Vec::with_capacity(16),
            silence_closed_until_s: None,
            early_closes: EarlySilenceCloses::default(),
        }
    }

    /// Whether extended_silence is open (and not already closed ahead of the frames).
    pub fn silence_open(&self) -> bool {
        self.states.silence.open && self.silence_closed_until_s.is_none()
    }

    /// Closes extended_silence now, ahead of the frames, at the onset of the speech that ends
    /// it (`onset_t_s`: the call time the frame at the onset will step at): the same close
    /// event the frames give when they reach it, issued as soon as the onset is known. The
    /// silence rule then holds until the frames reach `onset_t_s`; if that frame is not talk
    /// after all, the silence reopens there as a new cue with the same start
    /// ([`EarlySilenceCloses`] counts how it went). No-op unless the cue is open.
    pub fn close_silence_at_onset(&mut self, onset_t_s: f64, out: &mut Vec<CueEvent>) {
        if !self.silence_open() {
            return;
        }
        self.states.silence.reset();
        self.silence_closed_until_s = Some(onset_t_s);
        self.early_closes.issued += 1;
        let rule = self.rules.extended_silence_s;
        let text = format!("silence_s >= {} (closes when it ends)", rule.open);
        let values = vec![value(what_name(CueKind::ExtendedSilence), 0.0)];
        self.transition(
            Step::Close { until_s: onset_t_s },
            CueKind::ExtendedSilence,
            onset_t_s,
            text,
            values,
            out,
        );
    }

    /// How the early closes of extended_silence turned out so far.
    pub fn early_silence_closes(&self) -> EarlySilenceCloses {
        self.early_closes
    }

    pub fn rules(&self) -> &CueRules {
        &self.rules
    }

    /// The cues open now (their open events).
    pub fn open_cues(&self) -> &[CueEvent] {
        &self.open_cues
    }

    /// Adds one frame; cue transitions are appended to `out`.
    pub fn push(&mut self, input: &CueInput, out: &mut Vec<CueEvent>) {
        self.agent_prosody(input, out);
        self.agent_tension(input, out);
        self.timing(input, out);
        self.caller_emotion(input, out);
        self.pressing_upset_caller(input, out);
    }

    /// Closes every open cue at the end of the call.
    pub fn finish(&mut self, t_s: f64, out: &mut Vec<CueEvent>) {
        for open in self.open_cues.drain(..) {
            out.push(CueEvent {
                event: CueTransition::Close,
                t_s,
                end_s: t_s,
                ..open
            });
        }
        self.states = RuleStates::default();
        self.calm_armed = false;
        self.silence_closed_until_s = None;
    }

    fn agent_prosody(&mut self, input: &CueInput, out: &mut Vec<CueEvent>) {
        let rules = &self.rules;
        self.agent.push(&input.agent);
        let track = &self.agent;
        let clock = track.speech_s();
        let t = input.t_s;
        let speaking = input.agent.speech;
        let rate_ratio = track
            .rate_ratio(rules.baseline_min_speech_s)
            .filter(|_| speaking);
        let loudness_delta = track
            .loudness_vs_baseline_db(rules.baseline_min_speech_s)
            .filter(|_| speaking);

        let (rate_recent, rate_baseline) = (
            track.recent_rate_syl_per_s(),
            track.baseline_rate_syl_per_s(),
        );
        let (loudness_recent, loudness_baseline) =
            (track.recent_loudness_db(), track.baseline_loudness_db());
        let rate_values = move || {
            vec![
                value("rate_recent_syl_per_s", rate_recent),
                value("rate_baseline_syl_per_s", rate_baseline),
                value("rate_ratio", rate_ratio.unwrap_or(f64::NAN)),
            ]
        };
        let loudness_values = move || {
            vec![
                value("loudness_recent_db", loudness_recent),
                value("loudness_baseline_db", loudness_baseline),
                value(
                    "loudness_vs_baseline_db",
                    loudness_delta.unwrap_or(f64::NAN),
                ),
            ]
        };
        let checks = [
            (
                CueKind::AgentSpeakingQuickly,
                rules.agent_speaking_quickly_rate_ratio,
                rate_ratio,
                "agent rate_ratio (recent / own baseline syllable rate)",
            ),
            (
                CueKind::AgentSpeakingSlowly,
                rules.agent_speaking_slowly_rate_ratio,
                rate_ratio,
                "agent rate_ratio (recent / own baseline syllable rate)",
            ),
            (
                CueKind::AgentRaisedVoice,
                rules.agent_raised_voice_db,
                loudness_delta,
                "agent loudness_vs_baseline_db",
            ),
            (
                CueKind::AgentLowEnergy,
                rules.agent_low_energy_db,
                loudness_delta,
                "agent loudness_vs_baseline_db",
            ),
        ];
        for (kind, h, measure, what) in checks {
            let state = match kind {
                CueKind::AgentSpeakingQuickly => &mut self.states.quickly,
                CueKind::AgentSpeakingSlowly => &mut self.states.slowly,
                CueKind::AgentRaisedVoice => &mut self.states.raised_voice,
                _ => &mut self.states.low_energy,
            };
            if let Some(step) = state.step(measure, clock, t, &h) {
                let values = if matches!(
                    kind,
                    CueKind::AgentSpeakingQuickly | CueKind::AgentSpeakingSlowly
                ) {
                    rate_values()
                } else {
                    loudness_values()
                };
                let rule = level_rule_text(what, &h, "s of agent speech");
                self.transition(step, kind, t, rule, values, out);
            }
        }
    }

    fn agent_tension(&mut self, input: &CueInput, out: &mut Vec<CueEvent>) {
        let window = input
            .agent_emotion_cold
            .or(input.agent_emotion)
            .filter(|p| p.emotion.is_some());
        if let Some(p) = window {
            self.agent_calmness_cold.push(f64::from(p.calmness));
        }
        let w = self.rules.agent_tension_calmness_drop_points;
        let series = &self.agent_calmness_cold;
        let enough = self.agent.speech_s() >= self.rules.baseline_min_speech_s;
        let recent = series.mean(w.windows, 0);
        let own = series.mean_before_last(w.windows);
        let drop = match (enough, recent, own) {
            (true, Some(recent), Some(own)) => Some(own - recent),
            _ => None,
        };
        let h = w.level();
        if let Some(step) = self.states.tension.step(drop, input.t_s, input.t_s, &h) {
            let values = vec![
                value("calmness_recent_points", recent.unwrap_or(f64::NAN)),
                value("calmness_baseline_points", own.unwrap_or(f64::NAN)),
                value("calmness_drop_points", drop.unwrap_or(f64::NAN)),
            ];
            let what = format!(
                "agent calmness_drop_points (own mean calmness - mean of the last {} windows, cold)",
                w.windows
            );
            let rule = level_rule_text(&what, &h, "s");
            self.transition(step, CueKind::AgentTension, input.t_s, rule, values, out);
        }
    }

    fn timing(&mut self, input: &CueInput, out: &mut Vec<CueEvent>) {
        let t = input.t_s;
        let dialog = input.dialog;
        let now = dialog.decided_s;
        // Spans in progress: the agent's turn, the silence, the overlap.
        let turn_s = dialog.turn_start_s.agent.map(|s| (now - s).max(0.0));
        let talking = dialog.turn_start_s.agent.is_some()
            || dialog.turn_start_s.caller.is_some()
            || input.agent.speech
            || input.caller.speech;
        let silence_s = if talking {
            None
        } else {
            let last_end = dialog
                .last_turn_end_s
                .agent
                .into_iter()
                .chain(dialog.last_turn_end_s.caller)
                .fold(0.0, f64::max);
            Some((t - last_end).max(0.0))
        };
        let overlap_s = dialog.overlap_start_s.map(|s| (now - s).max(0.0));
        let spans = [
            (
                CueKind::AgentContinuousSpeaking,
                self.rules.agent_continuous_speaking_s,
                turn_s,
                "agent turn_s",
            ),
            (
                CueKind::ExtendedSilence,
                self.rules.extended_silence_s,
                silence_s,
                "silence_s",
            ),
            (
                CueKind::ExtendedOverlap,
                self.rules.extended_overlap_s,
                overlap_s,
                "overlap_s",
            ),
        ];
        for (kind, rule, span_s, what) in spans {
            if kind == CueKind::ExtendedSilence
                && let Some(until_s) = self.silence_closed_until_s
            {
                // Closed ahead of the frames at the onset: hold until the frames reach it.
                if t + 1e-9 < until_s {
                    if span_s.is_none() {
                        self.early_closes.talk_before_onset += 1;
                        self.silence_closed_until_s = None;
                    }
                    continue;
                }
                self.silence_closed_until_s = None;
                if span_s.is_none() {
                    self.early_closes.confirmed += 1;
                } else {
                    self.early_closes.reopened += 1;
                }
            }
            let state = match kind {
                CueKind::AgentContinuousSpeaking => &mut self.states.continuous,
                CueKind::ExtendedSilence => &mut self.states.silence,
                _ => &mut self.states.overlap,
            };
            let h = span_level(&rule);
            let step = state.step(Some(span_s.unwrap_or(0.0)), t, t, &h);
            if let Some(mut step) = step {
                let span = span_s.unwrap_or(0.0);
                if let Step::Open { from_s } = &mut step {
                    // The cue covers the whole span, not just its part past the threshold.
                    *from_s = match kind {
                        CueKind::ExtendedSilence => t - span,
                        _ => now - span,
                    };
                }
                let values = vec![value(what_name(kind), span)];
                let rule = format!("{what} >= {} (closes when it ends)", rule.open);
                self.transition(step, kind, t, rule, values, out);
            }
        }

        // Events: interruptions by the agent, slow agent responses.
        for event in input.dialog_events {
            match event {
                DialogEvent::Interruption(i) if i.by == Speaker::Agent => {
                    let rule = self.rules.agent_interrupting;
                    if let Some(step) =
                        self.states
                            .interrupting
                            .event(i.t_s, i.t_s + i.overlap_s, &rule)
                    {
                        let count = self.states.interrupting.count_since(i.t_s, rule.window_s);
                        let values = vec![
                            value("interruption_t_s", i.t_s),
                            value("overlap_s", i.overlap_s),
                            value("interruptions_in_window", count as f64),
                        ];
                        let text = event_rule_text("agent interruptions", &rule);
                        self.transition(step, CueKind::AgentInterrupting, t, text, values, out);
                    }
                }
                DialogEvent::Response(r)
                    if r.by == Speaker::Agent
                        && r.latency_s >= self.rules.agent_slow_to_respond.latency_s =>
                {
                    let slow = self.rules.agent_slow_to_respond;
                    let rule = slow.events();
                    if let Some(step) =
                        self.states
                            .slow_response
                            .event(r.t_s - r.latency_s, r.t_s, &rule)
                    {
                        let values = vec![
                            value("response_latency_s", r.latency_s),
                            value(
                                "slow_responses_in_window",
                                self.states.slow_response.count_since(r.t_s, rule.window_s) as f64,
                            ),
                        ];
                        let what = format!("agent responses with latency_s >= {}", slow.latency_s);
                        let text = event_rule_text(&what, &rule);
                        self.transition(step, CueKind::AgentSlowToRespond, t, text, values, out);
                    }
                }
                _ => {}
            }
        }
        let rule = self.rules.agent_interrupting;
        if let Some(step) = self.states.interrupting.tick(t, &rule) {
            let values = vec![value(
                "interruptions_in_window",
                self.states.interrupting.count_since(t, rule.window_s) as f64,
            )];
            let text = event_rule_text("agent interruptions", &rule);
            self.transition(step, CueKind::AgentInterrupting, t, text, values, out);
        }
        let rule = self.rules.agent_slow_to_respond.events();
        if let Some(step) = self.states.slow_response.tick(t, &rule) {
            let values = vec![value(
                "slow_responses_in_window",
                self.states.slow_response.count_since(t, rule.window_s) as f64,
            )];
            let what = format!(
                "agent responses with latency_s >= {}",
                self.rules.agent_slow_to_respond.latency_s
            );
            let text = event_rule_text(&what, &rule);
            self.transition(step, CueKind::AgentSlowToRespond, t, text, values, out);
        }
    }

    fn caller_emotion(&mut self, input: &CueInput, out: &mut Vec<CueEvent>) {
        let t = input.t_s;
        if input.caller.speech {
            let states = [
                self.states.upset.open,
                self.states.anxious.open,
                self.states.positive.open,
            ];
            for (closed_s, open) in self.closed_speech_s.iter_mut().zip(states) {
                if !open {
                    *closed_s += crate::dsp::FRAME_PERIOD_S;
                }
            }
        }
        let baseline = input.caller_emotion.filter(|p| p.emotion.is_some());
        let cold = input
            .caller_emotion_cold
            .or(input.caller_emotion)
            .filter(|p| p.emotion.is_some());
        if let Some(cold) = cold {
            let weight = match baseline {
                Some(b) if b.normalisation == Normalisation::Speaker => {
                    self.rules.caller_baseline_weight
                }
                _ => 0.0,
            };
            // Weighted geometric mean: both judgements must agree, so a baseline drifting
            // towards "aroused" cannot open a caller cue on its own, nor can the cold network
            // misreading a speaker's normal voice.
            let combined = |class: usize| {
                let c = f64::from(cold.probabilities[class]).max(1e-6);
                let b = baseline.map_or(c, |b| f64::from(b.probabilities[class]).max(1e-6));
                ((1.0 - weight) * c.ln() + weight * b.ln()).exp()
            };
            self.caller.angry.push(combined(ANGRY));
            self.caller.anxious.push(combined(ANXIOUS));
            self.caller.happy.push(combined(HAPPY));
            if !self.states.upset.open {
                self.caller.angry_habitual.push(combined(ANGRY));
            }
            if !self.states.anxious.open {
                self.caller.anxious_habitual.push(combined(ANXIOUS));
            }
            if !self.states.positive.open {
                self.caller.happy_habitual.push(combined(HAPPY));
            }
            self.caller.arousal_cold.push(f64::from(cold.arousal));
            self.caller.valence_cold.push(f64::from(cold.valence));
            if let Some(rule) = self.rules.caller_upset_strong {
                let excess = self.habitual_excess(&self.caller.angry_habitual, rule.windows);
                let passed = !self.states.upset.open && strong_window(cold, excess, &rule);
                self.strong_streak.update(
                    passed,
                    t,
                    f64::from(cold.probabilities[ANGRY]),
                    f64::from(cold.arousal),
                );
            }
        }
        if let (Some(onset), Some(rule)) = (input.caller_onset, self.rules.caller_upset_onset) {
            let rule = rule.strong();
            let excess = self.habitual_excess(&self.caller.onset_angry_habitual, rule.windows);
            if onset.emotion.is_some() && !self.states.upset.open {
                self.caller
                    .onset_angry_habitual
                    .push(f64::from(onset.probabilities[ANGRY]));
            }
            let passed = !self.states.upset.open && strong_window(onset, excess, &rule);
            self.onset_streak.update(
                passed,
                t,
                f64::from(onset.probabilities[ANGRY]),
                f64::from(onset.arousal),
            );
        }

        // Upset, anxious, positive: mean of the last windows of one probability.
        let levels = [
            (
                CueKind::CallerUpset,
                self.rules.caller_upset_probability,
                ANGRY,
            ),
            (
                CueKind::CallerAnxious,
                self.rules.caller_anxious_probability,
                ANXIOUS,
            ),
            (
                CueKind::PositiveInteraction,
                self.rules.positive_interaction_probability,
                HAPPY,
            ),
        ];
        for (kind, w, class) in levels {
            let (series, habitual_series) = match class {
                ANGRY => (&self.caller.angry, &self.caller.angry_habitual),
                ANXIOUS => (&self.caller.anxious, &self.caller.anxious_habitual),
                _ => (&self.caller.happy, &self.caller.happy_habitual),
            };
            let recent = series.mean(w.windows, 0);
            let latest = series.mean(1, 0);
            // The caller's habitual level (its earlier windows), beyond an allowance, does not
            // count: a caller whose normal voice reads as angry is not upset.
            let closed_speech_s = self.closed_speech_s[match class {
                ANGRY => 0,
                ANXIOUS => 1,
                _ => 2,
            }];
            let habitual = habitual_series
                .mean_before_last(w.windows)
                .filter(|_| closed_speech_s >= self.rules.baseline_min_speech_s);
            let excess =
                habitual.map_or(0.0, |h| (h - self.rules.caller_habitual_allowance).max(0.0));
            let mean = recent.map(|r| r - excess);
            let state = match kind {
                CueKind::CallerUpset => &mut self.states.upset,
                CueKind::CallerAnxious => &mut self.states.anxious,
                _ => &mut self.states.positive,
            };
            let h = w.level();
            let fast = if kind == CueKind::CallerUpset && !state.open {
                fast_open(&self.rules, &mut self.strong_streak, &mut self.onset_streak)
            } else {
                None
            };
            let (step, fast_values, fast_rule) = match fast {
                Some((streak, rule_text)) => {
                    state.force_open();
                    let n = streak.windows.max(1) as f64;
                    (
                        Step::Open {
                            from_s: streak.since_s,
                        },
                        vec![
                            value("strong_windows", streak.windows as f64),
                            value("strong_angry_probability_mean", streak.angry_sum / n),
                            value("strong_arousal_probability_mean", streak.arousal_sum / n),
                        ],
                        Some(rule_text),
                    )
                }
                None => {
                    let Some(step) = state.step(mean, t, t, &h) else {
                        continue;
                    };
                    (step, Vec::new(), None)
                }
            };
            let mut values = vec![
                value(probability_name(class), recent.unwrap_or(f64::NAN)),
                value("habitual_probability", habitual.unwrap_or(f64::NAN)),
                value("probability_above_habitual", mean.unwrap_or(f64::NAN)),
                value("latest_window_probability", latest.unwrap_or(f64::NAN)),
            ];
            values.extend(fast_values);
            let what = format!(
                "caller {} probability (cold and own-baseline judgements, baseline weight {}), mean of the last {} windows, minus the caller's habitual level beyond {}",
                CLASS_NAMES[class],
                self.rules.caller_baseline_weight,
                w.windows,
                self.rules.caller_habitual_allowance
            );
            let rule = fast_rule.unwrap_or_else(|| level_rule_text(&what, &h, "s"));
            match (kind, step) {
                (CueKind::CallerUpset, Step::Open { .. }) => {
                    self.calm_armed = false;
                    if self.states.calmed.open {
                        self.states.calmed.reset();
                        let calm_values =
                            vec![value(probability_name(ANGRY), mean.unwrap_or(f64::NAN))];
                        let calm_rule = "closed: the caller is upset again".to_owned();
                        self.transition(
                            Step::Close { until_s: t },
                            CueKind::CallerCalmedDown,
                            t,
                            calm_rule,
                            calm_values,
                            out,
                        );
                    }
                }
                (CueKind::CallerUpset, Step::Close { .. }) => self.calm_armed = true,
                _ => {}
            }
            self.transition(step, kind, t, rule, values, out);
        }

        // Calmed down: after an upset cue closed, the upset probability stays low.
        let w = self.rules.caller_calmed_down_probability;
        let mean = self.caller.angry.mean(w.windows, 0);
        let armed = self.calm_armed || self.states.calmed.open;
        let h = w.level();
        if let Some(step) = self.states.calmed.step(mean.filter(|_| armed), t, t, &h) {
            if matches!(step, Step::Open { .. }) {
                self.calm_armed = false;
            }
            let values = vec![value(probability_name(ANGRY), mean.unwrap_or(f64::NAN))];
            let what = format!(
                "after caller_upset closed: caller angry probability, mean of the last {} windows",
                w.windows
            );
            let rule = level_rule_text(&what, &h, "s");
            self.transition(step, CueKind::CallerCalmedDown, t, rule, values, out);
        }

        // Escalating: arousal up and valence down, recent cold windows against earlier ones.
        let trend = self.rules.caller_escalating_rise;
        let c = &self.caller;
        let recent_arousal = c.arousal_cold.mean(trend.windows, 0);
        let earlier_arousal = c.arousal_cold.mean(trend.reference_windows, trend.windows);
        let recent_valence = c.valence_cold.mean(trend.windows, 0);
        let earlier_valence = c.valence_cold.mean(trend.reference_windows, trend.windows);
        let rise = match (
            recent_arousal,
            earlier_arousal,
            recent_valence,
            earlier_valence,
        ) {
            (Some(ra), Some(ea), Some(rv), Some(ev)) => Some((ra - ea).min(ev - rv)),
            _ => None,
        };
        let h = trend.level();
        if let Some(step) = self.states.escalating.step(rise, t, t, &h) {
            let values = vec![
                value("arousal_recent", recent_arousal.unwrap_or(f64::NAN)),
                value("arousal_earlier", earlier_arousal.unwrap_or(f64::NAN)),
                value("valence_recent", recent_valence.unwrap_or(f64::NAN)),
                value("valence_earlier", earlier_valence.unwrap_or(f64::NAN)),
                value("escalation_rise", rise.unwrap_or(f64::NAN)),
            ];
            let what = format!(
                "caller escalation_rise = min(arousal rise, valence fall), cold judgements, last {} windows vs the {} before",
                trend.windows, trend.reference_windows
            );
            let rule = level_rule_text(&what, &h, "s");
            self.transition(step, CueKind::CallerEscalating, t, rule, values, out);
        }
    }

    /// The live empathy cue: the caller is upset and the agent fast, loud or interrupting
    /// ([`CueRules::agent_pressing_upset_caller`]).
    fn pressing_upset_caller(&mut self, input: &CueInput, out: &mut Vec<CueEvent>) {
        let Some(rule) = self.rules.agent_pressing_upset_caller else {
            return;
        };
        let t = input.t_s;
        if input.agent.speech {
            self.agent_spoke_s = Some(t);
        }
        for event in input.dialog_events {
            if let DialogEvent::Interruption(i) = event
                && i.by == Speaker::Agent
            {
                self.agent_interrupted_s = Some(i.t_s);
            }
        }
        let speaking = self
            .agent_spoke_s
            .is_some_and(|s| t - s <= rule.agent_spoke_within_s);
        let baseline = self.rules.baseline_min_speech_s;
        let rate_ratio = self.agent.rate_ratio(baseline).filter(|_| speaking);
        let loudness = self
            .agent
            .loudness_vs_baseline_db(baseline)
            .filter(|_| speaking);
        let since_interruption = self.agent_interrupted_s.map(|s| t - s);
        let fast = rate_ratio.is_some_and(|r| r >= rule.rate_ratio_min);
        let loud = loudness.is_some_and(|d| d >= rule.loudness_vs_baseline_db_min);
        let interrupting = since_interruption.is_some_and(|s| s <= rule.interruption_window_s);
        let upset = self.states.upset.open;
        let pressing = upset && (fast || loud || interrupting);
        let h = rule.level();
        let measure = Some(f64::from(u8::from(pressing)));
        if let Some(step) = self.states.pressing.step(measure, t, t, &h) {
            let values = vec![
                value("caller_upset_open", f64::from(u8::from(upset))),
                value("rate_ratio", rate_ratio.unwrap_or(f64::NAN)),
                value("loudness_vs_baseline_db", loudness.unwrap_or(f64::NAN)),
                value(
                    "since_agent_interruption_s",
                    since_interruption.unwrap_or(f64::NAN),
                ),
            ];
            let text = format!(
                "caller_upset open and the agent fast (rate_ratio >= {}), loud (loudness_vs_baseline_db >= {}) while speaking (within {} s), or interrupting (within {} s), for {} s (closes when none holds for {} s)",
                rule.rate_ratio_min,
                rule.loudness_vs_baseline_db_min,
                rule.agent_spoke_within_s,
                rule.interruption_window_s,
                rule.open_min_s,
                rule.close_min_s
            );
            self.transition(
                step,
                CueKind::AgentPressingUpsetCaller,
                t,
                text,
                values,
                out,
            );
        }
    }

    /// The caller's habitual angry level of a series beyond the allowance (0 until the caller
    /// has `baseline_min_speech_s` of speech while caller_upset was closed), excluding the
    /// newest `recent` windows.
    fn habitual_excess(&self, habitual: &WindowSeries, recent: usize) -> f64 {
        habitual
            .mean_before_last(recent)
            .filter(|_| self.closed_speech_s[0] >= self.rules.baseline_min_speech_s)
            .map_or(0.0, |h| (h - self.rules.caller_habitual_allowance).max(0.0))
    }

    fn transition(
        &mut self,
        step: Step,
        kind: CueKind,
        t_s: f64,
        rule: String,
        values: Vec<EvidenceValue>,
        out: &mut Vec<CueEvent>,
    ) {
        let mut values = values;
        // Values not measured yet (e.g. no habitual level) are left out.
        values.retain(|v| v.value.is_finite());
        match step {
            Step::Open { from_s } => {
                let cue = CueEvent {
                    cue_id: self.next_cue_id,
                    kind,
                    party: party(kind),
                    severity: severity(kind),
                    event: CueTransition::Open,
                    t_s,
                    start_s: from_s.min(t_s),
                    end_s: t_s,
                    evidence: Evidence { rule, values },
                    guidance: guidance(kind),
                };
                self.next_cue_id += 1;
                self.open_cues.push(cue.clone());
                out.push(cue);
            }
            Step::Close { until_s } => {
                if let Some(i) = self.open_cues.iter().position(|c| c.kind == kind) {
                    let open = self.open_cues.swap_remove(i);
                    out.push(CueEvent {
                        event: CueTransition::Close,
                        t_s,
                        end_s: until_s.clamp(open.start_s, t_s),
                        evidence: Evidence { rule, values },
                        ..open
                    });
                }
            }
        }
    }
}

/// Whether a fast path opens caller_upset now (the streak that did, reset, and its rule text).
fn fast_open(
    rules: &CueRules,
    strong: &mut Streak,
    onset: &mut Streak,
) -> Option<(Streak, String)> {
    let text = |what: &str, r: &UpsetStrongRule| {
        format!(
            "{what}: the last {} caller windows each judged cold with angry probability (minus the habitual level beyond {}) >= {}, high-arousal probability >= {} and confidence >= {}",
            r.windows,
            rules.caller_habitual_allowance,
            r.angry_probability_min,
            r.arousal_probability_min,
            r.confidence_min
        )
    };
    if let Some(r) = rules.caller_upset_onset
        && onset.windows >= r.windows
    {
        let streak = std::mem::take(onset);
        let what = format!("onset windows of {} s of speech", r.window_speech_s);
        return Some((streak, text(&what, &r.strong())));
    }
    if let Some(r) = rules.caller_upset_strong
        && strong.windows >= r.windows
    {
        let streak = std::mem::take(strong);
        return Some((streak, text("strong full-length windows", &r)));
    }
    None
}

fn value(name: &'static str, value: f64) -> EvidenceValue {
    EvidenceValue { name, value }
}

fn probability_name(class: usize) -> &'static str {
    match class {
        ANGRY => "angry_probability_mean",
        ANXIOUS => "anxious_probability_mean",
        _ => "happy_probability_mean",
    }
}

fn what_name(kind: CueKind) -> &'static str {
    match kind {
        CueKind::AgentContinuousSpeaking => "turn_s",
        CueKind::ExtendedSilence => "silence_s",
        _ => "overlap_s",
    }
}

/// A span rule as a level rule: opens at `open`, closes as soon as the span ends (0).
fn span_level(rule: &SpanRule) -> Hysteresis {
    Hysteresis {
        open: rule.open,
        close: 0.0,
        open_min_s: 0.0,
        close_min_s: 0.0,
    }
}

fn level_rule_text(what: &str, h: &Hysteresis, clock: &str) -> String {
    let (open_op, close_op) = if h.rising() {
        (">=", "<=")
    } else {
        ("<=", ">=")
    };
    format!(
        "{what} {open_op} {} for {} {clock} (closes {close_op} {} for {} {clock})",
        h.open, h.open_min_s, h.close, h.close_min_s
    )
}

fn event_rule_text(what: &str, rule: &EventRule) -> String {
    format!(
        "{what}: at least {} within {} s (closes {} s after the last)",
        rule.open_count, rule.window_s, rule.close_after_s
    )
}

/// Who a cue is about.
pub fn party(kind: CueKind) -> CueParty {
    match kind {
        CueKind::ExtendedSilence | CueKind::ExtendedOverlap | CueKind::PositiveInteraction => {
            CueParty::Both
        }
        CueKind::CallerUpset
        | CueKind::CallerAnxious
        | CueKind::CallerEscalating
        | CueKind::CallerCalmedDown => CueParty::Caller,
        _ => CueParty::Agent,
    }
}

/// How urgently a person should look at a cue.
pub fn severity(kind: CueKind) -> Severity {
    match kind {
        CueKind::CallerUpset | CueKind::CallerEscalating => Severity::Critical,
        CueKind::CallerCalmedDown | CueKind::PositiveInteraction => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Guidance text shown to the agent, in the spirit of good practice.
pub fn guidance(kind: CueKind) -> Option<&'static str> {
    let text = match kind {
        CueKind::AgentSpeakingQuickly => "Slow down a little; short sentences, small pauses.",
        CueKind::AgentSpeakingSlowly => "Keep the pace up; summarise and move on.",
        CueKind::AgentLowEnergy => "Lift your energy; sound engaged.",
        CueKind::AgentRaisedVoice => "Lower your voice; a calm tone calms the caller.",
        CueKind::AgentContinuousSpeaking => "Pause and check in: ask the caller a question.",
        CueKind::AgentInterrupting => "Let the caller finish before you answer.",
        CueKind::AgentSlowToRespond => "Acknowledge the caller, even before you have the answer.",
        CueKind::ExtendedSilence => "Tell the caller what you are doing while they wait.",
        CueKind::ExtendedOverlap => "One voice at a time: stop and let the caller speak.",
        CueKind::CallerUpset => "Acknowledge the caller's feeling before solving the problem.",
        CueKind::CallerAnxious => "Reassure: explain the next steps clearly.",
        CueKind::CallerEscalating => "Pause, acknowledge the frustration, then summarise.",
        CueKind::AgentTension => "Take a breath and pause before answering.",
        CueKind::AgentPressingUpsetCaller => {
            "The caller sounds upset — slow down and let them finish."
        }
        CueKind::AgentTakeAMoment => {
            "That was a hard call. Take a moment: breathe, stretch, have some water before the next one."
        }
        CueKind::CallerCalmedDown | CueKind::PositiveInteraction => return None,
    };
    Some(text)
}
