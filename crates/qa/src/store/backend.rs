//! The two database engines behind one small interface: statements with `?` placeholders
//! (rewritten to `$n` for PostgreSQL), typed parameters ([`Param`]) and result cells ([`Cell`]),
//! and transactions. Errors are turned into [`StoreError`]s that say what happened.

use std::time::Duration;

use rusqlite::{ErrorCode, TransactionBehavior};

use super::StoreError;

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Real(Option<f64>),
    Int(Option<i64>),
}

/// A result cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Real(f64),
    Int(i64),
}

impl Cell {
    pub fn as_text(&self) -> Option<String> {
        match self {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Cell::Real(v) => Some(v),
            Cell::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Cell::Int(v) => Some(v),
            Cell::Real(v) => Some(v as i64),
            _ => None,
        }
    }
}

/// Statements inside a transaction (or on the connection).
pub trait Exec {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<(), StoreError>;
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError>;
    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Cell>>, StoreError>;
}

pub enum Backend {
    Sqlite {
        conn: rusqlite::Connection,
        location: String,
        busy_timeout: Duration,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        client: postgres::Client,
        location: String,
        /// How long a statement waits for a lock another connection holds (`lock_timeout`).
        lock_timeout: Duration,
    },
}

/// Connects to the PostgreSQL server at `url`, over TLS as its `sslmode`/`sslrootcert` say
/// ([`super::pgtls`]); the error says why not (with a hint for the usual TLS mistakes).
#[cfg(feature = "postgres")]
pub fn connect_postgres(url: &str) -> Result<postgres::Client, String> {
    use super::pgtls::{Connector, connector, describe};
    let (client_url, params) = super::url::split_tls_params(url)?;
    let result = match connector(&params)? {
        Connector::Plain => postgres::Client::connect(&client_url, postgres::NoTls),
        Connector::Tls(tls) => postgres::Client::connect(&client_url, tls),
    };
    result.map_err(|e| describe(&e, &params))
}

/// How long any one PostgreSQL statement may run beyond its lock wait (`statement_timeout` is
/// the lock timeout plus this), so a stuck server gives an error instead of a hang.
#[cfg(feature = "postgres")]
pub const POSTGRES_STATEMENT_GRACE: Duration = Duration::from_secs(60);

fn sqlite_error(location: &str, busy_timeout: Duration, e: rusqlite::Error) -> StoreError {
    let location = location.to_owned();
    if let rusqlite::Error::SqliteFailure(failure, message) = &e {
        match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Locked {
                    location,
                    what: "another process is writing to it".to_owned(),
                    waited_s: busy_timeout.as_secs_f64(),
                };
            }
            ErrorCode::DiskFull => return StoreError::Full { location },
            ErrorCode::ReadOnly => {
                return StoreError::ReadOnly {
                    location,
                    message: message.clone().unwrap_or_else(|| e.to_string()),
                };
            }
            ErrorCode::CannotOpen | ErrorCode::NotADatabase => {
                return StoreError::Open {
                    location,
                    message: e.to_string(),
                };
            }
            _ => {}
        }
    }
    StoreError::Query {
        location,
        message: e.to_string(),
    }
}

struct SqliteExec<'a> {
    conn: &'a rusqlite::Connection,
    location: &'a str,
    busy_timeout: Duration,
}

/// Binds a parameter by reference (a stored document can be megabytes: no copy on our side).
impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Param::Real(Some(v)) => ValueRef::Real(*v),
            Param::Int(Some(v)) => ValueRef::Integer(*v),
            _ => ValueRef::Null,
        }))
    }
}

