//! `/v1/queues`: each queue's agents by state, its offer order, its line and
//! figures (service level windows, today's tiles, the last hour's trend; one
//! Redis read for every queue, src/stats.rs), and the recorded voicemail
//! messages.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agents::rfc3339;
use super::{ApiError, ErrorBody};
use crate::agent::StateCounts;
use crate::app::AppState;
use crate::config::Queue;
use crate::config::targets::Targets;
use crate::stats::{self, Figures, ServiceLevelDoc, Sums, TodayDoc, TrendPoint};
use crate::store::requests::VOICEMAILS_KEPT;

/// A queue: its agents by state and its offer order.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDoc {
    name: String,
    agents: StateCounts,
    /// Ids in the order they would be offered calls; those in wrap-up or
    /// no-answer delay last, in the order they come back. At most the first
    /// 1,000 (`agents` counts them all).
    available: Vec<String>,
    /// Callers waiting in line, head first (the first 1,000); empty for a queue
    /// without `[queues.hold]`.
    waiting: Vec<WaitingDoc>,
    /// How long the head of the line has waited; 0 with nobody waiting.
    longest_wait_secs: u64,
    /// Answered within the queue's `service_level_secs` over the last 15
    /// minutes, 60 minutes and today (docs/console.md says what counts).
    service_level: ServiceLevelDoc,
    /// Today's tiles, from 00:00 in the queue's time zone.
    today: TodayDoc,
    /// The last 60 minutes, one point a minute, oldest first.
    trend: Vec<TrendPoint>,
    /// The colour thresholds of the queue's tiles (`[queues.targets]`).
    targets: Targets,
}

/// Every queue together.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsDoc {
    /// Callers waiting now, in every queue.
    waiting: u64,
    /// The longest any caller waiting now has waited.
    longest_wait_secs: u64,
    /// Counts of every queue added up (each queue's today from its own local
    /// day's start); `target_secs` is null.
    service_level: ServiceLevelDoc,
    today: TodayDoc,
    /// `waiting` is the sum of the queues' peaks of each minute.
    trend: Vec<TrendPoint>,
}

/// A caller waiting in line.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingDoc {
    call_sid: String,
    /// The caller's number (`From`), or "" when withheld.
    from: String,
    /// When it joined the line (RFC 3339).
    since: String,
    /// 1 for the head of the line.
    position: u32,
    /// Its priority in line (a menu's or a lookup's): callers with one are
    /// served first, the highest first; 0 for none.
    priority: u8,
    /// What is left of the last estimated wait the caller heard (the
    /// estimate less the time since); null before one was made (nobody
    /// signed in, or too little known yet).
    estimated_wait_secs: Option<u64>,
    /// A callback keeping the caller's place: the caller hung up and is
    /// called back when an agent is free (docs/callbacks.md).
    callback: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    queues: Vec<QueueDoc>,
    totals: TotalsDoc,
}

/// Recorded messages, newest first: call_sid, recording_sid, recording_url,
/// duration_secs, from, to, queue, received_at (ms).
#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailList {
    voicemails: Vec<serde_json::Value>,
}

/// Most agent ids a queue document lists in `available`: the head of the line,
/// so the document costs the same whatever the roster's size.
pub const AVAILABLE_LISTED: usize = 1000;

async fn queue_doc(state: &AppState, name: &str, figures: Figures) -> Result<QueueDoc, ApiError> {
    let store = state.engine.store();
    let (agents, available) = store.queue_summary(name, AVAILABLE_LISTED).await?;
    let (now, line) = store.line(name, AVAILABLE_LISTED).await?;
    // The head is the first served, not always the first come (priorities).
    let longest_wait_secs = line
        .iter()
        .map(|w| w.since_ms)
        .min()
        .map_or(0, |since| u64::try_from((now - since) / 1000).unwrap_or(0));
    let targets = state
        .engine
        .table()
        .queue(name)
        .map(|q| q.stats.targets)
        .unwrap_or_default();
    Ok(QueueDoc {
        name: name.to_owned(),
        agents,
        available,
        waiting: line
            .into_iter()
            .map(|w| WaitingDoc {
                call_sid: w.call_sid,
                from: w.from,
                since: rfc3339(w.since_ms),
                position: w.position,
                priority: w.priority,
                estimated_wait_secs: w.estimated_wait_ms.map(|ms| ms.div_ceil(1000)),
                callback: w.callback,
            })
            .collect(),
        longest_wait_secs,
        service_level: figures.service_level,
        today: figures.today,
        trend: figures.trend,
        targets,
    })
}

/// The figures of `queues` (one Redis read for all of them), each with its
/// sums for the totals.
async fn figures_of(
    state: &AppState,
    queues: &[&Queue],
) -> Result<(i64, Vec<(Figures, Sums)>), ApiError> {
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    let (now, buckets) = state.engine.store().queue_stats(&names).await?;
    let figures = queues
        .iter()
        .zip(&buckets)
        .map(|(q, b)| stats::figures(b, now, &q.stats.timezone, q.service_level_secs()))
        .collect();
    Ok((now, figures))
}

