//! The rest of a call's life in Redis: settling a dial attempt from Twilio's
//! callbacks (with the call's next step, for a Dial action), ending a call, and
//! the worker's sweeps of deadlines nobody met and wrap-ups that ended.

use serde::Serialize;

use super::calls::{decode_route, new_token};
use super::requests::{
    AttemptRequest, CALL_TAIL_MS, EndCallRequest, LimitRequest, RouteRequest, SWEEP_BATCH,
    SettleRequest, SweepDefaults, SweepRequest, WRAP_UPS_BATCH, WrapUpsRequest,
};
use super::{RouteOutcome, Store, StoreError, scripts, text, texts};
use crate::config::QueueSettings;

/// What Twilio reported about one dial attempt, as `settle` in lua/lib/calls.lua
/// takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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

/// What a report did (`settle`'s first reply element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleCode {
    /// The current attempt changed.
    Applied,
    /// A late report of an attempt released meanwhile took effect.
    Recovered,
    /// The answer of a call already on the line, again.
    Duplicate,
    /// Not the current attempt, or already settled: nothing changed.
    Stale,
    /// No such call (never routed here, or Redis lost it).
    Unknown,
}

impl SettleCode {
    fn parse(code: &str) -> Option<SettleCode> {
        Some(match code {
            "applied" => SettleCode::Applied,
            "recovered" => SettleCode::Recovered,
            "duplicate" => SettleCode::Duplicate,
            "stale" => SettleCode::Stale,
            "unknown" => SettleCode::Unknown,
            _ => return None,
        })
    }
}

/// The reply of `settle`, as far as Rust acts on it (the call's queue, caller
/// and status it also returns are for the script that routes the next step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub code: SettleCode,
    /// What the agent became (`on_call`, `wrap_up`, `available`, `away`,
    /// `reserved`, `deleted`), if it was touched.
    pub agent_state: Option<String>,
}

impl Settled {
    /// This report changed something (the current attempt, or a late report
    /// of an expired one).
    pub fn applied(&self) -> bool {
        matches!(self.code, SettleCode::Applied | SettleCode::Recovered)
    }
}

/// A Dial action's next step, decided in the same script as its settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Route(RouteOutcome),
    Hangup,
}

/// What one sweep of a due deadline did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepResult {
    /// A reservation nobody answered: the agent was released as a miss.
    ExpiredReservation { queue: String },
    /// A lease past `max_call_secs`: the agent went to wrap-up.
    ExpiredLease { queue: String },
    /// A waiting caller whose wait fetches stopped (it hung up) left the line.
    Abandoned { queue: String },
    /// A callback's reservation ran out: back to its place, or its try over
    /// (`failed`: it was the last).
    ExpiredCallback { queue: String, failed: bool },
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

fn decode_settled(script: &'static str, items: &[String]) -> Result<Settled, StoreError> {
    let [code, _queue, _caller, agent_state, _call_status] = items.get(..5).unwrap_or(&[]) else {
        return Err(StoreError::reply(script, format!("{items:?}")));
    };
    let code = SettleCode::parse(code)
        .ok_or_else(|| StoreError::reply(script, format!("unknown code {code:?}")))?;
    Ok(Settled {
        code,
        agent_state: (!agent_state.is_empty()).then(|| agent_state.clone()),
    })
}

/// An answered call with no report for a while (`due_reconciles`): its agent
/// leg, to ask Twilio about, and the attempt to settle if that leg is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietCall {
    pub call_sid: String,
    pub leg_sid: String,
    pub agent: String,
    pub token: String,
    /// The Twilio account the call belongs to ('' when its webhook had none).
    pub account: String,
}

