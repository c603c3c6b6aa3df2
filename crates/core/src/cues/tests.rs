//! Unit tests per rule: synthetic [`CueInput`] sequences checking that each cue opens after its
//! minimum duration, does not flicker around its threshold, and closes with hysteresis.

use super::*;
use crate::dialog::DialogEvent;
use crate::dialog::{Interruption, LiveDialog, Response};
use crate::model::emotion::Prediction;
use crate::prosody::baseline::Normalisation;

const FRAME_S: f64 = 0.01;

/// Drives an engine frame by frame and records its cue events.
struct Sim {
    engine: CueEngine,
    frame: u64,
    dialog: LiveDialog,
    events: Vec<CueEvent>,
}

#[derive(Default)]
struct Frame<'a> {
    agent: PartyFrame,
    caller: PartyFrame,
    dialog_events: &'a [DialogEvent],
    caller_emotion: Option<&'a Prediction>,
    caller_cold: Option<&'a Prediction>,
    agent_cold: Option<&'a Prediction>,
    caller_onset: Option<&'a Prediction>,
}

/// The shipped rules with the emotion rules fixed to the values these tests were written for
/// (the shipped values are tuned with `attune eval cues`; the mechanics must not depend on it).
fn test_rules() -> CueRules {
    let window = |windows, open, close, open_min_s, close_min_s| WindowHysteresis {
        windows,
        open,
        close,
        open_min_s,
        close_min_s,
    };
    CueRules {
        caller_baseline_weight: 0.5,
        caller_upset_probability: window(2, 0.5, 0.3, 0.0, 6.0),
        caller_anxious_probability: window(3, 0.55, 0.35, 2.0, 6.0),
        caller_calmed_down_probability: window(3, 0.2, 0.45, 3.0, 2.0),
        positive_interaction_probability: window(3, 0.5, 0.3, 3.0, 4.0),
        agent_tension_calmness_drop_points: window(4, 25.0, 12.0, 3.0, 4.0),
        caller_escalating_rise: TrendHysteresis {
            windows: 3,
            reference_windows: 6,
            open: 0.25,
            close: 0.1,
            open_min_s: 0.0,
            close_min_s: 4.0,
        },
        ..CueRules::default()
    }
}

impl Sim {
    fn new() -> Self {
        Self {
            engine: CueEngine::new(test_rules()),
            frame: 0,
            dialog: LiveDialog::default(),
            events: Vec::new(),
        }
    }

    fn t(&self) -> f64 {
        self.frame as f64 * FRAME_S
    }

    fn push(&mut self, f: Frame) {
        self.frame += 1;
        let t_s = self.t();
        self.dialog.decided_s = t_s;
        let input = CueInput {
            t_s,
            agent: f.agent,
            caller: f.caller,
            dialog: &self.dialog,
            dialog_events: f.dialog_events,
            caller_emotion: f.caller_emotion,
            agent_emotion: None,
            caller_emotion_cold: f.caller_cold,
            agent_emotion_cold: f.agent_cold,
            caller_onset: f.caller_onset,
        };
        self.engine.push(&input, &mut self.events);
    }

    /// Runs `seconds` of frames made by `make(frame index within the run)`.
    fn run(&mut self, seconds: f64, mut make: impl FnMut(u64) -> Frame<'static>) {
        let frames = (seconds / FRAME_S).round() as u64;
        for k in 0..frames {
            let f = make(k);
            self.push(f);
        }
    }

    fn of(&self, kind: CueKind) -> Vec<&CueEvent> {
        self.events.iter().filter(|e| e.kind == kind).collect()
    }

    fn opens(&self, kind: CueKind) -> Vec<f64> {
        self.of(kind)
            .iter()
            .filter(|e| e.event == CueTransition::Open)
            .map(|e| e.t_s)
            .collect()
    }

    fn closes(&self, kind: CueKind) -> Vec<f64> {
        self.of(kind)
            .iter()
            .filter(|e| e.event == CueTransition::Close)
            .map(|e| e.t_s)
            .collect()
    }

    fn other_kinds(&self, kind: CueKind) -> Vec<CueKind> {
        self.events
            .iter()
            .map(|e| e.kind)
            .filter(|k| *k != kind)
            .collect()
    }
}

