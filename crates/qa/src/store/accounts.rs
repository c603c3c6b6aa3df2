//! Who may use the service, as stored: people's accounts (a password hash, never a password),
//! machines' API tokens (a SHA-256 of the token, never the token), console sessions (a SHA-256
//! of the cookie, never the cookie), the append-only audit log and the alert acknowledgements
//! with who made them.
//!
//! This module only keeps rows; hashing, roles and what each role may do live in the service's
//! `auth` module. The audit log has no update or delete here: rows are only appended.

use super::backend::{Cell, Param};
use super::{Store, StoreError};

/// A person's account.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserRecord {
    pub name: String,
    /// `admin`, `supervisor`, `agent` or `qa`.
    pub role: String,
    /// Teams a supervisor supervises (or a QA analyst reviews); empty: none.
    pub teams: Vec<String>,
    /// The agent id an agent's calls carry.
    pub agent_id: Option<String>,
    /// PHC string (argon2id); not serialised.
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A machine credential.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenRecord {
    /// Public id (the token's first characters name it in lists and the audit log).
    pub token_id: String,
    pub name: String,
    /// `ingest`, `monitor` or `api`.
    pub role: String,
    /// Teams it may ingest or read; `*`: all.
    pub teams: Vec<String>,
    #[serde(skip)]
    pub token_sha256: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    /// RFC 3339 UTC time after which the token is refused (None: never).
    pub expires_at: Option<String>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    /// Position in the log (1, 2, ...).
    pub seq: i64,
    pub at: String,
    /// Who: `user:NAME`, `token:ID`, `cli:OS_USER`, or `anonymous`.
    pub actor: String,
    /// What: e.g. `login`, `login_failed`, `ack`, `upload`, `report_read`, `user_add`.
    pub action: String,
    /// What it was done to (a call id, a user name, a token id).
    pub target: String,
    /// From where: the client's address, or `cli`.
    pub source: String,
    /// `ok` or `denied`/`failed` with a reason.
    pub outcome: String,
}

/// A filter over the audit log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Most entries (newest first); None: all.
    pub limit: Option<i64>,
}

/// A stored acknowledgement of an alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AckRecord {
    pub call_id: String,
    pub cue_id: i64,
    pub by: String,
    pub at_unix_ms: i64,
}

/// A console session as stored, so every node of a cluster (and a restarted node) knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the session cookie's value.
    pub session_sha256: String,
    pub user_name: String,
    /// The session's CSRF token.
    pub csrf: String,
    pub started_unix_ms: i64,
    pub last_seen_unix_ms: i64,
}

fn teams_text(teams: &[String]) -> String {
    teams.join(",")
}

