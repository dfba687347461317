//! The metrics catalogue of SPEC 1 ("Operations"): names, help texts and buckets
//! in one place, one function per event so call sites cannot misspell a name or
//! a label, and the process-wide Prometheus recorder behind `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CALLS: &str = "switchboard_calls_total";
pub const ROUTED: &str = "switchboard_routed_total";
pub const FALLBACKS: &str = "switchboard_fallbacks_total";
pub const ROUTING_FAILURES: &str = "switchboard_routing_failures_total";
pub const RESERVATIONS_EXPIRED: &str = "switchboard_reservations_expired_total";
pub const AGENTS: &str = "switchboard_agents";
pub const WEBHOOK_DURATION: &str = "switchboard_webhook_duration_seconds";
pub const SCRIPT_DURATION: &str = "switchboard_redis_script_duration_seconds";
pub const VOICEMAILS: &str = "switchboard_voicemails_total";
pub const REDIS_UP: &str = "switchboard_redis_up";
pub const WAITING: &str = "switchboard_waiting";
pub const WAIT_SECONDS: &str = "switchboard_wait_seconds";
pub const WAIT_OUTCOMES: &str = "switchboard_wait_outcomes_total";
pub const WITHIN_SERVICE_LEVEL: &str = "switchboard_answered_within_service_level_total";
pub const TWILIO_REDIRECTS: &str = "switchboard_twilio_redirects_total";
pub const LONGEST_WAIT: &str = "switchboard_longest_wait_seconds";
pub const CONNECT_SECONDS: &str = "switchboard_connect_seconds";
pub const REPLICA_WAITS: &str = "switchboard_replica_waits_total";
pub const PRESENCE_OFFLINE: &str = "switchboard_presence_offline_total";
pub const EVENT_STREAMS: &str = "switchboard_event_streams";
pub const EVENT_STREAMS_DROPPED: &str = "switchboard_event_streams_dropped_total";
pub const REDIS_USED_MEMORY: &str = "switchboard_redis_used_memory_bytes";
pub const REDIS_MAXMEMORY: &str = "switchboard_redis_maxmemory_bytes";
pub const LOG_LINES_DROPPED: &str = "switchboard_log_lines_dropped_total";
pub const SERVICE_LEVEL: &str = "switchboard_service_level_ratio";
pub const STEP_MATCHES: &str = "switchboard_step_matches_total";
pub const STEP_MATCH_SECONDS: &str = "switchboard_step_match_seconds";
pub const STEPS_RELAXED: &str = "switchboard_steps_relaxed_total";
pub const LOOKUPS: &str = "switchboard_lookups_total";
pub const LOOKUP_SECONDS: &str = "switchboard_lookup_seconds";
pub const ESTIMATE_ERROR: &str = "switchboard_wait_estimate_error_ratio";
pub const CALLBACKS: &str = "switchboard_callbacks_total";
pub const TWILIO_CALLS: &str = "switchboard_twilio_calls_total";

/// Every metric switchboard exports (deploy/ may name only these).
pub const CATALOGUE: [&str; 33] = [
    CALLS,
    ROUTED,
    FALLBACKS,
    ROUTING_FAILURES,
    RESERVATIONS_EXPIRED,
    AGENTS,
    WEBHOOK_DURATION,
    SCRIPT_DURATION,
    VOICEMAILS,
    REDIS_UP,
    WAITING,
    WAIT_SECONDS,
    WAIT_OUTCOMES,
    WITHIN_SERVICE_LEVEL,
    TWILIO_REDIRECTS,
    LONGEST_WAIT,
    CONNECT_SECONDS,
    REPLICA_WAITS,
    PRESENCE_OFFLINE,
    EVENT_STREAMS,
    EVENT_STREAMS_DROPPED,
    REDIS_USED_MEMORY,
    REDIS_MAXMEMORY,
    LOG_LINES_DROPPED,
    SERVICE_LEVEL,
    STEP_MATCHES,
    STEP_MATCH_SECONDS,
    STEPS_RELAXED,
    LOOKUPS,
    LOOKUP_SECONDS,
    ESTIMATE_ERROR,
    CALLBACKS,
    TWILIO_CALLS,
];

