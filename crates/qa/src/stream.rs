//! Writing a result document ([`CallReport`]) without ever holding it as one
//! `serde_json::Value` tree ([`write_report`], [`to_compact_string`]): the arrays that grow
//! with the call's length (turns, overlaps, interruptions, backchannels, the caller's emotion
//! track, the agent's calmness track, cues) are written element by element, straight from the
//! report; only the rest (a few kB whatever the call's length) becomes a `Value`. A `Value`
//! tree costs about 0.5 kB per emotion point, which made a 10-hour call peak above 130 MB.
//!
//! The bytes are exactly those of `serde_json::to_string_pretty` / `to_string` of the whole
//! document as a `Value` (keys in sorted order at every level), which is what result files and
//! stored documents have always been, so existing results stay current and comparable.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::report::{CallReport, CalmnessSample, EmotionSample};
use attune_core::call::{CallAnalysis, CallBackchannel, CallTurn};
use attune_core::cues::CueEvent;
use attune_core::dialog::{Interruption, Overlap};

/// The arrays of a [`CallReport`] whose length grows with the call, borrowed from it.
struct LongArrays<'a> {
    turns: &'a [CallTurn],
    interruptions: &'a [Interruption],
    backchannels: &'a [CallBackchannel],
    overlaps: &'a [Overlap],
    caller_emotion: &'a [EmotionSample],
    agent_calmness: &'a [CalmnessSample],
    cues: &'a [CueEvent],
}

/// How a document is laid out: as result files (`Pretty`, two-space indent) or as stored
/// (`Compact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Pretty,
    Compact,
}

impl<'a> LongArrays<'a> {
    fn of(report: &'a CallReport) -> Self {
        let a = &report.analysis;
        Self {
            turns: &a.turns,
            interruptions: &a.interruptions,
            backchannels: &a.backchannels,
            overlaps: &a.overlaps,
            caller_emotion: &report.caller_emotion,
            agent_calmness: &report.agent_calmness,
            cues: &report.cues,
        }
    }
}

/// `report` without its long arrays (each empty), as a `Value`: a few kB whatever the call's
/// length. Every field is named, so a field added to the report is a compile error here until
/// it is decided whether it grows with the call.
fn rest_of(report: &CallReport) -> serde_json::Result<Value> {
    let a = &report.analysis;
    let rest = CallReport {
        file: report.file.clone(),
        analysis: CallAnalysis {
            duration_s: a.duration_s,
            sample_rate_hz: a.sample_rate_hz,
            channels: a.channels,
            agent_channel: a.agent_channel,
            two_party: a.two_party,
            warnings: a.warnings.clone(),
            talk: a.talk,
            turns: Vec::new(),
            interruptions: Vec::new(),
            backchannels: Vec::new(),
            overlaps: Vec::new(),
            response_latency_s: a.response_latency_s,
            longest_monologue_s: a.longest_monologue_s,
            turn_count: a.turn_count,
            backchannel_count: a.backchannel_count,
            interruption_count: a.interruption_count,
            crosstalk_rejected_s: a.crosstalk_rejected_s,
            prosody: a.prosody.clone(),
        },
        caller_emotion: Vec::new(),
        agent_calmness: Vec::new(),
        cues: Vec::new(),
        // Bounded: at most `attune_core::empathy::MAX_EVIDENCE` moments per measure.
        empathy: report.empathy.clone(),
        facts: report.facts.clone(),
        qa: report.qa.clone(),
        versions: report.versions.clone(),
        input: report.input.clone(),
        started_at: report.started_at.clone(),
        finished_at: report.finished_at.clone(),
    };
    serde_json::to_value(&rest)
}

/// Writes `report` as its result file (`Pretty`) or its stored text (`Compact`) is: sorted
/// keys, without a `Value` of the whole document.
pub fn write_report(report: &CallReport, layout: Layout, out: &mut impl Write) -> io::Result<()> {
    let rest = rest_of(report)?;
    LongArrays::of(report).write(&rest, layout, out)
}

/// The document as compact JSON text (as stored), written as [`write_report`] writes it.
pub fn to_compact_string(report: &CallReport) -> io::Result<String> {
    let mut bytes = Vec::new();
    write_report(report, Layout::Compact, &mut bytes)?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

impl LongArrays<'_> {
    /// Writes the whole document: `rest` is the report as a `Value` without its long arrays
    /// (an object; each long array an empty array in it).
    fn write(&self, rest: &Value, layout: Layout, out: &mut impl Write) -> io::Result<()> {
        let Value::Object(fields) = rest else {
            return write_value(rest, layout, 0, out);
        };
        if fields.is_empty() {
            return out.write_all(b"{}");
        }
        out.write_all(b"{")?;
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            if layout == Layout::Pretty {
                out.write_all(b"\n  ")?;
            }
            serde_json::to_writer(&mut *out, key)?;
            out.write_all(if layout == Layout::Pretty {
                b": "
            } else {
                b":"
            })?;
            let written = match key.as_str() {
                "turns" => write_array(self.turns, layout, out)?,
                "interruptions" => write_array(self.interruptions, layout, out)?,
                "backchannels" => write_array(self.backchannels, layout, out)?,
                "overlaps" => write_array(self.overlaps, layout, out)?,
                "caller_emotion" => write_array(self.caller_emotion, layout, out)?,
                "agent_calmness" => write_array(self.agent_calmness, layout, out)?,
                "cues" => write_array(self.cues, layout, out)?,
                _ => false,
            };
            if !written {
                write_value(value, layout, 1, out)?;
            }
        }
        if layout == Layout::Pretty {
            out.write_all(b"\n")?;
        }
        out.write_all(b"}")
    }
}

/// Writes one top-level array, element by element (each briefly a `Value`, for key order).
/// Returns false when `items` is empty: the caller writes the `[]` it holds.
fn write_array<T: Serialize>(
    items: &[T],
    layout: Layout,
    out: &mut impl Write,
) -> io::Result<bool> {
    if items.is_empty() {
        return Ok(false);
    }
    out.write_all(b"[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if layout == Layout::Pretty {
            out.write_all(b"\n    ")?;
        }
        write_value(&serde_json::to_value(item)?, layout, 2, out)?;
    }
    if layout == Layout::Pretty {
        out.write_all(b"\n  ")?;
    }
    out.write_all(b"]")?;
    Ok(true)
}

/// Writes `value` as if it were nested `depth` levels deep in a pretty-printed document.
fn write_value(
    value: &Value,
    layout: Layout,
    depth: usize,
    out: &mut impl Write,
) -> io::Result<()> {
    match layout {
        Layout::Compact => serde_json::to_writer(out, value).map_err(io::Error::from),
        Layout::Pretty => {
            // JSON text never holds a raw newline inside a string: every newline is layout.
            let text = serde_json::to_string_pretty(value)?;
            let indent = "  ".repeat(depth);
            for (i, line) in text.split('\n').enumerate() {
                if i > 0 {
                    out.write_all(b"\n")?;
                    out.write_all(indent.as_bytes())?;
                }
                out.write_all(line.as_bytes())?;
            }
            Ok(())
        }
    }
}
