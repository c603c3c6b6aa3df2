//! The entrainment measures against a direct computation on synthetic turn sequences, and each
//! empathy measure on scripted turn sequences.

use super::entrainment::{Pair, entrainment, pearson};
use super::*;
use crate::cues::{CueParty, Evidence, Severity};
use crate::rng::SplitMix64;

/// A turn of `who` with the given prosody (all figures present).
fn turn(
    who: Speaker,
    start_s: f64,
    end_s: f64,
    pitch: f64,
    range: f64,
    loud: f64,
    rate: f64,
) -> TurnProsody {
    TurnProsody {
        speaker: who,
        start_s,
        end_s,
        kind: TurnKind::Turn,
        speech_s: end_s - start_s,
        voiced_s: 0.6 * (end_s - start_s),
        pitch_level_st: Some(pitch),
        pitch_range_st: Some(range),
        loudness_db: Some(loud),
        rate_syl_per_s: Some(rate),
    }
}

/// Alternating caller/agent turns, caller first, `n` pairs; values from the closures of pair i.
fn sequence(
    n: usize,
    caller: impl Fn(usize) -> [f64; 4],
    agent: impl Fn(usize) -> [f64; 4],
) -> Vec<TurnProsody> {
    let mut turns = Vec::new();
    let mut t = 1.0;
    for i in 0..n {
        let c = caller(i);
        turns.push(turn(Speaker::Caller, t, t + 3.0, c[0], c[1], c[2], c[3]));
        t += 3.6;
        let a = agent(i);
        turns.push(turn(Speaker::Agent, t, t + 2.5, a[0], a[1], a[2], a[3]));
        t += 3.0;
    }
    turns
}

/// The figures computed directly from their definitions (no shared code).
#[allow(clippy::needless_range_loop)] // the oracle spells out the sums over i and j
fn direct(caller: &[f64], agent: &[f64], times: &[f64]) -> (f64, f64, f64) {
    let n = caller.len();
    let z = |v: &[f64]| -> Vec<f64> {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
        v.iter().map(|x| (x - m) / sd).collect()
    };
    let (c, a) = (z(caller), z(agent));
    let mut proximity = 0.0;
    for i in 0..n {
        let mut others = 0.0;
        for j in 0..n {
            if j != i {
                others += (a[i] - c[j]).abs();
            }
        }
        proximity += others / (n - 1) as f64 - (a[i] - c[i]).abs();
    }
    proximity /= n as f64;
    let r = |x: &[f64], y: &[f64]| {
        let mx = x.iter().sum::<f64>() / x.len() as f64;
        let my = y.iter().sum::<f64>() / y.len() as f64;
        let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
        sxy / (sxx * syy).sqrt()
    };
    let closeness: Vec<f64> = a.iter().zip(&c).map(|(a, c)| -(a - c).abs()).collect();
    (proximity, r(times, &closeness), r(&a, &c))
}

fn assert_close(a: Option<f64>, b: f64, what: &str) {
    let a = a.unwrap_or_else(|| panic!("{what} is None"));
    assert!((a - b).abs() < 1e-9, "{what}: {a} vs direct {b}");
}

#[test]
fn entrainment_matches_a_direct_computation_on_random_sequences() {
    let mut rng = SplitMix64::new(7);
    for trial in 0..20 {
        let n = 4 + trial % 9;
        let caller: Vec<f64> = (0..n).map(|_| rng.range(-30.0, -15.0)).collect();
        let agent: Vec<f64> = caller
            .iter()
            .map(|c| 0.4 * c + rng.range(-3.0, 3.0) - 8.0)
            .collect();
        let times: Vec<f64> = (0..n)
            .map(|i| 5.0 * i as f64 + rng.range(0.0, 2.0))
            .collect();
        let pairs: Vec<Pair> = (0..n)
            .map(|i| Pair {
                t_s: times[i],
                caller: caller[i],
                agent: agent[i],
            })
            .collect();
        let e = entrainment(&pairs, &caller, &agent);
        let (p, c, s) = direct(&caller, &agent, &times);
        assert_eq!(e.pairs, n);
        assert_close(e.proximity, p, "proximity");
        assert_close(e.convergence, c, "convergence");
        assert_close(e.synchrony, s, "synchrony");
    }
}

