//! Active listening: does the agent signal it is listening, give an upset caller room, pause
//! before answering an emotional turn, and keep from talking over the caller?
//!
//! Score = 100 × the mean of the parts that apply (each 0–1, thresholds in
//! [`super::EmpathyConfig`]): backchannels per minute of caller speech against the target; the
//! agent's interruptions while `caller_upset` is open (only when it opened); the median pause
//! before answering an emotional caller turn (one during which `caller_upset` or
//! `caller_anxious` was open; only when there is one); agent-started overlap seconds per minute
//! of caller speech (backchannels excluded).

use serde::Serialize;

use super::{
    Context, EmpathyConfig, EmpathyScore, Moment, in_spans, median, overlaps_spans, ramp, round3,
};
use crate::dialog::{Speaker, TurnKind};

/// The measures behind the active-listening score.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ActiveListeningMeasures {
    /// The caller's talk time, minutes.
    pub caller_talk_min: f64,
    pub agent_backchannels: u64,
    /// Agent backchannels per minute of caller talk.
    pub backchannels_per_min: Option<f64>,
    /// Time `caller_upset` was open, seconds.
    pub caller_upset_s: f64,
    /// Agent interruptions whose onset fell while `caller_upset` was open.
    pub interruptions_while_upset: u64,
    pub agent_interruptions: u64,
    /// Ordinary caller turns during which `caller_upset` or `caller_anxious` was open, that
    /// the agent answered.
    pub emotional_turns_answered: u64,
    /// Median of (agent answer start − emotional caller turn end), seconds; negative: the agent
    /// started before the caller finished.
    pub pause_before_emotional_answer_median_s: Option<f64>,
    /// Overlap started by the agent (not backchannels) per minute of caller talk, seconds.
    pub talk_over_s_per_min: Option<f64>,
}

pub(crate) fn measure(
    ctx: &Context,
    config: &EmpathyConfig,
) -> EmpathyScore<ActiveListeningMeasures> {
    let input = ctx.input;
    let caller_talk_min = input.caller_talk_s / 60.0;
    let mut evidence = Vec::new();
    let backchannels: Vec<_> = ctx
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Agent && t.kind == TurnKind::Backchannel)
        .collect();
    let caller_upset_s: f64 = ctx.upset.iter().map(|(s, e)| e - s).sum();
    let agent_interruptions: Vec<_> = input
        .interruptions
        .iter()
        .filter(|i| i.by == Speaker::Agent)
        .collect();
    let upset_interruptions: Vec<_> = agent_interruptions
        .iter()
        .filter(|i| in_spans(&ctx.upset, i.t_s))
        .collect();
    for i in &upset_interruptions {
        evidence.push(Moment::new(
            i.t_s,
            format!(
                "agent interrupted the upset caller ({:.1} s of overlap)",
                i.overlap_s
            ),
        ));
    }
    let emotional: Vec<_> = ctx
        .answer_pairs()
        .into_iter()
        .filter(|(c, _)| {
            overlaps_spans(&ctx.upset, c.start_s, c.end_s)
                || overlaps_spans(&ctx.anxious, c.start_s, c.end_s)
        })
        .collect();
    let pauses: Vec<f64> = emotional.iter().map(|(c, a)| a.start_s - c.end_s).collect();
    for ((_, a), pause) in emotional.iter().zip(&pauses) {
        let what = if *pause < 0.0 {
            format!(
                "agent answered an emotional caller turn {:.1} s before it ended",
                -pause
            )
        } else {
            format!("agent paused {pause:.1} s before answering an emotional caller turn")
        };
        evidence.push(Moment::new(a.start_s, what));
    }
    // Overlap the agent started that is not one of its backchannels.
    let talk_over_s: f64 = input
        .overlaps
        .iter()
        .filter(|o| o.started_by == Some(Speaker::Agent))
        .filter(|o| {
            !backchannels
                .iter()
                .any(|b| (b.start_s - o.start_s).abs() < 0.05)
        })
        .map(|o| o.end_s - o.start_s)
        .sum();
    let enough = input.caller_talk_s >= config.min_caller_talk_s;
    let per_min = |x: f64| (enough && caller_talk_min > 0.0).then(|| round3(x / caller_talk_min));
    let measures = ActiveListeningMeasures {
        caller_talk_min: round3(caller_talk_min),
        agent_backchannels: backchannels.len() as u64,
        backchannels_per_min: per_min(backchannels.len() as f64),
        caller_upset_s: round3(caller_upset_s),
        interruptions_while_upset: upset_interruptions.len() as u64,
        agent_interruptions: agent_interruptions.len() as u64,
        emotional_turns_answered: emotional.len() as u64,
        pause_before_emotional_answer_median_s: median(&pauses).map(round3),
        talk_over_s_per_min: per_min(talk_over_s),
    };
    if !enough {
        return EmpathyScore::unscored(
            format!(
                "the caller talked {:.1} s: active listening needs {} s of caller talk",
                input.caller_talk_s, config.min_caller_talk_s
            ),
            measures,
            evidence,
        );
    }
    for b in backchannels.iter().take(5) {
        evidence.push(Moment::new(b.start_s, "agent backchannel"));
    }
    let mut parts = Vec::new();
    if let Some(bpm) = measures.backchannels_per_min {
        parts.push(ramp(bpm, 0.0, config.target_backchannels_per_min));
    }
    if !ctx.upset.is_empty() {
        parts.push(ramp(
            upset_interruptions.len() as f64,
            config.upset_interruptions_for_zero,
            0.0,
        ));
    }
    if let Some(p) = measures.pause_before_emotional_answer_median_s {
        parts.push(if p < config.answer_pause_good_min_s {
            ramp(
                p,
                config.answer_pause_zero_below_s,
                config.answer_pause_good_min_s,
            )
        } else {
            ramp(
                p,
                config.answer_pause_zero_above_s,
                config.answer_pause_good_max_s,
            )
        });
    }
    if let Some(over) = measures.talk_over_s_per_min {
        parts.push(ramp(over, config.talk_over_s_per_min_for_zero, 0.0));
    }
    let score = 100.0 * parts.iter().sum::<f64>() / parts.len().max(1) as f64;
    EmpathyScore::scored(score, measures, evidence)
}
