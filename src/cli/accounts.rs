//! `attune users`, `attune tokens` and `attune audit`: people's accounts, machines' API tokens
//! and the audit log, in the store (`--db`, default `attune.db`, or `ATTUNE_DB`). Every change
//! is written to the audit log as `cli:OS_USER`.

use std::io::{BufRead, Read, Write};

use anyhow::Context;

use attune_qa::store::{AuditQuery, Store};
use attune_service::auth::{manage, secrets};

/// Where accounts live when no `--db` is given.
pub const DEFAULT_DB: &str = "attune.db";

#[derive(Debug, clap::Args)]
pub struct DbArg {
    /// The store (SQLite file, or postgres://... with the `postgres` feature).
    #[arg(long, value_name = "PATH|URL", env = "ATTUNE_DB", default_value = DEFAULT_DB)]
    pub db: String,
    /// The CA (PEM) a postgres:// store's certificate must chain to (adds `sslrootcert` to
    /// the URL; give `sslmode=verify-full` in it to check the host name too).
    #[arg(long, value_name = "FILE")]
    pub db_ca: Option<std::path::PathBuf>,
}

/// `db` with `--db-ca` folded into it as `sslrootcert`.
pub fn db_location(db: &str, db_ca: Option<&std::path::Path>) -> anyhow::Result<String> {
    match db_ca {
        None => Ok(db.to_owned()),
        Some(ca) => attune_qa::store::with_db_ca(db, ca).map_err(anyhow::Error::msg),
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add an account; the password is read from standard input (one line).
    Add {
        name: String,
        #[arg(long, value_parser = ["admin", "supervisor", "agent", "qa"])]
        role: String,
        /// Teams a supervisor supervises (or a QA analyst reviews), comma-separated.
        #[arg(long, value_delimiter = ',')]
        teams: Vec<String>,
        /// The agent id an agent's calls carry (agents only; required for them).
        #[arg(long)]
        agent_id: Option<String>,
        /// Read the password from standard input (required: passwords never go on the
        /// command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Disable an account (it can no longer sign in; its sessions end within 30 s).
    Disable {
        name: String,
        /// Enable it again instead.
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Set a new password, read from standard input (the account's sessions end within 30 s).
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Create an API token; it is shown once, as the last line, and stored only as its
    /// SHA-256.
    Create {
        #[arg(long, value_parser = ["ingest", "monitor", "api"])]
        role: String,
        /// Teams it may ingest or read, comma-separated; `*` (the default): all teams.
        #[arg(long, value_delimiter = ',', default_value = "*")]
        teams: Vec<String>,
        /// A name to recognise it by.
        #[arg(long, default_value = "")]
        name: String,
        /// Refuse it after this many days (default: until revoked).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<f64>,
        /// An ingest token that may start a session under a stored call id (e.g. one stored
        /// as interrupted); the session is stored as the call's next part, `ID#2`, ...
        #[arg(long)]
        may_resume: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List tokens (ids, never the tokens).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a token by its id (servers refuse it within 5 s).
    Revoke {
        token_id: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only this actor (`user:NAME`, `token:ID`, `cli:NAME`).
    #[arg(long)]
    actor: Option<String>,
    /// Only this action (e.g. `login_failed`, `ack`, `upload`, `report_read`).
    #[arg(long)]
    action: Option<String>,
    /// Only entries about this target (a call id, user or token id).
    #[arg(long)]
    target: Option<String>,
    /// Most entries, newest first.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArg,
}

/// How a client command reaches a server: its API token and, for a private CA, the CA file.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// API token (`attune tokens create`), sent as `authorization: Bearer TOKEN`.
    #[arg(long, env = "ATTUNE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify an https:// server with, instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
}

impl ClientArgs {
    pub fn options(&self) -> anyhow::Result<attune_service::client::ClientOptions> {
        let ca_pem = match &self.ca {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read --ca {}", path.display()))?,
            ),
            None => None,
        };
        Ok(attune_service::client::ClientOptions {
            token: self.token.clone(),
            ca_pem,
        })
    }
}

fn open(db: &DbArg) -> anyhow::Result<Store> {
    let location = db_location(&db.db, db.db_ca.as_deref())?;
    Store::open(&location).with_context(|| format!("cannot open the store {}", db.db))
}

/// Who runs the CLI, as the audit log names them.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(secrets::MAX_PASSWORD_BYTES as u64 + 2)
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    secrets::check_new_password(&password)?;
    Ok(password)
}

pub fn run_users(command: &UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add {
            name,
            role,
            teams,
            agent_id,
            password_stdin: _,
            db,
        } => {
            manage::check_name("user name", name)?;
            let password = read_password()?;
            let mut store = open(db)?;
            let role = manage::add_user(
                &mut store,
                &manage::NewUser {
                    name,
                    role,
                    teams,
                    agent_id: agent_id.as_deref(),
                    password: &password,
                },
                &cli_actor(),
                "cli",
            )?;
            println!("added {role} {name}");
        }
        UsersCommand::List { json, db } => {
            let users = open(db)?.users()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!(
                    "{:<24} {:<11} {:<9} {:<16} teams",
                    "name", "role", "state", "agent id"
                );
                for u in users {
                    println!(
                        "{:<24} {:<11} {:<9} {:<16} {}",
                        u.name,
                        u.role,
                        if u.disabled { "disabled" } else { "active" },
                        u.agent_id.as_deref().unwrap_or("-"),
                        if u.teams.is_empty() {
                            "-".into()
                        } else {
                            u.teams.join(",")
                        }
                    );
                }
            }
        }
        UsersCommand::Disable { name, enable, db } => {
            let mut store = open(db)?;
            manage::set_disabled(&mut store, name, !enable, &cli_actor(), "cli")?;
            println!("{} {name}", if *enable { "enabled" } else { "disabled" });
        }
        UsersCommand::Passwd { name, db, .. } => {
            let password = read_password()?;
            let mut store = open(db)?;
            manage::set_password(&mut store, name, &password, &cli_actor(), "cli")?;
            println!("password of {name} changed");
        }
    }
    Ok(())
}

pub fn run_tokens(command: &TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create {
            role,
            teams,
            name,
            expires_days,
            may_resume,
            db,
        } => {
            let mut store = open(db)?;
            let (token, record) = manage::create_token(
                &mut store,
                &manage::NewToken {
                    role,
                    teams,
                    name,
                    expires_days: *expires_days,
                    may_resume: *may_resume,
                },
                &cli_actor(),
                "cli",
            )?;
            eprintln!(
                "created {} token {} ({}) for teams {}{}{}; it is shown once, below:",
                record.role,
                record.token_id,
                record.name,
                record.teams.join(","),
                if *may_resume {
                    ", may resume stored calls"
                } else {
                    ""
                },
                record
                    .expires_at
                    .as_deref()
                    .map_or_else(String::new, |at| format!(", expires {at}"))
            );
            let mut out = std::io::stdout().lock();
            writeln!(out, "{token}")?;
        }
        TokensCommand::List { json, db } => {
            let mut store = open(db)?;
            let tokens = store.tokens()?;
            let mut resume = Vec::with_capacity(tokens.len());
            for t in &tokens {
                resume.push(store.token_may_resume(&t.token_id)?);
            }
            if *json {
                let rows: Vec<serde_json::Value> = tokens
                    .iter()
                    .zip(&resume)
                    .map(|(t, r)| {
                        let mut v = serde_json::to_value(t).unwrap_or_default();
                        v["may_resume"] = serde_json::Value::Bool(*r);
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<13} {:<8} {:<8} {:<6} {:<21} {:<24} teams",
                    "id", "role", "state", "resume", "created", "name"
                );
                for (t, r) in tokens.iter().zip(&resume) {
                    println!(
                        "{:<13} {:<8} {:<8} {:<6} {:<21} {:<24} {}",
                        t.token_id,
                        t.role,
                        if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        if *r { "yes" } else { "no" },
                        t.created_at,
                        t.name,
                        t.teams.join(",")
                    );
                }
            }
        }
        TokensCommand::Revoke { token_id, db } => {
            let mut store = open(db)?;
            manage::revoke_token(&mut store, token_id, &cli_actor(), "cli")?;
            println!("revoked {token_id}");
        }
    }
    Ok(())
}

pub fn run_audit(args: &AuditArgs) -> anyhow::Result<()> {
    let entries = open(&args.db)?.audit(&AuditQuery {
        actor: args.actor.clone(),
        action: args.action.clone(),
        target: args.target.clone(),
        limit: Some(args.limit.max(1)),
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    for e in entries {
        println!(
            "{:>6} {} {:<24} {:<14} {:<28} {:<16} {}",
            e.seq, e.at, e.actor, e.action, e.target, e.source, e.outcome
        );
    }
    Ok(())
}
