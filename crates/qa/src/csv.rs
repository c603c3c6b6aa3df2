//! CSV output of QA results: one row per rubric item of a call ([`item_rows`]), and one row per
//! call for a batch summary ([`summary_row`]). RFC 4180 quoting.

use std::fmt::Write;

use super::report::CallReport;
use super::score::ItemResult;

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

fn result_name(r: ItemResult) -> &'static str {
    match r {
        ItemResult::Pass => "pass",
        ItemResult::Fail => "fail",
        ItemResult::NotApplicable => "not_applicable",
    }
}

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
            result_name(item.result),
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

/// One line summarising a call (from its result document).
pub fn summary_row(doc: &serde_json::Value) -> String {
    let num = |v: &serde_json::Value| v.as_f64().map_or(String::new(), |v| format!("{v}"));
    format!(
        "{},{},{},{},{},{},{},{},{}",
        field(doc["file"].as_str().unwrap_or("")),
        num(&doc["duration_s"]),
        num(&doc["qa"]["score_pct"]),
        doc["qa"]["auto_fail"].as_bool().unwrap_or(false),
        num(&doc["talk"]["agent_s"]),
        num(&doc["talk"]["caller_s"]),
        num(&doc["interruption_count"]["agent"]),
        num(&doc["interruption_count"]["caller"]),
        doc["cues"].as_array().map_or(0, |c| c.len())
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