fn speech(loudness_db: f32, nucleus: bool) -> PartyFrame {
    PartyFrame {
        speech: true,
        loudness_db,
        f0_hz: 120.0,
        syllable_nucleus: nucleus,
    }
}

fn quiet() -> PartyFrame {
    PartyFrame {
        speech: false,
        loudness_db: -70.0,
        f0_hz: 0.0,
        syllable_nucleus: false,
    }
}

/// A judged window: `probabilities` in angry, anxious, sad, happy, neutral order.
fn prediction(probabilities: [f32; 5], arousal: f32, valence: f32, calmness: f32) -> Prediction {
    Prediction {
        emotion: Some("neutral"),
        abstain_reason: None,
        probabilities,
        arousal,
        valence,
        calmness,
        confidence: 0.9,
        normalisation: Normalisation::Speaker,
        speech_s: 2.5,
    }
}

fn leak(p: Prediction) -> &'static Prediction {
    Box::leak(Box::new(p))
}

/// Agent speech at `db` dBFS with a syllable nucleus every `nucleus_every` frames.
fn agent_speaking(db: f32, nucleus_every: u64) -> impl FnMut(u64) -> Frame<'static> {
    move |k| Frame {
        agent: speech(db, k.is_multiple_of(nucleus_every)),
        caller: quiet(),
        ..Frame::default()
    }
}

#[test]
fn agent_raised_voice_opens_after_its_minimum_and_closes_with_hysteresis() {
    let mut sim = Sim::new();
    sim.run(20.0, agent_speaking(-30.0, 25));
    assert!(sim.events.is_empty(), "{:?}", sim.events);
    sim.run(15.0, agent_speaking(-21.0, 25));
    let opens = sim.opens(CueKind::AgentRaisedVoice);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    // The recent mean needs a few seconds to rise 6 dB, then the rule its 2 s of speech.
    let delay = opens[0] - 20.0;
    assert!((2.0..10.0).contains(&delay), "{delay}");
    // Louder speech that hovers between close (3 dB) and open: stays open, no flicker.
    sim.run(5.0, |k| Frame {
        agent: speech(
            if k % 100 < 50 { -21.0 } else { -23.0 },
            k.is_multiple_of(25),
        ),
        ..Frame::default()
    });
    assert_eq!(sim.opens(CueKind::AgentRaisedVoice).len(), 1);
    assert!(sim.closes(CueKind::AgentRaisedVoice).is_empty());
    sim.run(20.0, agent_speaking(-32.0, 25));
    assert_eq!(sim.closes(CueKind::AgentRaisedVoice).len(), 1);
    let open = &sim.of(CueKind::AgentRaisedVoice)[0];
    assert_eq!(open.party, CueParty::Agent);
    assert!(open.guidance.is_some());
    assert!(
        open.evidence.rule.contains(">= 6"),
        "{}",
        open.evidence.rule
    );
    assert!(
        open.evidence
            .values
            .iter()
            .any(|v| v.name == "loudness_vs_baseline_db" && v.value >= 6.0)
    );
}

#[test]
fn agent_raised_voice_waits_for_a_baseline() {
    // Loud from the start is the agent's normal, not a raised voice.
    let mut sim = Sim::new();
    sim.run(60.0, agent_speaking(-15.0, 25));
    assert!(sim.events.is_empty(), "{:?}", sim.events);
}

#[test]
fn agent_low_energy_opens_on_falling_loudness() {
    let mut sim = Sim::new();
    sim.run(20.0, agent_speaking(-25.0, 25));
    sim.run(20.0, agent_speaking(-36.0, 25));
    let opens = sim.opens(CueKind::AgentLowEnergy);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    assert!(opens[0] - 20.0 >= 4.0);
    assert!(sim.of(CueKind::AgentRaisedVoice).is_empty());
    sim.run(20.0, agent_speaking(-25.0, 25));
    assert_eq!(sim.closes(CueKind::AgentLowEnergy).len(), 1);
}

