//! `/v1/supervisors/{name}/tokens`: the admin issues a person (or a screen) a
//! supervisor or wallboard token, shown once and stored only hashed, and
//! revokes them all. A name is only the label of its tokens: it exists while
//! it holds one, and it is who the audit trail says acted
//! (`by: supervisor:NAME`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agents::{AgentId, rfc3339};
use super::roles::ActingCaller;
use super::tokens::checked_ttl_secs;
use super::{ApiError, ErrorBody};
use crate::agent::is_valid_id;
use crate::app::AppState;
use crate::store::staff::StaffRole;

/// A staff token lives 30 days unless asked otherwise, as an agent's does.
const DEFAULT_TTL_SECS: u64 = 30 * 86_400;

/// What `POST /v1/supervisors/{name}/tokens` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffTokenRequest {
    /// `supervisor` (reads everything, sets agents' states, takes callers out
    /// of a line) or `wallboard` (reads queues, agents, calls and events).
    #[schema(value_type = StaffRoleName)]
    role: String,
    /// How long the token works (default 30 days).
    #[schema(minimum = 60, maximum = 31622400)]
    #[serde(default, deserialize_with = "super::whole_number")]
    ttl_secs: Option<u64>,
}

/// The role of a staff token.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(
    dead_code,
    reason = "only a schema: the handler takes the role as a String, so a wrong one is a 422"
)]
pub enum StaffRoleName {
    Supervisor,
    Wallboard,
}

/// A new supervisor or wallboard token: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffTokenDoc {
    /// `sbst_…` (supervisor) or `sbwt_…` (wallboard): send it as
    /// `Authorization: Bearer <token>`.
    pub token: String,
    pub name: String,
    #[schema(value_type = StaffRoleName)]
    pub role: StaffRole,
    pub expires_at: String,
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    if is_valid_id(name) {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "supervisor name {name:?} must match [A-Za-z0-9._-]{{1,64}} and not be . or .."
        )))
    }
}

/// Issue `name` a supervisor or wallboard token.
#[utoipa::path(post, path = "/v1/supervisors/{name}/tokens", operation_id = "issue_supervisor_token", tag = "supervisors", request_body = StaffTokenRequest,
    params(("name" = AgentId, Path, description = "who the token is for (a person, or a wallboard's place); the audit trail names a supervisor by it")),
    responses(
        (status = 201, description = "the token, shown this once", body = StaffTokenDoc),
        (status = 400, description = "the body is not the expected JSON object", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "the name breaks its pattern, an unknown role, or ttl_secs out of range", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn issue(
    State(state): State<AppState>,
    ActingCaller(caller): ActingCaller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = Json::<StaffTokenRequest>::from_bytes(&body)?.0;
    valid_name(&name)?;
    let role = match body.role.as_str() {
        "supervisor" => StaffRole::Supervisor,
        "wallboard" => StaffRole::Wallboard,
        other => {
            return Err(ApiError::Invalid(format!(
                "role {other:?} must be supervisor or wallboard"
            )));
        }
    };
    let ttl_secs = checked_ttl_secs(body.ttl_secs, DEFAULT_TTL_SECS)?;
    let issued = state
        .engine
        .store()
        .issue_staff_token(&name, role, ttl_secs * 1000, &caller.actor())
        .await?;
    tracing::info!(
        supervisor = name,
        role = role.as_str(),
        ttl_secs,
        "staff token issued"
    );
    let doc = StaffTokenDoc {
        token: issued.token.expose().to_owned(),
        name,
        role,
        expires_at: rfc3339(issued.expires_at_ms),
    };
    Ok(super::tokens::issued_token(doc))
}

/// Revoke every token of `name` at once (open event streams end within 15 s).
#[utoipa::path(delete, path = "/v1/supervisors/{name}/tokens", operation_id = "revoke_supervisor_tokens", tag = "supervisors",
    params(("name" = AgentId, Path, description = "the name the tokens were issued to")),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "that name holds no live token", body = ErrorBody),
        (status = 422, description = "the name breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    ActingCaller(caller): ActingCaller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_name(&name)?;
    let revoked = state
        .engine
        .store()
        .revoke_staff_tokens(&name, &caller.actor())
        .await?;
    if revoked == 0 {
        return Err(ApiError::NotFound(format!(
            "supervisor {name:?} holds no live token"
        )));
    }
    tracing::info!(supervisor = name, revoked, "staff tokens revoked");
    Ok(StatusCode::NO_CONTENT)
}
