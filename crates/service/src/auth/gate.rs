//! The [`Gate`]: every request's way in. It knows the identities ([`IdentitySource`]; local
//! accounts and tokens in the store are [`StoreIdentities`]), keeps console sessions (a sign-in
//! lasts until idle or absolute expiry or sign-out; kept in the store, so every node of a cluster
//! and a restarted node know it, with a copy in memory re-checked every
//! [`GateConfig::recheck_account_every`]), throttles failed sign-ins per
//! user name and per address, caches token look-ups for a few seconds (a revoked token is
//! refused within [`GateConfig::token_cache_ttl`]) and writes the audit log.
//!
//! Store work (argon2 checks, look-ups, audit writes) is blocking: the async callers run it on
//! tokio's blocking threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use attune_qa::store::{SessionRecord, Store, StoreError};

use super::secrets;
use super::{Principal, Role, Teams};

/// Why a request is not let in.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// No credential, or one that is unknown, expired, revoked or forged (401).
    #[error("not signed in: {0}")]
    Unauthenticated(String),
    /// A known principal asking for what their role does not allow (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many failed sign-ins (429).
    #[error("too many failed sign-ins: try again in {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    /// The identity store failed (503): nobody is let in.
    #[error("the account store is unavailable")]
    Unavailable(String),
}

/// Where identities come from: local accounts and tokens in the store today; an OIDC provider
/// can implement the same trait (sign-in by redirect instead of password is then a route of
/// its own that ends in [`Gate::start_session`]). Blocking.
pub trait IdentitySource: Send + Sync {
    /// Checks a user name and password.
    fn sign_in(&self, username: &str, password: &str) -> Result<Principal, AuthError>;
    /// The principal of an API token.
    fn token(&self, token: &str) -> Result<Principal, AuthError>;
    /// Whether a signed-in user may still be (not disabled or removed).
    fn still_active(&self, name: &str) -> Result<bool, AuthError>;
    /// Appends to the audit log.
    fn audit(&self, actor: &str, action: &str, target: &str, source: &str, outcome: &str);
    /// Whether sessions are kept here (then [`Self::load_session`] is the truth about them).
    fn keeps_sessions(&self) -> bool {
        false
    }
    /// Keeps a new session where every node finds it (none: sessions stay in this process).
    fn save_session(&self, _session: &SessionRecord) -> Result<(), AuthError> {
        Ok(())
    }
    /// A kept session and its user's principal; None when unknown, signed out or the user
    /// may no longer sign in.
    fn load_session(&self, _sha256: &str) -> Result<Option<(SessionRecord, Principal)>, AuthError> {
        Ok(None)
    }
    /// Records a kept session's use.
    fn touch_session(&self, _sha256: &str, _at_unix_ms: i64) {}
    /// Ends a kept session.
    fn delete_session(&self, _sha256: &str) {}
    /// Deletes kept sessions that can no longer be used.
    fn delete_expired_sessions(&self, _idle_before_unix_ms: i64, _started_before_unix_ms: i64) {}
}

/// Accounts and tokens in the store (the `users` and `api_tokens` tables).
pub struct StoreIdentities {
    store: Mutex<Store>,
}

