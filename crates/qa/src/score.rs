//! The measured facts of one call ([`CallFacts`], named as in [`super::rubric::FACTS`]) and the
//! score of a call against a rubric ([`score_call`]): each item's result with its evidence.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rubric::{CUE_COUNT_PREFIX, FACTS, Rubric};
use attune_core::call::{CallOutcome, EmotionPoint};
use attune_core::cues::{CueKind, CueTransition};
use attune_core::dialog::{Speaker, TurnKind};
use attune_core::empathy::{EmpathyReport, EmpathyScore};

/// A moment or stretch of the call that backs a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceSpan {
    pub start_s: f64,
    pub end_s: f64,
    pub label: String,
}

/// One measured fact: its value (None: the call gives no basis, see `reason`) and evidence.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Fact {
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub evidence: Vec<EvidenceSpan>,
}

impl Fact {
    fn known(value: f64, evidence: Vec<EvidenceSpan>) -> Self {
        Self {
            value: Some(value),
            reason: None,
            evidence,
        }
    }

    fn unknown(reason: &str) -> Self {
        Self {
            value: None,
            reason: Some(reason.to_owned()),
            evidence: Vec::new(),
        }
    }
}

/// Every fact of a call, by name.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CallFacts(pub BTreeMap<String, Fact>);

fn span(start_s: f64, end_s: f64, label: impl Into<String>) -> EvidenceSpan {
    EvidenceSpan {
        start_s: round_ms(start_s),
        end_s: round_ms(end_s),
        label: label.into(),
    }
}

fn round_ms(t_s: f64) -> f64 {
    (t_s * 1000.0).round() / 1000.0
}

/// Points of a party's judged windows (abstentions left out).
fn judged(points: &[EmotionPoint]) -> impl Iterator<Item = &EmotionPoint> {
    points.iter().filter(|p| p.emotion.is_some())
}

/// Why no fact of a call without speech applies.
pub const NO_SPEECH: &str = "no speech in the recording: neither party talks";

/// Judgements compared at the start and the end of the call: up to this many each.
const CHANGE_POINTS: usize = 3;

impl CallFacts {
    /// The facts of a mono recording: none can be measured.
    pub fn not_applicable(reason: &str) -> Self {
        let mut facts = BTreeMap::new();
        for def in FACTS {
            facts.insert(def.name.to_owned(), Fact::unknown(reason));
        }
        for kind in CueKind::ALL {
            facts.insert(
                format!("{CUE_COUNT_PREFIX}{}", kind.as_str()),
                Fact::unknown(reason),
            );
        }
        Self(facts)
    }