impl Exec for SqliteExec<'_> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<(), StoreError> {
        self.conn
            .execute(sql, rusqlite::params_from_iter(params))
            .map(|_| ())
            .map_err(|e| sqlite_error(self.location, self.busy_timeout, e))
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| sqlite_error(self.location, self.busy_timeout, e))
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Cell>>, StoreError> {
        let err = |e| sqlite_error(self.location, self.busy_timeout, e);
        let mut stmt = self.conn.prepare(sql).map_err(err)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                use rusqlite::types::ValueRef;
                cells.push(match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => Cell::Null,
                });
            }
            out.push(cells);
        }
        Ok(out)
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use super::{Cell, Exec, Param};
    use crate::store::StoreError;
    use postgres::types::{ToSql, Type};

    /// `?` placeholders to `$1, $2, ...` (the SQL here has no `?` inside literals).
    pub fn numbered(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The table a statement works on (`FROM`/`INTO`/`UPDATE`/`TABLE` name), to say what
    /// was locked.
    pub fn statement_table(sql: &str) -> Option<&str> {
        let words: Vec<&str> = sql.split_whitespace().collect();
        words.windows(2).find_map(|w| {
            ["FROM", "INTO", "UPDATE", "TABLE"]
                .iter()
                .any(|k| w[0].eq_ignore_ascii_case(k))
                .then(|| w[1].trim_matches(|c: char| !(c.is_alphanumeric() || c == '_')))
        })
    }

    /// A PostgreSQL error as a [`StoreError`]; `sql` (when known) names what a lock held up,
    /// `lock_timeout` is how long it was waited for.
    pub fn error(
        location: &str,
        e: postgres::Error,
        sql: Option<&str>,
        lock_timeout: std::time::Duration,
    ) -> StoreError {
        use postgres::error::SqlState;
        let location = location.to_owned();
        match e.code() {
            Some(c) if *c == SqlState::DISK_FULL => StoreError::Full { location },
            Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => StoreError::Locked {
                location,
                what: match sql.and_then(statement_table) {
                    Some(table) => format!("table {table} is locked by another connection"),
                    None => "a table is locked by another connection".to_owned(),
                },
                waited_s: lock_timeout.as_secs_f64(),
            },
            Some(c) if *c == SqlState::QUERY_CANCELED => StoreError::Query {
                location,
                message: format!(
                    "a statement ran longer than the statement timeout and was cancelled ({})",
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |db| db.message().to_owned())
                ),
            },
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly {
                location,
                message: e.to_string(),
            },
            _ => StoreError::Query {
                location,
                message: match e.as_db_error() {
                    Some(db) => db.message().to_owned(),
                    None => e.to_string(),
                },
            },
        }
    }

    fn boxed(params: &[Param]) -> Vec<Box<dyn ToSql + Sync>> {
        params
            .iter()
            .map(|p| -> Box<dyn ToSql + Sync> {
                match p {
                    Param::Text(v) => Box::new(v.clone()),
                    Param::Real(v) => Box::new(*v),
                    Param::Int(v) => Box::new(*v),
                }
            })
            .collect()
    }

    pub struct PgExec<'a, C: postgres::GenericClient> {
        pub client: &'a mut C,
        pub location: &'a str,
        pub lock_timeout: std::time::Duration,
    }

    impl<C: postgres::GenericClient> Exec for PgExec<'_, C> {
        fn execute(&mut self, sql: &str, params: &[Param]) -> Result<(), StoreError> {
            let values = boxed(params);
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
            self.client
                .execute(numbered(sql).as_str(), &refs)
                .map(|_| ())
                .map_err(|e| error(self.location, e, Some(sql), self.lock_timeout))
        }

        fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
            self.client
                .batch_execute(sql)
                .map_err(|e| error(self.location, e, Some(sql), self.lock_timeout))
        }

        fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Cell>>, StoreError> {
            let values = boxed(params);
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
            let rows = self
                .client
                .query(numbered(sql).as_str(), &refs)
                .map_err(|e| error(self.location, e, Some(sql), self.lock_timeout))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut cells = Vec::with_capacity(row.len());
                for (i, column) in row.columns().iter().enumerate() {
                    let ty = column.type_();
                    let cell = if *ty == Type::INT8 {
                        row.get::<_, Option<i64>>(i).map_or(Cell::Null, Cell::Int)
                    } else if *ty == Type::INT4 {
                        row.get::<_, Option<i32>>(i)
                            .map_or(Cell::Null, |v| Cell::Int(i64::from(v)))
                    } else if *ty == Type::FLOAT8 {
                        row.get::<_, Option<f64>>(i).map_or(Cell::Null, Cell::Real)
                    } else {
                        row.get::<_, Option<String>>(i)
                            .map_or(Cell::Null, Cell::Text)
                    };
                    cells.push(cell);
                }
                out.push(cells);
            }
            Ok(out)
        }
    }
}

impl Backend {
    pub fn open_sqlite(path: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let conn =
            rusqlite::Connection::open(path).map_err(|e| sqlite_error(path, busy_timeout, e))?;
        conn.busy_timeout(busy_timeout)
            .map_err(|e| sqlite_error(path, busy_timeout, e))?;
        // WAL: readers never block the writer, and a killed writer leaves a consistent file.
        // synchronous=FULL: a stored call survives a power cut too, not only a killed process
        // (NORMAL may lose the last commits); one fsync per commit, and commits are per call.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sqlite_error(path, busy_timeout, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| sqlite_error(path, busy_timeout, e))?;
        Ok(Backend::Sqlite {
            conn,
            location: path.to_owned(),
            busy_timeout,
        })
    }

    /// Connects to PostgreSQL; a statement waits up to `lock_timeout` for a lock another
    /// connection holds (then fails as [`StoreError::Locked`]), and no statement runs longer
    /// than `lock_timeout` + [`POSTGRES_STATEMENT_GRACE`].
    #[cfg(feature = "postgres")]
    pub fn open_postgres(url: &str, lock_timeout: Duration) -> Result<Self, StoreError> {
        let location = match url.find('@') {
            Some(at) => format!("postgres://…{}", &url[at..]),
            None => url.to_owned(),
        };
        let client = connect_postgres(url).map_err(|message| StoreError::Open {
            location: location.clone(),
            message,
        })?;
        let mut client = client;
        // Both in milliseconds; 0 would mean "wait forever" to PostgreSQL.
        let lock_ms = lock_timeout.as_millis().clamp(1, i32::MAX as u128);
        let statement_ms = (lock_timeout + POSTGRES_STATEMENT_GRACE)
            .as_millis()
            .min(i32::MAX as u128);
        client
            .batch_execute(&format!(
                "SET lock_timeout = {lock_ms}; SET statement_timeout = {statement_ms}"
            ))
            .map_err(|e| pg::error(&location, e, None, lock_timeout))?;
        Ok(Backend::Postgres {
            client,
            location,
            lock_timeout,
        })
    }

