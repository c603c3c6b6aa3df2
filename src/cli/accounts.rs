//! `attune users`, `attune tokens` and `attune audit`: people's accounts, machines' API tokens
//! and the audit log, in the store (`--db`, default `attune.db`, or `ATTUNE_DB`). Every change
//! is written to the audit log as `cli:OS_USER`.

use std::io::{BufRead, Read, Write};

use anyhow::{Context, bail};

use attune_qa::store::{AuditQuery, Store, TokenRecord, UserRecord};
use attune_service::auth::{Role, secrets};

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

fn clean_teams(teams: &[String]) -> Vec<String> {
    teams
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

fn check_name(kind: &str, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        bail!("{kind} {name:?} must be 1-64 characters of letters, digits, '.', '_', '-', '@'");
    }
    Ok(())
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
            check_name("user name", name)?;
            let role = Role::parse(role, &Role::PEOPLE).map_err(anyhow::Error::msg)?;
            let agent_id = agent_id.as_deref().map(str::trim).filter(|a| !a.is_empty());
            match (role, agent_id) {
                (Role::Agent, None) => {
                    bail!("an agent needs --agent-id (the id their calls carry)")
                }
                (Role::Agent, Some(a)) => check_name("agent id", a)?,
                (_, Some(_)) => bail!("--agent-id is for agents only"),
                _ => {}
            }
            let password = read_password()?;
            let mut store = open(db)?;
            let hash = secrets::hash_password(&password)?;
            store.add_user(&UserRecord {
                name: name.clone(),
                role: role.as_str().to_owned(),
                teams: clean_teams(teams),
                agent_id: agent_id.map(str::to_owned),
                password_hash: hash,
                disabled: false,
                created_at: String::new(),
                updated_at: String::new(),
            })?;
            store.append_audit(
                &cli_actor(),
                "user_add",
                name,
                "cli",
                &format!("ok role={role}"),
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
            store.set_user_disabled(name, !enable)?;
            let action = if *enable {
                "user_enable"
            } else {
                "user_disable"
            };
            store.append_audit(&cli_actor(), action, name, "cli", "ok")?;
            println!("{} {name}", if *enable { "enabled" } else { "disabled" });
        }
        UsersCommand::Passwd { name, db, .. } => {
            let password = read_password()?;
            let mut store = open(db)?;
            let hash = secrets::hash_password(&password)?;
            store.set_user_password_hash(name, &hash)?;
            store.append_audit(&cli_actor(), "user_passwd", name, "cli", "ok")?;
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
            db,
        } => {
            let expires_at = match expires_days {
                None => None,
                Some(days) if days.is_finite() && *days > 0.0 && *days <= 3650.0 => {
                    let at = std::time::SystemTime::now()
                        + std::time::Duration::from_secs_f64(days * 86_400.0);
                    Some(attune_qa::rfc3339_utc(at))
                }
                Some(days) => {
                    bail!("--expires-days must be a number of days in (0, 3650], got {days}")
                }
            };
            let role = Role::parse(role, &Role::MACHINES).map_err(anyhow::Error::msg)?;
            let teams = clean_teams(teams);
            if teams.is_empty() {
                bail!("--teams needs at least one team (or `*` for all)");
            }
            let mut store = open(db)?;
            let token = secrets::new_api_token();
            let record = TokenRecord {
                token_id: secrets::token_id(&token),
                name: if name.is_empty() {
                    format!("{role} token")
                } else {
                    name.chars().filter(|c| !c.is_control()).take(100).collect()
                },
                role: role.as_str().to_owned(),
                teams,
                token_sha256: secrets::sha256_hex(token.as_bytes()),
                created_at: attune_qa::rfc3339_utc(std::time::SystemTime::now()),
                created_by: cli_actor(),
                revoked_at: None,
                expires_at: expires_at.clone(),
            };
            store.add_token(&record)?;
            store.append_audit(
                &cli_actor(),
                "token_create",
                &record.token_id,
                "cli",
                &format!("ok role={role} teams={}", record.teams.join(",")),
            )?;
            eprintln!(
                "created {role} token {} ({}) for teams {}{}; it is shown once, below:",
                record.token_id,
                record.name,
                record.teams.join(","),
                expires_at.map_or_else(String::new, |at| format!(", expires {at}"))
            );
            let mut out = std::io::stdout().lock();
            writeln!(out, "{token}")?;
        }
        TokensCommand::List { json, db } => {
            let tokens = open(db)?.tokens()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                println!(
                    "{:<13} {:<8} {:<8} {:<21} {:<24} teams",
                    "id", "role", "state", "created", "name"
                );
                for t in tokens {
                    println!(
                        "{:<13} {:<8} {:<8} {:<21} {:<24} {}",
                        t.token_id,
                        t.role,
                        if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        t.created_at,
                        t.name,
                        t.teams.join(",")
                    );
                }
            }
        }
        TokensCommand::Revoke { token_id, db } => {
            let mut store = open(db)?;
            store.revoke_token(token_id)?;
            store.append_audit(&cli_actor(), "token_revoke", token_id, "cli", "ok")?;
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
