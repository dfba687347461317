//! Redis key names. Every key of a namespace carries the hash tag `{ns}`, so a
//! namespace lives in one Cluster slot and a script may touch any of its keys.
//! The scripts build the same names from the prefix (`K` in lua/lib/common.lua).

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

    /// `sb:{ns}:`, which the scripts build every other key from.
    pub fn prefix(&self) -> &str {
        &self.prefix
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

    /// String with a TTL of `affinity_days`: the agent who last answered a caller.
    pub fn affinity(&self, caller: &str) -> String {
        format!("{}affinity:{caller}", self.prefix)
    }

    /// Hash: `<queue>|<state>` -> how many of the queue's agents are in that state,
    /// kept by the scripts that move agents.
    pub fn counts(&self) -> String {
        format!("{}counts", self.prefix)
    }

    /// Sorted set: the callers waiting in a queue's line, scored by arrival (ms).
    pub fn line(&self, queue: &str) -> String {
        format!("{}line:{queue}", self.prefix)
    }

    /// Sorted set: the waiting callers of a queue with a priority, scored by
    /// arrival less priority x 10^13 (lua/lib/line.lua serves them first).
    pub fn line_priority(&self, queue: &str) -> String {
        format!("{}line_priority:{queue}", self.prefix)
    }

    /// List: 'queue|outcome|waited ms' of ended waits, drained by a worker into
    /// the wait metrics.
    pub fn wait_events(&self) -> String {
        format!("{}wait_events", self.prefix)
    }

    /// List: 'queue|matched|step|waited ms' (a call with steps given an agent
    /// at that step) and 'queue|relaxed|step|waited ms' (a waiting call moved
    /// on to that step), drained by a worker into the step metrics.
    pub fn step_events(&self) -> String {
        format!("{}step_events", self.prefix)
    }

    /// Sorted set: waiting calls with steps, scored by when their next step
    /// begins (ms), for relax_steps.lua.
    pub fn steps_due(&self) -> String {
        format!("{}steps_due", self.prefix)
    }

    /// List: 'CallSid|queue' of waiting callers just given an agent, for a
    /// replica to connect with Twilio's REST API.
    pub fn connects(&self) -> String {
        format!("{}connects", self.prefix)
    }

    /// Sorted set: answered calls, scored by the ms of their last report
    /// (lua/due_reconciles.lua).
    pub fn reconcile(&self) -> String {
        format!("{}reconcile", self.prefix)
    }

    /// Set: the queues with published alternatives (lua/lib/skills.lua).
    pub fn alt_queues(&self) -> String {
        format!("{}alt_queues", self.prefix)
    }

    /// Hash: queue -> JSON of a queue that holds callers (lua/lib/line.lua).
    pub fn hold_queues(&self) -> String {
        format!("{}hold_queues", self.prefix)
    }

    /// Sorted set: agents in wrap-up, scored by the ms it ends.
    pub fn wrap_ups(&self) -> String {
        format!("{}wrap_ups", self.prefix)
    }

    /// List: recorded voicemail messages, newest first.
    pub fn voicemails(&self) -> String {
        format!("{}voicemails", self.prefix)
    }

    /// Hash with a TTL (its expiry): one agent token, by its id: {agent,
    /// expires_at, hash (SHA-256 of its secret)}.
    pub fn token(&self, token_id: &str) -> String {
        format!("{}token:{token_id}", self.prefix)
    }

    /// Hash with a TTL (its expiry): one supervisor or wallboard token, by its
    /// id: {name, role, expires_at, hash (SHA-256 of its secret)}.
    pub fn staff_token(&self, token_id: &str) -> String {
        format!("{}staff_token:{token_id}", self.prefix)
    }

    /// Set with a TTL: the token ids of one supervisor or wallboard name.
    pub fn staff_tokens(&self, name: &str) -> String {
        format!("{}staff_tokens:{name}", self.prefix)
    }

    /// List, capped: the changes made through the API, newest first, each
    /// `{id, event, data}` (lua/lib/common.lua `emit`).
    pub fn audit(&self) -> String {
        format!("{}audit", self.prefix)
    }

    /// Set: a queue's live callbacks (CallSids), for the API's list.
    pub fn callbacks(&self, queue: &str) -> String {
        format!("{}callbacks:{queue}", self.prefix)
    }

    /// List: 'CallSid|queue|ms' of callbacks given an agent, for a replica to
    /// dial.
    pub fn callback_dials(&self) -> String {
        format!("{}callback_dials", self.prefix)
    }

    /// Sorted set: callbacks waiting for their next try, by when it is due.
    pub fn callbacks_retry(&self) -> String {
        format!("{}callbacks_retry", self.prefix)
    }

    /// Hash: a queue's moving averages of recent agent cycles and ended
    /// waits, for the estimated wait (lua/lib/forecast.lua).
    pub fn forecast(&self, queue: &str) -> String {
        format!("{}forecast:{queue}", self.prefix)
    }

    /// Hash with a TTL: a queue's figures by minute and quarter hour, two
    /// bounded rings (lua/lib/stats.lua).
    pub fn stats(&self, queue: &str) -> String {
        format!("{}stats:{queue}", self.prefix)
    }

    /// Stream: the namespace's events, capped (lua/lib/common.lua `emit`).
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// List with a TTL: one call's events, oldest first.
    pub fn call_events(&self, call_sid: &str) -> String {
        format!("{}call_events:{call_sid}", self.prefix)
    }

    /// Sorted set: agents with heartbeats on, scored by the ms their presence
    /// deadline passes (lua/expire_presence.lua).
    pub fn presence(&self) -> String {
        format!("{}presence", self.prefix)
    }

    /// List with a TTL: an agent's last answered calls, newest first (JSON).
    pub fn agent_calls(&self, id: &str) -> String {
        format!("{}agent_calls:{id}", self.prefix)
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
            k.affinity("+15005550001"),
            k.counts(),
            k.wrap_ups(),
            k.line("q"),
            k.line_priority("q"),
            k.step_events(),
            k.steps_due(),
            k.hold_queues(),
            k.reconcile(),
            k.token("ab"),
            k.presence(),
            k.events(),
            k.forecast("q"),
            k.stats("q"),
            k.call_events("CA1"),
            k.staff_token("ab"),
            k.staff_tokens("carla"),
            k.audit(),
            k.agent_calls("a"),
        ] {
            assert!(key.starts_with("sb:{acme}:"), "{key}");
        }
    }
}
