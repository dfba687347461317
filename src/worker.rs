//! The background worker: every sweep interval it releases reservations and
//! leases whose deadline passed (invariant 2: nobody stays stuck), settles
//! wrap-ups that ended, asks Twilio about answered calls that went quiet
//! (with REST credentials), refreshes the `switchboard_agents` gauges, and
//! every 10 s samples the callers waiting for the queues' trend and sets the
//! service level gauges and publishes the routing file's alternatives (whose
//! lines of free agents it builds). The lines move on a ticker of their own
//! (waiting calls on to their next step, agents freed by time to waiting
//! callers, and the matched ones connected), so a round slowed by its
//! metrics never keeps a caller beside a free agent (invariant 7).
//! Any number may run at once: each release is one token-fenced script, the
//! wrap-up settling runs under a lease one worker holds per interval, and the
//! gauges read the counts the scripts keep (O(queues), never every agent).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::routing::Engine;
use crate::store::requests::SWEEP_BATCH;
use crate::store::{StoreError, SweepResult};

/// What one round did (tests step the worker with `sweep_once`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub expired_reservations: u64,
    pub expired_leases: u64,
}

/// A background job the worker starts each round unless its last run is still
/// going: a slow Twilio makes rounds skip it, never pile it up.
#[derive(Default)]
struct OneAtATime(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl OneAtATime {
    fn spawn(&self, job: impl std::future::Future<Output = ()> + Send + 'static) {
        use std::sync::atomic::Ordering;
        if self.0.swap(true, Ordering::AcqRel) {
            return;
        }
        let running = self.0.clone();
        tokio::spawn(async move {
            job.await;
            running.store(false, Ordering::Release);
        });
    }
}

/// Runs rounds every `interval` until `shutdown` is cancelled.
pub async fn run(engine: Engine, interval: Duration, shutdown: CancellationToken) {
    tracing::info!(interval_ms = interval.as_millis() as u64, "worker started");
    let moving = tokio::spawn(move_lines_every(engine.clone(), interval, shutdown.clone()));
    let mut ticker = ticker(interval);
    let reconciling = OneAtATime::default();
    let dialing = OneAtATime::default();
    let mut last_stats: Option<tokio::time::Instant> = None;
    let (mut last_alts, mut building): (Option<tokio::time::Instant>, bool) = (None, false);
    while next_ready_tick(&mut ticker, &shutdown, &engine).await {
        if let Err(e) = sweep_once(&engine).await {
            tracing::warn!(error = %e, "sweep failed; retrying next interval");
        }
        match engine.store().expire_presence().await {
            Ok(silent) => {
                for agent in &silent {
                    tracing::info!(agent, "no heartbeat: agent set offline");
                }
                metrics::presence_offline(silent.len() as u64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot check heartbeats; retrying next interval"),
        }
        let publish = last_alts.is_none_or(|at| at.elapsed() >= ALTS_EVERY);
        if publish {
            last_alts = Some(tokio::time::Instant::now());
        }
        if let Err(e) = keep_alt_lines(&engine, publish, &mut building).await {
            tracing::warn!(error = %e, "cannot keep the lines of named alternatives; retrying next interval");
        }
        if let Err(e) = engine.due_callbacks().await {
            tracing::warn!(error = %e, "cannot put due callbacks back in line; retrying next interval");
        }
        // Off the sweep, each in its own task: a slow Twilio must not hold up
        // releases, nor redirects behind quiet-call lookups.
        if engine.dials_callbacks() {
            let engine_now = engine.clone();
            dialing.spawn(async move {
                if let Err(e) = engine_now.dial_callbacks().await {
                    tracing::warn!(error = %e, "cannot place callbacks; retrying next interval");
                }
            });
        }
        let engine_now = engine.clone();
        reconciling.spawn(async move {
            if let Err(e) = engine_now.reconcile().await {
                tracing::warn!(error = %e, "cannot look up quiet calls; retrying next interval");
            }
        });
        let lease_ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Err(e) = engine.store().settle_wrap_ups(lease_ms).await {
            tracing::warn!(error = %e, "cannot settle ended wrap-ups; retrying next interval");
        }
        if let Err(e) = refresh_wait_metrics(&engine).await {
            tracing::warn!(error = %e, "cannot refresh the wait metrics");
        }
        if let Err(e) = refresh_step_metrics(&engine).await {
            tracing::warn!(error = %e, "cannot refresh the step metrics");
        }
        // The figures change by the minute: every STATS_EVERY is enough.
        if last_stats.is_none_or(|at| at.elapsed() >= STATS_EVERY) {
            last_stats = Some(tokio::time::Instant::now());
            if let Err(e) = refresh_figures(&engine).await {
                tracing::warn!(error = %e, "cannot sample waiting callers or read the figures");
            }
        }
        if let Err(e) = refresh_gauges(&engine).await {
            tracing::warn!(error = %e, "cannot count agents for the gauges");
        }
        // Debug only: a managed Redis that refuses INFO would otherwise log
        // this every interval; the gauges then stay absent.
        if let Err(e) = refresh_redis_memory(&engine).await {
            tracing::debug!(error = %e, "cannot read Redis's memory for its gauges");
        }
    }
    let _ = moving.await;
    tracing::info!("worker stopped");
}

/// How often each worker publishes its routing file's alternatives again
/// (after Redis lost them, within this), and checks their lines are built.
const ALTS_EVERY: Duration = Duration::from_secs(10);
/// An alternative no replica published for this long is dropped with its
/// line: every replica's routing file stopped naming it.
const ALTS_STALE: Duration = Duration::from_secs(600);
/// Free agents one build run reads (a few ms of Redis), and most runs a round.
const ALTS_BUILD_BATCH: usize = 1000;
const ALTS_BUILD_RUNS: usize = 50;

/// Publishes the routing file's alternatives when `publish`, and builds the
/// lines of those not ready yet (`building`: some may not be; each
/// publication checks again, so a line another replica began and left is
/// finished here).
pub async fn keep_alt_lines(
    engine: &Engine,
    publish: bool,
    building: &mut bool,
) -> Result<(), StoreError> {
    if publish {
        let published = engine.publish_alternatives(ALTS_STALE).await?;
        if published.added > 0 || published.dropped > 0 {
            tracing::info!(
                added = published.added,
                dropped = published.dropped,
                "alternatives the routing files name: lines added and dropped"
            );
        }
        *building = true;
    }
    for _ in 0..ALTS_BUILD_RUNS {
        if !*building {
            break;
        }
        *building = engine
            .store()
            .build_alt_lines(ALTS_BUILD_BATCH)
            .await?
            .pending
            > 0;
    }
    Ok(())
}

/// Every `interval`, on a ticker of its own: waiting calls move on to their
/// next step, agents freed by time go to waiting callers, and the callers
/// matched are connected. A round slowed by many deadlines or by its metrics
/// (each a few Redis reads, which a loaded machine makes slow) must not make
/// steps relax late (within a sweep interval + 250 ms, issue 21) nor keep a
/// caller beside an agent it may take (invariant 7): a test on a loaded CI
/// machine saw a round of 2.3 s, nearly all of it metrics, hold matches up.
/// Matching takes each caller's current step from the time it waited, so it
/// matches at the new step even before relax_steps recorded it.
async fn move_lines_every(engine: Engine, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = ticker(interval);
    let connecting = OneAtATime::default();
    while next_ready_tick(&mut ticker, &shutdown, &engine).await {
        if engine.routes_by_needs()
            && let Err(e) = relax_steps(&engine).await
        {
            tracing::warn!(error = %e, "cannot move waiting calls on to their next step; retrying next interval");
        }
        if let Err(e) = match_waiting(&engine).await {
            tracing::warn!(error = %e, "cannot match waiting callers; retrying next interval");
        }
        // In a task of its own: a slow Twilio must not hold up matches.
        let engine_now = engine.clone();
        connecting.spawn(async move {
            if let Err(e) = engine_now.connect_waiting().await {
                tracing::warn!(error = %e, "cannot connect matched callers; their next wait fetch does");
            }
        });
    }
}

/// A ticker of `interval` whose ticks missed while a round ran late are not
/// made up in a burst.
fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Waits for `ticker`'s next tick at which Redis is ready; false once
/// `shutdown` is cancelled. `ready` also reloads the scripts after a Redis
/// restart, and logs an outage itself, with back-off (not once a tick).
async fn next_ready_tick(
    ticker: &mut tokio::time::Interval,
    shutdown: &CancellationToken,
    engine: &Engine,
) -> bool {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return false,
            _ = ticker.tick() => {}
        }
        if engine.store().ready().await.is_ok() {
            return true;
        }
    }
}

/// Moves every waiting call whose next step began on to it.
async fn relax_steps(engine: &Engine) -> Result<(), StoreError> {
    while engine.store().relax_steps(500).await? == 500 {}
    Ok(())
}

/// Releases everything due now; loops while rounds come back full.
pub async fn sweep_once(engine: &Engine) -> Result<SweepReport, StoreError> {
    let store = engine.store();
    let defaults = engine.table().queue_for_number("").settings.clone();
    let mut report = SweepReport::default();
    loop {
        let due = store.due_deadlines().await?;
        for member in &due {
            let swept = match store.sweep_deadline(member, &defaults).await {
                Ok(swept) => swept,
                // One entry the script cannot handle must not stall every
                // deadline behind it; losing Redis ends the round.
                Err(e) if matches!(e.reason(), "bad_reply" | "redis_error") => {
                    tracing::error!(deadline = member, error = %e, "cannot sweep this deadline; skipping it");
                    continue;
                }
                Err(e) => return Err(e),
            };
            match swept {
                SweepResult::ExpiredReservation { queue } => {
                    report.expired_reservations += 1;
                    metrics::reservation_expired(&queue);
                    tracing::info!(
                        deadline = member,
                        queue,
                        "reservation expired unanswered: agent released as a miss"
                    );
                }
                SweepResult::ExpiredLease { queue } => {
                    report.expired_leases += 1;
                    tracing::info!(
                        deadline = member,
                        queue,
                        "lease reached max_call_secs: agent moved to wrap-up"
                    );
                }
                SweepResult::Abandoned { queue } => {
                    tracing::info!(
                        deadline = member,
                        queue,
                        "waiting caller stopped fetching the wait URL: left the line"
                    );
                }
                SweepResult::ExpiredCallback { queue, failed } => {
                    if failed {
                        crate::metrics::callback(&queue, "failed");
                    }
                    tracing::info!(
                        deadline = member,
                        queue,
                        failed,
                        "callback's reservation ran out: its agent was freed, the callback waits for its next try or failed"
                    );
                }
                SweepResult::Nothing => {}
            }
        }
        if due.len() < SWEEP_BATCH {
            break;
        }
    }
    Ok(report)
}

/// Callers waiting beside agents that became free by time (wrap-up or
/// no-answer delay ran out) get those agents, within one sweep (invariant 7).
pub async fn match_waiting(engine: &Engine) -> Result<usize, StoreError> {
    const BATCH: usize = 64;
    engine.publish_hold_queues(false).await?;
    let mut matched = 0;
    loop {
        let n = engine.store().match_lines(BATCH).await?;
        matched += n;
        if n < BATCH {
            break;
        }
    }
    if matched > 0 {
        tracing::info!(matched, "agents freed by time given to waiting callers");
    }
    Ok(matched)
}

/// The wait metrics: callers waiting per queue, and the ended waits the
/// scripts recorded (each drained by one worker, so counted once).
pub async fn refresh_wait_metrics(engine: &Engine) -> Result<(), StoreError> {
    let holding: Vec<&crate::config::Queue> = engine
        .table()
        .queues()
        .iter()
        .filter(|q| q.hold.is_some())
        .collect();
    if holding.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = holding.iter().map(|q| q.name.as_str()).collect();
    let counts = engine.store().waiting_counts(&names).await?;
    for (name, (count, longest_ms)) in names.iter().zip(counts) {
        metrics::waiting(name, count, std::time::Duration::from_millis(longest_ms));
    }
    loop {
        let events = engine.store().drain_wait_events(500).await?;
        for event in &events {
            let waited = std::time::Duration::from_millis(event.waited_ms);
            let within = event.outcome == "answered"
                && engine.table().queue(&event.queue).is_some_and(|q| {
                    q.hold.as_ref().is_some_and(|h| {
                        waited <= std::time::Duration::from_secs(u64::from(h.service_level_secs))
                    })
                });
            metrics::wait_ended(&event.queue, &event.outcome, waited, within);
            if let (Some(estimate), "answered") = (event.estimate_ms, event.outcome.as_str()) {
                metrics::estimate_judged(
                    &event.queue,
                    std::time::Duration::from_millis(estimate),
                    waited,
                );
            }
        }
        if events.len() < 500 {
            return Ok(());
        }
    }
}

/// The step metrics: calls given an agent at each step, and waiting calls
/// moved on (each event drained by one worker, so counted once).
pub async fn refresh_step_metrics(engine: &Engine) -> Result<(), StoreError> {
    if !engine.routes_by_needs() {
        return Ok(());
    }
    loop {
        let events = engine.store().drain_step_events(500).await?;
        for event in &events {
            if event.relaxed {
                metrics::step_relaxed(&event.queue, event.step);
            } else {
                metrics::step_matched(
                    &event.queue,
                    event.step,
                    std::time::Duration::from_millis(event.waited_ms),
                );
            }
        }
        if events.len() < 500 {
            return Ok(());
        }
    }
}

/// How often a worker samples the callers waiting (each minute of the trend
/// gets several samples from every replica; its peak is kept) and refreshes
/// the service level gauges.
const STATS_EVERY: Duration = Duration::from_secs(10);

/// Samples the callers waiting in each line into the current minute's peak,
/// then sets `switchboard_service_level_ratio{queue,window}` from the same
/// figures GET /v1/queues shows (one read for every queue).
pub async fn refresh_figures(engine: &Engine) -> Result<(), StoreError> {
    let store = engine.store();
    store.sample_waiting().await?;
    let queues = engine.table().queues();
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    let (now, buckets) = store.queue_stats(&names).await?;
    for (queue, b) in queues.iter().zip(&buckets) {
        let (figures, _) =
            crate::stats::figures(b, now, &queue.stats.timezone, queue.service_level_secs());
        let sl = &figures.service_level;
        metrics::service_level(&queue.name, "15m", sl.last_15m.pct);
        metrics::service_level(&queue.name, "60m", sl.last_60m.pct);
    }
    Ok(())
}

/// Sets `switchboard_agents{queue,state}` for every configured queue and state
/// (zeros included, so a queue emptying shows as 0, not as a vanished series),
/// from the counts the scripts keep: one read, whatever the roster's size.
pub async fn refresh_gauges(engine: &Engine) -> Result<(), StoreError> {
    let mut counts = engine.store().state_counts().await?;
    for queue in engine.table().queues() {
        let queue_counts = counts.remove(&queue.name).unwrap_or_default();
        for (state, count) in queue_counts.by_state() {
            metrics::agents(&queue.name, state.as_str(), count as u64);
        }
    }
    Ok(())
}

/// Sets the Redis memory gauges, so a Redis filling up is seen before it
/// refuses writes.
pub async fn refresh_redis_memory(engine: &Engine) -> Result<(), StoreError> {
    let memory = engine.store().memory().await?;
    metrics::redis_memory(memory.used, memory.max);
    Ok(())
}
