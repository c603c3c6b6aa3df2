//! What is stored of a call ([`StoredCall`]): the columns queries filter on, its cues, its QA
//! items, and the whole result document. Built from a [`crate::CallReport`]
//! ([`StoredCall::from_report`]) or from a result file read back
//! ([`StoredCall::from_document`]), both through one typed [`ReportDigest`], so a scored
//! recording, a re-read result file and a live call at its end are stored the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::StoreError;
use super::backend::{Cell, Param};
use crate::CallReport;

/// A caller whose last judgements average at least this probability of `angry` "ended upset".
pub const ENDED_UPSET_PROBABILITY: f64 = 0.5;

/// One cue event of a stored call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct StoredCue {
    pub cue_id: i64,
    pub kind: String,
    pub party: String,
    pub severity: String,
    pub event: String,
    pub t_s: f64,
    pub start_s: f64,
    pub end_s: f64,
    /// The cue's evidence as JSON.
    pub evidence_json: String,
}

/// One QA item of a stored call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct StoredQaItem {
    pub section: String,
    pub item_id: String,
    pub title: String,
    pub weight: f64,
    pub rule: String,
    /// `pass`, `fail` or `not_applicable`.
    pub result: String,
    pub value: Option<f64>,
    pub auto_fail: bool,
    pub evidence_json: String,
}

/// A call as stored (serializable: the service's spool keeps it on disk until it is stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCall {
    pub call_id: String,
    /// `recording` or `live`.
    pub source: String,
    pub recording: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    /// When the call took place, RFC 3339 UTC (a recording: its file's modification time).
    pub call_at: String,
    pub duration_s: f64,
    pub agent_talk_s: Option<f64>,
    pub caller_talk_s: Option<f64>,
    pub overlap_s: Option<f64>,
    pub silence_s: Option<f64>,
    pub agent_interruptions: i64,
    pub caller_interruptions: i64,
    pub caller_end_emotion: Option<String>,
    pub caller_end_upset_probability: Option<f64>,
    pub agent_calmness_min: Option<f64>,
    pub score_pct: Option<f64>,
    pub auto_fail: bool,
    pub model_version: String,
    pub rules_version: String,
    pub rubric_version: Option<String>,
    pub stored_at: String,
    pub cues: Vec<StoredCue>,
    pub qa_items: Vec<StoredQaItem>,
    pub report_json: String,
}

/// What the store (and a batch's summary) reads of a result document, typed: built from a
/// [`CallReport`] ([`ReportDigest::of`]) or read back from a result file
/// ([`ReportDigest::from_document`]), where a missing or renamed field is an error naming it
/// rather than a stored 0 or "".
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReportDigest {
    pub file: String,
    pub duration_s: f64,
    pub talk: TalkDigest,
    pub interruption_count: PerPartyCount,
    /// The caller's last judged emotion.
    #[serde(rename = "caller_emotion", deserialize_with = "last_emotion")]
    pub caller_end_emotion: Option<String>,
    #[serde(deserialize_with = "fact_values")]
    facts: BTreeMap<String, Option<f64>>,
    pub qa: QaDigest,
    #[serde(deserialize_with = "stored_cues")]
    pub cues: Vec<StoredCue>,
    pub versions: VersionsDigest,
    pub input: InputDigest,
}

/// Talk time of a call, seconds (see [`attune_core::call::CallTalk`]).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct TalkDigest {
    pub agent_s: Option<f64>,
    pub caller_s: Option<f64>,
    pub overlap_s: Option<f64>,
    pub silence_s: f64,
}

/// A count per party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PerPartyCount {
    pub agent: u64,
    pub caller: u64,
}

/// The QA score of a call, with its items as stored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QaDigest {
    pub score_pct: Option<f64>,
    pub auto_fail: bool,
    #[serde(deserialize_with = "stored_items")]
    pub items: Vec<StoredQaItem>,
}

