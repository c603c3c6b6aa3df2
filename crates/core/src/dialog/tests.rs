//! Synthetic frame sequences through the tracker: the definitions one by one, crosstalk, and
//! streaming == whole-call reference.

use proptest::prelude::*;

use super::reference::reference;
use super::*;

const QUIET_DB: f32 = -70.0;

/// One party's speech: `[start_s, end_s)` at `level_db`.
#[derive(Debug, Clone, Copy)]
struct Say {
    party: usize,
    start_s: f64,
    end_s: f64,
    level_db: f32,
}

fn say(party: usize, start_s: f64, end_s: f64) -> Say {
    Say {
        party,
        start_s,
        end_s,
        level_db: -20.0,
    }
}

/// Frames of both channels: each party's speech in its own channel and, when `crosstalk_db` is
/// set, a copy of it in the other channel that the per-channel VAD (wrongly) calls speech.
fn call(duration_s: f64, says: &[Say], crosstalk_db: Option<f32>) -> [Vec<FrameFeatures>; 2] {
    let n = frames_of(duration_s) as usize;
    let mut level = [vec![f32::NEG_INFINITY; n], vec![f32::NEG_INFINITY; n]];
    for s in says {
        let start = frames_of(s.start_s);
        for t in start..frames_of(s.end_s).min(n as u64) {
            // Syllables: 150 ms at the level, 50 ms dips 12 dB lower, never at either end of an
            // utterance whose length is a multiple of 0.1 s.
            let dip = (10..15).contains(&((t - start) % 20));
            let l = s.level_db - if dip { 12.0 } else { 0.0 };
            let t = t as usize;
            level[s.party][t] = level[s.party][t].max(l);
            if let Some(leak) = crosstalk_db {
                let o = 1 - s.party;
                level[o][t] = level[o][t].max(l + leak);
            }
        }
    }
    [0, 1].map(|p| {
        (0..n)
            .map(|t| {
                let speech = level[p][t].is_finite();
                FrameFeatures {
                    index: t as u64,
                    loudness_db: if speech { level[p][t] } else { QUIET_DB },
                    dialog_activity: if speech {
                        VoiceActivity::Speech
                    } else {
                        VoiceActivity::Silence
                    },
                    ..FrameFeatures::default()
                }
            })
            .collect()
    })
}

/// Streams the call frame by frame; returns the report and every event in order.
fn stream(
    config: &DialogConfig,
    frames: &[Vec<FrameFeatures>; 2],
) -> (DialogReport, Vec<DialogEvent>) {
    let mut tracker = DialogTracker::new(config.clone()).unwrap();
    let mut events = Vec::new();
    for (a, c) in frames[0].iter().zip(&frames[1]) {
        events.extend_from_slice(tracker.push(a, c));
    }
    events.extend_from_slice(tracker.finish());
    (tracker.report(), events)
}

