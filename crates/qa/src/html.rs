//! The HTML report of a scored call ([`render_call`]) and the batch index page
//! ([`render_index`]). Self-contained: inline CSS and SVG, no scripts, no network fetches; every
//! text from the data is escaped. Evidence links in the rubric table jump to highlighted spans
//! on the timeline (`#ev-ITEM-N`), cue markers to the cue list (`#cue-N`). The empathy section
//! (active listening, attunement, de-escalation: score or reason, measures, evidence moments)
//! links each moment to its marker on the timeline's empathy row, anchored by call time
//! (`#t=12.3`, seconds to one decimal; the first moment at a time owns the anchor). Each moment,
//! evidence link and cue row also carries its call time as `data-t-s` (seconds), which the
//! console's player uses to play it when the call has a recording; the file itself plays
//! nothing.
//!
//! The page is drawn from one typed view of the call: taken from the [`CallReport`]
//! ([`render_call`]) or deserialised from a stored result document ([`render_document`]), so a
//! result read back from the store renders exactly as `attune analyze --format html` wrote it.

use std::fmt::Write;

use serde::Deserialize;

use super::report::CallReport;
use attune_core::call::Party;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}\
.pass{color:#1a7f37}.fail{color:#c62828;font-weight:600}.not_applicable{color:#888}\
.score{font-size:28px;font-weight:700}.muted{color:#777;font-size:12px}\
svg{background:#fafafa;border:1px solid #eee}svg text{font-size:10px;fill:#555}\
.ev{fill:#ffb300;fill-opacity:.35}.ev:target{fill:#ff6f00;fill-opacity:.8;stroke:#e65100}\
.moment{fill:#00897b;fill-opacity:.6}\
tr:target{background:#fff3cd}";

/// Width of the charts' drawing area, pixels, and its left margin.
const WIDTH: f64 = 1000.0;
const LEFT: f64 = 60.0;
/// Most points drawn per line (longer tracks are thinned evenly).
const MAX_POINTS: usize = 2000;

struct Axis {
    duration_s: f64,
}

impl Axis {
    fn x(&self, t_s: f64) -> f64 {
        let d = self.duration_s.max(1e-3);
        LEFT + (t_s.clamp(0.0, d) / d) * (WIDTH - LEFT - 10.0)
    }

    fn ticks(&self, svg: &mut String, top: f64, bottom: f64) {
        let steps = [
            1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
        ];
        let step = steps
            .into_iter()
            .find(|s| self.duration_s / s <= 12.0)
            .unwrap_or(14_400.0);
        let mut t = 0.0;
        while t <= self.duration_s + 1e-9 {
            let x = self.x(t);
            let label = if step >= 60.0 {
                format!("{}:{:02}", (t / 60.0) as u64, (t % 60.0) as u64)
            } else {
                format!("{t:.0}s")
            };
            let _ = write!(
                svg,
                "<line x1='{x:.1}' x2='{x:.1}' y1='{top}' y2='{bottom}' stroke='#e5e5e5'/>\
                 <text x='{x:.1}' y='{:.1}' text-anchor='middle'>{label}</text>",
                bottom + 11.0
            );
            t += step;
        }
    }
}

fn thin<T>(points: &[T]) -> impl Iterator<Item = &T> {
    let step = points.len().div_ceil(MAX_POINTS).max(1);
    points.iter().step_by(step)
}

fn polyline(svg: &mut String, points: impl Iterator<Item = (f64, f64)>, colour: &str) {
    let mut d = String::new();
    for (x, y) in points {
        let _ = write!(d, "{x:.1},{y:.1} ");
    }
    if !d.is_empty() {
        let _ = write!(
            svg,
            "<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{d}'/>"
        );
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The parts of a result (see [`CallReport`]) the report draws: from a report, or read from a
/// stored document.
#[derive(Debug, Deserialize)]
struct ReportDoc {
    file: String,
    duration_s: f64,
    talk: TalkDoc,
    interruption_count: PartyCounts,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    turns: Vec<TurnDoc>,
    #[serde(default)]
    overlaps: Vec<SpanDoc>,
    #[serde(default)]
    caller_emotion: Vec<EmotionDoc>,
    #[serde(default)]
    agent_calmness: Vec<CalmnessDoc>,
    #[serde(default)]
    cues: Vec<CueDoc>,
    /// Absent from documents stored before the empathy measures.
    #[serde(default)]
    empathy: Option<EmpathyDoc>,
    qa: QaDoc,
    versions: VersionsDoc,
    finished_at: String,
}

#[derive(Debug, Deserialize)]
struct TalkDoc {
    agent_s: Option<f64>,
    caller_s: Option<f64>,
    overlap_s: Option<f64>,
    silence_s: f64,
}

#[derive(Debug, Deserialize)]
struct PartyCounts {
    agent: u64,
    caller: u64,
}

#[derive(Debug, Deserialize)]
struct TurnDoc {
    speaker: String,
    start_s: f64,
    end_s: f64,
}

#[derive(Debug, Deserialize)]
struct SpanDoc {
    start_s: f64,
    end_s: f64,
}

#[derive(Debug, Deserialize)]
struct EmotionDoc {
    t_s: f64,
    arousal: f64,
    valence: f64,
}

#[derive(Debug, Deserialize)]
struct CalmnessDoc {
    t_s: f64,
    score: f64,
}

#[derive(Debug, Deserialize)]
struct CueDoc {
    t_s: f64,
    kind: String,
    party: String,
    severity: String,
    event: String,
    start_s: f64,
    end_s: f64,
    evidence: CueEvidenceDoc,
}

#[derive(Debug, Deserialize)]
struct CueEvidenceDoc {
    rule: String,
    #[serde(default)]
    values: Vec<NamedValueDoc>,
}

#[derive(Debug, Deserialize)]
struct NamedValueDoc {
    name: String,
    value: f64,
}

#[derive(Debug, Deserialize)]
struct EmpathyDoc {
    active_listening: EmpathyScoreDoc,
    attunement: EmpathyScoreDoc,
    de_escalation: EmpathyScoreDoc,
}

#[derive(Debug, Deserialize)]
struct EmpathyScoreDoc {
    score: Option<f64>,
    #[serde(default)]
    reason: Option<String>,
    /// Measure name to value (numbers, nulls, or anything else shown as JSON).
    #[serde(default)]
    measures: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    evidence: Vec<MomentDoc>,
}

#[derive(Debug, Deserialize)]
struct MomentDoc {
    t_s: f64,
    what: String,
}

impl EmpathyDoc {
    /// The three measures with their names as in the JSON, in report order.
    fn measures(&self) -> [(&'static str, &EmpathyScoreDoc); 3] {
        [
            ("active_listening", &self.active_listening),
            ("attunement", &self.attunement),
            ("de_escalation", &self.de_escalation),
        ]
    }

    /// Taken through the report's JSON, so a fresh report and a stored one read the same.
    fn of(report: &attune_core::empathy::EmpathyReport) -> Option<Self> {
        let text = serde_json::to_string(report).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The anchor of a moment at `t_s`: `t=12.3`.
fn moment_anchor(t_s: f64) -> String {
    format!("t={t_s:.1}")
}

/// A measure's value as shown: numbers to three decimals at most, null as a dash.
fn fmt_measure(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "–".to_owned(),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => {
                let s = format!("{f:.3}");
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            }
            _ => n.to_string(),
        },
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct QaDoc {
    score_pct: Option<f64>,
    raw_score_pct: Option<f64>,
    auto_fail: bool,
    #[serde(default)]
    items: Vec<ItemDoc>,
}

#[derive(Debug, Deserialize)]
struct ItemDoc {
    section: String,
    id: String,
    title: String,
    weight: f64,
    rule: String,
    result: String,
    value: Option<f64>,
    auto_fail: bool,
    #[serde(default)]
    evidence: Vec<EvidenceDoc>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EvidenceDoc {
    start_s: f64,
    end_s: f64,
    label: String,
}

#[derive(Debug, Deserialize)]
struct VersionsDoc {
    attune: String,
    model: String,
    cue_rules: String,
    rubric: String,
    rubric_digest: String,
}

/// A track value as the document's JSON reads back (the shortest decimal of the `f32`, as
/// `f64`), so a fresh report and a stored one draw the same pixels.
fn as_read_back(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

/// A party's name, as serialised.
fn party_name(party: Party) -> &'static str {
    match party {
        Party::Agent => "agent",
        Party::Caller => "caller",
        Party::Unknown => "unknown",
    }
}

impl ReportDoc {
    /// The parts of `report` the page draws, taken from the typed report (no JSON between).
    fn of(report: &CallReport) -> Self {
        let a = &report.analysis;
        let q = &report.qa;
        let v = &report.versions;
        Self {
            file: report.file.clone(),
            duration_s: a.duration_s,
            talk: TalkDoc {
                agent_s: a.talk.agent_s,
                caller_s: a.talk.caller_s,
                overlap_s: a.talk.overlap_s,
                silence_s: a.talk.silence_s,
            },
            interruption_count: PartyCounts {
                agent: a.interruption_count.agent,
                caller: a.interruption_count.caller,
            },
            warnings: a.warnings.clone(),
            turns: a
                .turns
                .iter()
                .map(|t| TurnDoc {
                    speaker: party_name(t.speaker).to_owned(),
                    start_s: t.start_s,
                    end_s: t.end_s,
                })
                .collect(),
            overlaps: a
                .overlaps
                .iter()
                .map(|o| SpanDoc {
                    start_s: o.start_s,
                    end_s: o.end_s,
                })
                .collect(),
            caller_emotion: report
                .caller_emotion
                .iter()
                .map(|p| EmotionDoc {
                    t_s: p.t_s,
                    arousal: as_read_back(p.arousal),
                    valence: as_read_back(p.valence),
                })
                .collect(),
            agent_calmness: report
                .agent_calmness
                .iter()
                .map(|p| CalmnessDoc {
                    t_s: p.t_s,
                    score: as_read_back(p.score),
                })
                .collect(),
            cues: report
                .cues
                .iter()
                .map(|c| CueDoc {
                    t_s: c.t_s,
                    kind: c.kind.as_str().to_owned(),
                    party: c.party.as_str().to_owned(),
                    severity: c.severity.as_str().to_owned(),
                    event: c.event.as_str().to_owned(),
                    start_s: c.start_s,
                    end_s: c.end_s,
                    evidence: CueEvidenceDoc {
                        rule: c.evidence.rule.clone(),
                        values: c
                            .evidence
                            .values
                            .iter()
                            .map(|n| NamedValueDoc {
                                name: n.name.to_owned(),
                                value: n.value,
                            })
                            .collect(),
                    },
                })
                .collect(),
            empathy: EmpathyDoc::of(&report.empathy),
            qa: QaDoc {
                score_pct: q.score_pct,
                raw_score_pct: q.raw_score_pct,
                auto_fail: q.auto_fail,
                items: q
                    .items
                    .iter()
                    .map(|i| ItemDoc {
                        section: i.section.clone(),
                        id: i.id.clone(),
                        title: i.title.clone(),
                        weight: i.weight,
                        rule: i.rule.clone(),
                        result: i.result.as_str().to_owned(),
                        value: i.value,
                        auto_fail: i.auto_fail,
                        evidence: i
                            .evidence
                            .iter()
                            .map(|e| EvidenceDoc {
                                start_s: e.start_s,
                                end_s: e.end_s,
                                label: e.label.clone(),
                            })
                            .collect(),
                        reason: i.reason.clone(),
                    })
                    .collect(),
            },
            versions: VersionsDoc {
                attune: v.attune.clone(),
                model: v.model.clone(),
                cue_rules: v.cue_rules.clone(),
                rubric: v.rubric.clone(),
                rubric_digest: v.rubric_digest.clone(),
            },
            finished_at: report.finished_at.clone(),
        }
    }
}

/// The report page of one call.
pub fn render_call(report: &CallReport) -> String {
    render_doc(&ReportDoc::of(report))
}

/// The report page of a result document (a [`CallReport`]'s JSON, e.g. read back from the
/// store); an error names the field that is missing or malformed.
pub fn render_document(doc: &serde_json::Value) -> Result<String, String> {
    let report = ReportDoc::deserialize(doc).map_err(|e| format!("bad result document: {e}"))?;
    Ok(render_doc(&report))
}

fn render_doc(report: &ReportDoc) -> String {
    let a = report;
    let axis = Axis {
        duration_s: a.duration_s,
    };
    let mut h = String::with_capacity(64 * 1024);
    let title = escape(&report.file);
    let _ = write!(
        h,
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>\
         <title>QA report: {title}</title><style>{STYLE}</style></head><body>\
         <h1>QA report: {title}</h1>"
    );
    let score = match (report.qa.score_pct, report.qa.auto_fail) {
        (Some(s), true) => format!(
            "{s:.1} % <span class='fail'>automatic fail</span> (before: {} %)",
            fmt_opt(report.qa.raw_score_pct, 1)
        ),
        (Some(s), false) => format!("{s:.1} %"),
        (None, _) => "not applicable".to_owned(),
    };
    let _ = write!(
        h,
        "<p class='score'>{score}</p><p>Duration {:.1} s · agent talk {} s · caller talk {} s · \
         overlap {} s · silence {:.1} s · interruptions: agent {}, caller {}</p>\
         <p class='muted'>model {} · cue rules {} · rubric {} ({}) · attune {} · scored {} </p>",
        a.duration_s,
        fmt_opt(a.talk.agent_s, 1),
        fmt_opt(a.talk.caller_s, 1),
        fmt_opt(a.talk.overlap_s, 1),
        a.talk.silence_s,
        a.interruption_count.agent,
        a.interruption_count.caller,
        escape(&report.versions.model),
        escape(&report.versions.cue_rules),
        escape(&report.versions.rubric),
        escape(&report.versions.rubric_digest),
        escape(&report.versions.attune),
        escape(&report.finished_at),
    );
    for w in &a.warnings {
        let _ = write!(h, "<p class='fail'>warning: {}</p>", escape(w));
    }

    // Timeline: caller emotion, agent calmness, the talk ribbon, cues and evidence.
    h.push_str("<h2 id='timeline'>Timeline</h2>");
    let height = 350.0;
    let _ = write!(
        h,
        "<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' \
         viewBox='0 0 {WIDTH} {height}' role='img' aria-label='call timeline'>"
    );
    axis.ticks(&mut h, 5.0, 320.0);
    // Caller arousal and valence: rows 10..90.
    let (top, span) = (10.0, 80.0);
    let _ = write!(
        h,
        "<text x='4' y='{}'>caller</text><text x='4' y='{}' fill='#c62828'>arousal</text>\
         <text x='4' y='{}' fill='#1565c0'>valence</text>\
         <line x1='{LEFT}' x2='{}' y1='{}' y2='{}' stroke='#ccc' stroke-dasharray='3'/>",
        top + 10.0,
        top + 25.0,
        top + 40.0,
        WIDTH - 10.0,
        top + span / 2.0,
        top + span / 2.0
    );
    polyline(
        &mut h,
        thin(&report.caller_emotion).map(|p| (axis.x(p.t_s), top + span * (1.0 - p.arousal))),
        "#c62828",
    );
    polyline(
        &mut h,
        thin(&report.caller_emotion)
            .map(|p| (axis.x(p.t_s), top + span * (1.0 - (p.valence + 1.0) / 2.0))),
        "#1565c0",
    );
    // Agent calmness: rows 100..180.
    let (top, span) = (100.0, 80.0);
    let _ = write!(
        h,
        "<text x='4' y='{}'>agent</text><text x='4' y='{}' fill='#2e7d32'>calmness</text>",
        top + 10.0,
        top + 25.0
    );
    polyline(
        &mut h,
        thin(&report.agent_calmness).map(|p| (axis.x(p.t_s), top + span * (1.0 - p.score / 100.0))),
        "#2e7d32",
    );
    // Ribbon: agent, caller, overlap, silence rows.
    let rows = [
        ("agent", 190.0, "#1565c0"),
        ("caller", 206.0, "#c62828"),
        ("overlap", 222.0, "#6a1b9a"),
        ("silence", 238.0, "#9e9e9e"),
    ];
    for (label, y, _) in rows {
        let _ = write!(h, "<text x='4' y='{}'>{label}</text>", y + 10.0);
    }
    let rect = |h: &mut String, s: f64, e: f64, y: f64, colour: &str, tip: &str| {
        let (x0, x1) = (axis.x(s), axis.x(e));
        let _ = write!(
            h,
            "<rect x='{x0:.1}' y='{y}' width='{:.1}' height='12' fill='{colour}'><title>{}</title></rect>",
            (x1 - x0).max(0.5),
            escape(tip)
        );
    };
    let mut talk_spans: Vec<(f64, f64)> = Vec::new();
    for t in &a.turns {
        let (y, colour) = match t.speaker.as_str() {
            "caller" => (rows[1].1, rows[1].2),
            _ => (rows[0].1, rows[0].2),
        };
        rect(
            &mut h,
            t.start_s,
            t.end_s,
            y,
            colour,
            &format!("{} {:.1}–{:.1} s", t.speaker, t.start_s, t.end_s).to_lowercase(),
        );
        talk_spans.push((t.start_s, t.end_s));
    }
    for o in &a.overlaps {
        rect(
            &mut h,
            o.start_s,
            o.end_s,
            rows[2].1,
            rows[2].2,
            &format!("overlap {:.1}–{:.1} s", o.start_s, o.end_s),
        );
    }
    talk_spans.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut cursor = 0.0_f64;
    for (s, e) in talk_spans
        .iter()
        .copied()
        .chain([(a.duration_s, a.duration_s)])
    {
        if s > cursor + 0.5 {
            rect(
                &mut h,
                cursor,
                s,
                rows[3].1,
                rows[3].2,
                &format!("silence {cursor:.1}–{s:.1} s"),
            );
        }
        cursor = cursor.max(e);
    }
    // Cues: markers 256..272, linked to the cue list.
    let _ = write!(h, "<text x='4' y='266'>cues</text>");
    for (i, cue) in report.cues.iter().enumerate() {
        if cue.event != "open" {
            continue;
        }
        let x = axis.x(cue.start_s);
        let colour = match cue.severity.as_str() {
            "critical" => "#c62828",
            "warning" => "#ef6c00",
            _ => "#2e7d32",
        };
        let _ = write!(
            h,
            "<a href='#cue-{i}'><path d='M{x:.1},256 l5,8 l-5,8 l-5,-8 z' fill='{colour}'>\
             <title>{} at {:.1} s</title></path></a>",
            escape(&cue.kind),
            cue.start_s
        );
    }
    // Evidence spans of failed and passed items: row 280..296, targets of the rubric links.
    let _ = write!(h, "<text x='4' y='290'>evidence</text>");
    for item in &report.qa.items {
        for (j, e) in item.evidence.iter().enumerate() {
            let (x0, x1) = (axis.x(e.start_s), axis.x(e.end_s));
            let _ = write!(
                h,
                "<rect class='ev' id='ev-{}-{j}' x='{x0:.1}' y='280' width='{:.1}' height='14'>\
                 <title>{}: {}</title></rect>",
                escape(&item.id),
                (x1 - x0).max(2.0),
                escape(&item.id),
                escape(&e.label)
            );
        }
    }
    // Empathy evidence moments: row 302..316, each anchored by its call time (`#t=12.3`).
    let mut anchors = std::collections::HashSet::new();
    if let Some(empathy) = &report.empathy {
        let _ = write!(h, "<text x='4' y='312'>empathy</text>");
        for (name, m) in empathy.measures() {
            for moment in &m.evidence {
                let x = axis.x(moment.t_s);
                let anchor = moment_anchor(moment.t_s);
                let id = if anchors.insert(anchor.clone()) {
                    format!(" id='{}'", escape(&anchor))
                } else {
                    String::new()
                };
                let _ = write!(
                    h,
                    "<rect class='ev moment'{id} x='{:.1}' y='302' width='4' height='14'>\
                     <title>{name} {:.1} s: {}</title></rect>",
                    x - 2.0,
                    moment.t_s,
                    escape(&moment.what)
                );
            }
        }
    }
    h.push_str("</svg>");

    // Empathy: the three measures, their measures and evidence moments.
    if let Some(empathy) = &report.empathy {
        h.push_str(
            "<h2 id='empathy'>Empathy</h2><table><tr><th>measure</th><th>score</th>\
             <th>measures</th><th>evidence moments</th></tr>",
        );
        for (name, m) in empathy.measures() {
            let score = match (m.score, &m.reason) {
                (Some(s), _) => format!("{s:.1}"),
                (None, Some(r)) => format!("<span class='muted'>no score: {}</span>", escape(r)),
                (None, None) => "<span class='muted'>no score</span>".to_owned(),
            };
            let measures: Vec<String> = m
                .measures
                .iter()
                .map(|(k, v)| format!("{} = {}", escape(k), escape(&fmt_measure(v))))
                .collect();
            let mut moments = String::new();
            for moment in &m.evidence {
                let _ = write!(
                    moments,
                    "<a href='#{}' data-t-s='{:.2}'>{:.1} s</a> {}<br>",
                    escape(&moment_anchor(moment.t_s)),
                    moment.t_s.max(0.0),
                    moment.t_s,
                    escape(&moment.what)
                );
            }
            if m.evidence.is_empty() {
                moments.push_str("<span class='muted'>none</span>");
            }
            let _ = write!(
                h,
                "<tr id='empathy-{name}'><td>{}</td><td>{score}</td><td>{}</td><td>{moments}</td></tr>",
                name.replace('_', " "),
                measures.join("<br>")
            );
        }
        h.push_str("</table>");
    }

    // Rubric table.
    let _ = write!(
        h,
        "<h2 id='rubric'>Rubric</h2><table><tr><th>section</th><th>item</th><th>rule</th>\
         <th>weight</th><th>value</th><th>result</th><th>evidence</th></tr>"
    );
    for item in &report.qa.items {
        let result = match item.result.as_str() {
            "pass" => "pass",
            "fail" => "fail",
            _ => "not_applicable",
        };
        let mut evidence = String::new();
        for (j, e) in item.evidence.iter().enumerate().take(20) {
            let _ = write!(
                evidence,
                "<a href='#ev-{}-{j}' data-t-s='{:.2}'>{:.1}–{:.1} s</a> {}<br>",
                escape(&item.id),
                e.start_s.max(0.0),
                e.start_s,
                e.end_s,
                escape(&e.label)
            );
        }
        if item.evidence.len() > 20 {
            let _ = write!(evidence, "… {} more", item.evidence.len() - 20);
        }
        if let Some(reason) = &item.reason {
            evidence.push_str(&escape(reason));
        }
        let _ = write!(
            h,
            "<tr id='item-{}'><td>{}</td><td>{}{}</td><td><code>{}</code></td><td>{}</td>\
             <td>{}</td><td class='{result}'>{}</td><td>{evidence}</td></tr>",
            escape(&item.id),
            escape(&item.section),
            escape(&item.title),
            if item.auto_fail {
                " <span class='muted'>(auto-fail)</span>"
            } else {
                ""
            },
            escape(&item.rule),
            item.weight,
            fmt_opt(item.value, 3),
            result.replace('_', " "),
        );
    }
    h.push_str("</table>");

    // Cues list.
    let _ = write!(
        h,
        "<h2 id='cues'>Cues</h2><table><tr><th>time</th><th>cue</th><th>party</th>\
         <th>severity</th><th>event</th><th>span</th><th>evidence</th></tr>"
    );
    if report.cues.is_empty() {
        h.push_str("<tr><td colspan='7' class='muted'>no cue in this call</td></tr>");
    }
    for (i, cue) in report.cues.iter().enumerate() {
        let values: Vec<String> = cue
            .evidence
            .values
            .iter()
            .map(|v| format!("{} = {:.2}", v.name, v.value))
            .collect();
        let _ = write!(
            h,
            "<tr id='cue-{i}' data-t-s='{:.2}'><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{:.1}–{:.1} s</td><td><code>{}</code> {}</td></tr>",
            cue.start_s.max(0.0),
            cue.t_s,
            escape(&cue.kind),
            escape(&cue.party),
            escape(&cue.severity),
            escape(&cue.event),
            cue.start_s,
            cue.end_s,
            escape(&cue.evidence.rule),
            escape(&values.join(", "))
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

/// One row of the batch index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// Result name (the report is `NAME.html`, the data `NAME.json`).
    pub name: String,
    pub file: String,
    pub duration_s: Option<f64>,
    pub score_pct: Option<f64>,
    pub auto_fail: bool,
    /// `scored`, `skipped` (already current) or `failed: why`.
    pub status: String,
    /// Whether `NAME.html` exists.
    pub has_html: bool,
}

/// The batch index page linking every call's report.
pub fn render_index(entries: &[IndexEntry]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>QA batch</title>\
         <style>{STYLE}</style></head><body><h1>QA batch: {} recordings</h1><table><tr>\
         <th>recording</th><th>duration</th><th>score</th><th>status</th><th>data</th></tr>",
        entries.len()
    );
    for e in entries {
        let name = escape(&e.name);
        let link = if e.has_html {
            format!("<a href='{name}.html'>{}</a>", escape(&e.file))
        } else {
            escape(&e.file)
        };
        let score = match (e.score_pct, e.auto_fail) {
            (Some(s), true) => format!("<span class='fail'>{s:.1} % (auto-fail)</span>"),
            (Some(s), false) => format!("{s:.1} %"),
            (None, _) => "–".to_owned(),
        };
        let data = if e.status.starts_with("failed") {
            String::new()
        } else {
            format!("<a href='{name}.json'>json</a>")
        };
        let _ = write!(
            h,
            "<tr><td>{link}</td><td>{}</td><td>{score}</td><td>{}</td><td>{data}</td></tr>",
            e.duration_s
                .map_or("–".to_owned(), |d| format!("{:.0} s", d)),
            escape(&e.status)
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    fn doc(empathy: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "file": "c.wav", "duration_s": 60.0,
            "talk": {"agent_s": 20.0, "caller_s": 30.0, "overlap_s": 1.0, "silence_s": 9.0},
            "interruption_count": {"agent": 2, "caller": 0},
            "empathy": empathy,
            "qa": {"score_pct": 80.0, "raw_score_pct": 80.0, "auto_fail": false, "items": []},
            "versions": {"attune": "a", "model": "m", "cue_rules": "c", "rubric": "r",
                         "rubric_digest": "d"},
            "finished_at": "2026-12-04T00:00:00Z"
        })
    }

    #[test]
    fn empathy_section_shows_scores_reasons_measures_and_anchored_moments() {
        let empathy = serde_json::json!({
            "active_listening": {"score": 42.5, "measures": {"backchannels_per_min": 1.25,
                "upset_interruptions": 3}, "evidence": [
                {"t_s": 12.3, "what": "agent interrupts <upset> caller"},
                {"t_s": 12.34, "what": "talks over"}]},
            "attunement": {"score": null, "reason": "too few adjacent turns",
                "measures": {"pairs": 1}, "evidence": []},
            "de_escalation": {"score": 90.0, "measures": {"calmed_after_s": null},
                "evidence": [{"t_s": 41.0, "what": "caller calmer after slow turn"}]}
        });
        let page = super::render_document(&doc(empathy)).unwrap();
        let section = &page[page.find("<h2 id='empathy'>").expect("empathy section")..];
        assert!(section.contains("<td>42.5</td>"), "{section}");
        assert!(section.contains("backchannels_per_min = 1.25"));
        assert!(section.contains("upset_interruptions = 3"));
        assert!(section.contains("no score: too few adjacent turns"));
        assert!(section.contains("calmed_after_s = –"));
        assert!(section.contains(
            "<a href='#t=12.3' data-t-s='12.30'>12.3 s</a> agent interrupts &lt;upset&gt;"
        ));
        assert!(section.contains("<a href='#t=41.0' data-t-s='41.00'>41.0 s</a>"));
        // The file plays nothing itself (the console adds a player when it has the audio).
        assert!(!page.contains("<script") && !page.contains("<audio"));
        // Each moment's anchor is on the timeline once (12.3 and 12.34 share `t=12.3`).
        let svg = &page[..page.find("</svg>").unwrap()];
        assert_eq!(svg.matches("id='t=12.3'").count(), 1);
        assert_eq!(svg.matches("id='t=41.0'").count(), 1);
        assert_eq!(svg.matches("class='ev moment'").count(), 3);
    }

    #[test]
    fn a_document_without_empathy_renders_without_the_section() {
        let mut d = doc(serde_json::Value::Null);
        d.as_object_mut().unwrap().remove("empathy");
        let page = super::render_document(&d).unwrap();
        assert!(!page.contains("id='empathy'") && page.contains("id='rubric'"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