#[test]
fn agent_speaking_quickly_and_slowly_follow_the_syllable_rate() {
    let mut sim = Sim::new();
    // 4 syllables/s, then 7.1/s.
    sim.run(20.0, agent_speaking(-25.0, 25));
    sim.run(30.0, agent_speaking(-25.0, 14));
    let opens = sim.opens(CueKind::AgentSpeakingQuickly);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    assert!(opens[0] - 20.0 >= 4.0);
    assert!(sim.of(CueKind::AgentSpeakingSlowly).is_empty());
    sim.run(40.0, agent_speaking(-25.0, 25));
    assert_eq!(sim.closes(CueKind::AgentSpeakingQuickly).len(), 1);

    let mut sim = Sim::new();
    sim.run(20.0, agent_speaking(-25.0, 25));
    // 2 syllables/s.
    sim.run(40.0, agent_speaking(-25.0, 50));
    assert_eq!(
        sim.opens(CueKind::AgentSpeakingSlowly).len(),
        1,
        "{:?}",
        sim.events
    );
    assert!(sim.of(CueKind::AgentSpeakingQuickly).is_empty());
}

#[test]
fn agent_prosody_clock_is_speech_time() {
    // The agent's loud stretch is shorter than the rule's 2 s of speech, then silence: the
    // silence must not count towards the minimum duration.
    let mut sim = Sim::new();
    sim.run(20.0, agent_speaking(-30.0, 25));
    sim.run(1.5, agent_speaking(-5.0, 25));
    sim.run(5.0, |_| Frame::default());
    // The recent loudness is still far above the baseline, but only 1.2 s of speech have
    // passed since it crossed: a call-time clock would open here.
    sim.run(0.3, agent_speaking(-30.0, 25));
    assert!(
        sim.of(CueKind::AgentRaisedVoice).is_empty(),
        "{:?}",
        sim.events
    );
    sim.run(2.0, agent_speaking(-30.0, 25));
    assert_eq!(
        sim.opens(CueKind::AgentRaisedVoice).len(),
        1,
        "{:?}",
        sim.events
    );
}

#[test]
fn agent_tension_opens_when_calmness_drops_against_own_mean() {
    let calm = leak(prediction([0.1, 0.1, 0.1, 0.1, 0.6], 0.3, 0.1, 80.0));
    let tense = leak(prediction([0.1, 0.1, 0.1, 0.1, 0.6], 0.8, 0.1, 40.0));
    let mid = leak(prediction([0.1, 0.1, 0.1, 0.1, 0.6], 0.6, 0.1, 50.0));
    let windows = |p: &'static Prediction| {
        move |k: u64| Frame {
            agent: speech(-25.0, k.is_multiple_of(25)),
            agent_cold: (k % 80 == 79).then_some(p),
            ..Frame::default()
        }
    };
    let mut sim = Sim::new();
    sim.run(30.0, windows(calm));
    assert!(sim.events.is_empty());
    sim.run(10.0, windows(tense));
    assert_eq!(
        sim.opens(CueKind::AgentTension).len(),
        1,
        "{:?}",
        sim.events
    );
    // Between close and open: stays open.
    sim.run(10.0, windows(mid));
    assert!(sim.closes(CueKind::AgentTension).is_empty());
    sim.run(20.0, windows(calm));
    assert_eq!(sim.closes(CueKind::AgentTension).len(), 1);
}

#[test]
fn agent_continuous_speaking_covers_the_turn() {
    let mut sim = Sim::new();
    sim.dialog.turn_start_s.agent = Some(1.0);
    sim.run(50.0, agent_speaking(-25.0, 25));
    let open = sim.of(CueKind::AgentContinuousSpeaking);
    assert_eq!(open.len(), 1);
    assert!((open[0].t_s - 46.0).abs() < 0.02, "{}", open[0].t_s);
    assert!((open[0].start_s - 1.0).abs() < 0.02);
    sim.dialog.turn_start_s.agent = None;
    sim.run(0.1, |_| Frame::default());
    assert_eq!(sim.closes(CueKind::AgentContinuousSpeaking).len(), 1);
}

