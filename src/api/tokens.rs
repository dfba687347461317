//! `/v1/agents/{id}/tokens`: admins issue an agent its token (shown once,
//! stored only hashed) and revoke them all.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agents::{AgentId, not_found, rfc3339, valid_id};
use super::roles::ActingCaller;
use super::{ApiError, ErrorBody};
use crate::app::AppState;

/// A token lives 30 days unless asked otherwise.
const DEFAULT_TTL_SECS: u64 = 30 * 86_400;
const MIN_TTL_SECS: u64 = 60;
/// At most a year: a token is a password that can be stolen.
const MAX_TTL_SECS: u64 = 366 * 86_400;

/// What `POST /v1/agents/{id}/tokens` takes (the body may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// How long the token works (default 30 days).
    #[schema(minimum = 60, maximum = 31622400)]
    #[serde(default, deserialize_with = "super::whole_number")]
    ttl_secs: Option<u64>,
}

/// A new agent token: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDoc {
    /// `sbat_…`: send it as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
}

/// Issue agent `id` a token for `/v1/me` and `/v1/events` (its own events).
#[utoipa::path(post, path = "/v1/agents/{id}/tokens", operation_id = "issue_agent_token", tag = "agents", request_body(content = TokenRequest, description = "optional"),
    params(("id" = AgentId, Path, description = "the agent id")),
    responses(
        (status = 201, description = "the token, shown this once", body = TokenDoc),
        (status = 400, description = "the body is not the expected JSON object", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "the id breaks its pattern, or ttl_secs out of range", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn issue(
    State(state): State<AppState>,
    ActingCaller(caller): ActingCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // No body, or an empty one whatever its Content-Type (`curl -d ''`, a
    // client that always says application/json): the defaults. Anything else
    // is read as JSON, even under curl's form type, rather than ignored.
    let body = if body.trim_ascii().is_empty() {
        TokenRequest::default()
    } else {
        Json::<TokenRequest>::from_bytes(&body)?.0
    };
    valid_id(&id)?;
    let ttl_secs = checked_ttl_secs(body.ttl_secs, DEFAULT_TTL_SECS)?;
    let issued = state
        .engine
        .store()
        .issue_token(&id, ttl_secs * 1000, &caller.actor())
        .await?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(agent = id, ttl_secs, "agent token issued");
    let doc = TokenDoc {
        token: issued.token.expose().to_owned(),
        expires_at: rfc3339(issued.expires_at_ms),
    };
    Ok(issued_token(doc))
}

/// A token's asked-for lifetime (`default` when not given), or 422 outside
/// `MIN_TTL_SECS ..= MAX_TTL_SECS`.
pub(super) fn checked_ttl_secs(asked: Option<u64>, default: u64) -> Result<u64, ApiError> {
    let ttl_secs = asked.unwrap_or(default);
    if (MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl_secs) {
        Ok(ttl_secs)
    } else {
        Err(ApiError::Invalid(format!(
            "ttl_secs must be {MIN_TTL_SECS} to {MAX_TTL_SECS}"
        )))
    }
}

/// 201 with a freshly issued token: `no-store`, so no cache keeps the secret.
pub(super) fn issued_token(doc: impl Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(doc),
    )
        .into_response()
}

/// Revoke every token of agent `id` at once.
#[utoipa::path(delete, path = "/v1/agents/{id}/tokens", operation_id = "revoke_agent_tokens", tag = "agents",
    params(("id" = AgentId, Path, description = "the agent id")),
    responses(
        (status = 204, description = "revoked (also when it had none)"),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody),
        (status = 422, description = "the id breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    ActingCaller(caller): ActingCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_id(&id)?;
    let revoked = state
        .engine
        .store()
        .revoke_tokens(&id, &caller.actor())
        .await?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(agent = id, revoked, "agent tokens revoked");
    Ok(StatusCode::NO_CONTENT)
}