/// From an agent freed to the REST redirect sent: milliseconds when the
/// replica that freed it connects, up to a sweep when the worker does.
const CONNECT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A wait in line lasts seconds to an hour.
const WAIT_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// How far off a first estimated wait was, as a share of the actual wait:
/// within 0.2 is the goal (docs/waiting-line.md).
const ESTIMATE_ERROR_BUCKETS: &[f64] = &[0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0];

/// Webhook answers should take milliseconds; Twilio gives up at 15 s.
const WEBHOOK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];
/// A script on a local Redis takes well under a millisecond.
const SCRIPT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder once per process (tests start many apps in one) and
/// returns the handle that renders `/metrics`.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(WEBHOOK_DURATION.into()), WEBHOOK_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(SCRIPT_DURATION.into()), SCRIPT_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(WAIT_SECONDS.into()), WAIT_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(STEP_MATCH_SECONDS.into()), WAIT_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(LOOKUP_SECONDS.into()), WEBHOOK_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(CONNECT_SECONDS.into()), CONNECT_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(ESTIMATE_ERROR.into()),
                        ESTIMATE_ERROR_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        LOG_LINES_DROPPED,
        "Log lines dropped rather than let logging hold up requests: write_failed (stdout closed or failing), queue_full (stdout not read fast enough)."
    );
    for reason in ["write_failed", "queue_full"] {
        counter!(LOG_LINES_DROPPED, "reason" => reason).increment(0);
    }
    describe_counter!(
        REPLICA_WAITS,
        "Reservations and whether a replica confirmed them before the dial (Sentinel and Cluster mode): confirmed, not_confirmed (none within 50 ms), not_asked (none had, a moment before), failed."
    );
    for outcome in ["confirmed", "not_confirmed", "not_asked", "failed"] {
        counter!(REPLICA_WAITS, "outcome" => outcome).increment(0);
    }
    describe_counter!(
        PRESENCE_OFFLINE,
        "Agents set offline because their heartbeats stopped."
    );
    counter!(PRESENCE_OFFLINE).increment(0);
    describe_gauge!(
        EVENT_STREAMS,
        "GET /v1/events streams open on this process."
    );
    gauge!(EVENT_STREAMS).set(0.0);
    describe_counter!(
        EVENT_STREAMS_DROPPED,
        "Event streams closed because their client fell too far behind (lagged), or refused at the process's or an agent's cap of open streams (refused)."
    );
    counter!(EVENT_STREAMS_DROPPED, "reason" => "lagged").increment(0);
    counter!(EVENT_STREAMS_DROPPED, "reason" => "refused").increment(0);
    // Not set until the worker has read them: a 0 would be a false "no limit".
    describe_gauge!(
        REDIS_USED_MEMORY,
        Unit::Bytes,
        "Memory the namespace's Redis uses (INFO used_memory, read by the worker)."
    );
    describe_gauge!(
        REDIS_MAXMEMORY,
        Unit::Bytes,
        "The namespace's Redis maxmemory (0: no limit), read by the worker. A full Redis refuses writes."
    );
    describe_counter!(CALLS, "Incoming calls, by the queue their number lands in.");
    describe_counter!(
        ROUTED,
        "Calls offered to an agent, by queue and how (affinity, queue, overflow)."
    );
    describe_counter!(
        FALLBACKS,
        "Calls that took a fallback step because no agent was free, by queue and step."
    );
    describe_counter!(
        ROUTING_FAILURES,
        "Webhooks answered without Redis (emergency TwiML or a lost callback), by reason."
    );
    describe_counter!(
        RESERVATIONS_EXPIRED,
        "Reservations released by the worker because their callbacks never came."
    );
    describe_counter!(VOICEMAILS, "Voicemail messages recorded.");
    describe_counter!(
        TWILIO_REDIRECTS,
        "Live calls redirected through Twilio's REST API, by outcome (redirected; call_over; unknown_call: Twilio answered 404, check TWILIO_ACCOUNT_SID; failed: the wait fetch connects instead)."
    );
    describe_gauge!(
        AGENTS,
        "Agents by queue and state, as the worker last counted them."
    );
    describe_gauge!(
        REDIS_UP,
        "1 while Redis answers with the scripts loaded, 0 otherwise (readiness checks and worker rounds)."
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "Time to answer a Twilio webhook, by route."
    );
    describe_gauge!(
        WAITING,
        "Callers waiting in each queue's line (refreshed by the worker)."
    );
    describe_histogram!(
        WAIT_SECONDS,
        Unit::Seconds,
        "How long callers waited in line, by queue and how the wait ended."
    );
    describe_counter!(
        WAIT_OUTCOMES,
        "Waits in line by how they ended: answered, abandoned, timeout, exit, full, closed, no_agents, removed."
    );
    describe_histogram!(
        ESTIMATE_ERROR,
        "For answered callers who heard an estimated wait: |first estimate - actual wait| / actual wait, by queue."
    );
    describe_counter!(
        CALLBACKS,
        "Callbacks by queue and event: requested, dialled (a try placed), connected (the customer pressed 1), failed (no try left, or a number Twilio refused), cancelled."
    );
    describe_counter!(
        TWILIO_CALLS,
        "Requests to place a callback's call (POST Calls.json) by outcome: placed, busy (Twilio asked for a later try, or could not be reached), refused, unknown (no answer or a 5xx: it may have been placed)."
    );
    describe_counter!(
        STEP_MATCHES,
        "Calls of a queue with steps (or a number with needs) given an agent, by the step (1, 2, ...) that held when they were."
    );
    describe_histogram!(
        STEP_MATCH_SECONDS,
        Unit::Seconds,
        "From a call's arrival to its agent, by queue and the step that held then."
    );
    describe_counter!(
        LOOKUPS,
        "Lookups ([lookup]) by outcome: answered, timeout, error (no answer, or not 2xx), refused (an answer that cannot be used); all but answered leave the call as it was."
    );
    describe_histogram!(
        LOOKUP_SECONDS,
        Unit::Seconds,
        "How long each lookup took, by outcome."
    );
    describe_counter!(
        STEPS_RELAXED,
        "Waiting calls moved on to a later step, by queue and the step they moved to."
    );
    describe_gauge!(
        LONGEST_WAIT,
        "How long the head of each queue's line has waited (refreshed by the worker)."
    );
    describe_histogram!(
        CONNECT_SECONDS,
        Unit::Seconds,
        "From an agent given to a waiting caller to the REST redirect that connects the caller."
    );
    describe_gauge!(
        SERVICE_LEVEL,
        "Each queue's service level over the last 15 and 60 minutes (window), 0 to 1, as GET /v1/queues computes it; NaN when nothing was answered or abandoned (refreshed by the worker)."
    );
    describe_counter!(
        WITHIN_SERVICE_LEVEL,
        "Waiting callers answered within their queue's service_level_secs."
    );
    describe_histogram!(
        SCRIPT_DURATION,
        Unit::Seconds,
        "Time of one Redis script or read, pool wait included."
    );
}