#[test]
fn agent_interrupting_opens_on_agent_interruptions_only() {
    static BY_CALLER: [DialogEvent; 1] = [DialogEvent::Interruption(Interruption {
        t_s: 4.0,
        by: Speaker::Caller,
        overlap_s: 0.8,
    })];
    static BY_AGENT: [DialogEvent; 1] = [DialogEvent::Interruption(Interruption {
        t_s: 9.0,
        by: Speaker::Agent,
        overlap_s: 0.8,
    })];
    let mut sim = Sim::new();
    sim.run(5.0, |k| Frame {
        dialog_events: if k == 20 { &BY_CALLER } else { &[] },
        ..Frame::default()
    });
    assert!(sim.of(CueKind::AgentInterrupting).is_empty());
    sim.run(20.0, |k| Frame {
        dialog_events: if k == 500 { &BY_AGENT } else { &[] },
        ..Frame::default()
    });
    let events = sim.of(CueKind::AgentInterrupting);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!((events[0].start_s - 9.0).abs() < 1e-9);
    // Closes close_after_s (10 s) after the overlap ended (9.8 s).
    assert_eq!(events[1].event, CueTransition::Close);
    assert!((events[1].t_s - 19.8).abs() < 0.02, "{}", events[1].t_s);
}

#[test]
fn agent_slow_to_respond_needs_a_long_gap() {
    static QUICK: [DialogEvent; 1] = [DialogEvent::Response(Response {
        t_s: 3.0,
        by: Speaker::Agent,
        latency_s: 1.5,
    })];
    static SLOW: [DialogEvent; 1] = [DialogEvent::Response(Response {
        t_s: 10.0,
        by: Speaker::Agent,
        latency_s: 6.0,
    })];
    let mut sim = Sim::new();
    sim.run(25.0, |k| Frame {
        dialog_events: match k {
            300 => &QUICK,
            1000 => &SLOW,
            _ => &[],
        },
        ..Frame::default()
    });
    let events = sim.of(CueKind::AgentSlowToRespond);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!((events[0].start_s - 4.0).abs() < 1e-9);
    assert!(
        events[0]
            .evidence
            .values
            .iter()
            .any(|v| v.name == "response_latency_s" && v.value == 6.0)
    );
}

#[test]
fn extended_silence_and_overlap() {
    let mut sim = Sim::new();
    sim.dialog.last_turn_end_s.caller = Some(0.5);
    sim.run(12.0, |_| Frame::default());
    let opens = sim.opens(CueKind::ExtendedSilence);
    assert_eq!(opens.len(), 1);
    assert!((opens[0] - 10.5).abs() < 0.02, "{opens:?}");
    sim.run(1.0, agent_speaking(-25.0, 25));
    assert_eq!(sim.closes(CueKind::ExtendedSilence).len(), 1);

    let mut sim = Sim::new();
    sim.dialog.turn_start_s.agent = Some(0.0);
    sim.dialog.turn_start_s.caller = Some(1.0);
    sim.dialog.overlap_start_s = Some(1.0);
    sim.run(3.0, |_| Frame::default());
    assert!(sim.of(CueKind::ExtendedOverlap).is_empty());
    sim.run(1.0, |_| Frame::default());
    let opens = sim.opens(CueKind::ExtendedOverlap);
    assert!((opens[0] - 3.5).abs() < 0.02, "{opens:?}");
    sim.dialog.overlap_start_s = None;
    sim.run(0.1, |_| Frame::default());
    assert_eq!(sim.closes(CueKind::ExtendedOverlap).len(), 1);
}

/// Caller windows every 0.8 s: `pick(window index)` gives the (baseline, cold) judgements.
fn caller_windows(
    mut pick: impl FnMut(u64) -> (&'static Prediction, &'static Prediction),
) -> impl FnMut(u64) -> Frame<'static> {
    move |k| {
        let (caller_emotion, caller_cold) = if k % 80 == 79 {
            let (baseline, cold) = pick(k / 80);
            (Some(baseline), Some(cold))
        } else {
            (None, None)
        };
        Frame {
            caller: speech(-25.0, k.is_multiple_of(25)),
            caller_emotion,
            caller_cold,
            ..Frame::default()
        }
    }
}

fn angry(p: f32) -> &'static Prediction {
    let rest = (1.0 - p) / 4.0;
    leak(prediction(
        [p, rest, rest, rest, rest],
        0.2 + 0.7 * p,
        0.1 - 0.9 * p,
        100.0 * (1.0 - p),
    ))
}

