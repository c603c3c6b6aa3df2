//! De-escalation: the caller's anger trajectory after `caller_upset` opened — how long until it
//! closed and until `caller_calmed_down`, whether the call ends calmer than its peak, and the
//! agent turns that preceded the turn-around (their rate, loudness against the agent's own
//! median, and the pause before each).
//!
//! Trajectory: the caller's angry probability (judged windows, abstentions left out), as the
//! running mean of `trajectory_windows`. Peak: its maximum at or after the first upset opening;
//! end: the mean of the last `trajectory_windows` windows; the call ends calmer when
//! end ≤ peak − `calmer_drop_probability`. Turn-around: the close of the first `caller_upset`
//! cue, when it closed before the call ended.
//!
//! Score (only when `caller_upset` opened) = 100 × (0.5 × calmed + 0.5 × ends calmer), calmed =
//! 0 when the upset never closed, else `calm_half_s` / (`calm_half_s` + time to close); ends
//! calmer = (peak − end) / `calmer_drop_probability`, at most 1.

use serde::Serialize;

use super::{Context, EmpathyConfig, EmpathyScore, Moment, median, round3};
use crate::cues::{CueKind, CueTransition};
use crate::dialog::Speaker;

/// One agent turn before the turn-around.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AgentTurnNote {
    pub start_s: f64,
    pub end_s: f64,
    pub rate_syl_per_s: Option<f64>,
    /// The turn's loudness minus the agent's median turn, dB.
    pub loudness_vs_own_median_db: Option<f64>,
    /// Gap after the caller's previous turn, seconds (negative: started over it).
    pub pause_before_s: Option<f64>,
}

/// The measures behind the de-escalation score.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DeEscalationMeasures {
    /// `caller_upset` cues opened.
    pub upset_episodes: u64,
    /// When the first opened (its span start), seconds.
    pub upset_start_s: Option<f64>,
    /// From that start to its close, seconds; None when it stayed open to the end.
    pub upset_to_close_s: Option<f64>,
    /// From that start to the first `caller_calmed_down` open after it, seconds.
    pub upset_to_calmed_s: Option<f64>,
    pub peak_angry_probability: Option<f64>,
    pub peak_t_s: Option<f64>,
    pub end_angry_probability: Option<f64>,
    pub ends_calmer_than_peak: Option<bool>,
    /// The turn-around (the first upset's close), seconds.
    pub turnaround_s: Option<f64>,
    /// Agent turns in the `turnaround_lookback_s` before the turn-around.
    pub turns_before_turnaround: Vec<AgentTurnNote>,
}

