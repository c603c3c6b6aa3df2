//! Caller-mood figures of composed calls beyond [`super::cues`]'s upset/calm ones, used by
//! `attune eval cues`:
//!
//! - **Anxious calls** ([`crate::compose::random::CallerArc::Anxious`]): the stretch runs from
//!   the first fearful caller utterance to the last one's end; `caller_anxious` opening at or
//!   after its start and by its end + [`super::cues::MISS_AFTER_STRETCH_S`] flags it, one
//!   opening before it is a false open. Any `caller_upset` on such a call is counted apart (an
//!   anxious caller is not an angry one).
//! - **Timeline**: each caller utterance (not a backchannel) is read from the caller-emotion
//!   points the call emitted while it was being spoken (from 1 s after its start, so the 2.5 s
//!   window holds at least a second of it, to 0.25 s after its end): the class with the highest
//!   mean probability over those points, abstentions left out. An utterance without a judged
//!   point is not counted.

use serde::Serialize;

use super::cues::MISS_AFTER_STRETCH_S;
use crate::compose::annotation::{CallAnnotation, PlacedUtterance, Speaker, UtteranceKind};
use crate::compose::random::{
    ANXIOUS_EMOTION_CODES, CALM_EMOTION_CODES, UPSET_EMOTION_CODES, ravdess_emotion_code,
};
use attune_core::call::EmotionPoint;
use attune_core::cues::{CueEvent, CueKind, CueTransition};
use attune_core::model::labels::CLASS_NAMES;

/// How long after an utterance's start its first judged point counts, seconds.
const TIMELINE_LEAD_S: f64 = 1.0;
/// How long after an utterance's end a judged point still counts, seconds.
const TIMELINE_TAIL_S: f64 = 0.25;

fn caller_utterances<'a>(
    truth: &'a CallAnnotation,
    codes: &'a [u8],
) -> impl Iterator<Item = &'a PlacedUtterance> + 'a {
    truth
        .utterances
        .iter()
        .filter(|u| u.speaker == Speaker::Caller && u.kind != UtteranceKind::Backchannel)
        .filter(move |u| ravdess_emotion_code(&u.source).is_some_and(|c| codes.contains(&c)))
}

/// The span from the first caller utterance with one of `codes` to the last one's end.
pub fn stretch_of(truth: &CallAnnotation, codes: &[u8]) -> Option<(f64, f64)> {
    let (mut start, mut end) = (f64::INFINITY, f64::NEG_INFINITY);
    for u in caller_utterances(truth, codes) {
        start = start.min(u.start_s);
        end = end.max(u.end_s);
    }
    (start.is_finite() && end >= start).then_some((start, end))
}

/// The anxious stretch of a composed call (fearful caller utterances).
pub fn anxious_stretch(truth: &CallAnnotation) -> Option<(f64, f64)> {
    stretch_of(truth, &ANXIOUS_EMOTION_CODES)
}

/// caller_anxious on one anxious call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnxiousCallResult {
    pub anxious_stretch_s: (f64, f64),
    /// Delay from the stretch start to the first caller_anxious open at or after it (within the
    /// stretch + [`MISS_AFTER_STRETCH_S`]).
    pub anxious_delay_s: Option<f64>,
    /// caller_anxious opens before the stretch.
    pub early_anxious_opens: usize,
    /// caller_upset opens anywhere in the call.
    pub upset_opens: usize,
}

/// Scores an anxious call; None when it has no anxious stretch.
pub fn score_anxious_call(truth: &CallAnnotation, cues: &[CueEvent]) -> Option<AnxiousCallResult> {
    let (start, end) = anxious_stretch(truth)?;
    let mut result = AnxiousCallResult {
        anxious_stretch_s: (start, end),
        anxious_delay_s: None,
        early_anxious_opens: 0,
        upset_opens: 0,
    };
    for cue in cues.iter().filter(|c| c.event == CueTransition::Open) {
        match cue.kind {
            CueKind::CallerUpset => result.upset_opens += 1,
            CueKind::CallerAnxious if cue.t_s < start => result.early_anxious_opens += 1,
            CueKind::CallerAnxious
                if result.anxious_delay_s.is_none() && cue.t_s <= end + MISS_AFTER_STRETCH_S =>
            {
                result.anxious_delay_s = Some(cue.t_s - start);
            }
            _ => {}
        }
    }
    Some(result)
}