#[test]
fn caller_upset_opens_on_sustained_anger_and_calms_down() {
    let mut sim = Sim::new();
    sim.run(20.0, caller_windows(|_| (angry(0.1), angry(0.1))));
    assert!(sim.events.is_empty(), "{:?}", sim.events);
    // One angry window alone is not sustained.
    sim.run(0.8, caller_windows(|_| (angry(0.85), angry(0.85))));
    sim.run(0.8, caller_windows(|_| (angry(0.1), angry(0.1))));
    assert!(sim.of(CueKind::CallerUpset).is_empty());
    let start = sim.t();
    sim.run(10.0, caller_windows(|_| (angry(0.9), angry(0.8))));
    let opens = sim.opens(CueKind::CallerUpset);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    // Two windows.
    assert!(
        (opens[0] - start - 1.6).abs() < 0.02,
        "{}",
        opens[0] - start
    );
    let open = sim.of(CueKind::CallerUpset)[0];
    assert_eq!(open.party, CueParty::Caller);
    assert_eq!(open.severity, Severity::Critical);
    assert!(open.guidance.unwrap().contains("Acknowledge"));
    // Hovering between close (0.3) and open (0.5): stays open.
    sim.run(
        10.0,
        caller_windows(|i| {
            let p = if i % 2 == 0 { angry(0.35) } else { angry(0.45) };
            (p, p)
        }),
    );
    assert_eq!(sim.opens(CueKind::CallerUpset).len(), 1);
    assert!(sim.closes(CueKind::CallerUpset).is_empty());
    let calm_from = sim.t();
    sim.run(20.0, caller_windows(|_| (angry(0.05), angry(0.05))));
    let closes = sim.closes(CueKind::CallerUpset);
    assert_eq!(closes.len(), 1);
    // The mean of two windows falls under 0.3 at the first calm window, then 6 s.
    assert!(
        (closes[0] - calm_from - 6.8).abs() < 0.05,
        "{}",
        closes[0] - calm_from
    );
    let calmed = sim.opens(CueKind::CallerCalmedDown);
    assert_eq!(calmed.len(), 1, "{:?}", sim.events);
    assert!(calmed[0] > closes[0]);
    assert_eq!(sim.of(CueKind::CallerCalmedDown)[0].guidance, None);
}

#[test]
fn caller_upset_needs_cold_and_baseline_to_agree() {
    // A drifting baseline reads a calm caller as angry; the cold judgement does not.
    let mut sim = Sim::new();
    sim.run(60.0, caller_windows(|_| (angry(0.95), angry(0.08))));
    assert!(sim.of(CueKind::CallerUpset).is_empty(), "{:?}", sim.events);
    // And the other way round.
    let mut sim = Sim::new();
    sim.run(60.0, caller_windows(|_| (angry(0.08), angry(0.95))));
    assert!(sim.of(CueKind::CallerUpset).is_empty(), "{:?}", sim.events);
}

#[test]
fn caller_escalating_follows_the_cold_trend() {
    let mut sim = Sim::new();
    sim.run(
        60.0,
        caller_windows(|i| {
            let p = angry(if i < 30 {
                0.1
            } else {
                0.1 + 0.2 * (i - 30).min(4) as f32
            });
            (p, p)
        }),
    );
    let opens = sim.opens(CueKind::CallerEscalating);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    assert!(opens[0] > 24.0);
    // A steady high level is no longer a rise: it closes.
    assert_eq!(sim.closes(CueKind::CallerEscalating).len(), 1);
    // Drift in the baseline judgement alone does not escalate.
    let mut sim = Sim::new();
    sim.run(
        60.0,
        caller_windows(|i| (angry((0.02 * i as f32).min(0.95)), angry(0.1))),
    );
    assert!(
        sim.of(CueKind::CallerEscalating).is_empty(),
        "{:?}",
        sim.events
    );
}

