//! The routing engine: turns a Twilio webhook into a decision (dial this agent,
//! take that fallback step) by applying the routing table and calling the store's
//! scripts, and counts what it decided. It knows nothing of HTTP or TwiML.

use std::sync::Arc;

use crate::agent::Contact;
use crate::config::{FallbackStep, QueueSettings, RoutingTable};
use crate::metrics;
use crate::store::calls::PlanEntry;
use crate::store::{RouteOutcome, RouteRequest, Store, StoreError};

/// An incoming call, as `POST /twilio/voice` describes it.
#[derive(Debug, Clone)]
pub struct IncomingCall<'a> {
    pub call_sid: &'a str,
    pub from: &'a str,
    pub to: &'a str,
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
    /// No agent: this step of the fallback chain (never `Queue`).
    Fallback(FallbackStep),
    /// The call is over; answer with a hang-up.
    Hangup,
}

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

    /// Routes an incoming call: the agent free the longest in its queue, then in
    /// the overflow queues of its fallback chain, else the chain's next step. The
    /// same CallSid routed again gets the same answer and reserves nobody.
    pub async fn incoming(&self, call: &IncomingCall<'_>) -> Result<Decision, StoreError> {
        let home = self.table.queue_for_number(call.to);
        let plan = self.table.plan(home);
        let request = RouteRequest {
            call_sid: call.call_sid,
            caller: call.from,
            home_queue: &home.name,
            call_ttl_ms: self.call_ttl_ms(),
            max_attempts: home.settings.max_attempts,
            plan: plan
                .queues
                .iter()
                .map(|(queue, via)| PlanEntry {
                    queue: &queue.name,
                    reservation_ms: queue.settings.reservation_ms(),
                    via,
                })
                .collect(),
            terminal_step: plan.terminal.to_string(),
        };
        let outcome = self.store.route_call(&request).await?;
        self.decide(&home.name, outcome)
    }

    /// Turns a script's outcome into a decision, counting it the first time.
    fn decide(&self, home: &str, outcome: RouteOutcome) -> Result<Decision, StoreError> {
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
                    if attempt == 1 {
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
                    metrics::call_received(home);
                    metrics::fallback(home, &step.metric_label());
                    tracing::info!(queue = home, step = %step.metric_label(), "no agent free: fallback");
                }
                Ok(Decision::Fallback(step))
            }
            RouteOutcome::Ended => Ok(Decision::Hangup),
        }
    }
}
