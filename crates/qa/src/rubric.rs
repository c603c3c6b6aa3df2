//! The QA rubric: sections of weighted items, each a rule (`min` and/or `max`, inclusive) over
//! one named measured fact of the call ([`FACTS`]). Read from TOML; the shipped default is
//! `rules/qa.toml`, embedded. Every error names the file and the line.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// The shipped rubric, embedded in the binary.
pub const DEFAULT_RUBRIC_TOML: &str = include_str!("../../../rules/qa.toml");

/// A measured fact a rubric item can judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FactDef {
    pub name: &'static str,
    /// What it measures, with its unit.
    pub description: &'static str,
    /// The values the fact can take (thresholds outside are errors).
    pub lowest: f64,
    pub highest: f64,
}

const SHARE: (f64, f64) = (0.0, 1.0);
const SECONDS: (f64, f64) = (0.0, f64::INFINITY);
const COUNT: (f64, f64) = (0.0, f64::INFINITY);

const fn fact(name: &'static str, description: &'static str, range: (f64, f64)) -> FactDef {
    FactDef {
        name,
        description,
        lowest: range.0,
        highest: range.1,
    }
}

/// Every fact a rubric may name. `cue_count.KIND` (one per cue kind) is accepted as well.
pub const FACTS: &[FactDef] = &[
    fact(
        "agent_first_speech_s",
        "start of the agent's first turn, seconds from the call start",
        SECONDS,
    ),
    fact(
        "agent_talk_share",
        "agent talk / (agent + caller talk), 0..1",
        SHARE,
    ),
    fact(
        "overlap_share",
        "time both talk / call duration, 0..1",
        SHARE,
    ),
    fact(
        "agent_interruptions",
        "times the agent interrupted the caller",
        COUNT,
    ),
    fact(
        "caller_interruptions",
        "times the caller interrupted the agent",
        COUNT,
    ),
    fact(
        "longest_silence_s",
        "longest time nobody talks between the first and the last turn, seconds",
        SECONDS,
    ),
    fact(
        "agent_response_gap_median_s",
        "median gap from the caller's turn end to the agent's answer, seconds",
        SECONDS,
    ),
    fact(
        "agent_response_gap_p90_s",
        "90th percentile of the agent's response gaps, seconds",
        SECONDS,
    ),
    fact(
        "agent_longest_monologue_s",
        "the agent's longest turn, seconds",
        SECONDS,
    ),
    fact(
        "agent_calmness_min",
        "lowest agent calmness over the call, 0..100",
        (0.0, 100.0),
    ),
    fact(
        "agent_calmness_mean",
        "mean agent calmness over the call, 0..100",
        (0.0, 100.0),
    ),
    fact(
        "caller_valence_change",
        "caller valence at the end minus at the start (mean of up to 3 judgements each; needs 4), -2..2; >= 0 means de-escalated or steady",
        (-2.0, 2.0),
    ),
    fact(
        "caller_arousal_change",
        "caller arousal at the end minus at the start (as caller_valence_change), -1..1",
        (-1.0, 1.0),
    ),
    fact(
        "caller_end_upset_probability",
        "mean probability of angry over the caller's last 3 judgements, 0..1",
        SHARE,
    ),
    fact(
        "agent_speaking_rate_syl_per_s",
        "agent syllables per second of talk",
        (0.0, 50.0),
    ),
    fact(
        "empathy_active_listening_score",
        "active listening score, 0..100 (docs/empathy.md)",
        (0.0, 100.0),
    ),
    fact(
        "empathy_attunement_score",
        "attunement score, 0..100 (docs/empathy.md)",
        (0.0, 100.0),
    ),
    fact(
        "empathy_de_escalation_score",
        "de-escalation score, 0..100; only when caller_upset opened (docs/empathy.md)",
        (0.0, 100.0),
    ),
    fact(
        "agent_backchannels_per_min",
        "agent backchannels per minute of caller talk",
        COUNT,
    ),
    fact(
        "agent_interruptions_while_caller_upset",
        "agent interruptions while caller_upset was open; only when it opened",
        COUNT,
    ),
    fact(
        "agent_pause_before_emotional_answer_s",
        "median gap from an emotional caller turn's end to the agent's answer, seconds (negative: started before the caller finished)",
        (-60.0, 60.0),
    ),
    fact(
        "agent_stays_below_raised_caller_share",
        "share of raised caller turns the agent answered without matching the rise, 0..1",
        SHARE,
    ),
    fact(
        "caller_upset_to_close_s",
        "from caller_upset opening to its close, seconds; only when it opened and closed",
        SECONDS,
    ),
];