#[test]
fn caller_anxious_and_positive_interaction() {
    let anxious = leak(prediction([0.05, 0.8, 0.05, 0.05, 0.05], 0.7, -0.5, 30.0));
    let happy = leak(prediction([0.05, 0.05, 0.05, 0.8, 0.05], 0.6, 0.6, 60.0));
    let mut sim = Sim::new();
    sim.run(20.0, caller_windows(|_| (anxious, anxious)));
    assert_eq!(
        sim.opens(CueKind::CallerAnxious).len(),
        1,
        "{:?}",
        sim.events
    );
    assert!(sim.of(CueKind::PositiveInteraction).is_empty());
    sim.run(20.0, caller_windows(|_| (happy, happy)));
    assert_eq!(sim.closes(CueKind::CallerAnxious).len(), 1);
    let positive = sim.of(CueKind::PositiveInteraction);
    assert_eq!(positive.len(), 1, "{:?}", sim.events);
    assert_eq!(positive[0].severity, Severity::Info);
    assert!(
        sim.other_kinds(CueKind::CallerAnxious)
            .iter()
            .all(|k| { matches!(k, CueKind::PositiveInteraction | CueKind::CallerEscalating) })
    );
}

#[test]
fn finish_closes_open_cues_and_ids_pair_up() {
    let mut sim = Sim::new();
    sim.run(12.0, |_| Frame::default());
    let mut out = Vec::new();
    sim.engine.finish(sim.t(), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].event, CueTransition::Close);
    assert_eq!(out[0].cue_id, sim.events[0].cue_id);
    assert!(sim.engine.open_cues().is_empty());
}

#[test]
fn caller_upset_is_judged_against_the_callers_habitual_level() {
    // A caller whose normal voice reads as fairly angry (0.45): a stretch at 0.8 is only 0.4
    // above that habit (beyond the 0.05 allowance) and stays under the 0.5 of the test rules.
    let mut sim = Sim::new();
    sim.run(30.0, caller_windows(|_| (angry(0.45), angry(0.45))));
    sim.run(8.0, caller_windows(|_| (angry(0.8), angry(0.8))));
    assert!(sim.of(CueKind::CallerUpset).is_empty(), "{:?}", sim.events);
    // The same stretch from a caller whose normal reads calm opens the cue.
    let mut sim = Sim::new();
    sim.run(30.0, caller_windows(|_| (angry(0.05), angry(0.05))));
    sim.run(8.0, caller_windows(|_| (angry(0.8), angry(0.8))));
    let open = sim.of(CueKind::CallerUpset);
    assert_eq!(open.len(), 1, "{:?}", sim.events);
    assert!(
        open[0]
            .evidence
            .values
            .iter()
            .any(|v| v.name == "habitual_probability" && v.value < 0.1)
    );
    // A long upset stretch does not become the caller's habit: the cue stays open.
    sim.run(60.0, caller_windows(|_| (angry(0.8), angry(0.8))));
    assert!(
        sim.closes(CueKind::CallerUpset).is_empty(),
        "{:?}",
        sim.events
    );
}

/// The test rules with the onset fast path of the shipped defaults' shape.
fn onset_rules() -> CueRules {
    CueRules {
        caller_upset_onset: Some(UpsetOnsetRule {
            window_speech_s: 1.5,
            windows: 1,
            angry_probability_min: 0.6,
            arousal_probability_min: 0.95,
            confidence_min: 0.3,
        }),
        caller_upset_strong: None,
        ..test_rules()
    }
}

/// Caller frames with a full-length window every 0.8 s (`long`) and a short onset window every
/// 0.5 s, `onset(window index)`.
fn caller_onset_windows(
    long: &'static Prediction,
    mut onset: impl FnMut(u64) -> &'static Prediction,
) -> impl FnMut(u64) -> Frame<'static> {
    move |k| {
        let judged = k % 80 == 79;
        Frame {
            caller: speech(-25.0, k.is_multiple_of(25)),
            caller_emotion: judged.then_some(long),
            caller_cold: judged.then_some(long),
            caller_onset: (k % 50 == 49).then(|| onset(k / 50)),
            ..Frame::default()
        }
    }
}

/// An onset window: angry probability, high-arousal probability, confidence.
fn onset_window(angry_p: f32, arousal: f32, confidence: f32) -> &'static Prediction {
    let rest = (1.0 - angry_p) / 4.0;
    leak(Prediction {
        confidence,
        normalisation: Normalisation::Global,
        speech_s: 1.5,
        ..prediction([angry_p, rest, rest, rest, rest], arousal, -0.5, 20.0)
    })
}