/// Every configured queue.
#[utoipa::path(get, path = "/v1/queues", operation_id = "list_queues", tag = "queues",
    responses(
        (status = 200, description = "every queue of the routing file", body = QueueList),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    let table = state.engine.table();
    let configured: Vec<&Queue> = table.queues().iter().collect();
    let (now, figures) = figures_of(&state, &configured).await?;
    let holding: Vec<&str> = configured
        .iter()
        .filter(|q| q.hold.is_some())
        .map(|q| q.name.as_str())
        .collect();
    let counts = state.engine.store().waiting_counts(&holding).await?;
    let mut queues = Vec::new();
    let mut sums = Vec::new();
    for (queue, (figures, sum)) in configured.iter().zip(figures) {
        queues.push(queue_doc(&state, &queue.name, figures).await?);
        sums.push(sum);
    }
    let totals = stats::totals(&sums, now);
    Ok(Json(QueueList {
        queues,
        totals: TotalsDoc {
            waiting: counts.iter().map(|(n, _)| n).sum(),
            longest_wait_secs: counts.iter().map(|(_, ms)| ms / 1000).max().unwrap_or(0),
            service_level: totals.service_level,
            today: totals.today,
            trend: totals.trend,
        },
    }))
}

/// One queue.
#[utoipa::path(get, path = "/v1/queues/{name}", operation_id = "get_queue", tag = "queues",
    // The served document lists the routing file's queue names as an enum
    // (`openapi::document`).
    params(("name" = String, Path, description = "a queue name from the routing file")),
    responses(
        (status = 200, description = "the queue", body = QueueDoc),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such queue", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueDoc>, ApiError> {
    let table = state.engine.table();
    let Some(queue) = table.queue(&name) else {
        return Err(ApiError::NotFound(format!("no queue {name:?}")));
    };
    let (_, figures) = figures_of(&state, &[queue]).await?;
    let figures = figures.into_iter().next().map_or_else(
        || stats::figures(&Default::default(), 0, &queue.stats.timezone, 0).0,
        |(f, _)| f,
    );
    Ok(Json(queue_doc(&state, &name, figures).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VoicemailQuery {
    /// How many messages, newest first (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    limit: Option<usize>,
}

/// The newest recorded voicemail messages.
#[utoipa::path(get, path = "/v1/voicemails", operation_id = "list_voicemails", tag = "voicemails", params(VoicemailQuery),
    responses(
        (status = 200, description = "the newest messages", body = VoicemailList),
        (status = 400, description = "the query string is not the expected one (limit not a whole number)", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 422, description = "limit out of its range", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn voicemails(
    State(state): State<AppState>,
    Query(query): Query<VoicemailQuery>,
) -> Result<Json<VoicemailList>, ApiError> {
    // Refused rather than clamped: the document states the range, and a
    // request outside it is a mistake worth hearing about.
    let limit = query.limit.unwrap_or(100);
    if !(1..=VOICEMAILS_KEPT).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be 1 to {VOICEMAILS_KEPT}"
        )));
    }
    let messages = state.engine.store().voicemails(limit).await?;
    Ok(Json(VoicemailList {
        voicemails: messages,
    }))
}

/// Take a caller out of a queue's line: its next wait fetch answers the first
/// step of the queue's fallback chain that is not a queue (as when
/// `max_wait_secs` runs out; wait outcome `removed`). Recorded with who asked
/// (`by`) as a `fallback` event (reason `removed`) in the call's history.
#[utoipa::path(delete, path = "/v1/queues/{name}/waiting/{call_sid}", operation_id = "remove_waiting", tag = "queues",
    params(
        ("name" = String, Path, description = "a queue name from the routing file", pattern = r"^[A-Za-z0-9._-]{1,64}$"),
        ("call_sid" = String, Path, description = "the waiting call's CallSid", pattern = r"^CA[0-9a-fA-F]{32}$"),
    ),
    responses(
        (status = 204, description = "taken out of the line"),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such queue, or that call is not waiting in it", body = ErrorBody),
        (status = 422, description = "the CallSid breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn remove_waiting(
    State(state): State<AppState>,
    super::roles::ActingCaller(caller): super::roles::ActingCaller,
    Path((name, call_sid)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    if !crate::twilio::params::is_sid(&call_sid, "CA") {
        return Err(ApiError::Invalid(format!(
            "{call_sid:?} is not a CallSid (CA and 32 hex digits)"
        )));
    }
    let table = state.engine.table();
    let Some(queue) = table.queue(&name) else {
        return Err(ApiError::NotFound(format!("no queue {name:?}")));
    };
    let step = table.plan(queue).terminal.to_string();
    if state
        .engine
        .store()
        .remove_waiting(&call_sid, &name, step, &caller.actor())
        .await?
    {
        tracing::info!(queue = name, call_sid, "caller taken out of the line");
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "{call_sid} is not waiting in {name:?}"
        )))
    }
}