#[test]
fn entrainment_over_turn_sequences_pairs_each_caller_turn_with_its_answer() {
    // Caller pitch wanders; the agent follows it (synchrony ~ 1) and gets closer over the call
    // (convergence > 0); loudness of the agent is unrelated (alternating).
    let n = 10;
    let caller_pitch = |i: usize| 10.0 + 3.0 * ((i as f64) * 1.3).sin();
    let mut turns = sequence(
        n,
        |i| {
            [
                caller_pitch(i),
                2.0 + 0.1 * i as f64,
                -20.0 - (i % 3) as f64,
                4.0 + 0.2 * i as f64,
            ]
        },
        |i| {
            let gap = 3.0 * (1.0 - i as f64 / n as f64);
            [
                caller_pitch(i) - 4.0 + gap * if i % 2 == 0 { 1.0 } else { -1.0 } * 0.3,
                2.5,
                -25.0 + if i % 2 == 0 { 2.0 } else { -2.0 },
                3.0 + 0.25 * i as f64,
            ]
        },
    );
    // A backchannel of the agent inside a caller turn is no answer, and an extra agent turn
    // after an answered caller turn pairs with nothing.
    let bc = TurnProsody {
        kind: TurnKind::Backchannel,
        ..turn(Speaker::Agent, 2.0, 2.4, 0.0, 0.0, -40.0, 9.0)
    };
    turns.push(bc);
    turns.push(turn(Speaker::Agent, 200.0, 201.0, 50.0, 9.0, 0.0, 20.0));
    let input = EmpathyInput {
        duration_s: 210.0,
        turns: &turns,
        interruptions: &[],
        overlaps: &[],
        caller_talk_s: 30.0,
        caller_emotion: &[],
        cues: &[],
    };
    let mut sorted = turns.clone();
    sorted.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let ctx = Context {
        input: &input,
        turns: sorted,
        upset: Vec::new(),
        anxious: Vec::new(),
    };
    let pairs = ctx.answer_pairs();
    assert_eq!(pairs.len(), n);
    let e = attunement::feature_entrainment(&ctx, |t| t.pitch_level_st);
    // Direct: pairs are the sequence's; the z reference is every ordinary turn of each party
    // (the extra agent turn included).
    let caller: Vec<f64> = (0..n).map(caller_pitch).collect();
    let agent_all: Vec<f64> = ctx
        .main_turns(Speaker::Agent)
        .map(|t| t.pitch_level_st.unwrap())
        .collect();
    let agent_pairs: Vec<f64> = pairs
        .iter()
        .map(|(_, a)| a.pitch_level_st.unwrap())
        .collect();
    let times: Vec<f64> = pairs.iter().map(|(_, a)| a.start_s).collect();
    // Direct computation with the agent's z reference over all its turns.
    let m = agent_all.iter().sum::<f64>() / agent_all.len() as f64;
    let sd =
        (agent_all.iter().map(|x| (x - m).powi(2)).sum::<f64>() / agent_all.len() as f64).sqrt();
    let mc = caller.iter().sum::<f64>() / n as f64;
    let sdc = (caller.iter().map(|x| (x - mc).powi(2)).sum::<f64>() / n as f64).sqrt();
    let za: Vec<f64> = agent_pairs.iter().map(|x| (x - m) / sd).collect();
    let zc: Vec<f64> = caller.iter().map(|x| (x - mc) / sdc).collect();
    let sync = pearson(&za, &zc).unwrap();
    assert_close(e.synchrony, sync, "synchrony over turns");
    let closeness: Vec<f64> = za.iter().zip(&zc).map(|(a, c)| -(a - c).abs()).collect();
    assert_close(
        e.convergence,
        pearson(&times, &closeness).unwrap(),
        "convergence over turns",
    );
    assert!(e.synchrony.unwrap() > 0.8, "{e:?}");
    // Rate rises together: positive synchrony.
    let r = attunement::feature_entrainment(&ctx, |t| t.rate_syl_per_s);
    assert!(r.synchrony.unwrap() > 0.9, "{r:?}");
}

