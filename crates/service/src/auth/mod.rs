//! Who may see and do what. Identity and roles are checked here, at the service's edges; the
//! analysis core never knows who is asking.
//!
//! - [`Principal`]: who is asking (a person signed in to the console, or a machine with an API
//!   token), their [`Role`] and teams; [`Principal::may`] answers every access question
//!   ([`Access`]) in one place, so the console, the JSON API, the event streams and gRPC agree.
//! - [`manage`]: adding, disabling and changing accounts and API tokens, audited (the CLI and the
//!   console's admin page share it).
//! - [`secrets`]: argon2id password hashes, random API tokens and session ids, SHA-256.
//! - [`gate`]: the [`Gate`] every request goes through: accounts and tokens from the store
//!   (through [`IdentitySource`], so single sign-on can be added beside local accounts),
//!   console sessions with idle and absolute expiry, login throttling, one-time sign-in links and
//!   the audit log.
//! - [`web`]: the HTTP side: `/login`, `/logout`, the session cookie, CSRF and Origin checks and
//!   security headers, and the [`web::Authed`] extractor handlers take.

pub mod gate;
pub mod manage;
pub mod secrets;
pub mod web;

pub use gate::{AuthError, Gate, GateConfig, IdentitySource, StoreIdentities};

/// What a principal is allowed to be. People have `Admin`, `Supervisor`, `Agent` or `Qa`;
/// machines (API tokens) `Ingest`, `Monitor` or `Api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything; manages users and tokens.
    Admin,
    /// Sees and acknowledges the live calls and alerts of the teams they supervise, and their
    /// stored calls.
    Supervisor,
    /// Sees only their own current call.
    Agent,
    /// Sees stored calls and reports (of their teams, or all when they have none) and uploads.
    Qa,
    /// A machine that streams calls in for its teams; reads nothing.
    Ingest,
    /// A machine that watches live calls and alerts of its teams (and reads /metrics).
    Monitor,
    /// A machine that reads live and stored calls of its teams (and /metrics).
    Api,
}