fn teams_of(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn text(v: &str) -> Param {
    Param::Text(Some(v.to_owned()))
}

fn now() -> String {
    crate::rfc3339_utc(std::time::SystemTime::now())
}

fn user_from_row(r: &[Cell]) -> UserRecord {
    let t = |i: usize| r.get(i).and_then(Cell::as_text);
    UserRecord {
        name: t(0).unwrap_or_default(),
        role: t(1).unwrap_or_default(),
        teams: teams_of(t(2)),
        agent_id: t(3),
        password_hash: t(4).unwrap_or_default(),
        disabled: r.get(5).and_then(Cell::as_i64) == Some(1),
        created_at: t(6).unwrap_or_default(),
        updated_at: t(7).unwrap_or_default(),
    }
}

fn token_from_row(r: &[Cell]) -> TokenRecord {
    let t = |i: usize| r.get(i).and_then(Cell::as_text);
    TokenRecord {
        token_id: t(0).unwrap_or_default(),
        name: t(1).unwrap_or_default(),
        role: t(2).unwrap_or_default(),
        teams: teams_of(t(3)),
        token_sha256: t(4).unwrap_or_default(),
        created_at: t(5).unwrap_or_default(),
        created_by: t(6).unwrap_or_default(),
        revoked_at: t(7),
        expires_at: t(8),
    }
}

const USER_COLUMNS: &str =
    "name, role, teams, agent_id, password_hash, disabled, created_at, updated_at";
const TOKEN_COLUMNS: &str =
    "token_id, name, role, teams, token_sha256, created_at, created_by, revoked_at, expires_at";

impl Store {
    /// Adds an account; an existing name is refused.
    pub fn add_user(&mut self, user: &UserRecord) -> Result<(), StoreError> {
        if self.user(&user.name)?.is_some() {
            return Err(StoreError::Record(format!(
                "user {:?} already exists (use `attune users passwd` or `disable`)",
                user.name
            )));
        }
        let at = now();
        self.backend.transaction(|tx| {
            tx.execute(
                &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                &[
                    text(&user.name),
                    text(&user.role),
                    text(&teams_text(&user.teams)),
                    Param::Text(user.agent_id.clone()),
                    text(&user.password_hash),
                    Param::Int(Some(i64::from(user.disabled))),
                    text(&at),
                    text(&at),
                ],
            )
        })
    }

    /// An account by name.
    pub fn user(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let rows = self.backend.query(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"),
            &[text(name)],
        )?;
        Ok(rows.first().map(|r| user_from_row(r)))
    }

    /// Every account, by name.
    pub fn users(&mut self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self.backend.query(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
            &[],
        )?;
        Ok(rows.iter().map(|r| user_from_row(r)).collect())
    }

    fn update_user(&mut self, name: &str, set: &str, value: Param) -> Result<(), StoreError> {
        if self.user(name)?.is_none() {
            return Err(StoreError::Record(format!("no user {name:?}")));
        }
        self.backend.transaction(|tx| {
            tx.execute(
                &format!("UPDATE users SET {set} = ?, updated_at = ? WHERE name = ?"),
                &[value, text(&now()), text(name)],
            )
        })
    }

    /// Turns an account off (or on again); a disabled account cannot sign in.
    /// (Ends the user's console sessions when disabling.)
    pub fn set_user_disabled(&mut self, name: &str, disabled: bool) -> Result<(), StoreError> {
        self.update_user(name, "disabled", Param::Int(Some(i64::from(disabled))))?;
        if disabled {
            self.delete_sessions_of(name)?;
        }
        Ok(())
    }

    /// Replaces an account's password hash (and ends its console sessions).
    pub fn set_user_password_hash(&mut self, name: &str, hash: &str) -> Result<(), StoreError> {
        self.update_user(name, "password_hash", text(hash))?;
        self.delete_sessions_of(name)
    }

    /// Adds a token (its hash).
    pub fn add_token(&mut self, token: &TokenRecord) -> Result<(), StoreError> {
        self.add_token_with(token, false)
    }

    /// As [`Self::add_token`]; `may_resume`: the token may start a session under a stored
    /// call id (stored as that call's continuation part, never over it).
    pub fn add_token_with(
        &mut self,
        token: &TokenRecord,
        may_resume: bool,
    ) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                &[
                    text(&token.token_id),
                    text(&token.name),
                    text(&token.role),
                    text(&teams_text(&token.teams)),
                    text(&token.token_sha256),
                    text(&token.created_at),
                    text(&token.created_by),
                    Param::Text(token.revoked_at.clone()),
                    Param::Text(token.expires_at.clone()),
                ],
            )?;
            tx.execute(
                "UPDATE api_tokens SET may_resume = ? WHERE token_id = ?",
                &[
                    Param::Int(Some(i64::from(may_resume))),
                    text(&token.token_id),
                ],
            )
        })
    }

    /// Whether the token `token_id` may resume stored calls (false for an unknown id).
    pub fn token_may_resume(&mut self, token_id: &str) -> Result<bool, StoreError> {
        let rows = self.backend.query(
            "SELECT may_resume FROM api_tokens WHERE token_id = ?",
            &[text(token_id)],
        )?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Cell::as_i64) == Some(1))
    }

    /// The token whose SHA-256 (hex) is `sha256`, revoked or not.
    pub fn token_by_hash(&mut self, sha256: &str) -> Result<Option<TokenRecord>, StoreError> {
        let rows = self.backend.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_sha256 = ?"),
            &[text(sha256)],
        )?;
        Ok(rows.first().map(|r| token_from_row(r)))
    }

    /// Every token, oldest first.
    pub fn tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = self.backend.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, token_id"),
            &[],
        )?;
        Ok(rows.iter().map(|r| token_from_row(r)).collect())
    }

    /// Revokes a token by id (from then on it is refused); an unknown id is an error.
    pub fn revoke_token(&mut self, token_id: &str) -> Result<(), StoreError> {
        let rows = self.backend.query(
            "SELECT revoked_at FROM api_tokens WHERE token_id = ?",
            &[text(token_id)],
        )?;
        if rows.is_empty() {
            return Err(StoreError::Record(format!("no token {token_id:?}")));
        }
        self.backend.transaction(|tx| {
            tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                &[text(&now()), text(token_id)],
            )
        })
    }

    /// Appends an entry to the audit log (its `seq` and `at` are set here).
    pub fn append_audit(
        &mut self,
        actor: &str,
        action: &str,
        target: &str,
        source: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let at = now();
        // The next position is read and written in one write transaction (SQLite takes the
        // write lock first; on PostgreSQL a concurrent writer loses on the primary key and
        // this tries again).
        let mut last = Ok(());
        for _ in 0..5 {
            last = self.backend.transaction(|tx| {
                let rows = tx.query(
                    "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM audit_log",
                    &[],
                )?;
                let seq = rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(Cell::as_i64)
                    .unwrap_or(0)
                    + 1;
                tx.execute(
                    "INSERT INTO audit_log (seq, at, actor, action, target, source, outcome)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &[
                        Param::Int(Some(seq)),
                        text(&at),
                        text(actor),
                        text(action),
                        text(target),
                        text(source),
                        text(outcome),
                    ],
                )
            });
            if last.is_ok() {
                break;
            }
        }
        last
    }

    /// Audit entries matching `query`, newest first.
    pub fn audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        for (column, value) in [
            ("actor", &query.actor),
            ("action", &query.action),
            ("target", &query.target),
        ] {
            if let Some(v) = value {
                clauses.push(format!("{column} = ?"));
                params.push(text(v));
            }
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let mut sql = format!(
            "SELECT seq, at, actor, action, target, source, outcome FROM audit_log{filter}
             ORDER BY seq DESC"
        );
        if let Some(limit) = query.limit {
            sql.push_str(" LIMIT ?");
            params.push(Param::Int(Some(limit)));
        }
        let rows = self.backend.query(&sql, &params)?;
        Ok(rows
            .iter()
            .map(|r| {
                let t = |i: usize| r.get(i).and_then(Cell::as_text).unwrap_or_default();
                AuditEntry {
                    seq: r.first().and_then(Cell::as_i64).unwrap_or(0),
                    at: t(1),
                    actor: t(2),
                    action: t(3),
                    target: t(4),
                    source: t(5),
                    outcome: t(6),
                }
            })
            .collect())
    }

    /// Stores an acknowledgement (the first one of an alert stands).
    pub fn save_ack(&mut self, ack: &AckRecord) -> Result<(), StoreError> {
        let existing = self.backend.query(
            "SELECT by_user FROM alert_acks WHERE call_id = ? AND cue_id = ?",
            &[text(&ack.call_id), Param::Int(Some(ack.cue_id))],
        )?;
        if !existing.is_empty() {
            return Ok(());
        }
        self.backend.transaction(|tx| {
            tx.execute(
                "INSERT INTO alert_acks (call_id, cue_id, by_user, at_unix_ms) VALUES (?, ?, ?, ?)",
                &[
                    text(&ack.call_id),
                    Param::Int(Some(ack.cue_id)),
                    text(&ack.by),
                    Param::Int(Some(ack.at_unix_ms)),
                ],
            )
        })
    }

    /// The stored acknowledgements of a call's alerts, by cue id.
    pub fn acks(&mut self, call_id: &str) -> Result<Vec<AckRecord>, StoreError> {
        let rows = self.backend.query(
            "SELECT call_id, cue_id, by_user, at_unix_ms FROM alert_acks WHERE call_id = ?
             ORDER BY cue_id",
            &[text(call_id)],
        )?;
        Ok(rows
            .iter()
            .map(|r| AckRecord {
                call_id: r.first().and_then(Cell::as_text).unwrap_or_default(),
                cue_id: r.get(1).and_then(Cell::as_i64).unwrap_or(0),
                by: r.get(2).and_then(Cell::as_text).unwrap_or_default(),
                at_unix_ms: r.get(3).and_then(Cell::as_i64).unwrap_or(0),
            })
            .collect())
    }

    /// Stores a new console session.
    pub fn save_session(&mut self, session: &SessionRecord) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            tx.execute(
                "INSERT INTO sessions (session_sha256, user_name, csrf, started_unix_ms, \
                 last_seen_unix_ms) VALUES (?, ?, ?, ?, ?)",
                &[
                    text(&session.session_sha256),
                    text(&session.user_name),
                    text(&session.csrf),
                    Param::Int(Some(session.started_unix_ms)),
                    Param::Int(Some(session.last_seen_unix_ms)),
                ],
            )
        })
    }

    /// The stored session of a cookie's SHA-256, if any.
    pub fn session_by_hash(&mut self, sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        let rows = self.backend.query(
            "SELECT session_sha256, user_name, csrf, started_unix_ms, last_seen_unix_ms \
             FROM sessions WHERE session_sha256 = ?",
            &[text(sha256)],
        )?;
        Ok(rows.first().map(|r| SessionRecord {
            session_sha256: r.first().and_then(Cell::as_text).unwrap_or_default(),
            user_name: r.get(1).and_then(Cell::as_text).unwrap_or_default(),
            csrf: r.get(2).and_then(Cell::as_text).unwrap_or_default(),
            started_unix_ms: r.get(3).and_then(Cell::as_i64).unwrap_or(0),
            last_seen_unix_ms: r.get(4).and_then(Cell::as_i64).unwrap_or(0),
        }))
    }

    /// Records that a session was used (its idle time starts again).
    pub fn touch_session(&mut self, sha256: &str, at_unix_ms: i64) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            tx.execute(
                "UPDATE sessions SET last_seen_unix_ms = ? WHERE session_sha256 = ? \
                 AND last_seen_unix_ms < ?",
                &[
                    Param::Int(Some(at_unix_ms)),
                    text(sha256),
                    Param::Int(Some(at_unix_ms)),
                ],
            )
        })
    }

    /// Ends one session (sign-out).
    pub fn delete_session(&mut self, sha256: &str) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE session_sha256 = ?",
                &[text(sha256)],
            )
        })
    }

    /// Ends every session of a user (disabled, new password).
    pub fn delete_sessions_of(&mut self, user_name: &str) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE user_name = ?",
                &[text(user_name)],
            )
        })
    }

    /// Deletes the sessions idle since before `idle_before_unix_ms` or started before
    /// `started_before_unix_ms` (they can no longer be used).
    pub fn delete_expired_sessions(
        &mut self,
        idle_before_unix_ms: i64,
        started_before_unix_ms: i64,
    ) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE last_seen_unix_ms < ? OR started_unix_ms < ?",
                &[
                    Param::Int(Some(idle_before_unix_ms)),
                    Param::Int(Some(started_before_unix_ms)),
                ],
            )
        })
    }
}
