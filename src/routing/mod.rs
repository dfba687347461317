//! The routing engine: turns Twilio's webhooks into decisions (dial this agent,
//! take that fallback step, hang up) by applying the routing table and calling
//! the store's scripts, and counts what it decided. It knows nothing of HTTP or
//! TwiML.

use std::sync::Arc;

use crate::agent::Contact;
use crate::config::{FallbackStep, Queue, QueueSettings, RoutingTable};
use crate::metrics;
use crate::store::calls::PlanEntry;
use crate::store::{Outcome, RouteOutcome, RouteRequest, Settled, Store, StoreError};

/// An incoming call, as `POST /twilio/voice` describes it.
#[derive(Debug, Clone)]
pub struct IncomingCall<'a> {
    pub call_sid: &'a str,
    pub from: &'a str,
    pub to: &'a str,
}

/// One dial attempt's callback: which call, which agent and token (from the
/// callback URL switchboard wrote), and what Twilio reported.
#[derive(Debug, Clone)]
pub struct AttemptReport<'a> {
    pub call_sid: &'a str,
    pub agent: &'a str,
    pub token: &'a str,
    pub outcome: Outcome,
}

/// What a call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Ring one agent; the token fences this attempt's callbacks.
    Dial {
        agent: String,
        contact: Contact,
        token: String,
        /// The settings of the queue the agent was taken from.
        settings: QueueSettings,
        attempt: u32,
    },
    /// No agent: this step of the fallback chain of `queue` (never `Queue`).
    Fallback { queue: String, step: FallbackStep },
    /// The call is over; answer with a hang-up.
    Hangup,
}

/// `DialCallStatus` of a Dial action, as an attempt outcome.
pub fn dial_outcome(dial_call_status: &str) -> Option<Outcome> {
    match dial_call_status {
        "completed" | "answered" => Some(Outcome::Completed),
        "no-answer" | "busy" | "failed" => Some(Outcome::Miss),
        "canceled" => Some(Outcome::Hangup),
        _ => None,
    }
}

/// `CallStatus` of the agent leg's status callback; `None` for the progress
/// events (`initiated`, `ringing`) that change nothing.
pub fn agent_leg_outcome(call_status: &str) -> Option<Outcome> {
    match call_status {
        "answered" | "in-progress" => Some(Outcome::Answered),
        "completed" => Some(Outcome::Completed),
        "no-answer" | "busy" | "failed" => Some(Outcome::Miss),
        "canceled" => Some(Outcome::Hangup),
        _ => None,
    }
}

/// The final `CallStatus` values of a call: it is over.
pub const FINAL_CALL_STATUSES: [&str; 5] = ["completed", "busy", "failed", "no-answer", "canceled"];

#[derive(Clone)]
pub struct Engine {
    store: Store,
    table: Arc<RoutingTable>,
}