/// Prefix of the per-cue-kind count facts (`cue_count.caller_upset`): cues opened in the call.
pub const CUE_COUNT_PREFIX: &str = "cue_count.";

/// Looks a fact name up (`cue_count.KIND` included).
pub fn fact_def(name: &str) -> Option<FactDef> {
    if let Some(kind) = name.strip_prefix(CUE_COUNT_PREFIX) {
        return attune_core::cues::CueKind::parse(kind).map(|k| FactDef {
            name: k.as_str(),
            description: "cues of this kind opened in the call",
            lowest: COUNT.0,
            highest: COUNT.1,
        });
    }
    FACTS.iter().copied().find(|f| f.name == name)
}

/// What can go wrong reading a rubric.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RubricError {
    #[error("cannot read QA rubric {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("QA rubric {path}: {message}")]
    Parse { path: String, message: String },
    #[error("QA rubric {path}, line {line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RubricFile {
    version: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(rename = "section")]
    sections: Vec<SectionFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionFile {
    name: String,
    #[serde(rename = "item")]
    items: Vec<ItemFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFile {
    id: Spanned<String>,
    title: String,
    weight: Spanned<f64>,
    fact: Spanned<String>,
    #[serde(default)]
    min: Option<Spanned<f64>>,
    #[serde(default)]
    max: Option<Spanned<f64>>,
    #[serde(default)]
    auto_fail: bool,
}

/// One rubric item: passes when `min <= fact <= max` (either bound may be absent).
#[derive(Debug, Clone, PartialEq)]
pub struct RubricItem {
    pub section: String,
    pub id: String,
    pub title: String,
    pub weight: f64,
    pub fact: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// A failed item fails the whole call (score 0).
    pub auto_fail: bool,
}

impl RubricItem {
    /// The rule as written, e.g. `agent_first_speech_s <= 5`.
    pub fn rule_text(&self) -> String {
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("{lo} <= {} <= {hi}", self.fact),
            (Some(lo), None) => format!("{} >= {lo}", self.fact),
            (None, Some(hi)) => format!("{} <= {hi}", self.fact),
            (None, None) => self.fact.clone(),
        }
    }
}

/// A checked rubric.
#[derive(Debug, Clone, PartialEq)]
pub struct Rubric {
    /// The `version` the file declares.
    pub version: String,
    pub title: String,
    pub items: Vec<RubricItem>,
    /// Hash of the rubric's text (FNV-1a 64, hex): identifies the exact rubric scored with.
    pub digest: String,
}

impl Default for Rubric {
    fn default() -> Self {
        Self::from_toml(DEFAULT_RUBRIC_TOML, "<embedded rules/qa.toml>")
            .expect("the embedded rubric is valid (checked by a unit test)")
    }
}

/// FNV-1a 64-bit hash of bytes: stable across runs, platforms and versions (unlike std's
/// hasher), for identities, digests and seeds. Not for security.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// [`fnv1a_64`] as 16 hex digits (stable identity of a file's content).
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a_64(bytes))
}