#[test]
fn caller_upset_opens_fast_on_one_strong_onset_window_and_closes_by_the_long_rule() {
    let mut engine_sim = Sim::new();
    engine_sim.engine = CueEngine::new(onset_rules());
    let mut sim = engine_sim;
    let calm = angry(0.05);
    sim.run(
        20.0,
        caller_onset_windows(calm, |_| onset_window(0.05, 0.1, 0.6)),
    );
    assert!(sim.events.is_empty(), "{:?}", sim.events);
    // Angry but not aroused enough, or aroused but too unsure: nothing.
    sim.run(
        0.5,
        caller_onset_windows(calm, |_| onset_window(0.9, 0.9, 0.6)),
    );
    sim.run(
        0.5,
        caller_onset_windows(calm, |_| onset_window(0.9, 0.99, 0.2)),
    );
    sim.run(
        0.5,
        caller_onset_windows(calm, |_| onset_window(0.5, 0.99, 0.6)),
    );
    assert!(sim.of(CueKind::CallerUpset).is_empty(), "{:?}", sim.events);
    // One strong onset window opens the cue at once, though the full-length windows are calm.
    let start = sim.t();
    sim.run(
        0.5,
        caller_onset_windows(calm, |_| onset_window(0.9, 0.99, 0.6)),
    );
    let opens = sim.opens(CueKind::CallerUpset);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    assert!(
        (opens[0] - start - 0.5).abs() < 0.02,
        "{}",
        opens[0] - start
    );
    let open = sim.of(CueKind::CallerUpset)[0];
    assert!(
        open.evidence.rule.contains("onset windows of 1.5 s"),
        "{}",
        open.evidence.rule
    );
    assert!(
        open.evidence
            .values
            .iter()
            .any(|v| v.name == "strong_arousal_probability_mean" && v.value > 0.98)
    );
    // Closing stays with the long rule's hysteresis: 6 s of calm full-length windows.
    sim.run(
        5.0,
        caller_onset_windows(calm, |_| onset_window(0.05, 0.1, 0.6)),
    );
    assert!(sim.closes(CueKind::CallerUpset).is_empty());
    sim.run(
        3.0,
        caller_onset_windows(calm, |_| onset_window(0.05, 0.1, 0.6)),
    );
    assert_eq!(
        sim.closes(CueKind::CallerUpset).len(),
        1,
        "{:?}",
        sim.events
    );
}

#[test]
fn caller_upset_onset_is_judged_against_the_callers_habitual_onset_level() {
    // Short windows that habitually read angry at high arousal (0.5, below the 0.6 minimum):
    // a window at 0.9 is only 0.45 above that habit (beyond the 0.05 allowance).
    let mut sim = Sim::new();
    sim.engine = CueEngine::new(onset_rules());
    let calm = angry(0.05);
    sim.run(
        30.0,
        caller_onset_windows(calm, |_| onset_window(0.5, 0.97, 0.6)),
    );
    sim.run(
        0.5,
        caller_onset_windows(calm, |_| onset_window(0.9, 0.99, 0.6)),
    );
    assert!(sim.of(CueKind::CallerUpset).is_empty(), "{:?}", sim.events);
}

#[test]
fn caller_upset_strong_full_length_windows_open_fast() {
    let mut sim = Sim::new();
    sim.engine = CueEngine::new(CueRules {
        caller_upset_strong: Some(UpsetStrongRule {
            windows: 1,
            angry_probability_min: 0.6,
            arousal_probability_min: 0.95,
            confidence_min: 0.0,
        }),
        caller_upset_onset: None,
        // The averaged rule alone would need two windows.
        ..test_rules()
    });
    sim.run(20.0, caller_windows(|_| (angry(0.05), angry(0.05))));
    let start = sim.t();
    let strong = leak(prediction(
        [0.9, 0.025, 0.025, 0.025, 0.025],
        0.97,
        -0.7,
        10.0,
    ));
    sim.run(0.8, caller_windows(|_| (strong, strong)));
    let opens = sim.opens(CueKind::CallerUpset);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    assert!(
        (opens[0] - start - 0.8).abs() < 0.02,
        "{}",
        opens[0] - start
    );
}

