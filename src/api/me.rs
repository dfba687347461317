//! `/v1/me`: what an agent's console or softphone does with the agent's own
//! token (`Authorization: Bearer sbat_…`): read itself and the call it holds,
//! set itself available or away, and say it is still there. An agent token
//! reaches only its own agent, and nothing else of the API.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agents::{AgentDoc, apply_state, not_found, rfc3339, settable};
use super::{ApiError, ErrorBody, bearer_token};
use crate::app::AppState;
use crate::config::console::ConsoleLists;
use crate::store::agents::HeldCall;

/// The agent whose token a request carries. Refused (401): no token, one
/// that is unknown, expired, revoked or of another namespace, the admin
/// token. (A request that puts a token in its URL was refused before, for
/// every route of `/v1`: see `refuse_token_in_url`.)
pub struct AgentCaller(pub String);

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers);
        if token.is_empty() {
            return Err(ApiError::Unauthorized);
        }
        match state.engine.store().agent_of_token(token).await? {
            // Not `listener::prove`: an agent token is a credential that
            // leaks, and one that proved connections could hold the share
            // kept for Twilio's.
            Some(agent) => Ok(AgentCaller(agent)),
            None => Err(ApiError::Unauthorized),
        }
    }
}

/// The call an agent holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDoc {
    pub call_sid: String,
    /// The caller's number; null when withheld.
    pub from: Option<String>,
    /// The queue the call reached the agent through.
    pub queue: String,
    /// When the agent answered it, or, while it rings, when it was offered.
    pub since: String,
    /// The codes its wrap-up may take (`PUT /v1/me/calls/{call_sid}/wrap-up`;
    /// the queue's `dispositions`, else `[console]`'s); empty: none.
    pub dispositions: Vec<String>,
}

impl CallDoc {
    fn new(call: HeldCall, lists: &ConsoleLists) -> Self {
        CallDoc {
            dispositions: lists.dispositions_of(&call.queue).to_vec(),
            call_sid: call.call_sid,
            from: call.from,
            queue: call.queue,
            since: rfc3339(call.since_ms),
        }
    }
}

/// The agent document, and the call the agent holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeDoc {
    #[serde(flatten)]
    pub agent: AgentDoc,
    /// Null while the agent holds no call.
    pub call: Option<CallDoc>,
    /// The reasons `away` may be given with (the routing file's `[console]
    /// away_reasons`); empty: none.
    pub away_reasons: Vec<String>,
}

/// What `PUT /v1/me/state` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeStateBody {
    /// `available`, `away` or `offline`.
    #[schema(value_type = crate::agent::SettableState)]
    state: String,
    /// With `away` only: why, one of the routing file's `[console]
    /// away_reasons`; shown as the agent's `away_reason` until its next
    /// change of state. Absent or null: none.
    #[serde(default)]
    reason: Option<String>,
}

/// The agent of the token, and the call it holds.
#[utoipa::path(get, path = "/v1/me", operation_id = "get_me", tag = "me",
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "the agent and its call", body = MeDoc),
        (status = 401, description = "no agent token, or one that is unknown, expired or revoked (also the admin token, and a token in the URL)", body = ErrorBody),
        (status = 404, description = "the agent was deleted", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AgentCaller(id): AgentCaller,
) -> Result<Json<MeDoc>, ApiError> {
    let store = state.engine.store();
    let view = store.get_agent(&id).await?.ok_or_else(|| not_found(&id))?;
    let lists = &state.engine.table().console;
    let call = match &view.record.call_sid {
        Some(sid) => store
            .held_call(sid)
            .await?
            .map(|call| CallDoc::new(call, lists)),
        None => None,
    };
    Ok(Json(MeDoc {
        agent: view.into(),
        call,
        away_reasons: lists.away_reasons.clone(),
    }))
}

/// Set yourself `available`, `away` (with a `reason` of the configured list,
/// if you like) or `offline` (409 while you hold a call); it also counts as a
/// heartbeat.
#[utoipa::path(put, path = "/v1/me/state", operation_id = "set_my_state", tag = "me", request_body = MeStateBody,
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "the agent in its new state", body = AgentDoc),
        (status = 400, description = "the body is not the expected JSON object", body = ErrorBody),
        (status = 401, description = "no agent token, or one that is unknown, expired or revoked (also the admin token, and a token in the URL)", body = ErrorBody),
        (status = 404, description = "the agent was deleted", body = ErrorBody),
        (status = 409, description = "the agent holds a call (reserved or on_call)", body = ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "a state that cannot be set, or a reason not in the routing file's away_reasons", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn set_state(
    State(state): State<AppState>,
    AgentCaller(id): AgentCaller,
    body: Result<Json<MeStateBody>, JsonRejection>,
) -> Result<Json<AgentDoc>, ApiError> {
    let Json(body) = body?;
    let target = settable(&body.state)?;
    let by = crate::store::Actor::Agent(id.clone());
    let reason = super::agent_work::checked_reason(&state, target, body.reason.as_deref())?;
    apply_state(&state, &id, target, reason, false, &by)
        .await
        .map(Json)
}

/// Say you are still there: an agent with `heartbeat_secs` that is not heard
/// from for twice that while free is set offline.
#[utoipa::path(post, path = "/v1/me/heartbeat", operation_id = "heartbeat", tag = "me",
    security(("agent_token" = [])),
    responses(
        (status = 204, description = "heard"),
        (status = 401, description = "no agent token, or one that is unknown, expired or revoked (also the admin token, and a token in the URL)", body = ErrorBody),
        (status = 404, description = "the agent was deleted", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn heartbeat(
    State(state): State<AppState>,
    AgentCaller(id): AgentCaller,
) -> Result<StatusCode, ApiError> {
    if state.engine.store().heartbeat(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}