/// Registers the counters a fresh process would otherwise leave out of
/// `/metrics` until their first event, so `rate()` in alerts and dashboards
/// sees 0 rather than no data.
pub fn register_series(queues: &[crate::config::Queue]) {
    for queue in queues {
        counter!(CALLS, "queue" => queue.name.clone()).increment(0);
        counter!(ROUTED, "queue" => queue.name.clone(), "via" => "queue").increment(0);
        counter!(RESERVATIONS_EXPIRED, "queue" => queue.name.clone()).increment(0);
    }
    for reason in ["redis_timeout", "redis_unavailable", "redis_error"] {
        counter!(ROUTING_FAILURES, "reason" => reason).increment(0);
    }
    counter!(VOICEMAILS).increment(0);
    for outcome in ["answered", "timeout", "error", "refused"] {
        counter!(LOOKUPS, "outcome" => outcome).increment(0);
    }
    for outcome in ["redirected", "call_over", "unknown_call", "failed"] {
        counter!(TWILIO_REDIRECTS, "outcome" => outcome).increment(0);
    }
    for outcome in ["placed", "busy", "refused", "unknown"] {
        counter!(TWILIO_CALLS, "outcome" => outcome).increment(0);
    }
    for queue in queues.iter().filter(|q| !q.steps.is_any()) {
        for step in 1..=queue.steps.all().len() {
            let (name, step) = (queue.name.clone(), step.to_string());
            counter!(STEP_MATCHES, "queue" => name.clone(), "step" => step.clone()).increment(0);
            if step != "1" {
                counter!(STEPS_RELAXED, "queue" => name, "step" => step).increment(0);
            }
        }
    }
    for queue in queues.iter().filter(|q| q.hold.is_some()) {
        gauge!(WAITING, "queue" => queue.name.clone()).set(0.0);
        gauge!(LONGEST_WAIT, "queue" => queue.name.clone()).set(0.0);
        counter!(WITHIN_SERVICE_LEVEL, "queue" => queue.name.clone()).increment(0);
        for outcome in ["answered", "abandoned", "timeout"] {
            counter!(WAIT_OUTCOMES, "queue" => queue.name.clone(), "outcome" => outcome)
                .increment(0);
        }
        // Registered, so the error histogram is exported empty from the start.
        let _ = histogram!(ESTIMATE_ERROR, "queue" => queue.name.clone());
        if queue
            .hold
            .as_ref()
            .is_some_and(|h| h.callback_key.is_some())
        {
            for event in ["requested", "dialled", "connected", "failed", "cancelled"] {
                counter!(CALLBACKS, "queue" => queue.name.clone(), "event" => event).increment(0);
            }
        }
    }
}

