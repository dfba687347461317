//! Calls in Redis: reserving an agent for an incoming call (or settling on its
//! fallback) in one script, and keeping voicemail messages.

use redis::Value;

use super::{Store, StoreError, scripts, texts};
use crate::config::QueueSettings;

/// Agents read ahead of the script per queue of the plan, beyond those the call
/// may skip; the script asks for more if the line moved meanwhile.
const CANDIDATES_PER_QUEUE: usize = 16;
/// Rounds of "the next agent in line was not a candidate" before giving up: each
/// round means another replica took the agents we read, so this is never reached
/// in practice and bounds the work if it is.
const MAX_ROUNDS: usize = 16;
/// Voicemail messages kept in Redis (newest first); they are also logged.
pub const VOICEMAILS_KEPT: usize = 1000;

/// One queue a call may take an agent from, with the timings of that queue that
/// the call keeps for the scripts ending its attempt.
#[derive(Debug, Clone)]
pub struct PlanEntry<'a> {
    pub queue: &'a str,
    /// `queue` for the call's own queue, `overflow` for a fallback queue.
    pub via: &'static str,
    pub settings: &'a QueueSettings,
}

impl PlanEntry<'_> {
    /// The 8 ARGV of a plan entry, in the order `route_call.lua` reads them.
    fn args(&self) -> [String; 8] {
        let s = self.settings;
        [
            self.queue.to_owned(),
            s.reservation_ms().to_string(),
            self.via.to_owned(),
            (u64::from(s.wrap_up_secs) * 1000).to_string(),
            (u64::from(s.no_answer_delay_secs) * 1000).to_string(),
            s.max_missed_in_row.to_string(),
            (u64::from(s.max_call_secs) * 1000).to_string(),
            (u64::from(s.affinity_days) * 86_400_000).to_string(),
        ]
    }
}

/// Everything `route_call.lua` needs to decide a call.
#[derive(Debug, Clone)]
pub struct RouteRequest<'a> {
    pub call_sid: &'a str,
    pub caller: &'a str,
    pub home_queue: &'a str,
    pub call_ttl_ms: u64,
    pub max_attempts: u32,
    pub plan: Vec<PlanEntry<'a>>,
    /// The step taken when no queue of the plan has a free agent.
    pub terminal_step: String,
}

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

impl Store {
    pub async fn route_call(&self, req: &RouteRequest<'_>) -> Result<RouteOutcome, StoreError> {
        let name = scripts::ROUTE_CALL.name;
        let mut candidates = self.first_in_line(req).await?;
        let token = new_token();
        for _ in 0..MAX_ROUNDS {
            let k = self.keys();
            let candidate_keys: Vec<String> = candidates.iter().map(|id| k.agent(id)).collect();
            let mut args: Vec<String> = vec![
                req.call_sid.into(),
                token.clone(),
                req.caller.into(),
                req.home_queue.into(),
                req.call_ttl_ms.to_string(),
                req.max_attempts.to_string(),
                req.terminal_step.clone(),
                candidates.len().to_string(),
                req.plan.len().to_string(),
            ];
            args.extend(candidates.iter().cloned());
            for entry in &req.plan {
                args.extend(entry.args());
            }
            let reply = self
                .invoke(
                    &scripts::ROUTE_CALL,
                    &[
                        k.call(req.call_sid),
                        k.deadlines(),
                        k.affinity(),
                        k.affinity_expiry(),
                    ],
                    &candidate_keys,
                    &args,
                )
                .await?;
            let items = texts(name, &reply)?;
            let field = |i: usize| items.get(i).cloned().unwrap_or_default();
            match items.first().map(String::as_str) {
                Some("dial") => {
                    return Ok(RouteOutcome::Dial {
                        agent: field(1),
                        contact: field(2),
                        token: field(3),
                        queue: field(4),
                        via: field(5),
                        attempt: field(6).parse().unwrap_or(1),
                        fresh: field(7) == "1",
                    });
                }
                Some("fallback") => {
                    return Ok(RouteOutcome::Fallback {
                        step: field(1),
                        fresh: field(2) == "1",
                    });
                }
                Some("ended") => return Ok(RouteOutcome::Ended),
                Some("missing") => candidates.extend(items.iter().skip(1).cloned()),
                _ => return Err(StoreError::reply(name, format!("{items:?}"))),
            }
        }
        Err(StoreError::reply(
            name,
            "the queue kept changing under the call",
        ))
    }

    /// The caller's affinity agent and the agents at the head of each queue of the
    /// plan, read without a script: only a guess of whose keys the script needs.
    async fn first_in_line(&self, req: &RouteRequest<'_>) -> Result<Vec<String>, StoreError> {
        let per_queue = CANDIDATES_PER_QUEUE + req.max_attempts as usize;
        let mut pipe = redis::pipe();
        pipe.hget(self.keys().affinity(), req.caller);
        for entry in &req.plan {
            pipe.zrange(self.keys().avail(entry.queue), 0, per_queue as isize - 1);
        }
        let (preferred, lines): (Option<String>, Vec<Vec<String>>) = {
            let mut replies: Vec<Value> = self.query("first_in_line", pipe).await?;
            let bad = |e: redis::ParsingError| StoreError::reply("first_in_line", e.to_string());
            let lines = replies
                .split_off(1)
                .into_iter()
                .map(|v| redis::from_redis_value(v).map_err(bad))
                .collect::<Result<_, _>>()?;
            let preferred = match replies.pop() {
                Some(v) => redis::from_redis_value(v).map_err(bad)?,
                None => None,
            };
            (preferred, lines)
        };
        let mut ids: Vec<String> = preferred.into_iter().collect();
        for id in lines.into_iter().flatten() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Keeps a voicemail message once; `false` when this recording was already kept.
    pub async fn record_voicemail(
        &self,
        call_sid: &str,
        recording_sid: &str,
        message: &serde_json::Value,
        call_ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        let k = self.keys();
        let reply = self
            .invoke_plain(
                &scripts::RECORD_VOICEMAIL,
                &[k.call(call_sid), k.voicemails()],
                &[
                    recording_sid.to_owned(),
                    message.to_string(),
                    VOICEMAILS_KEPT.to_string(),
                    call_ttl_ms.to_string(),
                ],
            )
            .await?;
        let recorded = super::text(&reply).unwrap_or_default() == "1";
        Ok(recorded)
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
