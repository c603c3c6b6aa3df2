//! CSV output of QA results: one row per rubric item of a call ([`item_rows`]), and one row per
//! call for a batch summary ([`summary_row`]). RFC 4180 quoting.

use std::fmt::Write;

use super::report::CallReport;
use super::store::ReportDigest;

/// Quotes a field when it holds a comma, quote or line break.
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v}"))
}

/// Header of [`item_rows`].
pub const ITEM_HEADER: &str =
    "file,section,item,title,weight,rule,result,value,auto_fail,reason,evidence";

/// One line per rubric item (with the header first).
pub fn item_rows(report: &CallReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{ITEM_HEADER}");
    for item in &report.qa.items {
        let evidence: Vec<String> = item
            .evidence
            .iter()
            .map(|e| format!("{:.2}-{:.2}s {}", e.start_s, e.end_s, e.label))
            .collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            field(&report.file),
            field(&item.section),
            field(&item.id),
            field(&item.title),
            item.weight,
            field(&item.rule),
            item.result.as_str(),
            opt(item.value),
            item.auto_fail,
            field(item.reason.as_deref().unwrap_or("")),
            field(&evidence.join("; "))
        );
    }
    out
}

/// Header of [`summary_row`].
pub const SUMMARY_HEADER: &str = "file,duration_s,score_pct,auto_fail,agent_talk_s,caller_talk_s,agent_interruptions,caller_interruptions,cues";

/// One line summarising a call (from its report's digest: a fresh report, or a result file
/// read back, [`ReportDigest`]).
pub fn summary_row(doc: &ReportDigest) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{}",
        field(&doc.file),
        doc.duration_s,
        opt(doc.qa.score_pct),
        doc.qa.auto_fail,
        opt(doc.talk.agent_s),
        opt(doc.talk.caller_s),
        doc.interruption_count.agent,
        doc.interruption_count.caller,
        doc.cues.len()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::field("a,b"), "\"a,b\"");
        assert_eq!(super::field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::field("plain"), "plain");
    }
}
