//! Stored results: calls (scored recordings, and live calls at their end), their cues and
//! their QA items, with versioned migrations. Embedded SQLite by default; PostgreSQL with the
//! `postgres` feature (`Store::open("postgres://...")`), with the same schema and queries.
//!
//! The console and the CLI query through [`Store::calls`] ([`CallQuery`]: agent, team, date,
//! score range, what happened) and [`Store::agent_trends`]; the service saves a live call at its
//! end with [`Store::save_call`] (a [`StoredCall`] built from the call's result document).
//!
//! Crash safety: each call is saved in one transaction (all of it or none of it); SQLite runs
//! in WAL mode. A locked database is waited for (`busy_timeout`), then reported as
//! [`StoreError::Locked`]; a full disk as [`StoreError::Full`].

mod accounts;
mod backend;
mod coaching;
#[cfg(feature = "postgres")]
mod pgtls;
mod record;
mod url;

use std::time::Duration;

pub use accounts::{AckRecord, AuditEntry, AuditQuery, SessionRecord, TokenRecord, UserRecord};
pub use backend::Cell;
use backend::{Backend, Param};
pub use coaching::{QaResultRow, RosterRow};
pub use record::{
    InputDigest, PerPartyCount, QaDigest, ReportDigest, StoredCall, StoredCue, StoredQaItem,
    TalkDigest, VersionsDigest,
};
pub use url::{PgTlsParams, RootCert, SslMode, split_tls_params, with_db_ca};

/// Creates an empty PostgreSQL database `name` (dropping any of that name) through the server
/// at `admin_url`, and returns its URL. For tests.
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub fn fresh_postgres_database_for_tests(
    admin_url: &str,
    name: &str,
) -> Result<String, StoreError> {
    let fail = |e: postgres::Error| StoreError::Open {
        location: admin_url.to_owned(),
        message: e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned()),
    };
    let mut client = backend::connect_postgres(admin_url).map_err(|message| StoreError::Open {
        location: admin_url.to_owned(),
        message,
    })?;
    // One statement each: CREATE DATABASE cannot run inside a multi-statement transaction.
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .map_err(fail)?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .map_err(fail)?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Without the `postgres` feature there is no PostgreSQL database to create.
#[cfg(not(feature = "postgres"))]
#[doc(hidden)]
pub fn fresh_postgres_database_for_tests(
    _admin_url: &str,
    _name: &str,
) -> Result<String, StoreError> {
    Err(StoreError::Unsupported(
        "built without the `postgres` feature".to_owned(),
    ))
}

/// Wait for a locked database (SQLite busy timeout, PostgreSQL `lock_timeout`) before giving up.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "database {location} is locked: {what} (waited {waited_s:.1} s); try again when it is done"
    )]
    Locked {
        location: String,
        /// What holds it up, e.g. `table calls is locked by another connection`.
        what: String,
        waited_s: f64,
    },
    #[error("database {location}: the disk is full; nothing of this call was stored")]
    Full { location: String },
    #[error("database {location} is read-only: {message}")]
    ReadOnly { location: String, message: String },
    #[error("cannot open database {location}: {message}")]
    Open { location: String, message: String },
    #[error("database {location}: {message}")]
    Query { location: String, message: String },
    #[error(
        "database {location} has schema version {found}; this build knows up to {known} (upgrade attune)"
    )]
    TooNew {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("bad call record: {0}")]
    Record(String),
}