/// How the caller-emotion timeline read the caller's utterances, by their true mood.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TimelineCounts {
    /// Angry/disgust utterances with a judged point, and those read angry.
    pub angry_turns: usize,
    pub angry_turns_read_angry: usize,
    /// Of the angry ones, read happy (arousal right, valence wrong).
    pub angry_turns_read_happy: usize,
    /// Neutral/calm utterances with a judged point, and those read angry.
    pub calm_turns: usize,
    pub calm_turns_read_angry: usize,
    /// Fearful utterances with a judged point, and those read anxious.
    pub anxious_turns: usize,
    pub anxious_turns_read_anxious: usize,
}

impl TimelineCounts {
    pub fn add(&mut self, other: &Self) {
        self.angry_turns += other.angry_turns;
        self.angry_turns_read_angry += other.angry_turns_read_angry;
        self.angry_turns_read_happy += other.angry_turns_read_happy;
        self.calm_turns += other.calm_turns;
        self.calm_turns_read_angry += other.calm_turns_read_angry;
        self.anxious_turns += other.anxious_turns;
        self.anxious_turns_read_anxious += other.anxious_turns_read_anxious;
    }
}

/// The class the timeline gave an utterance (see the module docs), None without a judged point.
pub fn utterance_reading(u: &PlacedUtterance, caller_points: &[EmotionPoint]) -> Option<usize> {
    let mut sum = [0f64; CLASS_NAMES.len()];
    let mut n = 0;
    for p in caller_points.iter().filter(|p| {
        p.party == Speaker::Caller
            && p.emotion.is_some()
            && p.t_s >= u.start_s + TIMELINE_LEAD_S
            && p.t_s <= u.end_s + TIMELINE_TAIL_S
    }) {
        for (s, v) in sum.iter_mut().zip(p.probabilities) {
            *s += f64::from(v);
        }
        n += 1;
    }
    (n > 0).then(|| {
        (0..sum.len())
            .max_by(|&a, &b| sum[a].total_cmp(&sum[b]))
            .unwrap_or(0)
    })
}

fn class_index(name: &str) -> usize {
    CLASS_NAMES
        .iter()
        .position(|c| *c == name)
        .unwrap_or(usize::MAX)
}

/// Counts how the timeline read a call's caller utterances.
pub fn timeline_counts(truth: &CallAnnotation, caller_points: &[EmotionPoint]) -> TimelineCounts {
    let (angry, happy, anxious) = (
        class_index("angry"),
        class_index("happy"),
        class_index("anxious"),
    );
    let mut c = TimelineCounts::default();
    for u in caller_utterances(truth, &UPSET_EMOTION_CODES) {
        if let Some(r) = utterance_reading(u, caller_points) {
            c.angry_turns += 1;
            c.angry_turns_read_angry += usize::from(r == angry);
            c.angry_turns_read_happy += usize::from(r == happy);
        }
    }
    for u in caller_utterances(truth, &CALM_EMOTION_CODES) {
        if let Some(r) = utterance_reading(u, caller_points) {
            c.calm_turns += 1;
            c.calm_turns_read_angry += usize::from(r == angry);
        }
    }
    for u in caller_utterances(truth, &ANXIOUS_EMOTION_CODES) {
        if let Some(r) = utterance_reading(u, caller_points) {
            c.anxious_turns += 1;
            c.anxious_turns_read_anxious += usize::from(r == anxious);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use attune_core::prosody::baseline::Normalisation;

    fn utterance(source: &str, start_s: f64, end_s: f64) -> PlacedUtterance {
        PlacedUtterance {
            speaker: Speaker::Caller,
            channel: 1,
            source: source.to_owned(),
            start_s,
            end_s,
            level_dbfs: -25.0,
            kind: UtteranceKind::Turn,
        }
    }

    fn point(t_s: f64, probabilities: [f32; 5]) -> EmotionPoint {
        EmotionPoint {
            t_s,
            party: Speaker::Caller,
            emotion: Some("x"),
            abstain_reason: None,
            probabilities,
            arousal: 0.5,
            valence: 0.0,
            confidence: 1.0,
            calmness: 50.0,
            normalisation: Normalisation::Global,
            speech_s: 2.5,
        }
    }

    #[test]
    fn reading_is_the_highest_mean_probability_inside_the_utterance() {
        let u = utterance("ravdess/Actor_01/03-01-05-01-01-01-01.wav", 10.0, 13.0);
        let points = [
            // Before the lead: ignored.
            point(10.5, [0.0, 0.0, 0.0, 0.0, 1.0]),
            point(11.5, [0.5, 0.0, 0.0, 0.4, 0.1]),
            point(12.5, [0.3, 0.0, 0.0, 0.6, 0.1]),
            // After the tail: ignored.
            point(13.5, [0.0, 0.0, 0.0, 1.0, 0.0]),
        ];
        assert_eq!(utterance_reading(&u, &points), Some(3));
        assert_eq!(utterance_reading(&u, &points[..1]), None);
    }
}
