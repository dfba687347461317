//! Dial actions Redis could not take (SPEC 1, "cannot be applied"). The caller
//! was on the line, so the webhook already answered the emergency TwiML; what is
//! left is the attempt's end (a miss, an answered call over, …), which would
//! otherwise wait for the worker's deadline or be lost. The replica that
//! answered keeps each such report, in arrival order, and applies them once
//! Redis answers again. Every report is token-fenced like any other, so one
//! applied after a newer change of the same call or agent changes nothing.
//! Kept in memory: a replica that dies loses its list, and the worker's
//! deadlines still release the agents.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{AttemptReport, Engine};
use crate::store::Outcome;

/// Reports kept at most; past it a new one is dropped (and logged): an outage
/// long enough to fill it is left to the worker's deadlines.
pub const CAPACITY: usize = 10_000;
/// Between two tries while Redis does not answer.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// One report, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kept {
    call_sid: String,
    agent: String,
    token: String,
    outcome: Outcome,
}

/// The reports of this replica waiting for Redis, oldest first.
#[derive(Debug, Default)]
pub struct Unapplied {
    reports: Mutex<VecDeque<Kept>>,
    wake: Notify,
}

impl Unapplied {
    /// Keeps `report` to apply later; `false` (and nothing kept) when full.
    pub fn keep(&self, report: &AttemptReport<'_>) -> bool {
        let mut reports = self.lock();
        if reports.len() >= CAPACITY {
            return false;
        }
        reports.push_back(Kept {
            call_sid: report.call_sid.to_owned(),
            agent: report.agent.to_owned(),
            token: report.token.to_owned(),
            outcome: report.outcome,
        });
        drop(reports);
        self.wake.notify_one();
        true
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Applies the kept reports in order, each removed once Redis took it;
    /// stops at the first Redis failure. How many were applied. Only `run`
    /// calls it: one caller, so the front it applied is the front it pops.
    async fn apply(&self, engine: &Engine) -> usize {
        let mut applied = 0;
        loop {
            let Some(next) = self.lock().front().cloned() else {
                return applied;
            };
            let report = AttemptReport {
                call_sid: &next.call_sid,
                agent: &next.agent,
                token: &next.token,
                outcome: next.outcome,
                leg: None,
            };
            match engine.agent_status(&report).await {
                Ok(()) => {}
                // Redis cannot be reached yet: try again later.
                Err(e) if matches!(e.reason(), "redis_timeout" | "redis_unavailable") => {
                    tracing::debug!(error = %e, waiting = self.len(), "Redis still cannot take the kept reports");
                    return applied;
                }
                // Redis answered, and refused it: trying again would refuse
                // it again and hold every report behind it.
                Err(e) => {
                    tracing::warn!(call_sid = next.call_sid, error = %e, "a kept dial action cannot be applied: dropped");
                    self.lock().pop_front();
                    continue;
                }
            }
            // Only this task removes: the front is still `next`.
            self.lock().pop_front();
            applied += 1;
            tracing::info!(
                call_sid = next.call_sid,
                agent = next.agent,
                "a dial action Redis could not take is applied now"
            );
        }
    }

    /// Applies kept reports as they come and while Redis is back, until `stop`;
    /// then tries once more.
    pub async fn run(&self, engine: Engine, stop: CancellationToken) {
        loop {
            self.apply(&engine).await;
            // Nothing kept: sleep until a report comes (`wake`).
            let pause = if self.is_empty() {
                Duration::from_secs(3600)
            } else {
                RETRY_EVERY
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.apply(&engine).await;
        if !self.is_empty() {
            tracing::warn!(
                left = self.len(),
                "stopping with dial actions Redis never took; the worker releases their agents at their deadlines"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Kept>> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }
}
