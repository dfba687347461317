//! Who made a change through the API, as the scripts record it (`by` on the
//! event each change emits), and the read of the audit trail: the capped list
//! `audit` that `emit` (lua/lib/common.lua) fills with every event carrying a
//! `by`. The label names a person or a role, never a token, so the trail can be
//! shown to anyone who may read it.

use super::{Store, StoreError};

/// Who asked for a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The admin token.
    Admin,
    /// A supervisor token, by the name it was issued to.
    Supervisor(String),
    /// An agent token, by its agent's id.
    Agent(String),
    /// `switchboard agents import`: an operator with the Redis URL, not the API.
    Import,
}

impl Actor {
    /// The event's `by`: `admin`, `supervisor:NAME`, `agent:ID` or `import`.
    pub fn label(&self) -> String {
        match self {
            Actor::Admin => "admin".to_owned(),
            Actor::Supervisor(name) => format!("supervisor:{name}"),
            Actor::Agent(id) => format!("agent:{id}"),
            Actor::Import => "import".to_owned(),
        }
    }
}

impl Store {
    /// The newest `limit` entries of the audit trail, newest first, each the
    /// JSON `{id, event, data}` of one event.
    pub async fn audit(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("LRANGE")
            .arg(self.keys().audit())
            .arg(0)
            .arg(limit.saturating_sub(1));
        let (entries,): (Vec<String>,) = self.query("read_audit", pipe).await?;
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_who_not_which_token() {
        assert_eq!(Actor::Admin.label(), "admin");
        assert_eq!(
            Actor::Supervisor("carla".into()).label(),
            "supervisor:carla"
        );
        assert_eq!(Actor::Agent("ana".into()).label(), "agent:ana");
        assert_eq!(Actor::Import.label(), "import");
    }
}
