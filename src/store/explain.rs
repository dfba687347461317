//! What `POST /v1/routing/explain` reads: the free agents each step of a
//! call's plan accepts now, counted and listed the longest idle first, in one
//! read-only script (lua/explain.lua), so the answer is one instant's.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, scripts, text};
use crate::needs::Test;

/// Most matching agents counted per step: past it the answer says "more".
pub const EXPLAIN_CAP: usize = 100;
/// Most agent ids listed per step.
pub const EXPLAIN_SHOWN: usize = 10;
/// Most line members one request reads, over all its steps and queues: its
/// cost to Redis stays bounded however large the roster and the plan.
pub const EXPLAIN_MAX_LOOKED: usize = 2000;

/// One queue of the plan and its steps' alternatives (all of them, `any`
/// included).
#[derive(Debug, Serialize)]
pub struct ExplainEntry<'a> {
    pub queue: &'a str,
    pub steps: Vec<ExplainStep<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ExplainStep<'a> {
    pub alts: &'a [Vec<Test>],
}

#[derive(Debug, Serialize)]
struct ExplainRequest<'a> {
    plan: &'a [ExplainEntry<'a>],
    home_step: usize,
    cap: usize,
    shown: usize,
    max_looked: usize,
}

/// The script's answer.
#[derive(Debug, Deserialize)]
pub struct Explained {
    /// Redis' clock, ms.
    pub now: i64,
    /// Callers waiting in the call's own queue's line.
    pub waiting: u64,
    pub plan: Vec<ExplainedQueue>,
    /// The waiting caller who would get the first agent of the own queue's
    /// current step before this call ('' for none).
    pub first_waiting: String,
}

#[derive(Debug, Deserialize)]
pub struct ExplainedQueue {
    /// Agents of the queue free now, whatever their skills.
    pub free: u64,
    pub steps: Vec<ExplainedStep>,
}

#[derive(Debug, Deserialize)]
pub struct ExplainedStep {
    /// Free agents the step accepts, counted up to `EXPLAIN_CAP`.
    pub matching: u64,
    /// Counting stopped before the end.
    pub more: bool,
    /// Their ids, comma separated, the longest idle first (at most
    /// `EXPLAIN_SHOWN`).
    agents: String,
}

impl ExplainedStep {
    pub fn agents(&self) -> Vec<String> {
        self.agents
            .split(',')
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

impl Store {
    /// Which free agents each step of `plan` accepts now; `home_step` is the
    /// own queue's (plan[0]'s) current step, 1-based.
    pub async fn explain(
        &self,
        plan: &[ExplainEntry<'_>],
        home_step: usize,
    ) -> Result<Explained, StoreError> {
        let name = scripts::EXPLAIN.name;
        let home = plan
            .first()
            .ok_or_else(|| StoreError::reply(name, "an empty plan"))?;
        let request = ExplainRequest {
            plan,
            home_step,
            cap: EXPLAIN_CAP,
            shown: EXPLAIN_SHOWN,
            max_looked: EXPLAIN_MAX_LOOKED,
        };
        let reply = self
            .invoke(&scripts::EXPLAIN, self.keys().line(home.queue), &request)
            .await?;
        let json = text(&reply).ok_or_else(|| StoreError::reply(name, format!("{reply:?}")))?;
        serde_json::from_str(&json).map_err(|e| StoreError::reply(name, e.to_string()))
    }
}
