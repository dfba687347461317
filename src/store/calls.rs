//! Calls in Redis: reserving an agent for an incoming call (or settling on its
//! fallback) in one script, and keeping voicemail messages.

use super::requests::{CALL_TAIL_MS, RouteRequest, VOICEMAILS_KEPT, VoicemailRequest};
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
