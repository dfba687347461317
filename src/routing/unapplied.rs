//! Reports Redis could not take (SPEC 1, "cannot be applied"): Dial actions,
//! agent-leg status callbacks and the number's final status callback. Each
//! one is the end (or the answer) of an attempt or of a call, which would
//! otherwise wait for the worker's deadlines or be lost: Twilio retries a
//! status callback answered 503 at most `rc=5` times within its total timeout
//! (`tt`, at most 15 s), so a longer Redis outage outlasts every retry. The
//! replica that received the report keeps it, in arrival order, and applies
//! them once Redis answers again; the status callbacks are still answered 503,
//! so a retry that reaches Redis first applies it too. Applying a report twice
//! changes nothing: an attempt's report is token-fenced (the same report again
//! is a duplicate, one after a newer change of the call or agent is stale),
//! and a call that has ended ends once. Kept in memory: a replica that dies
//! loses its list, and the worker's deadlines and the reconcile backstop
//! still release the agents.

use std::collections::{HashSet, VecDeque};
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

/// Where a kept attempt report came from (only the log line differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    DialAction,
    AgentLeg,
}

/// One report, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kept {
    /// A Dial action's or an agent leg's report, fenced by its token.
    Attempt {
        source: Source,
        call_sid: String,
        agent: String,
        token: String,
        outcome: Outcome,
        leg: Option<String>,
    },
    /// The number's status callback with a final `CallStatus`.
    CallEnded { call_sid: String },
}

impl Kept {
    fn call_sid(&self) -> &str {
        match self {
            Kept::Attempt { call_sid, .. } | Kept::CallEnded { call_sid } => call_sid,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Kept::Attempt {
                source: Source::DialAction,
                ..
            } => "dial action",
            Kept::Attempt {
                source: Source::AgentLeg,
                ..
            } => "agent leg status callback",
            Kept::CallEnded { .. } => "call status callback",
        }
    }
}

/// The reports of this replica waiting for Redis, oldest first.
#[derive(Debug, Default)]
pub struct Unapplied {
    reports: Mutex<KeptReports>,
    wake: Notify,
}

/// The kept reports in order, and the same as a set: Twilio's retries of a
/// refused callback are recognised without scanning up to `CAPACITY` reports
/// under the lock on every webhook of an outage.
#[derive(Debug, Default)]
struct KeptReports {
    order: VecDeque<Kept>,
    set: HashSet<Kept>,
}

impl KeptReports {
    fn front(&self) -> Option<&Kept> {
        self.order.front()
    }

    fn pop_front(&mut self) {
        if let Some(kept) = self.order.pop_front() {
            self.set.remove(&kept);
        }
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl Unapplied {
    /// Keeps an attempt's report to apply later; `false` (and nothing kept)
    /// when full.
    pub fn keep(&self, source: Source, report: &AttemptReport<'_>) -> bool {
        self.push(Kept::Attempt {
            source,
            call_sid: report.call_sid.to_owned(),
            agent: report.agent.to_owned(),
            token: report.token.to_owned(),
            outcome: report.outcome,
            leg: report.leg.map(str::to_owned),
        })
    }

    /// Keeps the end of call `call_sid` to apply later; `false` when full.
    pub fn keep_call_end(&self, call_sid: &str) -> bool {
        self.push(Kept::CallEnded {
            call_sid: call_sid.to_owned(),
        })
    }

    fn push(&self, kept: Kept) -> bool {
        let mut reports = self.lock();
        // Twilio's retries of a refused status callback bring the same report
        // again while Redis is still away: one copy is enough.
        if reports.set.contains(&kept) {
            return true;
        }
        if reports.len() >= CAPACITY {
            return false;
        }
        reports.set.insert(kept.clone());
        reports.order.push_back(kept);
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
            let done = match &next {
                Kept::Attempt {
                    call_sid,
                    agent,
                    token,
                    outcome,
                    leg,
                    ..
                } => {
                    let report = AttemptReport {
                        call_sid,
                        agent,
                        token,
                        outcome: *outcome,
                        leg: leg.as_deref(),
                    };
                    engine.agent_status(&report).await
                }
                Kept::CallEnded { call_sid } => engine.call_ended(call_sid).await,
            };
            match done {
                Ok(()) => {}
                // Redis cannot take it yet (unreachable, loading, failing
                // over, full): try again later.
                Err(e) if e.is_transient() => {
                    tracing::debug!(error = %e, waiting = self.len(), "Redis still cannot take the kept reports");
                    return applied;
                }
                // Redis answered, and refused it: trying again would refuse
                // it again and hold every report behind it.
                Err(e) => {
                    tracing::warn!(call_sid = next.call_sid(), what = next.what(), error = %e, "a kept report cannot be applied: dropped");
                    self.lock().pop_front();
                    continue;
                }
            }
            // Only this task removes: the front is still `next`.
            self.lock().pop_front();
            applied += 1;
            tracing::info!(
                call_sid = next.call_sid(),
                what = next.what(),
                "a report Redis could not take is applied now"
            );
        }
    }

    /// Applies kept reports as they come and while Redis is back, until `stop`;
    /// then tries once more.
    pub async fn run(&self, engine: Engine, stop: CancellationToken) {
        loop {
            if self.apply(&engine).await > 0 {
                // An agent freed by a kept report may be given to a caller
                // waiting in line: connect them as any webhook would.
                if engine.connects_waiting()
                    && let Err(e) = engine.connect_waiting().await
                {
                    tracing::warn!(error = %e, "cannot connect a matched caller now; the worker or its next wait fetch will");
                }
            }
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
                "stopping with reports Redis never took; the worker releases their agents at their deadlines"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeptReports> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }
}
