//! `GET /v1/audit`: the newest changes made through the API, each the event
//! it emitted with who asked for it (`by`). The scripts keep the list
//! (lua/lib/common.lua `emit`), capped at `AUDIT_KEPT`.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::events::CallEvent;
use super::{ApiError, ErrorBody};
use crate::app::AppState;
use crate::store::requests::AUDIT_KEPT;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// How many entries, newest first (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    limit: Option<usize>,
}

/// The audit trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// Each an event as the stream sent it (`id`, `event`, `data`); `data.by`
    /// is who asked: `admin`, `supervisor:NAME`, `agent:ID` or `import`.
    events: Vec<CallEvent>,
}

/// The newest changes made through the API, with who made them.
#[utoipa::path(get, path = "/v1/audit", operation_id = "get_audit", tag = "events", params(AuditQuery),
    responses(
        (status = 200, description = "the newest entries (the last 1,000 are kept)", body = AuditList),
        (status = 400, description = "the query string is not the expected one (limit not a whole number)", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 422, description = "limit out of its range", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=AUDIT_KEPT).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be 1 to {AUDIT_KEPT}"
        )));
    }
    let stored = state.engine.store().audit(limit).await?;
    let mut events = Vec::with_capacity(stored.len());
    for json in stored {
        match serde_json::from_str::<CallEvent>(&json) {
            Ok(event) => events.push(event),
            Err(e) => tracing::error!(error = %e, "an unreadable audit entry: left out"),
        }
    }
    Ok(Json(AuditList { events }))
}