pub fn waiting(queue: &str, count: u64, longest: Duration) {
    gauge!(WAITING, "queue" => queue.to_owned()).set(count as f64);
    gauge!(LONGEST_WAIT, "queue" => queue.to_owned()).set(longest.as_secs_f64());
}

/// A queue's service level over `window` ("15m" or "60m"); NaN for none.
pub fn service_level(queue: &str, window: &'static str, pct: Option<f64>) {
    gauge!(SERVICE_LEVEL, "queue" => queue.to_owned(), "window" => window)
        .set(pct.map_or(f64::NAN, |p| p / 100.0));
}

pub fn connected(took: Duration) {
    histogram!(CONNECT_SECONDS).record(took.as_secs_f64());
}

/// One ended wait; `within_service_level` for an answered one.
pub fn wait_ended(queue: &str, outcome: &str, waited: Duration, within_service_level: bool) {
    let (queue, outcome) = (queue.to_owned(), outcome.to_owned());
    counter!(WAIT_OUTCOMES, "queue" => queue.clone(), "outcome" => outcome.clone()).increment(1);
    histogram!(WAIT_SECONDS, "queue" => queue.clone(), "outcome" => outcome)
        .record(waited.as_secs_f64());
    if within_service_level {
        counter!(WITHIN_SERVICE_LEVEL, "queue" => queue).increment(1);
    }
}

/// An answered caller whose first estimated wait was `estimate`, and who
/// waited `waited`.
pub fn estimate_judged(queue: &str, estimate: Duration, waited: Duration) {
    let actual = waited.as_secs_f64().max(1.0);
    histogram!(ESTIMATE_ERROR, "queue" => queue.to_owned())
        .record((estimate.as_secs_f64() - waited.as_secs_f64()).abs() / actual);
}

/// A call with steps was given an agent at `step`, `waited` after it came.
pub fn step_matched(queue: &str, step: u32, waited: Duration) {
    let (queue, step) = (queue.to_owned(), step.to_string());
    counter!(STEP_MATCHES, "queue" => queue.clone(), "step" => step.clone()).increment(1);
    histogram!(STEP_MATCH_SECONDS, "queue" => queue, "step" => step).record(waited.as_secs_f64());
}