/// The schema, one step per version; each step runs once, in a transaction. The SQL is written
/// for both SQLite and PostgreSQL.
const MIGRATIONS: &[&str] = &[
    // 1: calls, cues, QA items.
    "CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        recording TEXT,
        agent TEXT,
        team TEXT,
        call_at TEXT NOT NULL,
        duration_s DOUBLE PRECISION NOT NULL,
        agent_talk_s DOUBLE PRECISION,
        caller_talk_s DOUBLE PRECISION,
        overlap_s DOUBLE PRECISION,
        silence_s DOUBLE PRECISION,
        agent_interruptions BIGINT NOT NULL,
        caller_interruptions BIGINT NOT NULL,
        caller_end_emotion TEXT,
        caller_end_upset_probability DOUBLE PRECISION,
        caller_ended_upset BIGINT NOT NULL,
        agent_calmness_min DOUBLE PRECISION,
        score_pct DOUBLE PRECISION,
        auto_fail BIGINT NOT NULL,
        model_version TEXT NOT NULL,
        rules_version TEXT NOT NULL,
        rubric_version TEXT,
        stored_at TEXT NOT NULL,
        report_json TEXT NOT NULL
    );
    CREATE INDEX calls_agent_at ON calls (agent, call_at);
    CREATE INDEX calls_at ON calls (call_at);
    CREATE TABLE cues (
        call_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        cue_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        party TEXT NOT NULL,
        severity TEXT NOT NULL,
        event TEXT NOT NULL,
        t_s DOUBLE PRECISION NOT NULL,
        start_s DOUBLE PRECISION NOT NULL,
        end_s DOUBLE PRECISION NOT NULL,
        evidence_json TEXT NOT NULL,
        PRIMARY KEY (call_id, seq)
    );
    CREATE TABLE qa_items (
        call_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        section TEXT NOT NULL,
        item_id TEXT NOT NULL,
        title TEXT NOT NULL,
        weight DOUBLE PRECISION NOT NULL,
        rule TEXT NOT NULL,
        result TEXT NOT NULL,
        value DOUBLE PRECISION,
        auto_fail BIGINT NOT NULL,
        evidence_json TEXT NOT NULL,
        PRIMARY KEY (call_id, seq)
    );",
    // 2: find calls by their QA results quickly.
    "CREATE INDEX qa_items_result ON qa_items (item_id, result);
     CREATE INDEX calls_team_at ON calls (team, call_at);",
    // 3: accounts, API tokens (hashes only), the audit log, acknowledgements.
    "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        teams TEXT NOT NULL,
        agent_id TEXT,
        password_hash TEXT NOT NULL,
        disabled BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE api_tokens (
        token_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        teams TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at TEXT,
        expires_at TEXT
    );
    CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        source TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE INDEX audit_log_actor ON audit_log (actor, seq);
    CREATE TABLE alert_acks (
        call_id TEXT NOT NULL,
        cue_id BIGINT NOT NULL,
        by_user TEXT NOT NULL,
        at_unix_ms BIGINT NOT NULL,
        PRIMARY KEY (call_id, cue_id)
    );",
    // 4: console sessions, shared by every node of a cluster (by the SHA-256 of the cookie).
    "CREATE TABLE sessions (
        session_sha256 TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        csrf TEXT NOT NULL,
        started_unix_ms BIGINT NOT NULL,
        last_seen_unix_ms BIGINT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_name);",
    // 5: a token's capability to resume a stored call (its session is stored as a
    // continuation part, `ID#2`, ...; the stored record is never touched).
    "ALTER TABLE api_tokens ADD COLUMN may_resume BIGINT NOT NULL DEFAULT 0;",
];

/// Checks a date bound of [`CallQuery::from`] / [`CallQuery::to`]: `YYYY-MM-DD` or an RFC 3339
/// time (`YYYY-MM-DDTHH:MM:SSZ`); the error says which forms are accepted.
pub fn parse_date(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b.len() == 10 || b[10] == b'T');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        ))
    }
}

/// A filter over stored calls; every field is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallQuery {
    pub agent: Option<String>,
    pub team: Option<String>,
    /// Calls at or after this date or time (RFC 3339 prefix, e.g. `2026-11-01`).
    pub from: Option<String>,
    /// Calls before the end of this date, or before this time.
    pub to: Option<String>,
    pub min_score_pct: Option<f64>,
    pub max_score_pct: Option<f64>,
    pub caller_ended_upset: bool,
    /// More than this many agent interruptions.
    pub agent_interruptions_over: Option<i64>,
    /// Most rows returned (newest first); None: all.
    pub limit: Option<i64>,
}

