//! An agent's work around its calls: the away reason it may give with `away`
//! (checked here against the routing file's `[console] away_reasons`), the
//! wrap-up of a call it answered (`PUT /v1/me/calls/{call_sid}/wrap-up`: a
//! disposition code of the lists, a short note), and its last answered calls
//! (`GET /v1/me/calls`, and `GET /v1/agents/{id}/calls` for admins). Every rule
//! about the lists is applied here, from the routing table; what depends on the
//! call (whose it is, when it ended, its queue) by lua/set_wrap_up.lua.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agents::{not_found, rfc3339, valid_id};
use super::me::AgentCaller;
use super::{ApiError, ErrorBody};
use crate::agent::SettableState;
use crate::app::AppState;
use crate::config::console::ConsoleLists;
use crate::store::agent_work::{AgentCall, WrapUp, WrapUpOutcome};
use crate::store::requests::WRAP_UP_WINDOW_MS;

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// `reason` checked for a move to `target`: one of the routing file's
/// `away_reasons` (422 otherwise; the served OpenAPI document lists them). It
/// is kept with `away` only: with another state the agent has no reason to
/// keep, and it is dropped. None is always allowed.
pub(super) fn checked_reason<'a>(
    state: &AppState,
    target: SettableState,
    reason: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    let reasons = &state.engine.table().console.away_reasons;
    if reasons.iter().any(|r| r == reason) {
        Ok((target == SettableState::Away).then_some(reason))
    } else if reasons.is_empty() {
        Err(ApiError::Invalid(
            "no away reasons are configured ([console] away_reasons)".into(),
        ))
    } else {
        Err(ApiError::Invalid(format!(
            "reason {reason:?} must be one of {}",
            reasons.join(", ")
        )))
    }
}

/// What `PUT /v1/me/calls/{call_sid}/wrap-up` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapUpBody {
    /// A disposition code of the routing file: the `dispositions` of the
    /// queue the call came through, else of `[console]`.
    #[schema(min_length = 1, max_length = 64)]
    code: String,
    /// Free text, up to 500 characters, no control characters (no line
    /// breaks either); absent: empty.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    #[serde(default)]
    note: String,
}

/// A wrap-up, as stored with its call.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapUpDoc {
    pub code: String,
    pub note: String,
    /// When it was given (the last time, if it was changed).
    pub at: String,
}

impl From<WrapUp> for WrapUpDoc {
    fn from(w: WrapUp) -> Self {
        WrapUpDoc {
            code: w.code,
            note: w.note,
            at: rfc3339(w.at),
        }
    }
}

/// The answer of `PUT /v1/me/calls/{call_sid}/wrap-up`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapUpResult {
    pub call_sid: String,
    /// The queue the agent took the call through (whose codes applied).
    pub queue: String,
    pub code: String,
    pub note: String,
    /// True when it replaced a wrap-up given before (which is gone).
    pub replaced: bool,
}

/// A call's wrap-up in its history (`GET /v1/calls/{call_sid}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CallWrapUpDoc {
    /// The agent who answered the call and gave it.
    pub agent: String,
    #[serde(flatten)]
    pub wrap_up: WrapUpDoc,
}

/// One of an agent's last calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentCallDoc {
    pub call_sid: String,
    /// The caller's number; null when withheld.
    pub from: Option<String>,
    /// The queue the agent took the call through.
    pub queue: String,
    /// When the call came in.
    pub started: String,
    /// When the agent answered; null when Twilio reported the call's end but
    /// not its answer.
    pub answered: Option<String>,
    pub ended: String,
    /// From answer to end, whole seconds; 0 without `answered`.
    pub talk_secs: u64,
    /// Null until the agent gives one.
    pub wrap_up: Option<WrapUpDoc>,
    /// Until when the agent may give or change the wrap-up (30 minutes after
    /// the call ended).
    pub wrap_up_until: String,
    /// The codes its wrap-up may take (the queue's `dispositions`, else
    /// `[console]`'s); empty: none can be given.
    pub dispositions: Vec<String>,
}

impl AgentCallDoc {
    fn new(c: AgentCall, lists: &ConsoleLists) -> Self {
        let talk_ms = c.answered_at.map_or(0, |a| c.ended_at.saturating_sub(a));
        AgentCallDoc {
            dispositions: lists.dispositions_of(&c.queue).to_vec(),
            wrap_up_until: rfc3339(c.ended_at.saturating_add(WRAP_UP_WINDOW_MS as i64)),
            call_sid: c.call_sid,
            from: c.from,
            queue: c.queue,
            started: rfc3339(c.started_at),
            answered: c.answered_at.map(rfc3339),
            ended: rfc3339(c.ended_at),
            talk_secs: u64::try_from(talk_ms / 1000).unwrap_or(0),
            wrap_up: c.wrap_up.map(WrapUpDoc::from),
        }
    }
}

/// An agent's last answered calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentCallList {
    /// Newest first, at most 20.
    pub calls: Vec<AgentCallDoc>,
}

impl AgentCallList {
    fn new(calls: Vec<AgentCall>, state: &AppState) -> Self {
        let lists = &state.engine.table().console;
        AgentCallList {
            calls: calls
                .into_iter()
                .map(|c| AgentCallDoc::new(c, lists))
                .collect(),
        }
    }
}

