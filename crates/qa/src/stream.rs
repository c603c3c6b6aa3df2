//! Writing a result document ([`CallReport`]) without ever holding it as one
//! `serde_json::Value` tree: the arrays that grow with the call's length (turns, overlaps,
//! interruptions, backchannels, the caller's emotion track, the agent's calmness track, cues)
//! are moved out of the report ([`LongArrays::take`]) and written element by element; only the
//! rest (a few kB whatever the call's length) becomes a `Value`. A `Value` tree costs about
//! 0.5 kB per emotion point, which made a 10-hour call peak above 130 MB.
//!
//! The bytes are exactly those of `serde_json::to_string_pretty` / `to_string` of the whole
//! document as a `Value` (keys in sorted order at every level), which is what result files and
//! stored documents have always been, so existing results stay current and comparable.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::report::{CallReport, CalmnessSample, EmotionSample};
use attune_core::call::{CallBackchannel, CallTurn};
use attune_core::cues::CueEvent;
use attune_core::dialog::{Interruption, Overlap};

/// The arrays of a [`CallReport`] whose length grows with the call, moved out of it.
#[derive(Debug, Default)]
pub struct LongArrays {
    turns: Vec<CallTurn>,
    interruptions: Vec<Interruption>,
    backchannels: Vec<CallBackchannel>,
    overlaps: Vec<Overlap>,
    caller_emotion: Vec<EmotionSample>,
    agent_calmness: Vec<CalmnessSample>,
    cues: Vec<CueEvent>,
}

/// How a document is laid out: as result files (`Pretty`, two-space indent) or as stored
/// (`Compact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Pretty,
    Compact,
}

impl LongArrays {
    /// Moves the long arrays out of `report` (left empty); [`Self::put_back`] restores them.
    pub fn take(report: &mut CallReport) -> Self {
        let a = &mut report.analysis;
        Self {
            turns: std::mem::take(&mut a.turns),
            interruptions: std::mem::take(&mut a.interruptions),
            backchannels: std::mem::take(&mut a.backchannels),
            overlaps: std::mem::take(&mut a.overlaps),
            caller_emotion: std::mem::take(&mut report.caller_emotion),
            agent_calmness: std::mem::take(&mut report.agent_calmness),
            cues: std::mem::take(&mut report.cues),
        }
    }

    /// Puts the arrays back into `report`.
    pub fn put_back(self, report: &mut CallReport) {
        let a = &mut report.analysis;
        a.turns = self.turns;
        a.interruptions = self.interruptions;
        a.backchannels = self.backchannels;
        a.overlaps = self.overlaps;
        report.caller_emotion = self.caller_emotion;
        report.agent_calmness = self.agent_calmness;
        report.cues = self.cues;
    }

    /// The cues (for storing them, which needs each as a value).
    pub fn cues(&self) -> &[CueEvent] {
        &self.cues
    }

    /// The caller's last judged point.
    pub fn last_caller_emotion(&self) -> Option<&EmotionSample> {
        self.caller_emotion.last()
    }

    /// Writes the whole document: `rest` is the report as a `Value` while its long arrays were
    /// taken out (an object; each long array an empty array in it).
    pub fn write(&self, rest: &Value, layout: Layout, out: &mut impl Write) -> io::Result<()> {
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
                "turns" => write_array(&self.turns, layout, out)?,
                "interruptions" => write_array(&self.interruptions, layout, out)?,
                "backchannels" => write_array(&self.backchannels, layout, out)?,
                "overlaps" => write_array(&self.overlaps, layout, out)?,
                "caller_emotion" => write_array(&self.caller_emotion, layout, out)?,
                "agent_calmness" => write_array(&self.agent_calmness, layout, out)?,
                "cues" => write_array(&self.cues, layout, out)?,
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

    /// The document as compact JSON text (as stored).
    pub fn to_compact_string(&self, rest: &Value) -> io::Result<String> {
        let mut bytes = Vec::new();
        self.write(rest, Layout::Compact, &mut bytes)?;
        String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
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

/// Writes `report` as its result file would be (pretty, sorted keys), without a `Value` of the
/// whole document; `report` is unchanged afterwards.
pub fn write_report(
    report: &mut CallReport,
    layout: Layout,
    out: &mut impl Write,
) -> io::Result<()> {
    let arrays = LongArrays::take(report);
    let rest = serde_json::to_value(&*report);
    let result = rest
        .map_err(io::Error::from)
        .and_then(|rest| arrays.write(&rest, layout, out));
    arrays.put_back(report);
    result
}