/// A lookup ended with `outcome` after `took`.
pub fn lookup(outcome: &'static str, took: Duration) {
    counter!(LOOKUPS, "outcome" => outcome).increment(1);
    histogram!(LOOKUP_SECONDS, "outcome" => outcome).record(took.as_secs_f64());
}

/// A waiting call moved on to `step`.
pub fn step_relaxed(queue: &str, step: u32) {
    counter!(STEPS_RELAXED, "queue" => queue.to_owned(), "step" => step.to_string()).increment(1);
}

pub fn call_received(queue: &str) {
    counter!(CALLS, "queue" => queue.to_owned()).increment(1);
}

pub fn routed(queue: &str, via: &str) {
    counter!(ROUTED, "queue" => queue.to_owned(), "via" => via.to_owned()).increment(1);
}

pub fn fallback(queue: &str, step: &str) {
    counter!(FALLBACKS, "queue" => queue.to_owned(), "step" => step.to_owned()).increment(1);
}

pub fn routing_failure(reason: &'static str) {
    counter!(ROUTING_FAILURES, "reason" => reason).increment(1);
}

pub fn reservation_expired(queue: &str) {
    counter!(RESERVATIONS_EXPIRED, "queue" => queue.to_owned()).increment(1);
}

pub fn agents(queue: &str, state: &'static str, count: u64) {
    gauge!(AGENTS, "queue" => queue.to_owned(), "state" => state).set(count as f64);
}

pub fn redis_up(up: bool) {
    gauge!(REDIS_UP).set(if up { 1.0 } else { 0.0 });
}

/// What a reservation's replica wait came to.
pub fn replica_wait(outcome: &'static str) {
    counter!(REPLICA_WAITS, "outcome" => outcome).increment(1);
}

/// A log line the log thread could not write (see `telemetry`).
pub fn log_line_write_failed() {
    counter!(LOG_LINES_DROPPED, "reason" => "write_failed").increment(1);
}

/// Log lines dropped at a full queue so far (tracing-appender's own count).
pub fn log_lines_dropped_queue_full(total: u64) {
    counter!(LOG_LINES_DROPPED, "reason" => "queue_full").absolute(total);
}

/// The namespace's Redis's memory in use and its maxmemory (0: no limit).
pub fn redis_memory(used: u64, max: u64) {
    gauge!(REDIS_USED_MEMORY).set(used as f64);
    gauge!(REDIS_MAXMEMORY).set(max as f64);
}

/// An event stream opened (+1) or closed (-1).
pub fn event_streams(delta: f64) {
    gauge!(EVENT_STREAMS).increment(delta);
}

pub fn event_stream_dropped(reason: &'static str) {
    counter!(EVENT_STREAMS_DROPPED, "reason" => reason).increment(1);
}

pub fn presence_offline(agents: u64) {
    counter!(PRESENCE_OFFLINE).increment(agents);
}

pub fn voicemail_recorded() {
    counter!(VOICEMAILS).increment(1);
}

/// One `RestClient::redirect` ended: `redirected`, `call_over` or `failed`.
/// A callback of `queue` was requested, dialled, connected, failed or
/// cancelled.
pub fn callback(queue: &str, event: &'static str) {
    counter!(CALLBACKS, "queue" => queue.to_owned(), "event" => event).increment(1);
}

pub fn twilio_call_placed(outcome: &'static str) {
    counter!(TWILIO_CALLS, "outcome" => outcome).increment(1);
}

pub fn twilio_redirect(outcome: &'static str) {
    counter!(TWILIO_REDIRECTS, "outcome" => outcome).increment(1);
}

pub fn record_script(script: &'static str, took: Duration) {
    histogram!(SCRIPT_DURATION, "script" => script).record(took.as_secs_f64());
}

pub fn record_webhook(route: String, took: Duration) {
    histogram!(WEBHOOK_DURATION, "route" => route).record(took.as_secs_f64());
}
