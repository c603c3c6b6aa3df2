//! The store's queries behind the coaching view ([`crate::coaching`]): who has stored calls in
//! which team ([`Store::roster`]) and the QA item results of the calls a query matches
//! ([`Store::qa_results`]), each one statement.

use super::backend::Param;
use super::{CallQuery, Store, StoreError, where_clause};

/// An agent's stored calls in one team.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RosterRow {
    pub agent: Option<String>,
    pub team: Option<String>,
    pub calls: i64,
    /// The newest call's `call_at`.
    pub last_call_at: String,
}

/// One QA item's result in one stored call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QaResultRow {
    pub call_id: String,
    pub item_id: String,
    pub title: String,
    /// `pass`, `fail` or `not_applicable`.
    pub result: String,
}

impl Store {
    /// Every (agent, team) pair with stored calls, in agent then team order (calls without an
    /// agent or a team give `None` there).
    pub fn roster(&mut self) -> Result<Vec<RosterRow>, StoreError> {
        let rows = self.backend.query(
            "SELECT agent, team, CAST(COUNT(*) AS BIGINT), MAX(call_at) FROM calls
             GROUP BY agent, team ORDER BY agent, team",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| RosterRow {
                agent: r[0].as_text(),
                team: r[1].as_text(),
                calls: r[2].as_i64().unwrap_or(0),
                last_call_at: r[3].as_text().unwrap_or_default(),
            })
            .collect())
    }

    /// The QA item results of the calls matching `query` (its `limit` is ignored), newest call
    /// first and each call's items in rubric order.
    pub fn qa_results(&mut self, query: &CallQuery) -> Result<Vec<QaResultRow>, StoreError> {
        // The filter's columns (agent, team, call_at, score_pct, ...) are the calls table's
        // alone, so they need no table prefix in the join.
        let (filter, params): (String, Vec<Param>) = where_clause(query);
        let sql = format!(
            "SELECT calls.call_id, qa_items.item_id, qa_items.title, qa_items.result
             FROM calls JOIN qa_items ON qa_items.call_id = calls.call_id{filter}
             ORDER BY calls.call_at DESC, calls.call_id, qa_items.seq"
        );
        let rows = self.backend.query(&sql, &params)?;
        Ok(rows
            .into_iter()
            .map(|r| QaResultRow {
                call_id: r[0].as_text().unwrap_or_default(),
                item_id: r[1].as_text().unwrap_or_default(),
                title: r[2].as_text().unwrap_or_default(),
                result: r[3].as_text().unwrap_or_default(),
            })
            .collect())
    }
}