    /// Measures every fact of a two-party call. A call in which neither party speaks (empty,
    /// silent or noise only) has no applicable fact, so it scores n/a rather than a pass.
    pub fn measure(outcome: &CallOutcome) -> Self {
        let talk = outcome.dialog.talk;
        if talk.agent_s + talk.caller_s <= 0.0 {
            return Self::not_applicable(NO_SPEECH);
        }
        let mut facts = BTreeMap::new();
        let mut put = |name: &str, fact: Fact| {
            facts.insert(name.to_owned(), fact);
        };
        let report = &outcome.dialog;
        let mut turns: Vec<_> = report.turns.iter().collect();
        turns.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));

        put(
            "agent_first_speech_s",
            match turns.iter().find(|t| t.speaker == Speaker::Agent) {
                Some(t) => Fact::known(
                    round_ms(t.start_s),
                    vec![span(0.0, t.start_s, "call start to the agent's first turn")],
                ),
                None => Fact::unknown("the agent never speaks"),
            },
        );

        let talk = report.talk;
        let both = talk.agent_s + talk.caller_s;
        put(
            "agent_talk_share",
            if both > 0.0 {
                Fact::known(
                    talk.agent_s / both,
                    vec![span(
                        0.0,
                        outcome.duration_s,
                        format!(
                            "agent {:.1} s, caller {:.1} s of talk",
                            talk.agent_s, talk.caller_s
                        ),
                    )],
                )
            } else {
                Fact::unknown("nobody talks")
            },
        );
        put(
            "overlap_share",
            if outcome.duration_s > 0.0 {
                Fact::known(
                    talk.overlap_s / outcome.duration_s,
                    report
                        .overlaps
                        .iter()
                        .map(|o| span(o.start_s, o.end_s, "both talk"))
                        .collect(),
                )
            } else {
                Fact::unknown("empty recording")
            },
        );

        for (name, by) in [
            ("agent_interruptions", Speaker::Agent),
            ("caller_interruptions", Speaker::Caller),
        ] {
            let spans: Vec<_> = report
                .interruptions
                .iter()
                .filter(|i| i.by == by)
                .map(|i| {
                    span(
                        i.t_s,
                        i.t_s + i.overlap_s,
                        format!("interruption ({:.1} s overlap)", i.overlap_s),
                    )
                })
                .collect();
            put(name, Fact::known(spans.len() as f64, spans));
        }

        // Silences between the first and the last turn.
        let mut longest: Option<(f64, f64)> = None;
        let mut talk_end_s: Option<f64> = None;
        for t in &turns {
            if let Some(end) = talk_end_s
                && t.start_s > end
                && longest.is_none_or(|(s, e)| t.start_s - end > e - s)
            {
                longest = Some((end, t.start_s));
            }
            talk_end_s = Some(talk_end_s.map_or(t.end_s, |e: f64| e.max(t.end_s)));
        }
        put(
            "longest_silence_s",
            match (longest, talk_end_s) {
                (Some((s, e)), _) => {
                    Fact::known(round_ms(e - s), vec![span(s, e, "longest silence")])
                }
                (None, Some(_)) => Fact::known(0.0, Vec::new()),
                (None, None) => Fact::unknown("nobody talks"),
            },
        );

        let latency = &report.response_latency_s;
        // The agent's answers: an agent turn starting in silence after a caller turn.
        let mut answers = Vec::new();
        for pair in turns
            .iter()
            .filter(|t| t.kind != TurnKind::Backchannel)
            .collect::<Vec<_>>()
            .windows(2)
        {
            let (prev, next) = (pair[0], pair[1]);
            if prev.speaker == Speaker::Caller
                && next.speaker == Speaker::Agent
                && next.start_s >= prev.end_s
            {
                answers.push((prev.end_s, next.start_s));
            }
        }
        answers.sort_by(|a, b| (b.1 - b.0).total_cmp(&(a.1 - a.0)));
        let slowest: Vec<_> = answers
            .iter()
            .take(3)
            .map(|&(s, e)| span(s, e, format!("agent answered after {:.1} s", e - s)))
            .collect();
        for (name, value) in [
            ("agent_response_gap_median_s", latency.agent_median),
            ("agent_response_gap_p90_s", latency.agent_p90),
        ] {
            put(
                name,
                match value {
                    Some(v) => Fact::known(round_ms(v), slowest.clone()),
                    None => Fact::unknown("the agent never answers the caller after a pause"),
                },
            );
        }

        put(
            "agent_longest_monologue_s",
            match turns
                .iter()
                .filter(|t| t.speaker == Speaker::Agent && t.kind != TurnKind::Backchannel)
                .max_by(|a, b| a.duration_s().total_cmp(&b.duration_s()))
            {
                Some(t) => Fact::known(
                    round_ms(t.duration_s()),
                    vec![span(t.start_s, t.end_s, "agent's longest turn")],
                ),
                None => Fact::unknown("the agent never speaks"),
            },
        );

        let calm: Vec<&EmotionPoint> = judged(&outcome.agent_emotion).collect();
        let window_s = attune_core::prosody::windows::WINDOW_SPEECH_S;
        match calm.iter().min_by(|a, b| a.calmness.total_cmp(&b.calmness)) {
            Some(lowest) => {
                let mean =
                    calm.iter().map(|p| f64::from(p.calmness)).sum::<f64>() / calm.len() as f64;
                put(
                    "agent_calmness_min",
                    Fact::known(
                        f64::from(lowest.calmness),
                        vec![span(
                            (lowest.t_s - window_s).max(0.0),
                            lowest.t_s,
                            format!("agent calmness {:.0}", lowest.calmness),
                        )],
                    ),
                );
                put("agent_calmness_mean", Fact::known(mean, Vec::new()));
            }
            None => {
                let why = "too little agent speech to judge calmness";
                put("agent_calmness_min", Fact::unknown(why));
                put("agent_calmness_mean", Fact::unknown(why));
            }
        }

        let caller: Vec<&EmotionPoint> = judged(&outcome.caller_emotion).collect();
        if caller.len() > CHANGE_POINTS {
            let n = CHANGE_POINTS;
            let first = &caller[..n];
            let last = &caller[caller.len() - n..];
            let mean = |ps: &[&EmotionPoint], f: fn(&EmotionPoint) -> f32| {
                ps.iter().map(|p| f64::from(f(p))).sum::<f64>() / ps.len() as f64
            };
            let evidence = |label: &str, value: f64| {
                vec![
                    span(
                        (first[0].t_s - window_s).max(0.0),
                        first[n - 1].t_s,
                        format!("start: caller {label} {:.2}", mean(first, |p| p.valence)),
                    ),
                    span(
                        (last[0].t_s - window_s).max(0.0),
                        last[n - 1].t_s,
                        format!("end: caller {label} change {value:+.2}"),
                    ),
                ]
            };
            let valence = mean(last, |p| p.valence) - mean(first, |p| p.valence);
            let arousal = mean(last, |p| p.arousal) - mean(first, |p| p.arousal);
            put(
                "caller_valence_change",
                Fact::known(valence, evidence("valence", valence)),
            );
            put(
                "caller_arousal_change",
                Fact::known(arousal, evidence("arousal", arousal)),
            );
        } else {
            let why = "too little caller speech to compare the start and the end";
            put("caller_valence_change", Fact::unknown(why));
            put("caller_arousal_change", Fact::unknown(why));
        }
        match caller.len() {
            0 => put(
                "caller_end_upset_probability",
                Fact::unknown("too little caller speech to judge"),
            ),
            len => {
                let last = &caller[len.saturating_sub(CHANGE_POINTS)..];
                let p = last
                    .iter()
                    .map(|p| f64::from(p.probabilities[0]))
                    .sum::<f64>()
                    / last.len() as f64;
                put(
                    "caller_end_upset_probability",
                    Fact::known(
                        p,
                        vec![span(
                            (last[0].t_s - window_s).max(0.0),
                            last[last.len() - 1].t_s,
                            format!("caller's last judgements: angry {p:.2}"),
                        )],
                    ),
                );
            }
        }

        let agent = &outcome.prosody.agent;
        put(
            "agent_speaking_rate_syl_per_s",
            if agent.speech_duration_s > 0.0 {
                Fact::known(agent.speaking_rate_syl_per_s, Vec::new())
            } else {
                Fact::unknown("the agent never speaks")
            },
        );

        empathy_facts(&outcome.empathy, &mut put);

        for kind in CueKind::ALL {
            let spans: Vec<_> = outcome
                .cues
                .iter()
                .filter(|c| c.kind == kind && c.event == CueTransition::Open)
                .map(|c| span(c.start_s, c.end_s, kind.as_str()))
                .collect();
            put(
                &format!("{CUE_COUNT_PREFIX}{}", kind.as_str()),
                Fact::known(spans.len() as f64, spans),
            );
        }
        Self(facts)
    }
}