impl Store {
    /// Answered calls without a report for `quiet`, at most `batch`; each is
    /// claimed for another `quiet` (so one worker asks about it).
    pub async fn due_reconciles(
        &self,
        quiet: std::time::Duration,
        batch: usize,
    ) -> Result<Vec<QuietCall>, StoreError> {
        let name = scripts::DUE_RECONCILES.name;
        let request = super::requests::ReconcileRequest {
            quiet_ms: u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX),
            batch,
        };
        let reply = self
            .invoke(&scripts::DUE_RECONCILES, self.keys().reconcile(), &request)
            .await?;
        let items = texts(name, &reply)?;
        if items.len() % 5 != 0 {
            return Err(StoreError::reply(name, format!("{items:?}")));
        }
        Ok(items
            .chunks_exact(5)
            .map(|c| QuietCall {
                call_sid: c[0].clone(),
                leg_sid: c[1].clone(),
                agent: c[2].clone(),
                token: c[3].clone(),
                account: c[4].clone(),
            })
            .collect())
    }

    /// Applies one callback's report to its attempt.
    pub async fn settle_attempt(&self, attempt: AttemptRequest<'_>) -> Result<Settled, StoreError> {
        let items = self.invoke_settle(attempt, None).await?;
        decode_settled(scripts::SETTLE_ATTEMPT.name, &items)
    }

    /// A Dial action: settles its attempt, then decides the call's next step
    /// with `next` (the plan of the call's queue), in one script.
    pub async fn settle_and_route(
        &self,
        attempt: AttemptRequest<'_>,
        next: RouteRequest<'_>,
    ) -> Result<(Settled, NextStep), StoreError> {
        let name = scripts::SETTLE_ATTEMPT.name;
        let items = self.invoke_settle(attempt, Some(next)).await?;
        let settled = decode_settled(name, &items)?;
        let step = match items.get(5).map(String::as_str) {
            Some("hangup") => NextStep::Hangup,
            Some(_) => NextStep::Route(decode_route(name, &items[5..])?),
            None => return Err(StoreError::reply(name, "no next step")),
        };
        Ok((settled, step))
    }

    /// `settle_attempt.lua`'s reply, as text.
    async fn invoke_settle(
        &self,
        attempt: AttemptRequest<'_>,
        next: Option<RouteRequest<'_>>,
    ) -> Result<Vec<String>, StoreError> {
        let key = self.keys().call(attempt.sid);
        let request = SettleRequest {
            tail_ms: CALL_TAIL_MS,
            spare_token: new_token(),
            settle: attempt,
            next,
        };
        let reply = self.invoke(&scripts::SETTLE_ATTEMPT, key, &request).await?;
        texts(scripts::SETTLE_ATTEMPT.name, &reply)
    }

    /// Ends a call: no new attempt, and the agent it holds (if any) is settled as
    /// a caller hang-up, in one script.
    pub async fn end_call(&self, call_sid: &str) -> Result<(), StoreError> {
        let request = EndCallRequest {
            sid: call_sid,
            tail_ms: CALL_TAIL_MS,
            spare_token: new_token(),
        };
        let key = self.keys().call(call_sid);
        self.invoke(&scripts::END_CALL, key, &request).await?;
        Ok(())
    }

    /// Reservations and leases whose deadline has passed, oldest first.
    pub async fn due_deadlines(&self) -> Result<Vec<String>, StoreError> {
        let reply = self
            .invoke(
                &scripts::DUE_DEADLINES,
                self.keys().deadlines(),
                &LimitRequest { limit: SWEEP_BATCH },
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
        let name = scripts::SWEEP_DEADLINE.name;
        // A member we did not write is dropped by the script: with keys of no
        // call and no agent, nothing else matches its (empty) token.
        let d = Deadline::parse(member).unwrap_or(Deadline {
            kind: "invalid",
            call_sid: "invalid",
            agent: "invalid",
            token: "",
        });
        let request = SweepRequest {
            member,
            kind: d.kind,
            sid: d.call_sid,
            agent: d.agent,
            token: d.token,
            tail_ms: CALL_TAIL_MS,
            defaults: SweepDefaults {
                wrap_up_ms: u64::from(defaults.wrap_up_secs) * 1000,
                delay_ms: u64::from(defaults.no_answer_delay_secs) * 1000,
                max_missed: defaults.max_missed_in_row,
            },
            spare_token: new_token(),
        };
        let reply = self
            .invoke(&scripts::SWEEP_DEADLINE, self.keys().deadlines(), &request)
            .await?;
        let items = texts(name, &reply)?;
        let queue = items.get(1).cloned().unwrap_or_default();
        match items.first().map(String::as_str) {
            Some("expired_reservation") => Ok(SweepResult::ExpiredReservation { queue }),
            Some("expired_lease") => Ok(SweepResult::ExpiredLease { queue }),
            Some("abandoned") => Ok(SweepResult::Abandoned { queue }),
            Some("expired_callback") => Ok(SweepResult::ExpiredCallback {
                queue,
                failed: items.get(2).is_some_and(|s| s == "failed"),
            }),
            Some("stale" | "not_due" | "gone") => Ok(SweepResult::Nothing),
            _ => Err(StoreError::reply(name, format!("{items:?}"))),
        }
    }

    /// Turns ended wrap-ups into `available`, under a lease of `lease_ms` that
    /// one worker at a time holds; `None` when another worker holds it.
    pub async fn settle_wrap_ups(&self, lease_ms: u64) -> Result<Option<usize>, StoreError> {
        let name = scripts::SETTLE_WRAP_UPS.name;
        let mut settled = 0;
        loop {
            let request = WrapUpsRequest {
                lease_ms,
                limit: WRAP_UPS_BATCH,
            };
            let reply = self
                .invoke(&scripts::SETTLE_WRAP_UPS, self.keys().wrap_ups(), &request)
                .await?;
            let n: i64 = text(&reply)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| StoreError::reply(name, format!("{reply:?}")))?;
            match usize::try_from(n) {
                Err(_) if settled == 0 => return Ok(None),
                Err(_) => return Ok(Some(settled)),
                Ok(n) => {
                    settled += n;
                    if n < WRAP_UPS_BATCH {
                        return Ok(Some(settled));
                    }
                }
            }
        }
    }
}
