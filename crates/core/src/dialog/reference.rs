//! A whole-call reference implementation of the definitions in [`super::DialogConfig`], written
//! over complete frame arrays (no streaming), to check the streaming tracker against.

use super::{
    AGENT, CALLER, DialogConfig, DialogReport, Interruption, Overlap, PerParty, ResponseLatency,
    TalkTime, Turn, TurnKind, frames_of, seconds, speaker,
};
use crate::dsp::vad::VoiceActivity;
use crate::features::FrameFeatures;

/// Segments `[start, end)` where `bits` is true.
fn segments(bits: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (t, &b) in bits.iter().enumerate() {
        match (b, start) {
            (true, None) => start = Some(t),
            (false, Some(s)) => {
                out.push((s, t));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, bits.len()));
    }
    out
}

fn quantile(values: &[u64], fraction: f64, cap: u64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<u64> = values.iter().map(|&x| x.min(cap)).collect();
    v.sort_unstable();
    let k = ((fraction * v.len() as f64).ceil() as usize).max(1);
    Some(seconds(v[k - 1]))
}

pub(super) fn reference(
    config: &DialogConfig,
    agent: &[FrameFeatures],
    caller: &[FrameFeatures],
) -> DialogReport {
    let n = agent.len();
    let frames = [agent, caller];
    let delay = frames_of(config.crosstalk_max_delay_s) as usize;
    let bridge = frames_of(config.pause_bridge_s) as usize;
    let min_speech = (frames_of(config.min_speech_s) as usize).max(1);
    let bc_max = frames_of(config.backchannel_max_s) as usize;
    let min_other = frames_of(config.interruption_min_other_speaking_s) as usize;
    let min_overlap = frames_of(config.interruption_min_overlap_s) as usize;
    let latency_cap = frames_of(config.response_latency_histogram_max_s);

    // 1. Crosstalk gate, noise floor and tail frames.
    let is_speech = |p: usize, t: usize| frames[p][t].dialog_activity == VoiceActivity::Speech;
    let finite = |x: f32| if x.is_finite() { x } else { f32::NEG_INFINITY };
    let rise = super::crosstalk::NOISE_FLOOR_RISE_DB_PER_S * crate::dsp::FRAME_PERIOD_S as f32;
    let mut rejected = [0u64; 2];
    let mut speech = [vec![false; n], vec![false; n]];
    let mut tail = [vec![false; n], vec![false; n]];
    for p in [AGENT, CALLER] {
        let mut floor: Option<f32> = None;
        for t in 0..n {
            let level = finite(frames[p][t].loudness_db);
            let f = floor.map_or(level, |f| (f + rise).min(level));
            floor = Some(f);
            let o = 1 - p;
            let other_max = (t.saturating_sub(delay)..=t)
                .filter(|&u| is_speech(o, u) && frames[o][u].loudness_db.is_finite())
                .map(|u| frames[o][u].loudness_db)
                .fold(f32::NEG_INFINITY, f32::max);
            let leakage = level < other_max - config.crosstalk_margin_db
                || (other_max.is_finite() && level <= f + config.tail_margin_db);
            if is_speech(p, t) {
                speech[p][t] = !leakage;
                rejected[p] += u64::from(leakage);
            } else {
                tail[p][t] = !leakage && level > f + config.tail_margin_db;
            }
        }
    }

    // 2. Runs: speech joined over pauses shorter than the bridge, continued by tails, kept with
    // enough speech.
    let tail_frames = frames_of(config.tail_max_s) as usize;
    let mut talking = [vec![false; n], vec![false; n]];
    for p in [AGENT, CALLER] {
        // (start, last speech, last talking frame, speech frames)
        let mut open: Option<(usize, usize, usize, usize)> = None;
        let close = |run: (usize, usize, usize, usize), talking: &mut Vec<bool>| {
            if run.3 >= min_speech {
                talking[run.0..=run.2].fill(true);
            }
        };
        for t in 0..n {
            if speech[p][t] {
                let run = open.get_or_insert((t, t, t, 0));
                run.1 = t;
                run.2 = t;
                run.3 += 1;
            } else if let Some(run) = open.as_mut() {
                if tail[p][t] && run.2 + 1 == t && t - run.1 <= tail_frames {
                    run.2 = t;
                } else if t - run.2 >= bridge {
                    close(*run, &mut talking[p]);
                    open = None;
                }
            }
        }
        if let Some(run) = open {
            close(run, &mut talking[p]);
        }
    }

    // 3. Turns, overlaps, interruptions, responses.
    let both: Vec<bool> = (0..n).map(|t| talking[0][t] && talking[1][t]).collect();
    let turn_segments = [segments(&talking[0]), segments(&talking[1])];
    let turn_at = |p: usize, t: usize| {
        turn_segments[p]
            .iter()
            .find(|&&(s, e)| s <= t && t < e)
            .copied()
    };
    let is_backchannel = |p: usize, (s, e): (usize, usize)| {
        turn_at(1 - p, s).is_some_and(|host| e <= host.1) && e - s <= bc_max
    };

    let mut overlaps = Vec::new();
    let mut interruptions = Vec::new();
    let mut interrupting_turns = Vec::new();
    for (os, oe) in segments(&both) {
        let started = [AGENT, CALLER].map(|p| turn_at(p, os).unwrap().0 == os);
        let by = match started {
            [true, false] => Some(AGENT),
            [false, true] => Some(CALLER),
            _ => None,
        };
        overlaps.push(Overlap {
            start_s: seconds(os as u64),
            end_s: seconds(oe as u64),
            started_by: by.map(speaker),
        });
        if let Some(by) = by {
            let own = turn_at(by, os).unwrap();
            let other = turn_at(1 - by, os).unwrap();
            if os - other.0 >= min_other && !is_backchannel(by, own) && oe - os >= min_overlap {
                interruptions.push(Interruption {
                    t_s: seconds(os as u64),
                    by: speaker(by),
                    overlap_s: seconds((oe - os) as u64),
                });
                interrupting_turns.push((by, own.0));
            }
        }
    }

    let mut turns = Vec::new();
    let mut counts = [[0u64; 3]; 2]; // turns, backchannels, interruptions
    let mut longest = [0u64; 2];
    let mut latencies: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for p in [AGENT, CALLER] {
        for &(s, e) in &turn_segments[p] {
            let kind = if is_backchannel(p, (s, e)) {
                counts[p][1] += 1;
                TurnKind::Backchannel
            } else {
                counts[p][0] += 1;
                longest[p] = longest[p].max((e - s) as u64);
                if interrupting_turns.contains(&(p, s)) {
                    counts[p][2] += 1;
                    TurnKind::Interruption
                } else {
                    TurnKind::Turn
                }
            };
            turns.push(Turn {
                speaker: speaker(p),
                start_s: seconds(s as u64),
                end_s: seconds(e as u64),
                kind,
            });
            if talking[1 - p][s] {
                continue;
            }
            let last_end = |q: usize| {
                turn_segments[q]
                    .iter()
                    .filter(|&&seg| seg.1 <= s && !is_backchannel(q, seg))
                    .map(|seg| seg.1)
                    .max()
            };
            if let Some(other_end) = last_end(1 - p)
                && last_end(p).is_none_or(|end| end < other_end)
            {
                latencies[p].push((s - other_end) as u64);
            }
        }
    }

    let count = |bits: &Vec<bool>| bits.iter().filter(|&&b| b).count() as u64;
    let silence = (0..n).filter(|&t| !talking[0][t] && !talking[1][t]).count() as u64;
    DialogReport {
        duration_s: seconds(n as u64),
        talk: TalkTime {
            agent_s: seconds(count(&talking[0])),
            caller_s: seconds(count(&talking[1])),
            overlap_s: seconds(count(&both)),
            silence_s: seconds(silence),
        },
        turns,
        overlaps,
        interruptions,
        response_latency_s: ResponseLatency {
            agent_median: quantile(&latencies[0], 0.5, latency_cap),
            caller_median: quantile(&latencies[1], 0.5, latency_cap),
            agent_p90: quantile(&latencies[0], 0.9, latency_cap),
            caller_p90: quantile(&latencies[1], 0.9, latency_cap),
            agent_count: latencies[0].len() as u64,
            caller_count: latencies[1].len() as u64,
        },
        longest_monologue_s: PerParty {
            agent: seconds(longest[0]),
            caller: seconds(longest[1]),
        },
        turn_count: PerParty {
            agent: counts[0][0],
            caller: counts[1][0],
        },
        backchannel_count: PerParty {
            agent: counts[0][1],
            caller: counts[1][1],
        },
        interruption_count: PerParty {
            agent: counts[0][2],
            caller: counts[1][2],
        },
        crosstalk_rejected_s: PerParty {
            agent: seconds(rejected[0]),
            caller: seconds(rejected[1]),
        },
    }
}