    #[cfg(not(feature = "postgres"))]
    pub fn open_postgres(url: &str, lock_timeout: Duration) -> Result<Self, StoreError> {
        let _ = (url, lock_timeout);
        Err(StoreError::Unsupported(
            "this attune was built without PostgreSQL support (cargo feature `postgres`)"
                .to_owned(),
        ))
    }

    /// Runs SQL outside any transaction wrapper.
    pub fn execute_raw(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite {
                conn,
                location,
                busy_timeout,
            } => conn
                .execute_batch(sql)
                .map_err(|e| sqlite_error(location, *busy_timeout, e)),
            #[cfg(feature = "postgres")]
            Backend::Postgres {
                client,
                location,
                lock_timeout,
            } => client
                .batch_execute(sql)
                .map_err(|e| pg::error(location, e, Some(sql), *lock_timeout)),
        }
    }

    /// SQLite's `PRAGMA quick_check` (or `integrity_check` when `full`): the problems found,
    /// empty when the file is sound. PostgreSQL keeps its own consistency: always empty.
    pub fn check_integrity(&mut self, full: bool) -> Result<Vec<String>, StoreError> {
        match self {
            Backend::Sqlite {
                conn,
                location,
                busy_timeout,
            } => {
                let pragma = if full {
                    "PRAGMA integrity_check"
                } else {
                    "PRAGMA quick_check"
                };
                let fail = |e| sqlite_error(location, *busy_timeout, e);
                let mut statement = conn.prepare(pragma).map_err(fail)?;
                let rows = statement
                    .query_map([], |row| row.get::<_, String>(0))
                    .map_err(fail)?;
                let mut problems = Vec::new();
                for row in rows {
                    let row = row.map_err(fail)?;
                    if row != "ok" {
                        problems.push(row);
                    }
                }
                Ok(problems)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { .. } => Ok(Vec::new()),
        }
    }

    pub fn limit_sqlite_pages(&mut self, pages: u64) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite {
                conn,
                location,
                busy_timeout,
            } => conn
                .pragma_update(None, "max_page_count", pages)
                .map_err(|e| sqlite_error(location, *busy_timeout, e)),
            #[cfg(feature = "postgres")]
            Backend::Postgres { .. } => Ok(()),
        }
    }

    /// Takes and keeps the write lock (SQLite: an immediate transaction; PostgreSQL: the
    /// tables locked in EXCLUSIVE mode, which readers pass) until this connection ends.
    pub fn hold_write_lock_for_tests(&mut self) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite { .. } => self.execute_raw("BEGIN IMMEDIATE"),
            #[cfg(feature = "postgres")]
            Backend::Postgres { .. } => {
                self.execute_raw("BEGIN; LOCK TABLE calls, cues, qa_items IN EXCLUSIVE MODE")
            }
        }
    }

    pub fn location(&self) -> &str {
        match self {
            Backend::Sqlite { location, .. } => location,
            #[cfg(feature = "postgres")]
            Backend::Postgres { location, .. } => location,
        }
    }

    pub fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.transaction(|tx| tx.execute_batch(sql))
    }

    pub fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Cell>>, StoreError> {
        match self {
            Backend::Sqlite {
                conn,
                location,
                busy_timeout,
            } => SqliteExec {
                conn,
                location,
                busy_timeout: *busy_timeout,
            }
            .query(sql, params),
            #[cfg(feature = "postgres")]
            Backend::Postgres {
                client,
                location,
                lock_timeout,
            } => pg::PgExec {
                client,
                location,
                lock_timeout: *lock_timeout,
            }
            .query(sql, params),
        }
    }

    /// Runs `f` in one transaction: committed when it returns Ok, rolled back otherwise.
    pub fn transaction(
        &mut self,
        f: impl FnOnce(&mut dyn Exec) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite {
                conn,
                location,
                busy_timeout,
            } => {
                let timeout = *busy_timeout;
                let err = |e| sqlite_error(location, timeout, e);
                // IMMEDIATE takes the write lock up front (waiting up to the busy timeout),
                // so a locked database fails before any work, never half-way.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(err)?;
                f(&mut SqliteExec {
                    conn: &tx,
                    location,
                    busy_timeout: timeout,
                })?;
                tx.commit().map_err(err)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres {
                client,
                location,
                lock_timeout,
            } => {
                let timeout = *lock_timeout;
                let err = |e| pg::error(location, e, None, timeout);
                let mut tx = client.transaction().map_err(err)?;
                f(&mut pg::PgExec {
                    client: &mut tx,
                    location,
                    lock_timeout: timeout,
                })?;
                tx.commit().map_err(err)
            }
        }
    }
}