/// The empathy measures as facts (evidence: the measure's moments).
fn empathy_facts(empathy: &EmpathyReport, put: &mut impl FnMut(&str, Fact)) {
    fn moments<M>(s: &EmpathyScore<M>, only: Option<&str>) -> Vec<EvidenceSpan> {
        s.evidence
            .iter()
            .filter(|m| only.is_none_or(|w| m.what.contains(w)))
            .map(|m| span(m.t_s, m.t_s, m.what.clone()))
            .collect()
    }
    fn score_fact<M>(s: &EmpathyScore<M>) -> Fact {
        match s.score {
            Some(v) => Fact::known(v, moments(s, None)),
            None => Fact::unknown(s.reason.as_deref().unwrap_or("not measured")),
        }
    }
    let (al, at, de) = (
        &empathy.active_listening,
        &empathy.attunement,
        &empathy.de_escalation,
    );
    put("empathy_active_listening_score", score_fact(al));
    put("empathy_attunement_score", score_fact(at));
    put("empathy_de_escalation_score", score_fact(de));
    let or_reason = |value: Option<f64>, evidence: Vec<EvidenceSpan>, why: &str| match value {
        Some(v) => Fact::known(v, evidence),
        None => Fact::unknown(why),
    };
    put(
        "agent_backchannels_per_min",
        or_reason(
            al.measures.backchannels_per_min,
            moments(al, Some("backchannel")),
            al.reason.as_deref().unwrap_or("too little caller talk"),
        ),
    );
    put(
        "agent_interruptions_while_caller_upset",
        or_reason(
            (al.measures.caller_upset_s > 0.0)
                .then_some(al.measures.interruptions_while_upset as f64),
            moments(al, Some("interrupted the upset caller")),
            "the caller was never upset (no caller_upset cue)",
        ),
    );
    put(
        "agent_pause_before_emotional_answer_s",
        or_reason(
            al.measures.pause_before_emotional_answer_median_s,
            moments(al, Some("emotional caller turn")),
            "no emotional caller turn (caller_upset or caller_anxious open) was answered",
        ),
    );
    put(
        "agent_stays_below_raised_caller_share",
        or_reason(
            at.measures.stays_below_share,
            moments(at, Some("raised caller")),
            "no raised caller turn was answered",
        ),
    );
    put(
        "caller_upset_to_close_s",
        or_reason(
            de.measures.upset_to_close_s,
            moments(de, Some("caller_upset")),
            if de.measures.upset_episodes == 0 {
                "the caller was never upset (no caller_upset cue)"
            } else {
                "caller_upset stayed open to the end of the call"
            },
        ),
    );
}