/// One stored call as listed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallRow {
    pub call_id: String,
    pub source: String,
    pub recording: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub call_at: String,
    pub duration_s: f64,
    pub score_pct: Option<f64>,
    pub auto_fail: bool,
    pub agent_interruptions: i64,
    pub caller_ended_upset: bool,
    pub caller_end_emotion: Option<String>,
    pub agent_calmness_min: Option<f64>,
    pub cue_count: i64,
}

/// Trend grouping of [`Store::agent_trends`] and the coaching view: a call falls in the period
/// of its `call_at` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendPeriod {
    /// `2026-12-03`.
    Day,
    /// ISO 8601 week, Monday to Sunday: `2026-W49`.
    Week,
    /// `2026-12`.
    Month,
}

impl TrendPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            TrendPeriod::Day => "day",
            TrendPeriod::Week => "week",
            TrendPeriod::Month => "month",
        }
    }

    /// Parses `day`, `week` or `month`; the error names the accepted ones.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "day" => Ok(TrendPeriod::Day),
            "week" => Ok(TrendPeriod::Week),
            "month" => Ok(TrendPeriod::Month),
            other => Err(format!(
                "unknown period {other:?} (expected day, week or month)"
            )),
        }
    }

    /// The period a call time (RFC 3339, or a bare `YYYY-MM-DD`) falls in: `2026-12-03`,
    /// `2026-W49` or `2026-12`. A time that is not a date keeps its first 10 characters.
    pub fn label(self, call_at: &str) -> String {
        let day: String = call_at.chars().take(10).collect();
        match self {
            TrendPeriod::Day => day,
            TrendPeriod::Month => day.chars().take(7).collect(),
            TrendPeriod::Week => match crate::calendar::parse_ymd(&day) {
                Some((y, m, d)) => {
                    crate::calendar::iso_week_label(crate::calendar::days_from_civil(y, m, d))
                }
                None => day,
            },
        }
    }
}

/// One agent's figures over one period.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrendRow {
    pub agent: String,
    /// `YYYY-MM-DD`, `YYYY-Www` or `YYYY-MM` ([`TrendPeriod::label`]).
    pub period: String,
    pub calls: i64,
    pub mean_score_pct: Option<f64>,
    pub min_score_pct: Option<f64>,
    pub auto_fails: i64,
    pub callers_ended_upset: i64,
    pub mean_agent_interruptions: f64,
    pub mean_duration_s: f64,
}

/// The store. See the module docs.
pub struct Store {
    backend: Backend,
}