fn run(frames: &[Vec<FrameFeatures>; 2]) -> DialogReport {
    stream(&DialogConfig::default(), frames).0
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn clean_alternation() {
    let frames = call(
        7.0,
        &[
            say(AGENT, 0.5, 2.5),
            say(CALLER, 3.0, 4.5),
            say(AGENT, 4.8, 6.5),
        ],
        None,
    );
    let r = run(&frames);
    assert!(close(r.duration_s, 7.0));
    assert!(close(r.talk.agent_s, 3.7), "{:?}", r.talk);
    assert!(close(r.talk.caller_s, 1.5));
    assert!(close(r.talk.overlap_s, 0.0));
    assert!(close(r.talk.silence_s, 1.8));
    assert_eq!(r.turns.len(), 3);
    assert!(r.turns.iter().all(|t| t.kind == TurnKind::Turn));
    assert_eq!(r.turns[1].speaker, Speaker::Caller);
    assert!(close(r.turns[1].start_s, 3.0) && close(r.turns[1].end_s, 4.5));
    assert!(r.interruptions.is_empty() && r.overlaps.is_empty());
    assert_eq!(r.response_latency_s.caller_median, Some(0.5));
    assert_eq!(
        r.response_latency_s
            .agent_median
            .map(|x| (x * 100.0).round()),
        Some(30.0)
    );
    assert!(close(r.longest_monologue_s.agent, 2.0));
}

#[test]
fn interruption_by_the_agent() {
    let frames = call(6.0, &[say(CALLER, 0.0, 4.0), say(AGENT, 2.0, 5.5)], None);
    let r = run(&frames);
    assert_eq!(r.interruptions.len(), 1, "{r:?}");
    let i = r.interruptions[0];
    assert_eq!(i.by, Speaker::Agent);
    assert!(close(i.t_s, 2.0) && close(i.overlap_s, 2.0));
    assert!(close(r.talk.overlap_s, 2.0));
    assert_eq!(r.interruption_count.agent, 1);
    let agent_turn = r
        .turns
        .iter()
        .find(|t| t.speaker == Speaker::Agent)
        .unwrap();
    assert_eq!(agent_turn.kind, TurnKind::Interruption);
    // Switching through an overlap is no response.
    assert_eq!(r.response_latency_s.agent_count, 0);
}

#[test]
fn interruption_needs_the_other_to_keep_talking() {
    // The caller starts 0.1 s before the agent ends: a turn-boundary overlap.
    let frames = call(6.0, &[say(AGENT, 0.0, 3.1), say(CALLER, 3.0, 5.0)], None);
    let r = run(&frames);
    assert!(r.interruptions.is_empty());
    assert_eq!(r.overlaps.len(), 1);
    // The agent talks on 0.5 s over the caller, then yields: an interruption.
    let frames = call(6.0, &[say(AGENT, 0.0, 3.5), say(CALLER, 3.0, 5.0)], None);
    let r = run(&frames);
    assert_eq!(r.interruptions.len(), 1);
    assert_eq!(r.interruptions[0].by, Speaker::Caller);
    assert!(close(r.interruptions[0].overlap_s, 0.5));
}

#[test]
fn short_overlapping_turn_outliving_the_other_is_no_backchannel() {
    // 0.6 s from the caller, starting 0.3 s before the agent stops.
    let frames = call(6.0, &[say(AGENT, 0.0, 3.0), say(CALLER, 2.7, 3.3)], None);
    let r = run(&frames);
    assert_eq!(r.backchannel_count.caller, 0);
    assert_eq!(r.turn_count.caller, 1);
}

#[test]
fn backchannel_is_not_an_interruption() {
    let frames = call(6.0, &[say(AGENT, 0.0, 5.0), say(CALLER, 2.0, 2.4)], None);
    let r = run(&frames);
    assert!(r.interruptions.is_empty(), "{r:?}");
    assert_eq!(r.backchannel_count.caller, 1);
    assert_eq!(r.turn_count.caller, 0);
    let bc: Vec<_> = r.backchannels().collect();
    assert_eq!(bc.len(), 1);
    assert!(close(bc[0].start_s, 2.0) && close(bc[0].end_s, 2.4));
    // The overlap itself is real talk time.
    assert!(close(r.talk.overlap_s, 0.4));
    assert!(close(r.talk.caller_s, 0.4));
    assert!(close(r.longest_monologue_s.caller, 0.0));
}

#[test]
fn simultaneous_start_is_not_an_interruption() {
    let frames = call(5.0, &[say(AGENT, 1.0, 4.0), say(CALLER, 1.2, 3.0)], None);
    let r = run(&frames);
    assert!(r.interruptions.is_empty());
    assert_eq!(r.overlaps.len(), 1);
    assert_eq!(r.overlaps[0].started_by, Some(Speaker::Caller));
}

#[test]
fn crosstalk_at_minus_25_db_creates_no_overlap() {
    for leak in [-25.0, -30.0, -35.0] {
        let frames = call(
            8.0,
            &[
                say(AGENT, 0.5, 3.0),
                say(CALLER, 3.4, 6.0),
                say(AGENT, 6.3, 7.5),
            ],
            Some(leak),
        );
        let r = run(&frames);
        assert!(close(r.talk.overlap_s, 0.0), "leak {leak}: {:?}", r.talk);
        assert!(r.overlaps.is_empty() && r.interruptions.is_empty());
        assert!(close(r.talk.agent_s, 3.7) && close(r.talk.caller_s, 2.6));
        assert!(r.crosstalk_rejected_s.caller > 3.0);
    }
    // Before the caller has ever spoken, and while the caller backchannels over leakage.
    let frames = call(
        6.0,
        &[say(AGENT, 0.0, 5.0), say(CALLER, 2.0, 2.4)],
        Some(-25.0),
    );
    let r = run(&frames);
    assert_eq!(r.backchannel_count.caller, 1);
    assert!(close(r.talk.caller_s, 0.4));
}

#[test]
fn real_overlap_survives_crosstalk() {
    let frames = call(
        6.0,
        &[say(CALLER, 0.0, 4.0), say(AGENT, 2.0, 5.5)],
        Some(-25.0),
    );
    let r = run(&frames);
    assert_eq!(r.interruptions.len(), 1);
    assert!(close(r.interruptions[0].t_s, 2.0));
    assert!(close(r.talk.overlap_s, 2.0));
}

#[test]
fn one_party_silent_all_call() {
    let frames = call(5.0, &[say(AGENT, 0.5, 2.0), say(AGENT, 3.0, 4.0)], None);
    let r = run(&frames);
    assert!(close(r.talk.agent_s, 2.5) && close(r.talk.caller_s, 0.0));
    assert!(close(r.talk.silence_s, 2.5));
    assert_eq!(r.turn_count.agent, 2);
    assert_eq!(r.response_latency_s.caller_median, None);
}

#[test]
fn empty_and_tiny_calls_give_zeros() {
    let mut tracker = DialogTracker::new(DialogConfig::default()).unwrap();
    assert!(tracker.finish().is_empty());
    let r = tracker.report();
    assert_eq!(r.duration_s, 0.0);
    assert_eq!(r.talk, TalkTime::default());
    let frames = call(0.02, &[say(AGENT, 0.0, 0.02)], None);
    let r = run(&frames);
    assert!(close(r.duration_s, 0.02));
    assert!(r.turns.is_empty());
}

#[test]
fn talk_overlap_silence_add_up() {
    let frames = call(
        10.0,
        &[
            say(AGENT, 0.0, 3.0),
            say(CALLER, 2.0, 2.3),
            say(CALLER, 3.5, 7.0),
            say(AGENT, 5.0, 8.0),
        ],
        Some(-28.0),
    );
    let r = run(&frames);
    let t = r.talk;
    assert!(close(
        t.agent_s + t.caller_s - t.overlap_s + t.silence_s,
        r.duration_s
    ));
}

#[test]
fn events_match_the_report() {
    let frames = call(
        12.0,
        &[
            say(AGENT, 0.0, 3.0),
            say(CALLER, 1.0, 1.3),
            say(CALLER, 3.5, 7.0),
            say(AGENT, 5.0, 8.0),
            say(CALLER, 9.0, 11.0),
        ],
        Some(-25.0),
    );
    let (r, events) = stream(&DialogConfig::default(), &frames);
    let turns: Vec<Turn> = events
        .iter()
        .filter_map(|e| match e {
            DialogEvent::Turn(t) => Some(*t),
            _ => None,
        })
        .collect();
    let interruptions: Vec<Interruption> = events
        .iter()
        .filter_map(|e| match e {
            DialogEvent::Interruption(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(turns, r.turns);
    assert_eq!(interruptions, r.interruptions);
    assert_eq!(interruptions.len(), 1);
    assert_eq!(r.backchannel_count.caller, 1);
}

#[test]
fn agent_channel_setting_swaps_parties() {
    let frames = call(5.0, &[say(AGENT, 0.0, 3.0), say(CALLER, 3.5, 4.5)], None);
    let config = DialogConfig {
        agent_channel: 1,
        ..DialogConfig::default()
    };
    let mut tracker = DialogTracker::new(config).unwrap();
    for (a, c) in frames[0].iter().zip(&frames[1]) {
        tracker.push_channels(a, c);
    }
    tracker.finish();
    let r = tracker.report();
    assert!(close(r.talk.caller_s, 3.0) && close(r.talk.agent_s, 1.0));
}

#[test]
fn bad_settings_are_refused() {
    let config = DialogConfig {
        agent_channel: 2,
        ..DialogConfig::default()
    };
    assert!(DialogTracker::new(config).is_err());
    let config = DialogConfig {
        pause_bridge_s: f64::NAN,
        ..DialogConfig::default()
    };
    assert!(DialogTracker::new(config).is_err());
}

/// Random calls: runs of speech/silence per channel with random levels.
fn random_call() -> impl Strategy<Value = [Vec<FrameFeatures>; 2]> {
    let segment = (any::<bool>(), 1usize..150, -45.0f32..-10.0);
    let channel = proptest::collection::vec(segment, 1..25);
    (channel.clone(), channel).prop_map(|(a, c)| {
        let build = |segs: Vec<(bool, usize, f32)>| {
            let mut out = Vec::new();
            for (speech, len, level) in segs {
                for _ in 0..len {
                    out.push(FrameFeatures {
                        index: out.len() as u64,
                        // Non-speech between -70 and -35 dBFS: some of it tails.
                        loudness_db: if speech { level } else { level - 25.0 },
                        dialog_activity: if speech {
                            VoiceActivity::Speech
                        } else {
                            VoiceActivity::Noise
                        },
                        ..FrameFeatures::default()
                    });
                }
            }
            out
        };
        let (mut a, mut c) = (build(a), build(c));
        let n = a.len().min(c.len());
        a.truncate(n);
        c.truncate(n);
        [a, c]
    })
}

fn sorted(mut r: DialogReport) -> DialogReport {
    let key = |s: Speaker| s == Speaker::Caller;
    r.turns.sort_by(|a, b| {
        (a.start_s, key(a.speaker))
            .partial_cmp(&(b.start_s, key(b.speaker)))
            .unwrap()
    });
    r.interruptions
        .sort_by(|a, b| a.t_s.partial_cmp(&b.t_s).unwrap());
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn streaming_equals_whole_call_reference(frames in random_call(), bridge in 0.0f64..0.8, bc in 0.2f64..1.5) {
        let config = DialogConfig {
            pause_bridge_s: bridge,
            backchannel_max_s: bc,
            ..DialogConfig::default()
        };
        let (streamed, _) = stream(&config, &frames);
        let whole = reference(&config, &frames[0], &frames[1]);
        prop_assert_eq!(sorted(streamed), sorted(whole));
    }
}
