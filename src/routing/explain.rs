//! "Which agents would this call reach now, at which step?" (`POST
//! /v1/routing/explain`): the call's plan with each queue's steps, the free
//! agents each step accepts (counted, the longest idle first), and what a call
//! arriving now would be given and why. It reserves nobody and changes
//! nothing: one read-only script (lua/explain.lua) reads the instant.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Engine, unix_ms_now};
use crate::config::FallbackStep;
use crate::config::steps::Steps;
use crate::needs::Needs;
use crate::store::StoreError;
use crate::store::explain::{ExplainEntry, ExplainStep, Explained};

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    /// The call's own queue (the default queue for a number no queue lists).
    pub queue: String,
    /// What every call to the number needs (its `numbers` entry); null: nothing.
    pub number_needs: Option<String>,
    /// The needs given with the question; null: none.
    pub needs: Option<String>,
    /// How long the call is taken to have waited: which step holds.
    pub waited_secs: u64,
    /// False outside the queue's hours: a call now gets its closed step.
    pub open: bool,
    /// Callers waiting in the queue's line now.
    pub waiting: u64,
    /// Each queue the call may take an agent from, in order: its own, then
    /// the overflow queues of its fallback chain.
    pub plan: Vec<PlanQueue>,
    /// What a call would be given now.
    pub decision: ExplainedDecision,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanQueue {
    pub queue: String,
    /// `queue` for the call's own queue, `overflow` for a fallback queue.
    pub via: String,
    /// Agents of the queue free now, whatever their skills.
    pub free: u64,
    /// The step that holds after `waited_secs` (1-based).
    pub current_step: u32,
    pub steps: Vec<PlanStep>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanStep {
    /// 1-based.
    pub step: u32,
    /// What it needs of an agent: the queue's step, with the number's and the
    /// question's needs (`any`: every agent of the queue).
    pub needs: String,
    /// Seconds after the call's arrival it starts.
    pub starts_after_secs: u64,
    /// How long it holds; null for the last, which holds until the call
    /// leaves the queue.
    pub for_secs: Option<u64>,
    /// Free agents it accepts now (counted up to 100; see `more`).
    pub matching: u64,
    /// True when counting stopped early: at 100 matches, or when the
    /// request had read its 2,000 line members (over all its steps).
    pub more: bool,
    /// The first 10 of them, the longest idle (the next offered) first.
    pub agents: Vec<String>,
}

/// What a call would be given now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainedDecision {
    /// `dial` (an agent), `wait` (in line), `fallback` (its chain's next
    /// step) or `closed` (outside hours: the closed step).
    pub kind: String,
    /// The agent dialled (`dial`).
    pub agent: Option<String>,
    /// The queue the agent is taken from (`dial`).
    pub queue: Option<String>,
    /// The step that accepted the agent (`dial`), or holds while it waits.
    pub step: Option<u32>,
    /// The fallback step (`fallback`, `closed`), as the routing file writes it.
    pub fallback: Option<String>,
    /// Why, in words.
    pub why: String,
}

