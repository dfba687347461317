//! `POST /v1/routing/explain`: which agents a call would reach now, at which
//! step, and what it would be given, without reserving anyone
//! (src/routing/explain.rs).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};
use crate::agent::is_e164;
use crate::app::AppState;
use crate::needs::{Needs, SkillsInput, check_skills};
use crate::routing::explain::{ExplainError, Explanation};

/// Longest wait a question may take: a queue's steps hold at most 16 days.
const MAX_WAITED_SECS: u64 = 30 * 86_400;

/// The call to explain.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    /// The number called (E.164), as Twilio's `To`: its queue, the default
    /// queue for a number no queue lists, and the needs of its `numbers`
    /// entry. Absent: the default queue.
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$")]
    to: Option<String>,
    /// Needs besides the number's, as a lookup or a menu adds them: each
    /// skill at its level or more (names alone: level 1).
    #[schema(value_type = Option<crate::needs::schema::SkillsInput>)]
    needs: Option<SkillsInput>,
    /// How long the call has waited, in seconds: which step holds (absent:
    /// 0, a call arriving now).
    #[schema(minimum = 0, maximum = 2_592_000)]
    #[serde(default, deserialize_with = "super::whole_number")]
    waited_secs: Option<u64>,
}

/// Which agents a call would reach now, at which step
#[utoipa::path(post, path = "/v1/routing/explain", operation_id = "explain_routing", tag = "routing",
    request_body = ExplainBody,
    responses(
        (status = 200, description = "the call's plan, step by step, and what it would be given now", body = Explanation),
        (status = 400, description = "the body is not the expected JSON object", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "a number that is not E.164, a skill that breaks its rule, a wait past 30 days, or needs that contradict a step's", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn explain(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Explanation>, ApiError> {
    // An object only: serde would also read a struct from an array of its
    // fields (`[null, null]`), which the schema does not allow.
    let Json(body) = body?;
    if !body.is_object() {
        return Err(ApiError::BadJson("the body must be a JSON object".into()));
    }
    let body: ExplainBody =
        serde_json::from_value(body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    if let Some(to) = &body.to
        && !is_e164(to)
    {
        return Err(ApiError::Invalid(format!(
            "to {to:?} is not E.164 (+15551230001)"
        )));
    }
    let waited_secs = body.waited_secs.unwrap_or(0);
    if waited_secs > MAX_WAITED_SECS {
        return Err(ApiError::Invalid(format!(
            "waited_secs must be at most {MAX_WAITED_SECS}"
        )));
    }
    let needs = match &body.needs {
        Some(input) => Needs::all_of(&check_skills(input).map_err(ApiError::Invalid)?),
        None => Needs::any(),
    };
    let explained = state
        .engine
        .explain(body.to.as_deref(), &needs, waited_secs * 1000)
        .await
        .map_err(|e| match e {
            ExplainError::Needs(message) => ApiError::Invalid(message),
            ExplainError::Store(e) => ApiError::Store(e),
        })?;
    Ok(Json(explained))
}