impl StoreIdentities {
    pub fn new(store: Store) -> Self {
        Self {
            store: Mutex::new(store),
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unavailable(e: StoreError) -> AuthError {
    AuthError::Unavailable(e.to_string())
}

/// The principal of a stored user.
pub fn user_principal(user: &attune_qa::store::UserRecord) -> Result<Principal, AuthError> {
    let role = Role::parse(&user.role, &Role::PEOPLE).map_err(AuthError::Unavailable)?;
    Ok(Principal {
        name: user.name.clone(),
        actor: format!("user:{}", user.name),
        role,
        teams: Teams::Only(user.teams.clone()),
        agent_id: user.agent_id.clone(),
        may_resume: false,
    })
}

impl IdentitySource for StoreIdentities {
    fn sign_in(&self, username: &str, password: &str) -> Result<Principal, AuthError> {
        let user = self.store().user(username).map_err(unavailable)?;
        let refused = || AuthError::Unauthenticated("wrong user name or password".into());
        match user {
            Some(user) if !user.disabled => {
                if secrets::verify_password(password, &user.password_hash) {
                    user_principal(&user)
                } else {
                    Err(refused())
                }
            }
            _ => {
                // Same work as for a real account, so timing does not tell names apart.
                let _ = secrets::verify_password(password, secrets::decoy_hash());
                Err(refused())
            }
        }
    }

    fn token(&self, token: &str) -> Result<Principal, AuthError> {
        let hash = secrets::sha256_hex(token.as_bytes());
        let record = self.store().token_by_hash(&hash).map_err(unavailable)?;
        match record {
            None => Err(AuthError::Unauthenticated("unknown API token".into())),
            Some(t) if t.revoked_at.is_some() => Err(AuthError::Unauthenticated(format!(
                "API token {} was revoked",
                t.token_id
            ))),
            Some(t)
                if t.expires_at.as_deref().is_some_and(|at| {
                    at <= attune_qa::rfc3339_utc(std::time::SystemTime::now()).as_str()
                }) =>
            {
                Err(AuthError::Unauthenticated(format!(
                    "API token {} expired at {}",
                    t.token_id,
                    t.expires_at.as_deref().unwrap_or("")
                )))
            }
            Some(t) => {
                let role = Role::parse(&t.role, &Role::MACHINES).map_err(AuthError::Unavailable)?;
                let may_resume = role == Role::Ingest
                    && self
                        .store()
                        .token_may_resume(&t.token_id)
                        .map_err(unavailable)?;
                Ok(Principal {
                    name: t.name.clone(),
                    actor: format!("token:{}", t.token_id),
                    role,
                    teams: Teams::from_names(&t.teams),
                    agent_id: None,
                    may_resume,
                })
            }
        }
    }

    fn still_active(&self, name: &str) -> Result<bool, AuthError> {
        Ok(self
            .store()
            .user(name)
            .map_err(unavailable)?
            .is_some_and(|u| !u.disabled))
    }

    fn audit(&self, actor: &str, action: &str, target: &str, source: &str, outcome: &str) {
        if let Err(e) = self
            .store()
            .append_audit(actor, action, target, source, outcome)
        {
            eprintln!("attune: audit log write failed ({action} by {actor}): {e}");
        }
    }

    fn keeps_sessions(&self) -> bool {
        true
    }

    fn save_session(&self, session: &SessionRecord) -> Result<(), AuthError> {
        self.store().save_session(session).map_err(unavailable)
    }

    fn load_session(&self, sha256: &str) -> Result<Option<(SessionRecord, Principal)>, AuthError> {
        let mut store = self.store();
        let Some(session) = store.session_by_hash(sha256).map_err(unavailable)? else {
            return Ok(None);
        };
        match store.user(&session.user_name).map_err(unavailable)? {
            Some(user) if !user.disabled => Ok(Some((session, user_principal(&user)?))),
            _ => Ok(None),
        }
    }

    fn touch_session(&self, sha256: &str, at_unix_ms: i64) {
        if let Err(e) = self.store().touch_session(sha256, at_unix_ms) {
            eprintln!("attune: session use not recorded: {e}");
        }
    }

    fn delete_session(&self, sha256: &str) {
        if let Err(e) = self.store().delete_session(sha256) {
            eprintln!("attune: sign-out not recorded in the store: {e}");
        }
    }

    fn delete_expired_sessions(&self, idle_before_unix_ms: i64, started_before_unix_ms: i64) {
        if let Err(e) = self
            .store()
            .delete_expired_sessions(idle_before_unix_ms, started_before_unix_ms)
        {
            eprintln!("attune: expired sessions not deleted: {e}");
        }
    }
}

/// The gate's settings.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute: Duration,
    /// Most sessions at once (the oldest is dropped beyond).
    pub max_sessions: usize,
    /// How long a token look-up is reused (a revoked token is refused within this time).
    pub token_cache_ttl: Duration,
    /// How often a session re-checks that its account is still active.
    pub recheck_account_every: Duration,
    /// Failed sign-ins (per user name, or per address ×4) before sign-ins are held off.
    pub failures_before_hold: u32,
    /// First hold-off; it doubles with each further failure, up to `max_hold`.
    pub first_hold: Duration,
    pub max_hold: Duration,
    /// How long a one-time sign-in link is valid.
    pub sign_in_link_ttl: Duration,
    /// Cookies carry `Secure` (set when the console is served over TLS).
    pub secure_cookies: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            max_sessions: 10_000,
            token_cache_ttl: Duration::from_secs(5),
            recheck_account_every: Duration::from_secs(30),
            failures_before_hold: 5,
            first_hold: Duration::from_secs(30),
            max_hold: Duration::from_secs(15 * 60),
            sign_in_link_ttl: Duration::from_secs(15 * 60),
            secure_cookies: false,
        }
    }
}

