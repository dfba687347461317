//! Redis key names. Every key of a namespace carries the hash tag `{ns}`, so a
//! namespace lives in one Cluster slot and a script may touch any of its keys.

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// `namespace` is validated by the settings (`[A-Za-z0-9._-]`), so it cannot
    /// break out of the hash tag.
    pub fn new(namespace: &str) -> Keys {
        Keys {
            prefix: format!("sb:{{{namespace}}}:"),
        }
    }

    /// Hash: one agent.
    pub fn agent(&self, id: &str) -> String {
        format!("{}agent:{id}", self.prefix)
    }

    /// Set: the ids of every agent, for listing.
    pub fn agents(&self) -> String {
        format!("{}agents", self.prefix)
    }

    /// Sorted set: a queue's free agents, scored by the ms they become eligible.
    pub fn avail(&self, queue: &str) -> String {
        format!("{}avail:{queue}", self.prefix)
    }

    /// Hash with a TTL: one call's routing state.
    pub fn call(&self, call_sid: &str) -> String {
        format!("{}call:{call_sid}", self.prefix)
    }

    /// Sorted set: reservation and lease deadlines, swept by workers.
    pub fn deadlines(&self) -> String {
        format!("{}deadlines", self.prefix)
    }

    /// Hash: caller number -> the agent who last answered them.
    pub fn affinity(&self) -> String {
        format!("{}affinity", self.prefix)
    }

    /// Sorted set: caller number -> ms its affinity is forgotten.
    pub fn affinity_expiry(&self) -> String {
        format!("{}affinity_expiry", self.prefix)
    }

    /// List: recorded voicemail messages, newest first.
    pub fn voicemails(&self) -> String {
        format!("{}voicemails", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_the_namespace_hash_tag() {
        let k = Keys::new("acme");
        for key in [
            k.agent("a"),
            k.agents(),
            k.avail("q"),
            k.call("CA1"),
            k.deadlines(),
            k.voicemails(),
            k.affinity(),
            k.affinity_expiry(),
        ] {
            assert!(key.starts_with("sb:{acme}:"), "{key}");
        }
    }
}