/// The versions a result was computed with (the stored ones).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionsDigest {
    pub model: String,
    pub cue_rules: String,
    pub rubric: String,
}

/// The recording a result was computed from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InputDigest {
    pub path: String,
}

/// JSON text of a value with its keys sorted at every level, as evidence is stored.
fn sorted_json(value: &impl Serialize) -> String {
    serde_json::to_value(value).map_or_else(|_| "null".to_owned(), |v| v.to_string())
}

fn last_emotion<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Point {
        emotion: String,
    }
    Ok(Vec::<Point>::deserialize(d)?.pop().map(|p| p.emotion))
}

fn fact_values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Option<f64>>, D::Error> {
    #[derive(Deserialize)]
    struct FactValue {
        value: Option<f64>,
    }
    Ok(BTreeMap::<String, FactValue>::deserialize(d)?
        .into_iter()
        .map(|(k, f)| (k, f.value))
        .collect())
}

fn stored_cues<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<StoredCue>, D::Error> {
    #[derive(Deserialize)]
    struct Cue {
        cue_id: i64,
        kind: String,
        party: String,
        severity: String,
        event: String,
        t_s: f64,
        start_s: f64,
        end_s: f64,
        evidence: Value,
    }
    Ok(Vec::<Cue>::deserialize(d)?
        .into_iter()
        .map(|c| StoredCue {
            cue_id: c.cue_id,
            kind: c.kind,
            party: c.party,
            severity: c.severity,
            event: c.event,
            t_s: c.t_s,
            start_s: c.start_s,
            end_s: c.end_s,
            evidence_json: c.evidence.to_string(),
        })
        .collect())
}

fn stored_items<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<StoredQaItem>, D::Error> {
    #[derive(Deserialize)]
    struct Item {
        section: String,
        id: String,
        title: String,
        weight: f64,
        rule: String,
        result: String,
        value: Option<f64>,
        auto_fail: bool,
        evidence: Value,
    }
    Ok(Vec::<Item>::deserialize(d)?
        .into_iter()
        .map(|i| StoredQaItem {
            section: i.section,
            item_id: i.id,
            title: i.title,
            weight: i.weight,
            rule: i.rule,
            result: i.result,
            value: i.value,
            auto_fail: i.auto_fail,
            evidence_json: i.evidence.to_string(),
        })
        .collect())
}

impl ReportDigest {
    /// The digest of a report.
    pub fn of(report: &CallReport) -> Self {
        let a = &report.analysis;
        Self {
            file: report.file.clone(),
            duration_s: a.duration_s,
            talk: TalkDigest {
                agent_s: a.talk.agent_s,
                caller_s: a.talk.caller_s,
                overlap_s: a.talk.overlap_s,
                silence_s: a.talk.silence_s,
            },
            interruption_count: PerPartyCount {
                agent: a.interruption_count.agent,
                caller: a.interruption_count.caller,
            },
            caller_end_emotion: report.caller_emotion.last().map(|p| p.emotion.to_owned()),
            facts: report
                .facts
                .0
                .iter()
                .map(|(k, f)| (k.clone(), f.value))
                .collect(),
            qa: QaDigest {
                score_pct: report.qa.score_pct,
                auto_fail: report.qa.auto_fail,
                items: report
                    .qa
                    .items
                    .iter()
                    .map(|i| StoredQaItem {
                        section: i.section.clone(),
                        item_id: i.id.clone(),
                        title: i.title.clone(),
                        weight: i.weight,
                        rule: i.rule.clone(),
                        result: i.result.as_str().to_owned(),
                        value: i.value,
                        auto_fail: i.auto_fail,
                        evidence_json: sorted_json(&i.evidence),
                    })
                    .collect(),
            },
            cues: report
                .cues
                .iter()
                .map(|c| StoredCue {
                    cue_id: c.cue_id as i64,
                    kind: c.kind.as_str().to_owned(),
                    party: c.party.as_str().to_owned(),
                    severity: c.severity.as_str().to_owned(),
                    event: c.event.as_str().to_owned(),
                    t_s: c.t_s,
                    start_s: c.start_s,
                    end_s: c.end_s,
                    evidence_json: sorted_json(&c.evidence),
                })
                .collect(),
            versions: VersionsDigest {
                model: report.versions.model.clone(),
                cue_rules: report.versions.cue_rules.clone(),
                rubric: report.versions.rubric.clone(),
            },
            input: InputDigest {
                path: report.input.path.clone(),
            },
        }
    }

