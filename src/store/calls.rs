//! Calls in Redis: reserving an agent for an incoming call (or settling on its
//! fallback) in one script, and keeping voicemail messages.

use super::requests::{
    CALL_TAIL_MS, HoldQueueEntry, MatchRequest, RouteRequest, VOICEMAILS_KEPT, VoicemailRequest,
    WaitRequest,
};
use super::{Store, StoreError, scripts, texts};

/// What a call was given. `fresh` is false when the same CallSid was routed before
/// and this repeats that decision (nothing new was reserved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOutcome {
    Dial {
        agent: String,
        contact: String,
        token: String,
        queue: String,
        via: String,
        attempt: u32,
        fresh: bool,
    },
    Fallback {
        step: String,
        fresh: bool,
    },
    /// The caller waits in line: its position, and when it joined (ms).
    Waiting {
        position: u32,
        since_ms: i64,
        fresh: bool,
        /// From recent answered waits; `None` while there are too few.
        estimated_wait_ms: Option<u64>,
    },
    /// No such call (a wait fetch for a call Redis does not know).
    Unknown,
    /// The caller pressed a key that leaves the line.
    Exit,
    /// The call is already over.
    Ended,
}

/// A fresh reservation token: 128 random bits, hex.
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `route`'s reply (lua/lib/calls.lua), strictly: an unknown tag or a missing
/// field is an error, never a default.
pub(super) fn decode_route(
    script: &'static str,
    items: &[String],
) -> Result<RouteOutcome, StoreError> {
    let bad = || StoreError::reply(script, format!("{items:?}"));
    let fresh = |v: &String| match v.as_str() {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(bad()),
    };
    match items {
        [tag, agent, contact, token, queue, via, attempt, f, ..] if tag == "dial" => {
            Ok(RouteOutcome::Dial {
                agent: agent.clone(),
                contact: contact.clone(),
                token: token.clone(),
                queue: queue.clone(),
                via: via.clone(),
                attempt: attempt.parse().map_err(|_| bad())?,
                fresh: fresh(f)?,
            })
        }
        [tag, step, f, ..] if tag == "fallback" => Ok(RouteOutcome::Fallback {
            step: step.clone(),
            fresh: fresh(f)?,
        }),
        [tag, position, since, f, estimate, ..] if tag == "waiting" => Ok(RouteOutcome::Waiting {
            position: position.parse().map_err(|_| bad())?,
            since_ms: since.parse().map_err(|_| bad())?,
            fresh: fresh(f)?,
            estimated_wait_ms: estimate
                .parse::<i64>()
                .map_err(|_| bad())
                .map(|e| u64::try_from(e).ok())?,
        }),
        [tag, ..] if tag == "unknown" => Ok(RouteOutcome::Unknown),
        [tag, ..] if tag == "exit" => Ok(RouteOutcome::Exit),
        [tag, ..] if tag == "ended" => Ok(RouteOutcome::Ended),
        _ => Err(bad()),
    }
}

impl Store {
    /// Routes an incoming call in one script (one round trip).
    pub async fn route_call(&self, req: &RouteRequest<'_>) -> Result<RouteOutcome, StoreError> {
        let name = scripts::ROUTE_CALL.name;
        let reply = self
            .invoke(&scripts::ROUTE_CALL, self.keys().call(req.sid), req)
            .await?;
        decode_route(name, &texts(name, &reply)?)
    }

    /// A waiting caller's fetch of the wait URL: another hold round, its `<Dial>`
    /// if an agent was reserved for it, or how its wait ended. `exit`: it
    /// pressed a key that leaves the line; `step`: the step a wait that ran out
    /// of `max_wait_ms` takes.
    pub async fn wait(
        &self,
        call_sid: &str,
        max_wait_ms: u64,
        step: String,
        exit: bool,
    ) -> Result<RouteOutcome, StoreError> {
        let name = scripts::WAIT.name;
        let request = WaitRequest {
            sid: call_sid,
            max_wait_ms,
            step,
            exit,
            tail_ms: CALL_TAIL_MS,
        };
        let reply = self
            .invoke(&scripts::WAIT, self.keys().call(call_sid), &request)
            .await?;
        decode_route(name, &texts(name, &reply)?)
    }

    /// Gives agents that became free by time to waiting callers; how many were
    /// matched (at most `batch`: call again when it is reached).
    pub async fn match_lines(&self, batch: usize) -> Result<usize, StoreError> {
        let request = MatchRequest {
            tokens: (0..batch).map(|_| new_token()).collect(),
        };
        let reply = self
            .invoke(&scripts::MATCH_LINES, self.keys().hold_queues(), &request)
            .await?;
        super::text(&reply)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::reply(scripts::MATCH_LINES.name, format!("{reply:?}")))
    }

    /// Writes the queues that hold callers into `hold_queues`, for the scripts
    /// that give freed agents to waiting callers. Every replica does it at start
    /// and after Redis comes back empty; the same routing file writes the same.
    pub async fn publish_hold_queues(
        &self,
        entries: &[(String, HoldQueueEntry<'_>)],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (name, entry) in entries {
            let json = serde_json::to_string(entry)
                .map_err(|e| StoreError::reply("publish_hold_queues", e.to_string()))?;
            pipe.hset(self.keys().hold_queues(), name, json).ignore();
        }
        self.query::<()>("publish_hold_queues", pipe).await
    }

    /// How many queues `hold_queues` holds (0 after Redis came back empty).
    pub async fn hold_queues_published(&self) -> Result<usize, StoreError> {
        let mut pipe = redis::pipe();
        pipe.hlen(self.keys().hold_queues());
        let (n,): (usize,) = self.query("hold_queues_published", pipe).await?;
        Ok(n)
    }

    /// Keeps a voicemail message once; `false` when this recording was already kept.
    pub async fn record_voicemail(
        &self,
        call_sid: &str,
        recording_sid: &str,
        message: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let request = VoicemailRequest {
            recording_sid,
            message,
            keep: VOICEMAILS_KEPT,
            tail_ms: CALL_TAIL_MS,
        };
        let reply = self
            .invoke(
                &scripts::RECORD_VOICEMAIL,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        Ok(super::text(&reply).as_deref() == Some("1"))
    }

    /// The newest voicemail messages, as stored (JSON objects).
    pub async fn voicemails(&self, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.lrange(self.keys().voicemails(), 0, limit.max(1) as isize - 1);
        let (raw,): (Vec<String>,) = self.query("voicemails", pipe).await?;
        Ok(raw
            .iter()
            .filter_map(|m| serde_json::from_str(m).ok())
            .collect())
    }
}