impl Role {
    pub const PEOPLE: [Role; 4] = [Role::Admin, Role::Supervisor, Role::Agent, Role::Qa];
    pub const MACHINES: [Role; 3] = [Role::Ingest, Role::Monitor, Role::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Qa => "qa",
            Role::Ingest => "ingest",
            Role::Monitor => "monitor",
            Role::Api => "api",
        }
    }

    /// Parses a role name; the error lists the accepted ones.
    pub fn parse(name: &str, accepted: &[Role]) -> Result<Role, String> {
        accepted
            .iter()
            .copied()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = accepted.iter().map(|r| r.as_str()).collect();
                format!("unknown role {name:?} (expected {})", names.join(", "))
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which teams a principal covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Teams {
    All,
    Only(Vec<String>),
}

impl Teams {
    /// From stored team names: `*` means all.
    pub fn from_names(names: &[String]) -> Teams {
        if names.iter().any(|t| t == "*") {
            Teams::All
        } else {
            Teams::Only(names.to_vec())
        }
    }

    pub fn contains(&self, team: &str) -> bool {
        match self {
            Teams::All => true,
            Teams::Only(teams) => teams.iter().any(|t| t == team),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Teams::Only(t) if t.is_empty())
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    /// A user's name, or a token's name.
    pub name: String,
    /// `user:NAME` or `token:ID`: how the audit log names them.
    pub actor: String,
    pub role: Role,
    pub teams: Teams,
    /// An agent's own agent id (the id their calls carry).
    pub agent_id: Option<String>,
    /// An ingest token's capability to start a session under a stored call id (the session is
    /// stored as that call's continuation part; see `docs/security.md`).
    pub may_resume: bool,
}

/// What a principal may try to do; [`Principal::may`] says whether they may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// See a live or recent call (its card, timeline, alerts, events).
    ViewLiveCall { team: &'a str, agent_id: &'a str },
    /// Acknowledge an alert of a live call.
    Acknowledge { team: &'a str },
    /// List stored calls or read a stored report (team: the stored call's team, if any).
    ReadStored { team: Option<&'a str> },
    /// Score and store an uploaded recording.
    Upload,
    /// Stream a call in for a team.
    Ingest { team: &'a str },
    /// Read /metrics.
    Metrics,
    /// Manage users and tokens; read the audit log.
    Administer,
}

impl Principal {
    /// Whether this principal may do `access`. The one place that decides.
    pub fn may(&self, access: Access<'_>) -> bool {
        use Role::*;
        match (access, self.role) {
            (_, Admin) => !matches!(access, Access::Ingest { .. }),
            (Access::ViewLiveCall { team, .. }, Supervisor | Monitor | Api) => {
                self.teams.contains(team)
            }
            (Access::ViewLiveCall { agent_id, .. }, Agent) => {
                self.agent_id.as_deref() == Some(agent_id)
            }
            (Access::Acknowledge { team }, Supervisor) => self.teams.contains(team),
            (Access::ReadStored { team }, Supervisor | Api) => {
                team.is_some_and(|t| self.teams.contains(t))
            }
            (Access::ReadStored { team }, Qa) => {
                // A QA analyst without teams reviews every team.
                self.teams.is_empty() || team.is_some_and(|t| self.teams.contains(t))
            }
            (Access::Upload, Qa) => true,
            (Access::Ingest { team }, Ingest) => self.teams.contains(team),
            (Access::Metrics, Monitor | Api) => true,
            _ => false,
        }
    }

    /// Whether this principal can see some live calls at all (the wall, alerts, events).
    pub fn sees_live_calls(&self) -> bool {
        matches!(
            self.role,
            Role::Admin | Role::Supervisor | Role::Agent | Role::Monitor | Role::Api
        )
    }

    /// Whether this principal can see some stored calls at all.
    pub fn sees_stored_calls(&self) -> bool {
        matches!(
            self.role,
            Role::Admin | Role::Supervisor | Role::Qa | Role::Api
        )
    }

    /// The principal every request has when authentication is switched off (library tests
    /// of other features); the CLI never uses it.
    pub fn unauthenticated_admin() -> Principal {
        Principal {
            name: "anonymous".into(),
            actor: "anonymous".into(),
            role: Role::Admin,
            teams: Teams::All,
            agent_id: None,
            may_resume: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, teams: &[&str], agent_id: Option<&str>) -> Principal {
        Principal {
            name: "x".into(),
            actor: "user:x".into(),
            role,
            teams: Teams::from_names(&teams.iter().map(|t| t.to_string()).collect::<Vec<_>>()),
            agent_id: agent_id.map(str::to_owned),
            may_resume: false,
        }
    }

    #[test]
    fn each_role_sees_only_its_share() {
        let live = |team, agent_id| Access::ViewLiveCall { team, agent_id };
        let agent = who(Role::Agent, &[], Some("a1"));
        assert!(agent.may(live("t1", "a1")));
        assert!(!agent.may(live("t1", "a2")));
        assert!(!agent.may(Access::Acknowledge { team: "t1" }));
        assert!(!agent.may(Access::ReadStored { team: Some("t1") }));
        let sup = who(Role::Supervisor, &["t1"], None);
        assert!(sup.may(live("t1", "a2")));
        assert!(!sup.may(live("t2", "a2")));
        assert!(sup.may(Access::Acknowledge { team: "t1" }));
        assert!(!sup.may(Access::Acknowledge { team: "t2" }));
        assert!(!sup.may(Access::Upload));
        assert!(!sup.may(Access::Administer));
        let qa = who(Role::Qa, &[], None);
        assert!(qa.may(Access::ReadStored { team: None }));
        assert!(qa.may(Access::Upload));
        assert!(!qa.may(live("t1", "a1")));
        let ingest = who(Role::Ingest, &["t1"], None);
        assert!(ingest.may(Access::Ingest { team: "t1" }));
        assert!(!ingest.may(Access::Ingest { team: "t2" }));
        assert!(!ingest.may(live("t1", "a1")));
        assert!(!ingest.may(Access::Metrics));
        assert!(!ingest.may(Access::ReadStored { team: Some("t1") }));
        let monitor = who(Role::Monitor, &["*"], None);
        assert!(monitor.may(live("any", "a")));
        assert!(monitor.may(Access::Metrics));
        assert!(!monitor.may(Access::Acknowledge { team: "any" }));
        let admin = who(Role::Admin, &[], None);
        assert!(admin.may(live("t9", "a9")));
        assert!(admin.may(Access::Administer));
        assert!(!admin.may(Access::Ingest { team: "t1" }));
    }

    #[test]
    fn role_names_round_trip_and_unknown_ones_are_named() {
        for role in Role::PEOPLE.iter().chain(&Role::MACHINES) {
            assert_eq!(Role::parse(role.as_str(), &[*role]), Ok(*role));
        }
        let e = Role::parse("root", &Role::PEOPLE).unwrap_err();
        assert!(e.contains("root") && e.contains("supervisor"), "{e}");
        assert!(Role::parse("ingest", &Role::PEOPLE).is_err());
    }
}
