//! The two parties of a call.

use serde::{Deserialize, Serialize};

/// Which party of a two-party call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Agent,
    Caller,
}

impl Speaker {
    /// The other party.
    pub fn other(self) -> Self {
        match self {
            Speaker::Agent => Speaker::Caller,
            Speaker::Caller => Speaker::Agent,
        }
    }
}

impl std::fmt::Display for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Speaker::Agent => "agent",
            Speaker::Caller => "caller",
        })
    }
}