/// A console session.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The CSRF token every state-changing request of this session must carry.
    pub csrf: String,
    started: Instant,
    last_seen: Instant,
    last_account_check: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    held_until: Option<Instant>,
}

type CachedToken = (Instant, Result<Principal, AuthError>);

/// See the module docs.
impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("enabled", &self.enabled())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// See the module docs.
pub struct Gate {
    config: GateConfig,
    /// None: authentication is off (library tests of other features): everyone is an admin.
    identities: Option<Arc<dyn IdentitySource>>,
    /// By the SHA-256 of the session id (the cookie's value is never kept).
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    links: Mutex<HashMap<String, (Instant, Principal)>>,
}

/// Wall-clock now, ms since the Unix epoch.
fn unix_ms() -> i64 {
    crate::hub::now_unix_ms() as i64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new session's secrets: the cookie value (shown to the browser only) and the CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: String,
    pub csrf: String,
    pub principal: Principal,
}

impl Gate {
    /// A gate that checks identities from `identities`.
    pub fn new(identities: Arc<dyn IdentitySource>, config: GateConfig) -> Self {
        Self::with_identities(Some(identities), config)
    }

    fn with_identities(identities: Option<Arc<dyn IdentitySource>>, config: GateConfig) -> Self {
        Self {
            config,
            identities,
            sessions: Mutex::default(),
            failures: Mutex::default(),
            tokens: Mutex::default(),
            links: Mutex::default(),
        }
    }

    /// A gate that lets everyone in as an admin: for library tests of other features only
    /// (`attune serve` and `attune demo` always check).
    pub fn disabled() -> Self {
        Self::with_identities(None, GateConfig::default())
    }

    pub fn enabled(&self) -> bool {
        self.identities.is_some()
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Appends to the audit log (nothing when authentication is off). Blocking.
    pub fn audit(&self, actor: &str, action: &str, target: &str, source: &str, outcome: &str) {
        if let Some(ids) = &self.identities {
            ids.audit(actor, action, target, source, outcome);
        }
    }

    fn hold_remaining(&self, key: &str, now: Instant) -> Option<Duration> {
        lock(&self.failures)
            .get(key)
            .and_then(|f| f.held_until)
            .and_then(|until| until.checked_duration_since(now))
    }

    fn record_failure(&self, key: &str, threshold: u32, now: Instant) {
        let mut failures = lock(&self.failures);
        if failures.len() > 100_000 {
            // Bounded: forget failures idle for an hour.
            failures.retain(|_, f| now.duration_since(f.last) < Duration::from_secs(3600));
        }
        let f = failures.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
            held_until: None,
        });
        // Failures an hour apart start a new count.
        if now.duration_since(f.last) > Duration::from_secs(3600) {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count >= threshold {
            let doublings = (f.count - threshold).min(16);
            let hold = self
                .config
                .first_hold
                .saturating_mul(1 << doublings)
                .min(self.config.max_hold);
            f.held_until = Some(now + hold);
        }
    }

    /// Checks a user name and password from `source` (the client's address) and starts a
    /// session. Blocking (argon2).
    pub fn sign_in(
        &self,
        username: &str,
        password: &str,
        source: &str,
    ) -> Result<NewSession, AuthError> {
        let Some(ids) = &self.identities else {
            return Ok(self.start_session(Principal::unauthenticated_admin()));
        };
        let username: String = username
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        let now = Instant::now();
        let user_key = format!("user:{username}");
        let addr_key = format!("addr:{source}");
        if let Some(wait) = self
            .hold_remaining(&user_key, now)
            .or_else(|| self.hold_remaining(&addr_key, now))
        {
            ids.audit(&user_key, "login_throttled", &username, source, "denied");
            return Err(AuthError::Throttled {
                retry_after_s: wait.as_secs().max(1),
            });
        }
        match ids.sign_in(&username, password) {
            Ok(principal) => {
                lock(&self.failures).remove(&user_key);
                ids.audit(&principal.actor, "login", &username, source, "ok");
                Ok(self.start_session(principal))
            }
            Err(e) => {
                if matches!(e, AuthError::Unauthenticated(_)) {
                    let threshold = self.config.failures_before_hold;
                    self.record_failure(&user_key, threshold, now);
                    self.record_failure(&addr_key, threshold.saturating_mul(4), now);
                }
                ids.audit(&user_key, "login_failed", &username, source, &e.to_string());
                Err(e)
            }
        }
    }