    /// The digest of a result document read back (a result file); an error names the field
    /// that is missing or malformed.
    pub fn from_document(doc: &Value) -> Result<Self, StoreError> {
        Self::deserialize(doc).map_err(|e| StoreError::Record(format!("bad result document: {e}")))
    }

    /// The value of a measured fact (None: not measured, or not applicable).
    pub fn fact(&self, name: &str) -> Option<f64> {
        self.facts.get(name).copied().flatten()
    }
}

impl StoredCall {
    /// A call from its report; `report_json` is the whole document, written once
    /// ([`crate::stream::to_compact_string`]).
    pub fn from_report(
        report: &CallReport,
        call_id: &str,
        source: &str,
        agent: Option<String>,
        team: Option<String>,
        call_at: String,
    ) -> Result<Self, StoreError> {
        let report_json = crate::stream::to_compact_string(report)
            .map_err(|e| StoreError::Record(format!("cannot write the document: {e}")))?;
        Ok(Self::from_digest(
            ReportDigest::of(report),
            report_json,
            call_id,
            source,
            agent,
            team,
            call_at,
        ))
    }

    /// A call from its result document read back (the per-call JSON of `attune analyze`).
    pub fn from_document(
        doc: &Value,
        call_id: &str,
        source: &str,
        agent: Option<String>,
        team: Option<String>,
        call_at: String,
    ) -> Result<Self, StoreError> {
        Ok(Self::from_digest(
            ReportDigest::from_document(doc)?,
            doc.to_string(),
            call_id,
            source,
            agent,
            team,
            call_at,
        ))
    }

    /// A call from the digest of its document and the document's text.
    pub fn from_digest(
        digest: ReportDigest,
        report_json: String,
        call_id: &str,
        source: &str,
        agent: Option<String>,
        team: Option<String>,
        call_at: String,
    ) -> Self {
        let caller_end_upset_probability = digest.fact("caller_end_upset_probability");
        let agent_calmness_min = digest.fact("agent_calmness_min");
        Self {
            call_id: call_id.to_owned(),
            source: source.to_owned(),
            recording: Some(digest.input.path),
            agent,
            team,
            call_at,
            duration_s: digest.duration_s,
            agent_talk_s: digest.talk.agent_s,
            caller_talk_s: digest.talk.caller_s,
            overlap_s: digest.talk.overlap_s,
            silence_s: Some(digest.talk.silence_s),
            agent_interruptions: digest.interruption_count.agent as i64,
            caller_interruptions: digest.interruption_count.caller as i64,
            caller_end_upset_probability,
            agent_calmness_min,
            caller_end_emotion: digest.caller_end_emotion,
            score_pct: digest.qa.score_pct,
            auto_fail: digest.qa.auto_fail,
            model_version: digest.versions.model,
            rules_version: digest.versions.cue_rules,
            rubric_version: Some(digest.versions.rubric),
            stored_at: crate::rfc3339_utc(std::time::SystemTime::now()),
            cues: digest.cues,
            qa_items: digest.qa.items,
            report_json,
        }
    }

    /// Whether the caller ended upset (see [`ENDED_UPSET_PROBABILITY`]).
    pub fn caller_ended_upset(&self) -> bool {
        self.caller_end_upset_probability
            .is_some_and(|p| p >= ENDED_UPSET_PROBABILITY)
    }