impl Engine {
    pub fn new(store: Store, table: Arc<RoutingTable>) -> Engine {
        Engine { store, table }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// How long a call's hash outlives its last change: the longest call any
    /// queue allows, plus an hour for late callbacks and voicemail.
    pub fn call_ttl_ms(&self) -> u64 {
        let longest = self
            .table
            .queues()
            .iter()
            .map(|q| u64::from(q.settings.max_call_secs) * 1000 + q.settings.reservation_ms())
            .max()
            .unwrap_or(0);
        longest + 3_600_000
    }

    /// Routes an incoming call: the agent who last answered this caller if free
    /// right now, else the agent free the longest in its queue, then in the
    /// overflow queues of its fallback chain, else the chain's next step. The same
    /// CallSid routed again gets the same answer and reserves nobody.
    pub async fn incoming(&self, call: &IncomingCall<'_>) -> Result<Decision, StoreError> {
        let home = self.table.queue_for_number(call.to);
        self.route(call.call_sid, call.from, home, true).await
    }

    /// The Dial action: settles the attempt, then the call's next step — the next
    /// agent after a miss, a hang-up when the call is over, or (for a replayed
    /// action) the answer already given.
    pub async fn dial_action(
        &self,
        report: &AttemptReport<'_>,
        call: &IncomingCall<'_>,
    ) -> Result<Decision, StoreError> {
        let settled = self.settle(report, "dial action").await?;
        if settled.unknown() {
            // Redis lost the call (restarted empty). A caller still waiting is
            // routed afresh; a finished call is simply over.
            return match report.outcome {
                Outcome::Miss => self.incoming(call).await,
                _ => Ok(Decision::Hangup),
            };
        }
        // A call whose attempt completed, or whose caller hung up, is over: a
        // stale report of that kind must never ring another agent.
        let over = matches!(report.outcome, Outcome::Completed | Outcome::Hangup);
        if settled.call_status == "ended" || (over && !settled.applied()) {
            return Ok(Decision::Hangup);
        }
        let home = self
            .table
            .queue(&settled.queue)
            .unwrap_or_else(|| self.table.queue_for_number(call.to));
        self.route(report.call_sid, &settled.caller, home, false)
            .await
    }

    /// The agent leg's status callback: answered, or how the leg ended.
    pub async fn agent_status(&self, report: &AttemptReport<'_>) -> Result<(), StoreError> {
        self.settle(report, "agent leg").await.map(|_| ())
    }

    /// Applies one report of an attempt, logging what it changed.
    async fn settle(
        &self,
        report: &AttemptReport<'_>,
        from: &'static str,
    ) -> Result<Settled, StoreError> {
        let settled = self
            .store
            .settle_attempt(report.call_sid, report.agent, report.token, report.outcome)
            .await?;
        if settled.applied() {
            tracing::info!(
                from,
                agent = report.agent,
                outcome = ?report.outcome,
                agent_state = settled.agent_state,
                "dial attempt settled"
            );
        }
        Ok(settled)
    }

    /// The number's status callback with a final status: whatever the call still
    /// holds is released, and it gets no new attempt.
    pub async fn call_ended(&self, call_sid: &str) -> Result<(), StoreError> {
        self.store.end_call(call_sid, self.call_ttl_ms()).await
    }

    async fn route(
        &self,
        call_sid: &str,
        caller: &str,
        home: &Queue,
        first: bool,
    ) -> Result<Decision, StoreError> {
        let plan = self.table.plan(home);
        let request = RouteRequest {
            call_sid,
            caller,
            home_queue: &home.name,
            call_ttl_ms: self.call_ttl_ms(),
            max_attempts: home.settings.max_attempts,
            plan: plan
                .queues
                .iter()
                .map(|(queue, via)| PlanEntry {
                    queue: &queue.name,
                    via,
                    settings: &queue.settings,
                })
                .collect(),
            terminal_step: plan.terminal.to_string(),
        };
        let outcome = self.store.route_call(&request).await?;
        self.decide(&home.name, outcome, first)
    }

    /// Turns a script's outcome into a decision, counting it the first time.
    fn decide(
        &self,
        home: &str,
        outcome: RouteOutcome,
        first: bool,
    ) -> Result<Decision, StoreError> {
        match outcome {
            RouteOutcome::Dial {
                agent,
                contact,
                token,
                queue,
                via,
                attempt,
                fresh,
            } => {
                let contact = Contact::parse(&contact).ok_or_else(|| StoreError::Reply {
                    script: "route_call",
                    detail: format!("agent {agent} has an invalid contact {contact:?}"),
                })?;
                let settings = self
                    .table
                    .queue(&queue)
                    .map_or_else(QueueSettings::default, |q| q.settings.clone());
                if fresh {
                    if first {
                        metrics::call_received(home);
                    }
                    metrics::routed(home, &via);
                    if via == "overflow" {
                        metrics::fallback(home, &format!("queue:{queue}"));
                    }
                    tracing::info!(agent, queue, via, attempt, "call offered to agent");
                }
                Ok(Decision::Dial {
                    agent,
                    contact,
                    token,
                    settings,
                    attempt,
                })
            }
            RouteOutcome::Fallback { step, fresh } => {
                let step: FallbackStep = step.parse().map_err(|detail| StoreError::Reply {
                    script: "route_call",
                    detail,
                })?;
                if fresh {
                    if first {
                        metrics::call_received(home);
                    }
                    metrics::fallback(home, &step.metric_label());
                    tracing::info!(queue = home, step = %step.metric_label(), "no agent for the call: fallback");
                }
                Ok(Decision::Fallback {
                    queue: home.to_owned(),
                    step,
                })
            }
            RouteOutcome::Ended => Ok(Decision::Hangup),
        }
    }
}