    /// Starts a session for an already identified principal (a sign-in, a one-time link, or
    /// a single sign-on provider's callback).
    pub fn start_session(&self, principal: Principal) -> NewSession {
        let session_id = secrets::random_hex(32);
        let csrf = secrets::random_hex(32);
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= self.config.max_sessions {
            self.expire_sessions(&mut sessions, now);
            if sessions.len() >= self.config.max_sessions
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        let key = secrets::sha256_hex(session_id.as_bytes());
        sessions.insert(
            key.clone(),
            Session {
                principal: principal.clone(),
                csrf: csrf.clone(),
                started: now,
                last_seen: now,
                last_account_check: now,
            },
        );
        drop(sessions);
        if let Some(ids) = &self.identities
            && ids.keeps_sessions()
            && principal.actor.starts_with("user:")
        {
            let now_ms = unix_ms();
            ids.delete_expired_sessions(
                now_ms - self.config.session_idle.as_millis() as i64,
                now_ms - self.config.session_absolute.as_millis() as i64,
            );
            let record = SessionRecord {
                session_sha256: key,
                user_name: principal.name.clone(),
                csrf: csrf.clone(),
                started_unix_ms: now_ms,
                last_seen_unix_ms: now_ms,
            };
            if let Err(e) = ids.save_session(&record) {
                eprintln!(
                    "attune: the session of {} is known to this node only: {e}",
                    principal.name
                );
            }
        }
        NewSession {
            session_id,
            csrf,
            principal,
        }
    }

    fn expire_sessions(&self, sessions: &mut HashMap<String, Session>, now: Instant) {
        sessions.retain(|_, s| self.session_alive(s, now));
    }

    fn session_alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.config.session_idle
            && now.duration_since(s.started) < self.config.session_absolute
    }