/// How an item came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemResult {
    Pass,
    Fail,
    NotApplicable,
}

impl ItemResult {
    /// The name of the result, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::NotApplicable => "not_applicable",
        }
    }
}

/// One rubric item's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemScore {
    pub section: String,
    pub id: String,
    pub title: String,
    pub weight: f64,
    pub rule: String,
    pub result: ItemResult,
    /// The fact's measured value (None when not applicable).
    pub value: Option<f64>,
    /// Why the item is not applicable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub auto_fail: bool,
    pub evidence: Vec<EvidenceSpan>,
}

/// The QA score of one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QaScore {
    /// Weight of passed items / weight of applicable items × 100, or 0 when an automatic-fail
    /// item failed; None when no item applies.
    pub score_pct: Option<f64>,
    /// The score before automatic fails.
    pub raw_score_pct: Option<f64>,
    pub auto_fail: bool,
    pub items: Vec<ItemScore>,
    pub rubric_version: String,
    pub rubric_digest: String,
}

/// Scores a call's facts against a rubric. Pure and deterministic.
pub fn score_call(rubric: &Rubric, facts: &CallFacts) -> QaScore {
    let mut items = Vec::with_capacity(rubric.items.len());
    let (mut passed_weight, mut applicable_weight) = (0.0, 0.0);
    let mut auto_fail = false;
    for item in &rubric.items {
        let fact = facts.0.get(&item.fact).cloned().unwrap_or_default();
        let (result, reason) = match fact.value {
            None => (
                ItemResult::NotApplicable,
                Some(fact.reason.unwrap_or_else(|| "not measured".to_owned())),
            ),
            Some(v) => {
                let ok = item.min.is_none_or(|lo| v >= lo) && item.max.is_none_or(|hi| v <= hi);
                (
                    if ok {
                        ItemResult::Pass
                    } else {
                        ItemResult::Fail
                    },
                    None,
                )
            }
        };
        if result != ItemResult::NotApplicable {
            applicable_weight += item.weight;
        }
        if result == ItemResult::Pass {
            passed_weight += item.weight;
        }
        if result == ItemResult::Fail && item.auto_fail {
            auto_fail = true;
        }
        items.push(ItemScore {
            section: item.section.clone(),
            id: item.id.clone(),
            title: item.title.clone(),
            weight: item.weight,
            rule: item.rule_text(),
            result,
            value: fact.value.map(|v| (v * 1e4).round() / 1e4),
            reason,
            auto_fail: item.auto_fail,
            evidence: if result == ItemResult::NotApplicable {
                Vec::new()
            } else {
                fact.evidence
            },
        });
    }
    let raw = (applicable_weight > 0.0)
        .then(|| (passed_weight / applicable_weight * 1000.0).round() / 10.0);
    QaScore {
        score_pct: if auto_fail { raw.map(|_| 0.0) } else { raw },
        raw_score_pct: raw,
        auto_fail,
        items,
        rubric_version: rubric.version.clone(),
        rubric_digest: rubric.digest.clone(),
    }
}
