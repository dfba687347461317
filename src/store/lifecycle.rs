//! The rest of a call's life in Redis: settling a dial attempt from Twilio's
//! callbacks, ending a call, and the worker's sweep of deadlines nobody met.

use super::{Store, StoreError, scripts, text, texts};
use crate::config::QueueSettings;

/// Most deadlines one sweep round reads; the worker loops while rounds are full.
pub const SWEEP_BATCH: usize = 500;

/// What Twilio reported about one dial attempt, as `settle_attempt.lua` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Completed,
    Miss,
    Hangup,
    /// A confirm attempt's phone picked up; the agent has yet to press 1.
    PickedUp,
    /// A confirm attempt's leg ended: wrap-up if the agent accepted, else a miss.
    Ended,
}

/// How long a confirm attempt's agent has, from pick-up, to hear who is calling
/// and press 1: the prompt, `<Gather timeout="5">`, and slack for the callbacks.
pub const CONFIRM_WINDOW_MS: u64 = 30_000;

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Completed => "completed",
            Outcome::Miss => "miss",
            Outcome::Hangup => "hangup",
            Outcome::PickedUp => "picked_up",
            Outcome::Ended => "ended",
        }
    }
}

/// The reply of `settle_attempt.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// `applied`, `recovered`, `stale` or `unknown`.
    pub code: String,
    pub queue: String,
    pub caller: String,
    pub agent_state: String,
    pub call_status: String,
}

impl Settled {
    /// This report changed something (the current attempt, or a late report
    /// of an expired one).
    pub fn applied(&self) -> bool {
        self.code == "applied" || self.code == "recovered"
    }

    pub fn unknown(&self) -> bool {
        self.code == "unknown"
    }
}

/// What one sweep of a due deadline did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepResult {
    /// A reservation nobody answered: the agent was released as a miss.
    ExpiredReservation { queue: String },
    /// A lease past `max_call_secs`: the agent went to wrap-up.
    ExpiredLease { queue: String },
    /// Nothing held by it any more, or another worker was first.
    Nothing,
}

/// A deadlines member: `kind|CallSid|agent|token`.
struct Deadline<'a> {
    kind: &'a str,
    call_sid: &'a str,
    agent: &'a str,
    token: &'a str,
}

impl<'a> Deadline<'a> {
    fn parse(member: &'a str) -> Option<Deadline<'a>> {
        let mut parts = member.splitn(4, '|');
        Some(Deadline {
            kind: parts.next()?,
            call_sid: parts.next()?,
            agent: parts.next()?,
            token: parts.next()?,
        })
    }
}

impl Store {
    /// Applies one callback's outcome to the attempt `token` of call `call_sid`.
    pub async fn settle_attempt(
        &self,
        call_sid: &str,
        agent: &str,
        token: &str,
        outcome: Outcome,
    ) -> Result<Settled, StoreError> {
        let k = self.keys();
        let reply = self
            .invoke(
                &scripts::SETTLE_ATTEMPT,
                &[
                    k.call(call_sid),
                    k.agent(agent),
                    k.deadlines(),
                    k.affinity(),
                    k.affinity_expiry(),
                ],
                &[],
                &[
                    token.into(),
                    outcome.as_str().into(),
                    agent.into(),
                    CONFIRM_WINDOW_MS.to_string(),
                ],
            )
            .await?;
        let items = texts(scripts::SETTLE_ATTEMPT.name, &reply)?;
        let field = |i: usize| items.get(i).cloned().unwrap_or_default();
        Ok(Settled {
            code: field(0),
            queue: field(1),
            caller: field(2),
            agent_state: field(3),
            call_status: field(4),
        })
    }

    /// Ends a call: no new attempt, and the agent it holds (if any) is settled as
    /// a caller hang-up. Retries when a callback moved the call meanwhile.
    pub async fn end_call(&self, call_sid: &str, call_ttl_ms: u64) -> Result<(), StoreError> {
        for _ in 0..4 {
            let reply = self
                .invoke_plain(
                    &scripts::END_CALL,
                    &[self.keys().call(call_sid)],
                    &[call_ttl_ms.to_string()],
                )
                .await?;
            let items = texts(scripts::END_CALL.name, &reply)?;
            let (agent, token) = match (items.get(1), items.get(2)) {
                (Some(a), Some(t)) if !a.is_empty() && !t.is_empty() => (a, t),
                _ => return Ok(()),
            };
            if self
                .settle_attempt(call_sid, agent, token, Outcome::Hangup)
                .await?
                .applied()
            {
                return Ok(());
            }
        }
        Err(StoreError::reply(
            scripts::END_CALL.name,
            "the call kept moving while it was ended",
        ))
    }

    /// Reservations and leases whose deadline has passed, oldest first.
    pub async fn due_deadlines(&self) -> Result<Vec<String>, StoreError> {
        let reply = self
            .invoke_plain(
                &scripts::DUE_DEADLINES,
                &[self.keys().deadlines()],
                &[SWEEP_BATCH.to_string()],
            )
            .await?;
        texts(scripts::DUE_DEADLINES.name, &reply)
    }

    /// Releases what one due deadline still holds. `defaults` stand in for the
    /// call's own timings if its hash is gone.
    pub async fn sweep_deadline(
        &self,
        member: &str,
        defaults: &QueueSettings,
    ) -> Result<SweepResult, StoreError> {
        // A member we did not write is dropped by the script: with keys of no
        // call and no agent, nothing else matches its (empty) token.
        let d = Deadline::parse(member).unwrap_or(Deadline {
            kind: "invalid",
            call_sid: "invalid",
            agent: "invalid",
            token: "",
        });
        let k = self.keys();
        let reply = self
            .invoke(
                &scripts::SWEEP_DEADLINE,
                &[k.deadlines(), k.call(d.call_sid), k.agent(d.agent)],
                &[],
                &[
                    member.into(),
                    d.kind.into(),
                    d.agent.into(),
                    d.token.into(),
                    (u64::from(defaults.wrap_up_secs) * 1000).to_string(),
                    (u64::from(defaults.no_answer_delay_secs) * 1000).to_string(),
                    defaults.max_missed_in_row.to_string(),
                ],
            )
            .await?;
        let items = texts(scripts::SWEEP_DEADLINE.name, &reply)?;
        let queue = items.get(1).cloned().unwrap_or_default();
        Ok(match items.first().map(String::as_str) {
            Some("expired_reservation") => SweepResult::ExpiredReservation { queue },
            Some("expired_lease") => SweepResult::ExpiredLease { queue },
            _ => SweepResult::Nothing,
        })
    }

    /// Forgets expired caller affinities; returns how many.
    pub async fn prune_affinity(&self, limit: usize) -> Result<u64, StoreError> {
        let k = self.keys();
        let reply = self
            .invoke_plain(
                &scripts::PRUNE_AFFINITY,
                &[k.affinity(), k.affinity_expiry()],
                &[limit.to_string()],
            )
            .await?;
        Ok(text(&reply).and_then(|n| n.parse().ok()).unwrap_or(0))
    }
}