#[test]
fn too_few_pairs_or_no_spread_is_none() {
    let pairs = [
        Pair {
            t_s: 0.0,
            caller: 1.0,
            agent: 2.0,
        },
        Pair {
            t_s: 1.0,
            caller: 2.0,
            agent: 3.0,
        },
    ];
    let e = entrainment(&pairs, &[1.0, 2.0], &[2.0, 3.0]);
    assert_eq!((e.proximity, e.synchrony), (None, None));
    let flat: Vec<Pair> = (0..5)
        .map(|i| Pair {
            t_s: i as f64,
            caller: 1.0,
            agent: i as f64,
        })
        .collect();
    assert!(
        entrainment(&flat, &[1.0; 5], &[0.0, 1.0, 2.0, 3.0, 4.0])
            .synchrony
            .is_none()
    );
}

fn cue(
    id: u64,
    kind: CueKind,
    event: CueTransition,
    t_s: f64,
    start_s: f64,
    end_s: f64,
) -> CueEvent {
    CueEvent {
        cue_id: id,
        kind,
        party: CueParty::Caller,
        severity: Severity::Critical,
        event,
        t_s,
        start_s,
        end_s,
        evidence: Evidence {
            rule: String::new(),
            values: Vec::new(),
        },
        guidance: None,
    }
}

fn angry_point(t_s: f64, angry: f32) -> EmotionPoint {
    EmotionPoint {
        t_s,
        party: Speaker::Caller,
        emotion: Some(if angry > 0.5 { "angry" } else { "neutral" }),
        abstain_reason: None,
        probabilities: [angry, 0.0, 0.0, 0.0, 1.0 - angry],
        arousal: angry,
        valence: -angry,
        confidence: 0.8,
        calmness: 50.0,
        normalisation: crate::prosody::baseline::Normalisation::Global,
        speech_s: 2.5,
    }
}

/// A call of 12 pairs; caller turns 4..8 raised (+8 dB) and upset 20..50 s.
fn upset_call(agent_mirrors: bool, interrupt: bool, backchannel: bool) -> EmpathyReport {
    let mut turns = sequence(
        12,
        |i| {
            let up = (3..8).contains(&i);
            [
                8.0 + (i % 3) as f64,
                3.0,
                if up { -14.0 } else { -22.0 },
                4.5,
            ]
        },
        |i| {
            let up = (3..8).contains(&i) && agent_mirrors;
            [
                2.0 + (i % 2) as f64 + if up { 3.0 } else { 0.0 },
                2.0,
                if up {
                    -17.0
                } else {
                    -25.0 + 0.2 * (i % 2) as f64
                },
                if up { 6.0 } else { 4.0 },
            ]
        },
    );
    if backchannel {
        for c in turns
            .clone()
            .iter()
            .filter(|t| t.speaker == Speaker::Caller)
        {
            turns.push(TurnProsody {
                kind: TurnKind::Backchannel,
                ..turn(
                    Speaker::Agent,
                    c.start_s + 1.0,
                    c.start_s + 1.4,
                    3.0,
                    1.0,
                    -28.0,
                    5.0,
                )
            });
        }
    }
    let interruptions: Vec<Interruption> = if interrupt {
        turns
            .iter()
            .filter(|t| t.speaker == Speaker::Caller && t.start_s > 20.0 && t.start_s < 48.0)
            .map(|t| Interruption {
                t_s: t.end_s - 1.0,
                by: Speaker::Agent,
                overlap_s: 1.0,
            })
            .collect()
    } else {
        Vec::new()
    };
    let overlaps: Vec<Overlap> = interruptions
        .iter()
        .map(|i| Overlap {
            start_s: i.t_s,
            end_s: i.t_s + 1.0,
            started_by: Some(Speaker::Agent),
        })
        .collect();
    let mut points = Vec::new();
    for k in 0..80 {
        let t = k as f64;
        let a = if (20.0..50.0).contains(&t) || (agent_mirrors && t >= 20.0) {
            0.85
        } else {
            0.1
        };
        points.push(angry_point(t, a));
    }
    let mut cues = vec![cue(
        1,
        CueKind::CallerUpset,
        CueTransition::Open,
        21.0,
        20.0,
        21.0,
    )];
    if !agent_mirrors {
        cues.push(cue(
            1,
            CueKind::CallerUpset,
            CueTransition::Close,
            56.0,
            20.0,
            50.0,
        ));
        cues.push(cue(
            2,
            CueKind::CallerCalmedDown,
            CueTransition::Open,
            60.0,
            57.0,
            60.0,
        ));
    }
    let input = EmpathyInput {
        duration_s: 80.0,
        turns: &turns,
        interruptions: &interruptions,
        overlaps: &overlaps,
        caller_talk_s: 36.0,
        caller_emotion: &points,
        cues: &cues,
    };
    assess(&input, &EmpathyConfig::default())
}

