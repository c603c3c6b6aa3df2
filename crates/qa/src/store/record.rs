//! What is stored of a call ([`StoredCall`]): the columns queries filter on, its cues, its QA
//! items, and the whole result document. Built from a result document ([`StoredCall::from_document`],
//! the JSON of [`crate::CallReport`]), so a scored recording, a re-read result file and a
//! live call at its end are stored the same way.

use serde_json::Value;

use super::StoreError;
use super::backend::{Cell, Param};

/// A caller whose last judgements average at least this probability of `angry` "ended upset".
pub const ENDED_UPSET_PROBABILITY: f64 = 0.5;

/// One cue event of a stored call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

/// A call as stored.
#[derive(Debug, Clone, PartialEq)]
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

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl StoredCall {
    /// A call from its result document (the per-call JSON of `attune analyze`).
    pub fn from_document(
        doc: &Value,
        call_id: &str,
        source: &str,
        agent: Option<String>,
        team: Option<String>,
        call_at: String,
    ) -> Result<Self, StoreError> {
        let duration_s = doc["duration_s"]
            .as_f64()
            .ok_or_else(|| StoreError::Record("the document has no duration_s".to_owned()))?;
        let fact = |name: &str| doc["facts"][name]["value"].as_f64();
        let upset = fact("caller_end_upset_probability");
        let cues = doc["cues"]
            .as_array()
            .map(|cues| {
                cues.iter()
                    .map(|c| StoredCue {
                        cue_id: c["cue_id"].as_i64().unwrap_or(0),
                        kind: text(&c["kind"]).unwrap_or_default(),
                        party: text(&c["party"]).unwrap_or_default(),
                        severity: text(&c["severity"]).unwrap_or_default(),
                        event: text(&c["event"]).unwrap_or_default(),
                        t_s: c["t_s"].as_f64().unwrap_or(0.0),
                        start_s: c["start_s"].as_f64().unwrap_or(0.0),
                        end_s: c["end_s"].as_f64().unwrap_or(0.0),
                        evidence_json: c["evidence"].to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let qa_items = doc["qa"]["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| StoredQaItem {
                        section: text(&i["section"]).unwrap_or_default(),
                        item_id: text(&i["id"]).unwrap_or_default(),
                        title: text(&i["title"]).unwrap_or_default(),
                        weight: i["weight"].as_f64().unwrap_or(0.0),
                        rule: text(&i["rule"]).unwrap_or_default(),
                        result: text(&i["result"]).unwrap_or_default(),
                        value: i["value"].as_f64(),
                        auto_fail: i["auto_fail"].as_bool().unwrap_or(false),
                        evidence_json: i["evidence"].to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            call_id: call_id.to_owned(),
            source: source.to_owned(),
            recording: text(&doc["input"]["path"]),
            agent,
            team,
            call_at,
            duration_s,
            agent_talk_s: doc["talk"]["agent_s"].as_f64(),
            caller_talk_s: doc["talk"]["caller_s"].as_f64(),
            overlap_s: doc["talk"]["overlap_s"].as_f64(),
            silence_s: doc["talk"]["silence_s"].as_f64(),
            agent_interruptions: doc["interruption_count"]["agent"].as_i64().unwrap_or(0),
            caller_interruptions: doc["interruption_count"]["caller"].as_i64().unwrap_or(0),
            caller_end_emotion: doc["caller_emotion"]
                .as_array()
                .and_then(|a| a.last())
                .and_then(|p| text(&p["emotion"])),
            caller_end_upset_probability: upset,
            agent_calmness_min: fact("agent_calmness_min"),
            score_pct: doc["qa"]["score_pct"].as_f64(),
            auto_fail: doc["qa"]["auto_fail"].as_bool().unwrap_or(false),
            model_version: text(&doc["versions"]["model"]).unwrap_or_default(),
            rules_version: text(&doc["versions"]["cue_rules"]).unwrap_or_default(),
            rubric_version: text(&doc["versions"]["rubric"]),
            stored_at: crate::rfc3339_utc(std::time::SystemTime::now()),
            cues,
            qa_items,
            report_json: doc.to_string(),
        })
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