fn where_clause(q: &CallQuery) -> (String, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    if let Some(agent) = &q.agent {
        clauses.push("agent = ?");
        params.push(Param::Text(Some(agent.clone())));
    }
    if let Some(team) = &q.team {
        clauses.push("team = ?");
        params.push(Param::Text(Some(team.clone())));
    }
    if let Some(from) = &q.from {
        clauses.push("call_at >= ?");
        params.push(Param::Text(Some(from.clone())));
    }
    if let Some(to) = &q.to {
        // A bare date includes the whole day.
        clauses.push("call_at < ?");
        let bound = if to.len() == 10 {
            format!("{to}T99")
        } else {
            to.clone()
        };
        params.push(Param::Text(Some(bound)));
    }
    if let Some(v) = q.min_score_pct {
        clauses.push("score_pct >= ?");
        params.push(Param::Real(Some(v)));
    }
    if let Some(v) = q.max_score_pct {
        clauses.push("score_pct <= ?");
        params.push(Param::Real(Some(v)));
    }
    if q.caller_ended_upset {
        clauses.push("caller_ended_upset = 1");
    }
    if let Some(n) = q.agent_interruptions_over {
        clauses.push("agent_interruptions > ?");
        params.push(Param::Int(Some(n)));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (sql, params)
}

impl Store {
    /// Opens (creating if needed) and migrates a store: `postgres://...` or `postgresql://...`
    /// (feature `postgres`), otherwise a SQLite file path.
    pub fn open(location: &str) -> Result<Self, StoreError> {
        Self::open_with_timeout(location, DEFAULT_BUSY_TIMEOUT)
    }

    /// As [`Self::open`], waiting up to `busy_timeout` for a locked database (SQLite busy
    /// timeout; PostgreSQL `lock_timeout`, with `statement_timeout` a minute longer).
    pub fn open_with_timeout(location: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let backend =
            if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                Backend::open_postgres(location, busy_timeout)?
            } else {
                Backend::open_sqlite(location, busy_timeout)?
            };
        let mut store = Self { backend };
        store.migrate()?;
        Ok(store)
    }

    /// Where the store lives (path or URL without password).
    pub fn location(&self) -> &str {
        self.backend.location()
    }

    /// Whether the connection to the database is encrypted: PostgreSQL's `pg_stat_ssl` for
    /// this session; always false for a SQLite file (no network).
    pub fn connection_encrypted(&mut self) -> Result<bool, StoreError> {
        if matches!(self.backend, Backend::Sqlite { .. }) {
            return Ok(false);
        }
        let rows = self.backend.query(
            "SELECT CASE WHEN ssl THEN 1 ELSE 0 END FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Cell::as_i64) == Some(1))
    }

    /// The schema version now in force.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        let rows = self.backend.query(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
            &[],
        )?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(Cell::as_i64)
            .unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        if self.schema_version().ok() == Some(known) {
            // Up to date: no write lock needed (readers never wait for a batch writing).
            return Ok(());
        }
        self.backend.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )?;
        let location = self.location().to_owned();
        self.backend.transaction(|tx| {
            let rows = tx.query(
                "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
                &[],
            )?;
            let current = rows
                .first()
                .and_then(|r| r.first())
                .and_then(Cell::as_i64)
                .unwrap_or(0);
            if current > known {
                return Err(StoreError::TooNew {
                    location: location.clone(),
                    found: current,
                    known,
                });
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    &[
                        Param::Int(Some(i as i64 + 1)),
                        Param::Text(Some(crate::rfc3339_utc(std::time::SystemTime::now()))),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Saves a call, its cues and its QA items in one transaction, replacing what was stored
    /// under the same `call_id`.
    pub fn save_call(&mut self, call: &StoredCall) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            for table in ["cues", "qa_items", "calls"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE call_id = ?"),
                    &[Param::Text(Some(call.call_id.clone()))],
                )?;
            }
            tx.execute(
                "INSERT INTO calls (call_id, source, recording, agent, team, call_at, duration_s,
                    agent_talk_s, caller_talk_s, overlap_s, silence_s, agent_interruptions,
                    caller_interruptions, caller_end_emotion, caller_end_upset_probability,
                    caller_ended_upset, agent_calmness_min, score_pct, auto_fail, model_version,
                    rules_version, rubric_version, stored_at, report_json)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &call.params(),
            )?;
            for (seq, cue) in call.cues.iter().enumerate() {
                tx.execute(
                    "INSERT INTO cues (call_id, seq, cue_id, kind, party, severity, event, t_s,
                        start_s, end_s, evidence_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &cue.params(&call.call_id, seq as i64),
                )?;
            }
            for (seq, item) in call.qa_items.iter().enumerate() {
                tx.execute(
                    "INSERT INTO qa_items (call_id, seq, section, item_id, title, weight, rule,
                        result, value, auto_fail, evidence_json)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &item.params(&call.call_id, seq as i64),
                )?;
            }
            Ok(())
        })
    }

    /// The `source` of a stored call (`live`, `recording`, `interrupted`), None when not stored.
    pub fn call_source(&mut self, call_id: &str) -> Result<Option<String>, StoreError> {
        let rows = self.backend.query(
            "SELECT source FROM calls WHERE call_id = ?",
            &[Param::Text(Some(call_id.to_owned()))],
        )?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Cell::as_text))
    }

    /// The calls matching `query`, newest first.
    pub fn calls(&mut self, query: &CallQuery) -> Result<Vec<CallRow>, StoreError> {
        let (filter, mut params) = where_clause(query);
        let mut sql = format!(
            "SELECT call_id, source, recording, agent, team, call_at, duration_s, score_pct,
                auto_fail, agent_interruptions, caller_ended_upset, caller_end_emotion,
                agent_calmness_min,
                (SELECT CAST(COUNT(*) AS BIGINT) FROM cues
                  WHERE cues.call_id = calls.call_id AND cues.event = 'open')
             FROM calls{filter} ORDER BY call_at DESC, call_id"
        );
        if let Some(limit) = query.limit {
            sql.push_str(" LIMIT ?");
            params.push(Param::Int(Some(limit)));
        }
        let rows = self.backend.query(&sql, &params)?;
        rows.into_iter()
            .map(|r| {
                let text = |i: usize| r.get(i).and_then(Cell::as_text);
                Ok(CallRow {
                    call_id: text(0).unwrap_or_default(),
                    source: text(1).unwrap_or_default(),
                    recording: text(2),
                    agent: text(3),
                    team: text(4),
                    call_at: text(5).unwrap_or_default(),
                    duration_s: r[6].as_f64().unwrap_or(0.0),
                    score_pct: r[7].as_f64(),
                    auto_fail: r[8].as_i64() == Some(1),
                    agent_interruptions: r[9].as_i64().unwrap_or(0),
                    caller_ended_upset: r[10].as_i64() == Some(1),
                    caller_end_emotion: text(11),
                    agent_calmness_min: r[12].as_f64(),
                    cue_count: r[13].as_i64().unwrap_or(0),
                })
            })
            .collect()
    }

    /// Per agent and period: calls, mean and lowest score, automatic fails, upset endings.
    /// The database sums per agent and day; the days are folded into weeks or months here (an
    /// ISO week has no portable SQL).
    pub fn agent_trends(
        &mut self,
        query: &CallQuery,
        period: TrendPeriod,
    ) -> Result<Vec<TrendRow>, StoreError> {
        let (filter, params) = where_clause(query);
        let filter = if filter.is_empty() {
            " WHERE agent IS NOT NULL".to_owned()
        } else {
            format!("{filter} AND agent IS NOT NULL")
        };
        let sql = format!(
            "SELECT agent, SUBSTR(call_at, 1, 10) AS day, CAST(COUNT(*) AS BIGINT),
                CAST(SUM(score_pct) AS DOUBLE PRECISION), CAST(COUNT(score_pct) AS BIGINT),
                CAST(MIN(score_pct) AS DOUBLE PRECISION),
                CAST(SUM(auto_fail) AS BIGINT), CAST(SUM(caller_ended_upset) AS BIGINT),
                CAST(SUM(agent_interruptions) AS DOUBLE PRECISION),
                CAST(SUM(duration_s) AS DOUBLE PRECISION)
             FROM calls{filter} GROUP BY agent, SUBSTR(call_at, 1, 10)
             ORDER BY agent, day"
        );
        /// Sums of one agent's calls over one period.
        #[derive(Default)]
        struct Sums {
            calls: i64,
            score_sum: f64,
            scored: i64,
            min_score: Option<f64>,
            auto_fails: i64,
            upset: i64,
            interruptions: f64,
            duration_s: f64,
        }
        let mut groups: std::collections::BTreeMap<(String, String), Sums> = Default::default();
        for r in self.backend.query(&sql, &params)? {
            let agent = r[0].as_text().unwrap_or_default();
            let label = period.label(&r[1].as_text().unwrap_or_default());
            let s = groups.entry((agent, label)).or_default();
            s.calls += r[2].as_i64().unwrap_or(0);
            s.score_sum += r[3].as_f64().unwrap_or(0.0);
            s.scored += r[4].as_i64().unwrap_or(0);
            if let Some(min) = r[5].as_f64() {
                s.min_score = Some(s.min_score.map_or(min, |m: f64| m.min(min)));
            }
            s.auto_fails += r[6].as_i64().unwrap_or(0);
            s.upset += r[7].as_i64().unwrap_or(0);
            s.interruptions += r[8].as_f64().unwrap_or(0.0);
            s.duration_s += r[9].as_f64().unwrap_or(0.0);
        }
        Ok(groups
            .into_iter()
            .map(|((agent, period), s)| {
                let per_call = |sum: f64| sum / s.calls.max(1) as f64;
                TrendRow {
                    agent,
                    period,
                    calls: s.calls,
                    mean_score_pct: (s.scored > 0)
                        .then(|| (s.score_sum / s.scored as f64 * 10.0).round() / 10.0),
                    min_score_pct: s.min_score,
                    auto_fails: s.auto_fails,
                    callers_ended_upset: s.upset,
                    mean_agent_interruptions: per_call(s.interruptions),
                    mean_duration_s: per_call(s.duration_s),
                }
            })
            .collect())
    }

    /// A stored call's cues in time order.
    pub fn call_cues(&mut self, call_id: &str) -> Result<Vec<StoredCue>, StoreError> {
        let rows = self.backend.query(
            "SELECT cue_id, kind, party, severity, event, t_s, start_s, end_s, evidence_json
             FROM cues WHERE call_id = ? ORDER BY seq",
            &[Param::Text(Some(call_id.to_owned()))],
        )?;
        Ok(rows.into_iter().map(StoredCue::from_row).collect())
    }

    /// A stored call's QA items in rubric order.
    pub fn qa_items(&mut self, call_id: &str) -> Result<Vec<StoredQaItem>, StoreError> {
        let rows = self.backend.query(
            "SELECT section, item_id, title, weight, rule, result, value, auto_fail, evidence_json
             FROM qa_items WHERE call_id = ? ORDER BY seq",
            &[Param::Text(Some(call_id.to_owned()))],
        )?;
        Ok(rows.into_iter().map(StoredQaItem::from_row).collect())
    }

    /// Checks the database file (SQLite `PRAGMA quick_check`, or the slower and more thorough
    /// `integrity_check` when `full`): the problems found, empty when it is sound. Always empty
    /// on PostgreSQL.
    pub fn check_integrity(&mut self, full: bool) -> Result<Vec<String>, StoreError> {
        self.backend.check_integrity(full)
    }

    /// The size of the SQLite file, bytes (None on PostgreSQL or when it cannot be read).
    pub fn sqlite_file_bytes(&self) -> Option<u64> {
        let location = self.location();
        if location.contains("://") {
            return None;
        }
        std::fs::metadata(location).ok().map(|m| m.len())
    }

    /// Caps the SQLite file at `pages` pages for this connection (tests simulate a full disk
    /// with it); no effect on PostgreSQL.
    #[doc(hidden)]
    pub fn limit_sqlite_pages(&mut self, pages: u64) -> Result<(), StoreError> {
        self.backend.limit_sqlite_pages(pages)
    }

    /// Takes the database's write lock and keeps it until the store is dropped (tests of a
    /// locked database use it).
    #[doc(hidden)]
    pub fn hold_write_lock_for_tests(&mut self) -> Result<(), StoreError> {
        self.backend.hold_write_lock_for_tests()
    }

    /// Whether a call is stored.
    pub fn has_call(&mut self, call_id: &str) -> Result<bool, StoreError> {
        let rows = self.backend.query(
            "SELECT call_id FROM calls WHERE call_id = ?",
            &[Param::Text(Some(call_id.to_owned()))],
        )?;
        Ok(!rows.is_empty())
    }

    /// A stored call's team: None when there is no such call, Some(None) when it has none.
    pub fn call_team(&mut self, call_id: &str) -> Result<Option<Option<String>>, StoreError> {
        let rows = self.backend.query(
            "SELECT team FROM calls WHERE call_id = ?",
            &[Param::Text(Some(call_id.to_owned()))],
        )?;
        Ok(rows.first().map(|r| r.first().and_then(Cell::as_text)))
    }

    /// A stored call's whole result document (JSON), for its report page.
    pub fn report_json(&mut self, call_id: &str) -> Result<Option<String>, StoreError> {
        let rows = self.backend.query(
            "SELECT report_json FROM calls WHERE call_id = ?",
            &[Param::Text(Some(call_id.to_owned()))],
        )?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Cell::as_text))
    }
}
