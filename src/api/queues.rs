//! `/v1/queues`: each queue's agents by state and its offer order, and the
//! recorded voicemail messages.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agents::rfc3339;
use super::{ApiError, ErrorBody};
use crate::agent::StateCounts;
use crate::app::AppState;
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
    /// How many of the last (up to 20) answered waits were answered within the
    /// queue's `service_level_secs`; null for a queue that does not hold
    /// callers.
    service_level: Option<ServiceLevelDoc>,
}

/// Recent answered waits against the queue's service level.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceLevelDoc {
    /// The queue's `service_level_secs`.
    target_secs: u32,
    /// Answered waits looked at (the last 20 at most).
    answered: u32,
    /// Of those, answered within `target_secs`.
    within: u32,
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    queues: Vec<QueueDoc>,
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

async fn queue_doc(state: &AppState, name: &str) -> Result<QueueDoc, ApiError> {
    let store = state.engine.store();
    let (agents, available) = store.queue_summary(name, AVAILABLE_LISTED).await?;
    let (now, line) = store.line(name, AVAILABLE_LISTED).await?;
    let longest_wait_secs = line.first().map_or(0, |head| {
        u64::try_from((now - head.since_ms) / 1000).unwrap_or(0)
    });
    let hold = state
        .engine
        .table()
        .queue(name)
        .and_then(|q| q.hold.clone());
    let service_level = match hold {
        Some(hold) => {
            let waits = store.recent_waits(name).await?;
            let target_ms = u64::from(hold.service_level_secs) * 1000;
            Some(ServiceLevelDoc {
                target_secs: hold.service_level_secs,
                answered: u32::try_from(waits.len()).unwrap_or(u32::MAX),
                within: u32::try_from(waits.iter().filter(|w| **w <= target_ms).count())
                    .unwrap_or(u32::MAX),
            })
        }
        None => None,
    };
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
            })
            .collect(),
        longest_wait_secs,
        service_level,
    })
}

/// Every configured queue.
#[utoipa::path(get, path = "/v1/queues", operation_id = "list_queues", tag = "queues",
    responses(
        (status = 200, description = "every queue of the routing file", body = QueueList),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    let mut queues = Vec::new();
    for queue in state.engine.table().queues() {
        queues.push(queue_doc(&state, &queue.name).await?);
    }
    Ok(Json(QueueList { queues }))
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
    if state.engine.table().queue(&name).is_none() {
        return Err(ApiError::NotFound(format!("no queue {name:?}")));
    }
    Ok(Json(queue_doc(&state, &name).await?))
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