/// Why a question cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The needs given cannot join a step's (a contradiction, or too many
    /// alternatives together).
    #[error("{0}")]
    Needs(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// "12 free agents" / "100 or more free agents".
fn counted(matching: u64, more: bool) -> String {
    match (matching, more) {
        (1, false) => "the one free agent".into(),
        (n, false) => format!("the {n} free agents"),
        (n, true) => format!("{n} or more free agents"),
    }
}

impl Engine {
    /// Explains where a call to `to` (None: the default queue) with `extra`
    /// needs, having waited `waited_ms`, would go now.
    pub async fn explain(
        &self,
        to: Option<&str>,
        extra: &Needs,
        waited_ms: u64,
    ) -> Result<Explanation, ExplainError> {
        let table = self.table();
        let to = to.unwrap_or("");
        let home = table.queue_for_number(to);
        let plan = table.plan(home);
        // Each queue's steps for this call: its own, the number's needs, the
        // question's.
        let steps = self
            .steps_with(home, to, extra)
            .map_err(ExplainError::Needs)?;
        let current: Vec<usize> = steps.iter().map(|s| s.at(waited_ms).0).collect();
        let entries: Vec<ExplainEntry<'_>> = plan
            .queues
            .iter()
            .zip(&steps)
            .map(|((q, _), s)| ExplainEntry {
                queue: &q.name,
                steps: s
                    .all()
                    .iter()
                    .map(|step| ExplainStep {
                        alts: step.needs.alternatives(),
                    })
                    .collect(),
            })
            .collect();
        let read = self.store().explain(&entries, current[0] + 1).await?;
        if read.plan.len() != entries.len() {
            return Err(StoreError::Reply {
                script: "explain",
                detail: format!("{} queues read for {}", read.plan.len(), entries.len()),
            }
            .into());
        }
        let queues: Vec<PlanQueue> = plan
            .queues
            .iter()
            .zip(&steps)
            .zip(&read.plan)
            .zip(&current)
            .map(|((((q, via), s), r), at)| PlanQueue {
                queue: q.name.clone(),
                via: (*via).to_owned(),
                free: r.free,
                current_step: *at as u32 + 1,
                steps: plan_steps(s, r),
            })
            .collect();
        let open = home.hours.as_ref().is_none_or(|h| h.is_open(unix_ms_now()));
        let decision = if open {
            decide(home, &plan.terminal, &queues, &read)
        } else {
            fallback(
                "closed",
                &table.closed_step(home),
                "outside the queue's hours: its closed step",
            )
        };
        let number_needs = table.needs_of_number(to).map(|n| n.text().to_owned());
        Ok(Explanation {
            queue: home.name.clone(),
            number_needs,
            needs: (!extra.is_any()).then(|| extra.text().to_owned()),
            waited_secs: waited_ms / 1000,
            open,
            waiting: read.waiting,
            plan: queues,
            decision,
        })
    }
}

fn plan_steps(steps: &Steps, read: &crate::store::explain::ExplainedQueue) -> Vec<PlanStep> {
    let mut start = 0u64;
    steps
        .all()
        .iter()
        .zip(&read.steps)
        .enumerate()
        .map(|(i, (step, r))| {
            let doc = PlanStep {
                step: i as u32 + 1,
                needs: step.needs.text().to_owned(),
                starts_after_secs: start / 1000,
                for_secs: step.for_ms.map(|ms| ms / 1000),
                matching: r.matching,
                more: r.more,
                agents: r.agents(),
            };
            start = start.saturating_add(step.for_ms.unwrap_or(0));
            doc
        })
        .collect()
}

fn step_now(q: &PlanQueue) -> Option<&PlanStep> {
    q.steps.get((q.current_step as usize).saturating_sub(1))
}

/// What route_call.lua would decide, from what explain.lua read (affinity
/// aside: it needs a caller).
fn decide(
    home: &crate::config::Queue,
    terminal: &FallbackStep,
    plan: &[PlanQueue],
    read: &Explained,
) -> ExplainedDecision {
    let dial = |q: &PlanQueue, step: &PlanStep, why: String| ExplainedDecision {
        kind: "dial".into(),
        agent: step.agents.first().cloned(),
        queue: Some(q.queue.clone()),
        step: Some(step.step),
        fallback: None,
        why,
    };
    let wait = |step: Option<u32>, why: String| ExplainedDecision {
        kind: "wait".into(),
        agent: None,
        queue: Some(home.name.clone()),
        step,
        fallback: None,
        why,
    };
    let longest_idle = |q: &PlanQueue, step: &PlanStep| {
        format!(
            "the longest idle of {} of {} that step {} ({}) accepts",
            counted(step.matching, step.more),
            q.queue,
            step.step,
            step.needs
        )
    };
    if let (Some(hold), Some(own)) = (home.hold.as_ref(), plan.first())
        && read.waiting > 0
    {
        let step = step_now(own);
        return match step {
            Some(s) if !s.agents.is_empty() && read.first_waiting.is_empty() => dial(
                own,
                s,
                format!(
                    "{}; none of the {} callers waiting can take them",
                    longest_idle(own, s),
                    read.waiting
                ),
            ),
            Some(s) if !s.agents.is_empty() => wait(
                Some(s.step),
                format!(
                    "{} callers wait, and {} ahead would be given {} first",
                    read.waiting, read.first_waiting, s.agents[0]
                ),
            ),
            _ if u64::from(hold.max_waiting) <= read.waiting => {
                fallback("fallback", terminal, "the line is full")
            }
            s => wait(
                s.map(|s| s.step),
                format!(
                    "no free agent its current step accepts; {} callers wait",
                    read.waiting
                ),
            ),
        };
    }
    for q in plan {
        if let Some(s) = step_now(q).filter(|s| !s.agents.is_empty()) {
            return dial(q, s, longest_idle(q, s));
        }
    }
    let own_step = plan.first().and_then(step_now);
    match home.hold.as_ref() {
        Some(_) => wait(
            own_step.map(|s| s.step),
            "no free agent any queue's current step accepts: it waits in line".into(),
        ),
        None => fallback(
            "fallback",
            terminal,
            "no free agent any queue's current step accepts",
        ),
    }
}

/// A decision that answers without an agent: `kind` `fallback` or `closed`.
fn fallback(kind: &str, step: &FallbackStep, why: &str) -> ExplainedDecision {
    ExplainedDecision {
        kind: kind.into(),
        agent: None,
        queue: None,
        step: None,
        fallback: Some(step.to_string()),
        why: why.into(),
    }
}