/// The stored id of a scored recording, from what identifies it (`attune analyze`: its
/// canonical path; an upload: its content): `rec-` and 16 hex digits. The same recording keeps
/// its id, so scoring it again replaces its stored result.
pub fn recording_call_id(identity: &[u8]) -> String {
    format!("rec-{}", fnv1a_hex(identity))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Rubric {
    /// Reads and checks a rubric file.
    pub fn load(path: &Path) -> Result<Self, RubricError> {
        let text = std::fs::read_to_string(path).map_err(|source| RubricError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks a rubric; `path` names the source in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, RubricError> {
        let file: RubricFile = toml::from_str(text).map_err(|e| RubricError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |offset: usize, message: String| RubricError::Invalid {
            path: path.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let mut items = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        for section in file.sections {
            for item in section.items {
                let id = item.id.get_ref().clone();
                if id.is_empty() || !ids.insert(id.clone()) {
                    return Err(invalid(
                        item.id.span().start,
                        format!("item id {id:?} is empty or used twice"),
                    ));
                }
                let weight = *item.weight.get_ref();
                if !(weight.is_finite() && weight >= 0.0) {
                    return Err(invalid(
                        item.weight.span().start,
                        format!("item {id}: weight {weight} must be a finite number >= 0"),
                    ));
                }
                let fact_name = item.fact.get_ref();
                let Some(def) = fact_def(fact_name) else {
                    let known: Vec<&str> = FACTS.iter().map(|f| f.name).collect();
                    return Err(invalid(
                        item.fact.span().start,
                        format!(
                            "item {id}: unknown fact {fact_name:?} (known: {}, {CUE_COUNT_PREFIX}KIND)",
                            known.join(", ")
                        ),
                    ));
                };
                if item.min.is_none() && item.max.is_none() {
                    return Err(invalid(
                        item.fact.span().start,
                        format!("item {id}: a rule needs `min`, `max` or both"),
                    ));
                }
                for bound in [&item.min, &item.max].into_iter().flatten() {
                    let v = *bound.get_ref();
                    if !v.is_finite() || v < def.lowest || v > def.highest {
                        return Err(invalid(
                            bound.span().start,
                            format!(
                                "item {id}: threshold {v} is outside what {} can be ({} to {})",
                                fact_name, def.lowest, def.highest
                            ),
                        ));
                    }
                }
                if let (Some(lo), Some(hi)) = (&item.min, &item.max)
                    && lo.get_ref() > hi.get_ref()
                {
                    return Err(invalid(
                        hi.span().start,
                        format!(
                            "item {id}: max {} is below min {}",
                            hi.get_ref(),
                            lo.get_ref()
                        ),
                    ));
                }
                items.push(RubricItem {
                    section: section.name.clone(),
                    id,
                    title: item.title,
                    weight,
                    fact: fact_name.clone(),
                    min: item.min.map(|v| *v.get_ref()),
                    max: item.max.map(|v| *v.get_ref()),
                    auto_fail: item.auto_fail,
                });
            }
        }
        if items.is_empty() {
            return Err(RubricError::Parse {
                path: path.to_owned(),
                message: "the rubric has no items".to_owned(),
            });
        }
        Ok(Self {
            version: file.version,
            title: file.title.unwrap_or_else(|| "QA rubric".to_owned()),
            items,
            digest: fnv1a_hex(text.as_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_answers() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_hex(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn embedded_rubric_parses() {
        let rubric = Rubric::default();
        assert!(rubric.items.len() >= 8);
        assert!(rubric.items.iter().any(|i| i.auto_fail));
    }

    #[test]
    fn unknown_fact_names_its_line() {
        let text = "version = \"t\"\n[[section]]\nname = \"s\"\n[[section.item]]\nid = \"a\"\n\
                    title = \"A\"\nweight = 1\nfact = \"agent_talk_shar\"\nmax = 0.5\n";
        let e = Rubric::from_toml(text, "r.toml").unwrap_err().to_string();
        assert!(
            e.contains("r.toml") && e.contains("line 8") && e.contains("agent_talk_shar"),
            "{e}"
        );
    }

    #[test]
    fn bad_threshold_names_its_line() {
        let text = "version = \"t\"\n[[section]]\nname = \"s\"\n[[section.item]]\nid = \"a\"\n\
                    title = \"A\"\nweight = 1\nfact = \"agent_talk_share\"\nmin = 0.2\nmax = 1.5\n";
        let e = Rubric::from_toml(text, "r.toml").unwrap_err().to_string();
        assert!(e.contains("line 10") && e.contains("1.5"), "{e}");
        let text = text.replace("max = 1.5", "max = 0.1");
        let e = Rubric::from_toml(&text, "r.toml").unwrap_err().to_string();
        assert!(e.contains("line 10") && e.contains("below min"), "{e}");
        let text = text.replace("weight = 1", "weight = -2");
        let e = Rubric::from_toml(&text, "r.toml").unwrap_err().to_string();
        assert!(e.contains("line 7") && e.contains("weight"), "{e}");
    }

    #[test]
    fn cue_counts_are_facts() {
        assert!(fact_def("cue_count.caller_upset").is_some());
        assert!(fact_def("cue_count.nope").is_none());
    }
}