    pub(super) fn params(&self) -> Vec<Param> {
        let t = |s: &Option<String>| Param::Text(s.clone());
        vec![
            Param::Text(Some(self.call_id.clone())),
            Param::Text(Some(self.source.clone())),
            t(&self.recording),
            t(&self.agent),
            t(&self.team),
            Param::Text(Some(self.call_at.clone())),
            Param::Real(Some(self.duration_s)),
            Param::Real(self.agent_talk_s),
            Param::Real(self.caller_talk_s),
            Param::Real(self.overlap_s),
            Param::Real(self.silence_s),
            Param::Int(Some(self.agent_interruptions)),
            Param::Int(Some(self.caller_interruptions)),
            t(&self.caller_end_emotion),
            Param::Real(self.caller_end_upset_probability),
            Param::Int(Some(i64::from(self.caller_ended_upset()))),
            Param::Real(self.agent_calmness_min),
            Param::Real(self.score_pct),
            Param::Int(Some(i64::from(self.auto_fail))),
            Param::Text(Some(self.model_version.clone())),
            Param::Text(Some(self.rules_version.clone())),
            t(&self.rubric_version),
            Param::Text(Some(self.stored_at.clone())),
            Param::Text(Some(self.report_json.clone())),
        ]
    }
}

impl StoredCue {
    pub(super) fn params(&self, call_id: &str, seq: i64) -> Vec<Param> {
        vec![
            Param::Text(Some(call_id.to_owned())),
            Param::Int(Some(seq)),
            Param::Int(Some(self.cue_id)),
            Param::Text(Some(self.kind.clone())),
            Param::Text(Some(self.party.clone())),
            Param::Text(Some(self.severity.clone())),
            Param::Text(Some(self.event.clone())),
            Param::Real(Some(self.t_s)),
            Param::Real(Some(self.start_s)),
            Param::Real(Some(self.end_s)),
            Param::Text(Some(self.evidence_json.clone())),
        ]
    }

    pub(super) fn from_row(r: Vec<Cell>) -> Self {
        Self {
            cue_id: r[0].as_i64().unwrap_or(0),
            kind: r[1].as_text().unwrap_or_default(),
            party: r[2].as_text().unwrap_or_default(),
            severity: r[3].as_text().unwrap_or_default(),
            event: r[4].as_text().unwrap_or_default(),
            t_s: r[5].as_f64().unwrap_or(0.0),
            start_s: r[6].as_f64().unwrap_or(0.0),
            end_s: r[7].as_f64().unwrap_or(0.0),
            evidence_json: r[8].as_text().unwrap_or_default(),
        }
    }
}

impl StoredQaItem {
    pub(super) fn params(&self, call_id: &str, seq: i64) -> Vec<Param> {
        vec![
            Param::Text(Some(call_id.to_owned())),
            Param::Int(Some(seq)),
            Param::Text(Some(self.section.clone())),
            Param::Text(Some(self.item_id.clone())),
            Param::Text(Some(self.title.clone())),
            Param::Real(Some(self.weight)),
            Param::Text(Some(self.rule.clone())),
            Param::Text(Some(self.result.clone())),
            Param::Real(self.value),
            Param::Int(Some(i64::from(self.auto_fail))),
            Param::Text(Some(self.evidence_json.clone())),
        ]
    }

    pub(super) fn from_row(r: Vec<Cell>) -> Self {
        Self {
            section: r[0].as_text().unwrap_or_default(),
            item_id: r[1].as_text().unwrap_or_default(),
            title: r[2].as_text().unwrap_or_default(),
            weight: r[3].as_f64().unwrap_or(0.0),
            rule: r[4].as_text().unwrap_or_default(),
            result: r[5].as_text().unwrap_or_default(),
            value: r[6].as_f64(),
            auto_fail: r[7].as_i64() == Some(1),
            evidence_json: r[8].as_text().unwrap_or_default(),
        }
    }
}
