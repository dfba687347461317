//! `/v1/queues/{name}/callbacks`: a queue's live callbacks (docs/callbacks.md),
//! and cancelling one.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};
use crate::app::AppState;
use crate::store::callbacks::{CallbackDoc, Cancelled};

/// Most callbacks one list shows (the oldest first).
const LISTED: usize = 1000;

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackList {
    /// Oldest first (the first 1,000): in line, being dialled, or waiting for
    /// their next try.
    callbacks: Vec<CallbackDoc>,
}

#[utoipa::path(get, path = "/v1/queues/{name}/callbacks", operation_id = "list_callbacks", tag = "queues",
    params(("name" = String, Path, description = "a queue name from the routing file", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 200, description = "the queue's live callbacks", body = CallbackList),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such queue", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<CallbackList>, ApiError> {
    if state.engine.table().queue(&name).is_none() {
        return Err(ApiError::NotFound(format!("no queue {name:?}")));
    }
    let callbacks = state.engine.store().callbacks(&name, LISTED).await?;
    Ok(Json(CallbackList { callbacks }))
}

#[utoipa::path(delete, path = "/v1/queues/{name}/callbacks/{call_sid}", operation_id = "cancel_callback", tag = "queues",
    params(
        ("name" = String, Path, description = "a queue name from the routing file", pattern = r"^[A-Za-z0-9._-]{1,64}$"),
        ("call_sid" = String, Path, description = "the callback's CallSid (the waiting caller's)", pattern = r"^CA[0-9a-fA-F]{32}$"),
    ),
    responses(
        (status = 204, description = "cancelled: its agent, if one was reserved, is free"),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such queue, or no live callback of it with that CallSid", body = ErrorBody),
        (status = 409, description = "a try of it is being connected (the customer answered): cancel after it ends, within a minute", body = ErrorBody),
        (status = 422, description = "the CallSid breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    super::roles::ActingCaller(caller): super::roles::ActingCaller,
    Path((name, call_sid)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    if !crate::twilio::params::is_sid(&call_sid, "CA") {
        return Err(ApiError::Invalid(format!(
            "{call_sid:?} is not a CallSid (CA and 32 hex digits)"
        )));
    }
    if state.engine.table().queue(&name).is_none() {
        return Err(ApiError::NotFound(format!("no queue {name:?}")));
    }
    match state
        .engine
        .cancel_callback(&call_sid, &name, &caller.actor())
        .await?
    {
        Cancelled::Cancelled => {
            tracing::info!(queue = name, call_sid, "callback cancelled");
            state.connect_waiting_soon();
            Ok(axum::http::StatusCode::NO_CONTENT)
        }
        Cancelled::NotFound => Err(ApiError::NotFound(format!(
            "{call_sid} is no live callback of {name:?}"
        ))),
        Cancelled::Connecting => Err(ApiError::Conflict(format!(
            "{call_sid} is being connected now (the customer answered): that try ends within a minute; cancel after it"
        ))),
    }
}