#[test]
fn interrupting_an_upset_caller_lowers_active_listening() {
    let calm = upset_call(false, false, true);
    let rude = upset_call(false, true, false);
    let al = &calm.active_listening;
    assert_eq!(al.measures.interruptions_while_upset, 0);
    assert!(al.measures.backchannels_per_min.unwrap() > 10.0);
    assert!(rude.active_listening.measures.interruptions_while_upset >= 3);
    assert_eq!(
        rude.active_listening.measures.backchannels_per_min,
        Some(0.0)
    );
    assert!(
        al.score.unwrap() > rude.active_listening.score.unwrap() + 30.0,
        "{:?} vs {:?}",
        al.score,
        rude.active_listening.score
    );
    assert!(
        rude.active_listening
            .evidence
            .iter()
            .any(|m| m.what.contains("interrupted the upset caller"))
    );
}

#[test]
fn mirroring_a_raised_caller_lowers_attunement_and_calm_answers_raise_it() {
    let calm = upset_call(false, false, false);
    let mirror = upset_call(true, false, false);
    let (c, m) = (&calm.attunement.measures, &mirror.attunement.measures);
    assert_eq!(c.raised_caller_turns, 5);
    assert_eq!(c.agent_stayed_below, 5);
    assert_eq!(m.agent_stayed_below, 0);
    assert!(calm.attunement.score.unwrap() > mirror.attunement.score.unwrap() + 30.0);
    assert!(
        mirror
            .attunement
            .evidence
            .iter()
            .any(|e| e.what.contains("matched a raised caller"))
    );
}

#[test]
fn a_caller_who_calms_scores_de_escalation_and_one_who_stays_upset_does_not() {
    let calm = upset_call(false, false, false);
    let stays = upset_call(true, false, false);
    let d = &calm.de_escalation;
    assert_eq!(d.measures.upset_to_close_s, Some(30.0));
    assert_eq!(d.measures.upset_to_calmed_s, Some(40.0));
    assert_eq!(d.measures.ends_calmer_than_peak, Some(true));
    assert!(!d.measures.turns_before_turnaround.is_empty());
    assert!(d.score.unwrap() > 80.0, "{:?}", d.score);
    let s = &stays.de_escalation;
    assert_eq!(s.measures.upset_to_close_s, None);
    assert_eq!(s.measures.ends_calmer_than_peak, Some(false));
    assert!(s.score.unwrap() < 10.0, "{:?}", s.score);
}

#[test]
fn a_call_without_upset_has_no_de_escalation_score_and_says_why() {
    let turns = sequence(6, |_| [8.0, 2.0, -20.0, 4.0], |_| [3.0, 2.0, -24.0, 4.0]);
    let input = EmpathyInput {
        duration_s: 50.0,
        turns: &turns,
        interruptions: &[],
        overlaps: &[],
        caller_talk_s: 18.0,
        caller_emotion: &[],
        cues: &[],
    };
    let r = assess(&input, &EmpathyConfig::default());
    assert!(r.de_escalation.score.is_none());
    assert!(
        r.de_escalation
            .reason
            .as_deref()
            .unwrap()
            .contains("never upset")
    );
    // 18 s of caller talk is below the 20 s minimum.
    assert!(r.active_listening.score.is_none());
    // Flat values: no synchrony; no raised turn: no score.
    assert!(r.attunement.score.is_none(), "{:?}", r.attunement);
}