#[test]
fn pressing_upset_caller_opens_when_the_agent_interrupts_or_rushes_an_upset_caller() {
    static BY_AGENT: [DialogEvent; 1] = [DialogEvent::Interruption(Interruption {
        t_s: 0.0,
        by: Speaker::Agent,
        overlap_s: 0.6,
    })];
    let mut sim = Sim::new();
    // An agent interruption while the caller is calm: no empathy cue.
    sim.run(20.0, |k| Frame {
        dialog_events: if k == 100 { &BY_AGENT } else { &[] },
        ..caller_windows(|_| (angry(0.1), angry(0.1)))(k)
    });
    assert!(sim.of(CueKind::AgentPressingUpsetCaller).is_empty());
    // The caller is upset; the agent stays quiet: no empathy cue.
    sim.run(10.0, caller_windows(|_| (angry(0.9), angry(0.9))));
    assert_eq!(sim.opens(CueKind::CallerUpset).len(), 1, "{:?}", sim.events);
    assert!(sim.of(CueKind::AgentPressingUpsetCaller).is_empty());
    // The agent interrupts the upset caller: opens after open_min_s (1 s).
    let at = sim.t();
    let now: &'static [DialogEvent] =
        Box::leak(Box::new([DialogEvent::Interruption(Interruption {
            t_s: at,
            by: Speaker::Agent,
            overlap_s: 0.6,
        })]));
    let mut windows = caller_windows(|_| (angry(0.9), angry(0.9)));
    sim.run(5.0, |k| Frame {
        dialog_events: if k == 0 { now } else { &[] },
        ..windows(k)
    });
    let opens = sim.opens(CueKind::AgentPressingUpsetCaller);
    assert_eq!(opens.len(), 1, "{:?}", sim.events);
    assert!((opens[0] - at - 1.0).abs() < 0.03, "{}", opens[0] - at);
    let open = sim.of(CueKind::AgentPressingUpsetCaller)[0];
    assert_eq!(open.party, CueParty::Agent);
    assert!(
        open.guidance
            .unwrap()
            .contains("slow down and let them finish")
    );
    assert!(
        open.evidence
            .values
            .iter()
            .any(|v| v.name == "since_agent_interruption_s")
    );
    // Closes close_min_s (3 s) after the interruption window (10 s) has passed.
    sim.run(15.0, caller_windows(|_| (angry(0.9), angry(0.9))));
    let closes = sim.closes(CueKind::AgentPressingUpsetCaller);
    assert_eq!(closes.len(), 1, "{:?}", sim.events);
    assert!((closes[0] - at - 13.0).abs() < 0.05, "{}", closes[0] - at);
}

#[test]
fn pressing_upset_caller_opens_on_a_loud_agent_and_is_off_without_its_table() {
    let run = |rules: CueRules| {
        let mut sim = Sim::new();
        sim.engine = CueEngine::new(rules);
        // The agent's baseline at -30 dB while the caller is calm.
        sim.run(20.0, |k| Frame {
            agent: speech(-30.0, k.is_multiple_of(25)),
            ..caller_windows(|_| (angry(0.1), angry(0.1)))(k)
        });
        sim.run(10.0, caller_windows(|_| (angry(0.9), angry(0.9))));
        // The agent answers the upset caller 5 dB louder (below raised voice's 6 dB).
        let mut windows = caller_windows(|_| (angry(0.9), angry(0.9)));
        sim.run(10.0, |k| Frame {
            agent: speech(-25.0, k.is_multiple_of(25)),
            ..windows(k)
        });
        sim
    };
    let sim = run(test_rules());
    assert_eq!(
        sim.opens(CueKind::AgentPressingUpsetCaller).len(),
        1,
        "{:?}",
        sim.events
    );
    assert!(sim.opens(CueKind::AgentRaisedVoice).is_empty());
    let off = run(CueRules {
        agent_pressing_upset_caller: None,
        ..test_rules()
    });
    assert!(off.of(CueKind::AgentPressingUpsetCaller).is_empty());
}
