//! The engine: runs every rule of [`CueRules`] over a call's frames and turns crossings into
//! open/close [`CueEvent`]s. Per-frame work is a few comparisons; it allocates only when a cue
//! opens or closes.

use super::{
    CueEvent, CueKind, CueParty, CueRules, CueTransition, Evidence, EvidenceValue, Severity,
    rules::Hysteresis,
};
use crate::dialog::{DialogEvent, LiveDialog};
use crate::dsp::FRAME_PERIOD_S;
use crate::model::emotion::Prediction;

/// One party's frame as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PartyFrame {
    /// The voice-activity detector marked the frame as speech.
    pub speech: bool,
    pub loudness_db: f32,
    /// 0 when unvoiced.
    pub f0_hz: f32,
    pub syllable_nucleus: bool,
}

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
    /// A caller emotion window judged at this frame.
    pub caller_emotion: Option<&'a Prediction>,
    /// An agent emotion window judged at this frame (its calmness).
    pub agent_emotion: Option<&'a Prediction>,
}

/// Where one hysteresis rule stands.
#[derive(Debug, Clone, Copy, Default)]
struct RuleState {
    open: bool,
    /// When the measure first crossed the threshold in the current direction.
    crossing_since_s: Option<f64>,
    /// When the open cue's condition started.
    opened_from_s: f64,
}

enum Step {
    Open { from_s: f64 },
    Close { until_s: f64 },
}

impl RuleState {
    /// Advances a rule whose measure rises to open; `None` measures keep the state.
    fn step(&mut self, measure: Option<f64>, t_s: f64, h: &Hysteresis) -> Option<Step> {
        let value = measure?;
        if !self.open {
            if value >= h.open {
                let since = *self.crossing_since_s.get_or_insert(t_s);
                if t_s - since >= h.open_min_s {
                    self.open = true;
                    self.opened_from_s = since;
                    self.crossing_since_s = None;
                    return Some(Step::Open { from_s: since });
                }
            } else {
                self.crossing_since_s = None;
            }
        } else if value <= h.close {
            let since = *self.crossing_since_s.get_or_insert(t_s);
            if t_s - since >= h.close_min_s {
                self.open = false;
                self.crossing_since_s = None;
                return Some(Step::Close { until_s: since });
            }
        } else {
            self.crossing_since_s = None;
        }
        None
    }
}

/// Running mean of a party's speech-frame loudness: the whole call so far (the baseline) and
/// an exponential recent mean.
#[derive(Debug, Clone, Copy, Default)]
struct LoudnessTrack {
    speech_frames: u64,
    baseline_sum_db: f64,
    recent_db: f64,
}

/// Time constant of the recent-loudness mean, seconds of speech.
const RECENT_LOUDNESS_TAU_S: f64 = 2.0;

impl LoudnessTrack {
    fn push(&mut self, frame: &PartyFrame) {
        if !frame.speech || !frame.loudness_db.is_finite() {
            return;
        }
        let db = f64::from(frame.loudness_db);
        if self.speech_frames == 0 {
            self.recent_db = db;
        }
        let alpha = FRAME_PERIOD_S / RECENT_LOUDNESS_TAU_S;
        self.recent_db += alpha * (db - self.recent_db);
        self.baseline_sum_db += db;
        self.speech_frames += 1;
    }

    fn speech_s(&self) -> f64 {
        self.speech_frames as f64 * FRAME_PERIOD_S
    }

    fn baseline_db(&self) -> f64 {
        self.baseline_sum_db / self.speech_frames.max(1) as f64
    }
}

/// Runs the rules over one call. See the module docs.
#[derive(Debug, Clone)]
pub struct CueEngine {
    rules: CueRules,
    next_cue_id: u64,
    agent_loudness: LoudnessTrack,
    agent_raised_voice: RuleState,
    caller_angry_mean: Option<f64>,
    caller_upset: RuleState,
    silence: RuleState,
    open_cues: Vec<CueEvent>,
}

/// Weight of the newest caller window in the running mean of its angry probability.
const CALLER_WINDOW_WEIGHT: f64 = 0.5;