fn valid_call_sid(call_sid: &str) -> Result<(), ApiError> {
    if crate::twilio::params::is_sid(call_sid, "CA") {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "{call_sid:?} is not a CallSid (CA and 32 hex digits)"
        )))
    }
}

/// Give (or change) the wrap-up of a call you answered: a disposition code and
/// a note. Allowed while the call lasts and up to 30 minutes after it ended;
/// given again, it replaces the one before (`replaced` says so). It is kept
/// with the call, shown in `GET /v1/calls/{call_sid}`, your last calls, and
/// sent as a `wrap_up` event.
#[utoipa::path(put, path = "/v1/me/calls/{call_sid}/wrap-up", operation_id = "set_my_wrap_up", tag = "me",
    request_body = WrapUpBody,
    security(("agent_token" = [])),
    params(("call_sid" = String, Path, description = "the call's CallSid", pattern = r"^CA[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "stored", body = WrapUpResult),
        (status = 400, description = "the body is not the expected JSON object", body = ErrorBody),
        (status = 401, description = "no agent token, or one that is unknown, expired or revoked (also the admin token, and a token in the URL)", body = ErrorBody),
        (status = 404, description = "no such call of yours (unknown, another agent's, or its record is gone)", body = ErrorBody),
        (status = 409, description = "you have not answered the call, or it ended more than 30 minutes ago", body = ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "the CallSid breaks its pattern, a code not in the list of the call's queue, or a note too long or with control characters", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn set_my_wrap_up(
    State(state): State<AppState>,
    AgentCaller(id): AgentCaller,
    Path(call_sid): Path<String>,
    body: Result<Json<WrapUpBody>, JsonRejection>,
) -> Result<Json<WrapUpResult>, ApiError> {
    let Json(body) = body?;
    valid_call_sid(&call_sid)?;
    if body.note.chars().count() > MAX_NOTE_CHARS || body.note.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "note must be at most {MAX_NOTE_CHARS} characters, without control characters"
        )));
    }
    let table = state.engine.table();
    let lists = &table.console;
    if !lists.all_dispositions().contains(&body.code) {
        return Err(ApiError::Invalid(if lists.all_dispositions().is_empty() {
            "no disposition codes are configured ([console] dispositions)".to_owned()
        } else {
            format!("code {:?} is not a disposition code", body.code)
        }));
    }
    let names: Vec<&str> = table.queues().iter().map(|q| q.name.as_str()).collect();
    let queues = lists.queues_allowing(&body.code, &names);
    let outcome = state
        .engine
        .store()
        .set_wrap_up(&call_sid, &id, &body.code, &body.note, queues)
        .await?;
    match outcome {
        WrapUpOutcome::Stored { replaced, queue } => {
            tracing::info!(agent = id, call_sid, replaced, "wrap-up given");
            Ok(Json(WrapUpResult {
                call_sid,
                queue,
                code: body.code,
                note: body.note,
                replaced,
            }))
        }
        WrapUpOutcome::Unknown | WrapUpOutcome::NotYours => {
            Err(ApiError::NotFound(format!("no call {call_sid} of yours")))
        }
        WrapUpOutcome::NotAnswered => Err(ApiError::Conflict(format!(
            "you have not answered call {call_sid}"
        ))),
        WrapUpOutcome::TooLate(ms) => Err(ApiError::Conflict(format!(
            "call {call_sid} ended {} minutes ago: a wrap-up is taken up to {} minutes after",
            ms / 60_000,
            WRAP_UP_WINDOW_MS / 60_000
        ))),
        WrapUpOutcome::BadCode(queue) => Err(ApiError::Invalid(format!(
            "code {:?} is not one of queue {queue:?}'s dispositions: {}",
            body.code,
            lists.dispositions_of(&queue).join(", ")
        ))),
    }
}

/// Your last answered calls, newest first (at most 20), with their wrap-ups.
#[utoipa::path(get, path = "/v1/me/calls", operation_id = "get_my_calls", tag = "me",
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "the agent's last calls", body = AgentCallList),
        (status = 401, description = "no agent token, or one that is unknown, expired or revoked (also the admin token, and a token in the URL)", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn my_calls(
    State(state): State<AppState>,
    AgentCaller(id): AgentCaller,
) -> Result<Json<AgentCallList>, ApiError> {
    let calls = state.engine.store().agent_calls(&id).await?;
    Ok(Json(AgentCallList::new(calls, &state)))
}

/// An agent's last answered calls, newest first (at most 20), with their
/// wrap-ups.
#[utoipa::path(get, path = "/v1/agents/{id}/calls", operation_id = "get_agent_calls", tag = "agents",
    params(("id" = super::agents::AgentId, Path, description = "the agent id")),
    responses(
        (status = 200, description = "the agent's last calls", body = AgentCallList),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody),
        (status = 422, description = "the id breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn agent_calls(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AgentCallList>, ApiError> {
    valid_id(&id)?;
    let store = state.engine.store();
    if store.get_agent(&id).await?.is_none() {
        return Err(not_found(&id));
    }
    let calls = store.agent_calls(&id).await?;
    Ok(Json(AgentCallList::new(calls, &state)))
}