    /// The live session of a cookie value (and refreshes its idle time). Blocking now and
    /// then: every [`GateConfig::recheck_account_every`] it re-reads the session and its
    /// account from the store (a sign-out on another node, a disabled account or a new role
    /// show within that time), and a session this node does not know (another node's, or
    /// before a restart) is read from the store.
    pub fn session(&self, session_id: &str) -> Option<Session> {
        let key = secrets::sha256_hex(session_id.as_bytes());
        let now = Instant::now();
        let local = {
            let mut sessions = lock(&self.sessions);
            match sessions.get_mut(&key) {
                Some(s) if self.session_alive(s, now) => {
                    s.last_seen = now;
                    let recheck = now.duration_since(s.last_account_check)
                        >= self.config.recheck_account_every;
                    if recheck {
                        s.last_account_check = now;
                    }
                    Some((s.clone(), recheck))
                }
                Some(_) => {
                    // Idle here; it may have been used on another node since.
                    sessions.remove(&key);
                    None
                }
                None => None,
            }
        };
        let ids = self.identities.as_ref();
        match local {
            Some((session, false)) => Some(session),
            Some((mut session, true)) => {
                let ids = ids?;
                if !session.principal.actor.starts_with("user:") {
                    return Some(session);
                }
                if !ids.keeps_sessions() {
                    if ids.still_active(&session.principal.name).unwrap_or(false) {
                        return Some(session);
                    }
                    lock(&self.sessions).remove(&key);
                    return None;
                }
                match ids.load_session(&key) {
                    Ok(Some((_, principal))) => {
                        ids.touch_session(&key, unix_ms());
                        session.principal = principal.clone();
                        if let Some(s) = lock(&self.sessions).get_mut(&key) {
                            s.principal = principal;
                        }
                        Some(session)
                    }
                    // Signed out (here or elsewhere), disabled, or the store is down.
                    _ => {
                        lock(&self.sessions).remove(&key);
                        None
                    }
                }
            }
            // Only what could be a session id costs a store look-up.
            None if session_id.len() == 64 && session_id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.kept_session(&key, now)
            }
            None => None,
        }
    }

    /// A session this node does not hold, from the store (checked for expiry).
    fn kept_session(&self, key: &str, now: Instant) -> Option<Session> {
        let ids = self.identities.as_ref()?;
        if !ids.keeps_sessions() {
            return None;
        }
        let (record, principal) = ids.load_session(key).ok()??;
        let now_ms = unix_ms();
        let idle_ms = now_ms.saturating_sub(record.last_seen_unix_ms).max(0) as u64;
        let age_ms = now_ms.saturating_sub(record.started_unix_ms).max(0) as u64;
        if Duration::from_millis(idle_ms) >= self.config.session_idle
            || Duration::from_millis(age_ms) >= self.config.session_absolute
        {
            return None;
        }
        let session = Session {
            principal,
            csrf: record.csrf,
            started: now.checked_sub(Duration::from_millis(age_ms))?,
            last_seen: now,
            last_account_check: now,
        };
        ids.touch_session(key, now_ms);
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= self.config.max_sessions {
            self.expire_sessions(&mut sessions, now);
        }
        if sessions.len() < self.config.max_sessions {
            sessions.insert(key.to_owned(), session.clone());
        }
        Some(session)
    }

    /// Ends a session.
    pub fn sign_out(&self, session_id: &str) -> Option<Principal> {
        let key = secrets::sha256_hex(session_id.as_bytes());
        let principal = lock(&self.sessions).remove(&key).map(|s| s.principal);
        if let Some(ids) = &self.identities
            && ids.keeps_sessions()
        {
            ids.delete_session(&key);
        }
        principal
    }

    /// Ends every session of a user (after `disable` or a new password, seen by this server).
    pub fn end_sessions_of(&self, name: &str) {
        lock(&self.sessions).retain(|_, s| s.principal.name != name);
    }

    /// The principal of an API token (cached for [`GateConfig::token_cache_ttl`]). Blocking
    /// on a cache miss.
    pub fn bearer(&self, token: &str) -> Result<Principal, AuthError> {
        let Some(ids) = &self.identities else {
            return Ok(Principal::unauthenticated_admin());
        };
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::Unauthenticated("malformed API token".into()));
        }
        let key = secrets::sha256_hex(token.as_bytes());
        let now = Instant::now();
        if let Some((at, result)) = lock(&self.tokens).get(&key)
            && now.duration_since(*at) < self.config.token_cache_ttl
        {
            return result.clone();
        }
        let result = ids.token(token);
        if !matches!(result, Err(AuthError::Unavailable(_))) {
            let mut tokens = lock(&self.tokens);
            if tokens.len() > 10_000 {
                let ttl = self.config.token_cache_ttl;
                tokens.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            }
            tokens.insert(key, (now, result.clone()));
        }
        result
    }

    /// A one-time sign-in secret for `principal` (the demo prints it as a link), valid for
    /// [`GateConfig::sign_in_link_ttl`].
    pub fn issue_sign_in_link(&self, principal: Principal) -> String {
        let secret = secrets::random_hex(24);
        let mut links = lock(&self.links);
        let now = Instant::now();
        links.retain(|_, (until, _)| *until > now);
        links.insert(
            secrets::sha256_hex(secret.as_bytes()),
            (now + self.config.sign_in_link_ttl, principal),
        );
        secret
    }

    /// Redeems a one-time sign-in secret: a session, once.
    pub fn redeem_sign_in_link(&self, secret: &str, source: &str) -> Option<NewSession> {
        let (until, principal) =
            lock(&self.links).remove(&secrets::sha256_hex(secret.as_bytes()))?;
        if until <= Instant::now() {
            return None;
        }
        self.audit(
            &principal.actor,
            "login_link",
            &principal.name,
            source,
            "ok",
        );
        Some(self.start_session(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One user `ana` (password `right password`) and one token `tok`.
    struct Fixed;
    impl IdentitySource for Fixed {
        fn sign_in(&self, username: &str, password: &str) -> Result<Principal, AuthError> {
            if username == "ana" && password == "right password" {
                Ok(Principal {
                    name: "ana".into(),
                    actor: "user:ana".into(),
                    role: Role::Supervisor,
                    teams: Teams::Only(vec!["t1".into()]),
                    agent_id: None,
                    may_resume: false,
                })
            } else {
                Err(AuthError::Unauthenticated("wrong".into()))
            }
        }
        fn token(&self, token: &str) -> Result<Principal, AuthError> {
            if token == "tok" {
                Ok(Principal::unauthenticated_admin())
            } else {
                Err(AuthError::Unauthenticated("unknown".into()))
            }
        }
        fn still_active(&self, _: &str) -> Result<bool, AuthError> {
            Ok(true)
        }
        fn audit(&self, _: &str, _: &str, _: &str, _: &str, _: &str) {}
    }

    fn gate(config: GateConfig) -> Gate {
        Gate::new(Arc::new(Fixed), config)
    }

    #[test]
    fn sessions_expire_when_idle_and_end_on_sign_out() {
        let g = gate(GateConfig {
            session_idle: Duration::from_millis(50),
            ..GateConfig::default()
        });
        let s = g.sign_in("ana", "right password", "127.0.0.1").unwrap();
        assert_eq!(g.session(&s.session_id).unwrap().principal.name, "ana");
        assert!(g.session("forged").is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(g.session(&s.session_id).is_none(), "idle session lives on");
        let s = g.sign_in("ana", "right password", "127.0.0.1").unwrap();
        assert!(g.sign_out(&s.session_id).is_some());
        assert!(g.session(&s.session_id).is_none());
    }

    /// Two nodes' gates over one store (two connections to one SQLite file).
    fn stored_gates(name: &str) -> (Gate, Gate, String) {
        let dir = std::env::temp_dir().join(format!("attune-gate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("s.db").display().to_string();
        let mut store = Store::open(&db).unwrap();
        store
            .add_user(&attune_qa::store::UserRecord {
                name: "ana".into(),
                role: "supervisor".into(),
                teams: vec!["t1".into()],
                agent_id: None,
                password_hash: secrets::hash_password("right password").unwrap(),
                disabled: false,
                created_at: String::new(),
                updated_at: String::new(),
            })
            .unwrap();
        let config = GateConfig {
            recheck_account_every: Duration::ZERO,
            ..GateConfig::default()
        };
        let node = |db: &str| {
            Gate::new(
                Arc::new(StoreIdentities::new(Store::open(db).unwrap())),
                config.clone(),
            )
        };
        (node(&db), node(&db), db)
    }

    #[test]
    fn a_session_is_valid_on_every_node_and_a_sign_out_anywhere_ends_it() {
        let (a, b, db) = stored_gates("shared");
        let s = a.sign_in("ana", "right password", "127.0.0.1").unwrap();
        let on_b = b
            .session(&s.session_id)
            .expect("another node knows the session");
        assert_eq!(on_b.principal.name, "ana");
        assert_eq!(
            on_b.csrf, s.csrf,
            "one CSRF token for the session everywhere"
        );
        let restarted = Gate::new(
            Arc::new(StoreIdentities::new(Store::open(&db).unwrap())),
            GateConfig::default(),
        );
        assert!(
            restarted.session(&s.session_id).is_some(),
            "a restart keeps it"
        );
        assert!(
            b.session(&"0".repeat(64)).is_none(),
            "a forged id is unknown"
        );
        // Signed out on b: a's copy is gone at its next check (here: every use).
        assert!(b.sign_out(&s.session_id).is_some());
        assert!(a.session(&s.session_id).is_none());
        // Disabling the account ends its sessions on every node.
        let s = a.sign_in("ana", "right password", "127.0.0.1").unwrap();
        assert!(b.session(&s.session_id).is_some());
        Store::open(&db)
            .unwrap()
            .set_user_disabled("ana", true)
            .unwrap();
        assert!(a.session(&s.session_id).is_none());
        assert!(b.session(&s.session_id).is_none());
    }

    #[test]
    fn repeated_failures_hold_sign_ins_off_even_with_the_right_password() {
        let g = gate(GateConfig::default());
        for _ in 0..5 {
            assert!(matches!(
                g.sign_in("ana", "guess", "10.0.0.9"),
                Err(AuthError::Unauthenticated(_))
            ));
        }
        assert!(matches!(
            g.sign_in("ana", "right password", "10.0.0.9"),
            Err(AuthError::Throttled { retry_after_s }) if retry_after_s >= 1
        ));
    }

    #[test]
    fn sign_in_links_work_once() {
        let g = gate(GateConfig::default());
        let secret = g.issue_sign_in_link(Principal::unauthenticated_admin());
        assert!(g.redeem_sign_in_link(&secret, "127.0.0.1").is_some());
        assert!(g.redeem_sign_in_link(&secret, "127.0.0.1").is_none());
        assert!(g.redeem_sign_in_link("guess", "127.0.0.1").is_none());
    }

    #[test]
    fn tokens_are_checked_and_bounded() {
        let g = gate(GateConfig::default());
        assert!(g.bearer("tok").is_ok());
        assert!(g.bearer("nope").is_err());
        assert!(g.bearer(&"x".repeat(300)).is_err());
        assert!(g.bearer("").is_err());
        assert!(Gate::disabled().bearer("anything").is_ok());
    }
}