impl CueEngine {
    pub fn new(rules: CueRules) -> Self {
        Self {
            rules,
            next_cue_id: 1,
            agent_loudness: LoudnessTrack::default(),
            agent_raised_voice: RuleState::default(),
            caller_angry_mean: None,
            caller_upset: RuleState::default(),
            silence: RuleState::default(),
            open_cues: Vec::with_capacity(16),
        }
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
        let t = input.t_s;
        // Agent raised voice, against the agent's own loudness so far.
        self.agent_loudness.push(&input.agent);
        let track = self.agent_loudness;
        let measure = (input.agent.speech && track.speech_s() >= self.rules.baseline_min_speech_s)
            .then(|| track.recent_db - track.baseline_db());
        let h = self.rules.agent_raised_voice_db;
        if let Some(step) = self.agent_raised_voice.step(measure, t, &h) {
            let values = vec![
                EvidenceValue {
                    name: "loudness_recent_db",
                    value: track.recent_db,
                },
                EvidenceValue {
                    name: "loudness_baseline_db",
                    value: track.baseline_db(),
                },
                EvidenceValue {
                    name: "loudness_above_baseline_db",
                    value: track.recent_db - track.baseline_db(),
                },
            ];
            let rule = format!(
                "agent loudness_above_baseline_db >= {} for {} s (closes <= {} for {} s)",
                h.open, h.open_min_s, h.close, h.close_min_s
            );
            self.transition(
                step,
                CueKind::AgentRaisedVoice,
                CueParty::Agent,
                Severity::Warning,
                t,
                rule,
                values,
                out,
            );
        }

        // Caller upset: a running mean of the angry probability over judged windows.
        if let Some(p) = input.caller_emotion.filter(|p| p.emotion.is_some()) {
            let angry = f64::from(p.probabilities[0]);
            let mean = self.caller_angry_mean.get_or_insert(angry);
            *mean += CALLER_WINDOW_WEIGHT * (angry - *mean);
        }
        let h = self.rules.caller_upset_probability;
        if let Some(step) = self.caller_upset.step(self.caller_angry_mean, t, &h) {
            let values = vec![EvidenceValue {
                name: "angry_probability_mean",
                value: self.caller_angry_mean.unwrap_or(0.0),
            }];
            let rule = format!(
                "caller angry_probability_mean >= {} for {} s (closes <= {} for {} s)",
                h.open, h.open_min_s, h.close, h.close_min_s
            );
            self.transition(
                step,
                CueKind::CallerUpset,
                CueParty::Caller,
                Severity::Critical,
                t,
                rule,
                values,
                out,
            );
        }

        // Extended silence: nobody has talked for a while.
        let silence_s = if !input.agent.speech && !input.caller.speech {
            let last_end = input
                .dialog
                .last_turn_end_s
                .agent
                .into_iter()
                .chain(input.dialog.last_turn_end_s.caller)
                .fold(0.0, f64::max);
            let talking = input.dialog.turn_start_s.agent.is_some()
                || input.dialog.turn_start_s.caller.is_some();
            if talking {
                0.0
            } else {
                (t - last_end).max(0.0)
            }
        } else {
            0.0
        };
        let h = Hysteresis {
            open: self.rules.extended_silence_s,
            close: 0.0,
            open_min_s: 0.0,
            close_min_s: 0.0,
        };
        if let Some(step) = self.silence.step(Some(silence_s), t, &h) {
            let values = vec![EvidenceValue {
                name: "silence_s",
                value: silence_s,
            }];
            let rule = format!("silence_s >= {}", h.open);
            self.transition(
                step,
                CueKind::ExtendedSilence,
                CueParty::Both,
                Severity::Warning,
                t,
                rule,
                values,
                out,
            );
        }
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
    }

    #[allow(clippy::too_many_arguments)]
    fn transition(
        &mut self,
        step: Step,
        kind: CueKind,
        party: CueParty,
        severity: Severity,
        t_s: f64,
        rule: String,
        values: Vec<EvidenceValue>,
        out: &mut Vec<CueEvent>,
    ) {
        match step {
            Step::Open { from_s } => {
                let cue = CueEvent {
                    cue_id: self.next_cue_id,
                    kind,
                    party,
                    severity,
                    event: CueTransition::Open,
                    t_s,
                    start_s: from_s,
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
                        end_s: until_s,
                        evidence: Evidence { rule, values },
                        ..open
                    });
                }
            }
        }
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
        CueKind::CallerCalmedDown | CueKind::PositiveInteraction => return None,
    };
    Some(text)
}