pub(crate) fn measure(ctx: &Context, config: &EmpathyConfig) -> EmpathyScore<DeEscalationMeasures> {
    let input = ctx.input;
    let mut evidence = Vec::new();
    let first = ctx.upset.first().copied();
    let closed_before_end = |end: f64| end < input.duration_s - 0.05;
    let upset_to_close_s = first
        .filter(|&(_, e)| closed_before_end(e))
        .map(|(s, e)| round3(e - s));
    let calmed_open = first.and_then(|(s, _)| {
        input
            .cues
            .iter()
            .find(|c| {
                c.kind == CueKind::CallerCalmedDown && c.event == CueTransition::Open && c.t_s >= s
            })
            .map(|c| c.t_s)
    });
    // The angry trajectory.
    let judged: Vec<(f64, f64)> = input
        .caller_emotion
        .iter()
        .filter(|p| p.emotion.is_some())
        .map(|p| (p.t_s, f64::from(p.probabilities[0])))
        .collect();
    let w = config.trajectory_windows.max(1);
    let smoothed: Vec<(f64, f64)> = (0..judged.len())
        .map(|i| {
            let from = (i + 1).saturating_sub(w);
            let slice = &judged[from..=i];
            (
                judged[i].0,
                slice.iter().map(|x| x.1).sum::<f64>() / slice.len() as f64,
            )
        })
        .collect();
    let since = first.map_or(0.0, |(s, _)| s);
    let peak = smoothed
        .iter()
        .filter(|(t, _)| *t >= since)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .copied();
    let end = (judged.len() >= w)
        .then(|| judged[judged.len() - w..].iter().map(|x| x.1).sum::<f64>() / w as f64);
    let ends_calmer = match (peak, end) {
        (Some((_, p)), Some(e)) => Some(e <= p - config.calmer_drop_probability),
        _ => None,
    };
    let turnaround_s = first.filter(|&(_, e)| closed_before_end(e)).map(|(_, e)| e);
    // The agent's turns before the turn-around.
    let agent_loud: Vec<f64> = ctx
        .main_turns(Speaker::Agent)
        .filter_map(|t| t.loudness_db)
        .collect();
    let agent_median = median(&agent_loud);
    let mut notes = Vec::new();
    if let Some(turn) = turnaround_s {
        let from = turn - config.turnaround_lookback_s;
        for (c, a) in ctx.answer_pairs() {
            if a.start_s < from || a.start_s > turn {
                continue;
            }
            let note = AgentTurnNote {
                start_s: round3(a.start_s),
                end_s: round3(a.end_s),
                rate_syl_per_s: a.rate_syl_per_s.map(round3),
                loudness_vs_own_median_db: match (a.loudness_db, agent_median) {
                    (Some(l), Some(m)) => Some(round3(l - m)),
                    _ => None,
                },
                pause_before_s: Some(round3(a.start_s - c.end_s)),
            };
            evidence.push(Moment::new(
                a.start_s,
                format!(
                    "agent turn before the turn-around: {} syl/s, {} dB against its median, {} s pause",
                    fmt(note.rate_syl_per_s),
                    fmt(note.loudness_vs_own_median_db),
                    fmt(note.pause_before_s)
                ),
            ));
            notes.push(note);
        }
    }
    if let Some((s, _)) = first {
        evidence.push(Moment::new(s, "caller_upset opened"));
    }
    if let Some(t) = turnaround_s {
        evidence.push(Moment::new(t, "caller_upset closed (turn-around)"));
    }
    if let Some(t) = calmed_open {
        evidence.push(Moment::new(t, "caller_calmed_down opened"));
    }
    if let Some((t, p)) = peak.filter(|_| first.is_some()) {
        evidence.push(Moment::new(t, format!("peak angry probability {p:.2}")));
    }
    let measures = DeEscalationMeasures {
        upset_episodes: ctx.upset.len() as u64,
        upset_start_s: first.map(|(s, _)| round3(s)),
        upset_to_close_s,
        upset_to_calmed_s: match (first, calmed_open) {
            (Some((s, _)), Some(c)) => Some(round3(c - s)),
            _ => None,
        },
        peak_angry_probability: peak.map(|p| round3(p.1)),
        peak_t_s: peak.map(|p| round3(p.0)),
        end_angry_probability: end.map(round3),
        ends_calmer_than_peak: ends_calmer,
        turnaround_s: turnaround_s.map(round3),
        turns_before_turnaround: notes,
    };
    if first.is_none() {
        return EmpathyScore::unscored(
            "the caller was never upset (no caller_upset cue): nothing to de-escalate",
            measures,
            evidence,
        );
    }
    let calmed = upset_to_close_s.map_or(0.0, |t| config.calm_half_s / (config.calm_half_s + t));
    let calmer = match (peak, end) {
        (Some((_, p)), Some(e)) => ((p - e) / config.calmer_drop_probability).clamp(0.0, 1.0),
        _ => 0.0,
    };
    EmpathyScore::scored(100.0 * (0.5 * calmed + 0.5 * calmer), measures, evidence)
}

fn fmt(x: Option<f64>) -> String {
    x.map_or_else(|| "?".to_owned(), |v| format!("{v:.2}"))
}
