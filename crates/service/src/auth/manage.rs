//! Managing accounts and API tokens: the checks, the store writes and their audit entries,
//! shared by the CLI (`attune users`, `attune tokens`) and the console's admin page, so both
//! refuse the same input with the same words and audit every change with who and from where.

use attune_qa::store::{Store, StoreError, TokenRecord, UserRecord};

use super::{Role, secrets};

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The request is not valid (the message says what to change).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<secrets::PasswordError> for ManageError {
    fn from(e: secrets::PasswordError) -> Self {
        ManageError::Invalid(e.to_string())
    }
}

/// Longest token name kept, characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;
/// Most teams one account or token lists.
pub const MAX_TEAMS: usize = 100;

/// Trimmed, non-empty team names; each at most 64 characters, none a control character.
pub fn clean_teams(teams: &[String]) -> Result<Vec<String>, ManageError> {
    let teams: Vec<String> = teams
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if teams.len() > MAX_TEAMS {
        return Err(ManageError::Invalid(format!(
            "{} teams; at most {MAX_TEAMS}",
            teams.len()
        )));
    }
    if let Some(t) = teams
        .iter()
        .find(|t| t.chars().count() > 64 || t.chars().any(char::is_control))
    {
        return Err(ManageError::Invalid(format!(
            "team {t:?} must be at most 64 characters, none of them control characters"
        )));
    }
    Ok(teams)
}

/// A user name, agent id or team: 1-64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_name(kind: &str, name: &str) -> Result<(), ManageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(ManageError::Invalid(format!(
            "{kind} {name:?} must be 1-64 characters of letters, digits, '.', '_', '-', '@'"
        )));
    }
    Ok(())
}

/// An account to add.
pub struct NewUser<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub teams: &'a [String],
    pub agent_id: Option<&'a str>,
    pub password: &'a str,
}

/// Adds an account (argon2id hash of its password) and audits it as `user_add`.
pub fn add_user(
    store: &mut Store,
    user: &NewUser<'_>,
    actor: &str,
    source: &str,
) -> Result<Role, ManageError> {
    check_name("user name", user.name)?;
    let role = Role::parse(user.role, &Role::PEOPLE).map_err(ManageError::Invalid)?;
    let agent_id = user.agent_id.map(str::trim).filter(|a| !a.is_empty());
    match (role, agent_id) {
        (Role::Agent, None) => {
            return Err(ManageError::Invalid(
                "an agent needs an agent id (the id their calls carry)".into(),
            ));
        }
        (Role::Agent, Some(a)) => check_name("agent id", a)?,
        (_, Some(_)) => {
            return Err(ManageError::Invalid(
                "an agent id is for agents only".into(),
            ));
        }
        _ => {}
    }
    let teams = clean_teams(user.teams)?;
    secrets::check_new_password(user.password)?;
    let hash = secrets::hash_password(user.password)?;
    store.add_user(&UserRecord {
        name: user.name.to_owned(),
        role: role.as_str().to_owned(),
        teams,
        agent_id: agent_id.map(str::to_owned),
        password_hash: hash,
        disabled: false,
        created_at: String::new(),
        updated_at: String::new(),
    })?;
    store.append_audit(
        actor,
        "user_add",
        user.name,
        source,
        &format!("ok role={role}"),
    )?;
    Ok(role)
}

/// Disables (or enables) an account; audited as `user_disable` / `user_enable`.
pub fn set_disabled(
    store: &mut Store,
    name: &str,
    disabled: bool,
    actor: &str,
    source: &str,
) -> Result<(), ManageError> {
    store.set_user_disabled(name, disabled)?;
    let action = if disabled {
        "user_disable"
    } else {
        "user_enable"
    };
    store.append_audit(actor, action, name, source, "ok")?;
    Ok(())
}

/// Sets an account's password; audited as `user_passwd`.
pub fn set_password(
    store: &mut Store,
    name: &str,
    password: &str,
    actor: &str,
    source: &str,
) -> Result<(), ManageError> {
    secrets::check_new_password(password)?;
    let hash = secrets::hash_password(password)?;
    store.set_user_password_hash(name, &hash)?;
    store.append_audit(actor, "user_passwd", name, source, "ok")?;
    Ok(())
}

/// A token to create.
pub struct NewToken<'a> {
    pub role: &'a str,
    pub teams: &'a [String],
    pub name: &'a str,
    pub expires_days: Option<f64>,
    /// May start a session under a stored call id (ingest tokens only).
    pub may_resume: bool,
}

/// Creates an API token; returns the token (to show once) and its record. Audited as
/// `token_create`.
pub fn create_token(
    store: &mut Store,
    new: &NewToken<'_>,
    actor: &str,
    source: &str,
) -> Result<(String, TokenRecord), ManageError> {
    let expires_at = match new.expires_days {
        None => None,
        Some(days) if days.is_finite() && days > 0.0 && days <= 3650.0 => {
            let at =
                std::time::SystemTime::now() + std::time::Duration::from_secs_f64(days * 86_400.0);
            Some(attune_qa::rfc3339_utc(at))
        }
        Some(days) => {
            return Err(ManageError::Invalid(format!(
                "expiry must be a number of days in (0, 3650], got {days}"
            )));
        }
    };
    let role = Role::parse(new.role, &Role::MACHINES).map_err(ManageError::Invalid)?;
    if new.may_resume && role != Role::Ingest {
        return Err(ManageError::Invalid(
            "only an ingest token may resume stored calls".into(),
        ));
    }
    let teams = clean_teams(new.teams)?;
    if teams.is_empty() {
        return Err(ManageError::Invalid(
            "a token needs at least one team (or `*` for all)".into(),
        ));
    }
    let token = secrets::new_api_token();
    let name: String = new
        .name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TOKEN_NAME_CHARS)
        .collect();
    let record = TokenRecord {
        token_id: secrets::token_id(&token),
        name: if name.trim().is_empty() {
            format!("{role} token")
        } else {
            name
        },
        role: role.as_str().to_owned(),
        teams,
        token_sha256: secrets::sha256_hex(token.as_bytes()),
        created_at: attune_qa::rfc3339_utc(std::time::SystemTime::now()),
        created_by: actor.to_owned(),
        revoked_at: None,
        expires_at,
    };
    store.add_token_with(&record, new.may_resume)?;
    store.append_audit(
        actor,
        "token_create",
        &record.token_id,
        source,
        &format!(
            "ok role={role} teams={}{}",
            record.teams.join(","),
            if new.may_resume { " may_resume" } else { "" }
        ),
    )?;
    Ok((token, record))
}

/// Revokes a token; audited as `token_revoke`.
pub fn revoke_token(
    store: &mut Store,
    token_id: &str,
    actor: &str,
    source: &str,
) -> Result<(), ManageError> {
    store.revoke_token(token_id)?;
    store.append_audit(actor, "token_revoke", token_id, source, "ok")?;
    Ok(())
}
