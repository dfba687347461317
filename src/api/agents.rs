//! `/v1/agents`: create, read, list, delete agents and set their state.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::roles::{ActingCaller, Caller};
use super::{ApiError, ErrorBody};
use crate::agent::{AgentSpec, AgentState, SettableState, is_valid_id};
use crate::app::AppState;
use crate::needs::{Skills, SkillsInput};
use crate::store::agents::MAX_PAGE;
use crate::store::{Actor, AgentView, SetStateOutcome};

/// The agent document of SPEC 1.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDoc {
    pub id: String,
    pub name: String,
    pub contact: String,
    pub queues: Vec<String>,
    pub state: AgentState,
    pub state_since: String,
    pub available_at: Option<String>,
    pub call_sid: Option<String>,
    pub missed_in_row: u32,
    /// Heartbeats the agent's console or softphone sends every so many
    /// seconds (`POST /v1/me/heartbeat`); null: none expected.
    pub heartbeat_secs: Option<u32>,
    /// The last heartbeat, or change of state the agent made itself.
    pub last_heartbeat: Option<String>,
    /// Why the agent is away, when a reason was given with `away` (one of the
    /// routing file's `[console] away_reasons`); null otherwise.
    pub away_reason: Option<String>,
    /// Skill name → level (1 to 100); what calls' needs are matched against.
    #[schema(value_type = crate::needs::schema::Skills)]
    pub skills: Skills,
}

/// RFC 3339 (UTC, milliseconds) of a Redis-clock instant.
pub fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl From<AgentView> for AgentDoc {
    fn from(view: AgentView) -> Self {
        let r = view.record;
        AgentDoc {
            id: r.id,
            name: r.name,
            contact: r.contact,
            queues: r.queues,
            state: view.state,
            state_since: rfc3339(view.state_since_ms),
            available_at: view.available_at_ms.map(rfc3339),
            call_sid: r.call_sid,
            missed_in_row: r.missed_in_row,
            heartbeat_secs: (r.heartbeat_secs > 0).then_some(r.heartbeat_secs),
            last_heartbeat: r.seen_at_ms.map(rfc3339),
            away_reason: r.away_reason,
            skills: r.skills,
        }
    }
}

/// An agent id as `is_valid_id` accepts it: `[A-Za-z0-9._-]{1,64}`, but not
/// `.` or `..` (the pattern spells that out without a lookahead, so that every
/// regex dialect reads it alike). `openapi::tests` checks it against the code.
#[derive(ToSchema)]
#[schema(
    min_length = 1,
    max_length = 64,
    pattern = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}|\.(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}|\.[A-Za-z0-9._-]{1,62}))$"
)]
#[expect(
    dead_code,
    reason = "only a schema: handlers take the id as a String and check it with is_valid_id"
)]
pub struct AgentId(String);

/// What `PUT /v1/agents/{id}` takes. Every rule the handler enforces is in the
/// schema, checked against the code by `openapi::tests`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// Display name: 1 to 128 characters, no control characters, not only
    /// whitespace (the whitespace around it is dropped).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// `+15551230001` (E.164), `client:IDENTITY` or `sip:user@host` (user up to
    /// 64 characters, host and parameters up to 190).
    #[schema(
        pattern = r"^(?:\+[1-9][0-9]{1,14}|client:[A-Za-z0-9._@+-]{1,121}|sip:[A-Za-z0-9_.!~*'()&=+$,;?/%:\[\]-]{1,64}@[A-Za-z0-9_!~*'()&=+$,?/%\[\]-][A-Za-z0-9_.!~*'()&=+$,;?/%:\[\]-]{0,189})$"
    )]
    contact: String,
    /// Queue names from the routing file (the served document lists them).
    queues: Vec<String>,
    /// Seconds between the heartbeats the agent's console or softphone sends;
    /// an agent not heard from for twice that while free is set offline.
    /// Absent or 0: no heartbeats expected.
    #[schema(minimum = 0, maximum = 86400)]
    #[serde(default, deserialize_with = "super::whole_number")]
    heartbeat_secs: Option<u32>,
    /// Skill levels by name (`{"es": 3, "billing": 5}`, levels 1 to 100), or
    /// names alone (`["es", "billing"]`, level 1 each); names are a lowercase
    /// letter, then lowercase letters, digits or `_`, at most 32. At most 64.
    /// Absent: none. Taken into account from the agent's next offer.
    #[serde(default)]
    #[schema(value_type = Option<crate::needs::schema::SkillsInput>)]
    skills: Option<SkillsInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    agents: Vec<AgentDoc>,
    /// The `cursor` of the next page; null on the last page.
    #[schema(pattern = r"^[0-9]{1,19}$")]
    next_cursor: Option<String>,
}

pub(super) fn valid_id(id: &str) -> Result<(), ApiError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "agent id {id:?} must match [A-Za-z0-9._-]{{1,64}} and not be . or .."
        )))
    }
}

pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no agent {id:?}"))
}

/// Create or update an agent; a new agent starts `offline`.
#[utoipa::path(put, path = "/v1/agents/{id}", operation_id = "put_agent", tag = "agents", request_body = AgentBody,
    params(("id" = AgentId, Path, description = "the agent id")),
    responses(
        (status = 201, description = "created", body = AgentDoc, links(
            ("get" = (operation_id = "get_agent", parameters(("id" = "$response.body#/id")))),
            ("set_state" = (operation_id = "set_agent_state", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_agent", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 200, description = "updated", body = AgentDoc, links(
            ("get" = (operation_id = "get_agent", parameters(("id" = "$response.body#/id")))),
            ("set_state" = (operation_id = "set_agent_state", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_agent", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "the body is not the expected JSON object", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "a value breaks its rule: id, name or contact pattern, a queue not in the routing file, or heartbeat_secs out of range", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn upsert(
    State(state): State<AppState>,
    ActingCaller(caller): ActingCaller,
    Path(id): Path<String>,
    body: Result<Json<AgentBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let spec = AgentSpec::check(
        state.engine.table(),
        &id,
        &body.name,
        &body.contact,
        &body.queues,
        body.heartbeat_secs.map(i64::from),
        body.skills.as_ref(),
    )
    .map_err(|errors| ApiError::Invalid(errors.first.to_string()))?;
    let (created, view) = state
        .engine
        .store()
        .put_agent(&spec, &caller.actor())
        .await?;
    tracing::info!(agent = id, created, "agent saved");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AgentDoc::from(view))).into_response())
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{id}", operation_id = "get_agent", tag = "agents",
    params(("id" = AgentId, Path, description = "the agent id")),
    responses(
        (status = 200, description = "the agent", body = AgentDoc),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody),
        (status = 422, description = "the id breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AgentDoc>, ApiError> {
    valid_id(&id)?;
    let view = state.engine.store().get_agent(&id).await?;
    view.map(|v| Json(v.into())).ok_or_else(|| not_found(&id))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Where this page starts: the previous page's `next_cursor` (absent: the
    /// first page).
    #[param(pattern = r"^[0-9]{1,19}$", nullable = false)]
    cursor: Option<String>,
    /// About how many agents a page holds (default 1000).
    #[param(minimum = 1, maximum = 10000, nullable = false)]
    limit: Option<usize>,
}

/// Every agent, a page at a time (`next_cursor` is null on the last page); each
/// page sorted by id. Paging walks Redis's set with SSCAN: an agent added or
/// removed meanwhile may be missed or seen twice, and a page may hold a few more
/// or fewer than `limit` (Redis 7.2+ and Valkey give a roster of up to 128
/// agents, kept as one compact list, in one page).
#[utoipa::path(get, path = "/v1/agents", operation_id = "list_agents", tag = "agents", params(ListQuery),
    responses(
        (status = 200, description = "a page of agents", body = AgentList),
        (status = 400, description = "the query string is not the expected one (limit not a whole number)", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 422, description = "cursor or limit out of its range", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<AgentList>, ApiError> {
    let limit = query.limit.unwrap_or(1000);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::Invalid(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let cursor = match query.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .parse::<u64>()
            .map_err(|_| ApiError::Invalid(format!("cursor {c:?} is not a next_cursor")))?,
    };
    let page = state.engine.store().list_agents(cursor, limit).await?;
    Ok(Json(AgentList {
        agents: page.agents.into_iter().map(AgentDoc::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// Delete an agent: no new call; a call in progress ends normally.
#[utoipa::path(delete, path = "/v1/agents/{id}", operation_id = "delete_agent", tag = "agents",
    params(("id" = AgentId, Path, description = "the agent id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody),
        (status = 422, description = "the id breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    ActingCaller(caller): ActingCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_id(&id)?;
    if state
        .engine
        .store()
        .delete_agent(&id, &caller.actor())
        .await?
    {
        tracing::info!(agent = id, "agent deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// What `PUT /v1/agents/{id}/state` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateBody {
    /// `available`, `away` or `offline`.
    // A string, not a `SettableState`, so that any other state is a 422 (a bad
    // value), not a 400 (a body of the wrong shape).
    #[schema(value_type = SettableState)]
    state: String,
    /// Move an agent that holds a call (to recover one known to be free);
    /// the admin token only.
    #[serde(default)]
    force: bool,
    /// With `away` only: why, one of the routing file's `[console]
    /// away_reasons`. Absent or null: none.
    #[serde(default)]
    reason: Option<String>,
}

/// Set an agent `available`, `away` or `offline` (`offline` signs it out);
/// 409 for one holding a call unless `force` (admin token only).
/// Recorded with who asked (`by`) as an `agent_state` event.
#[utoipa::path(put, path = "/v1/agents/{id}/state", operation_id = "set_agent_state", tag = "agents", request_body = StateBody,
    params(("id" = AgentId, Path, description = "the agent id")),
    responses(
        (status = 200, description = "the agent in its new state", body = AgentDoc),
        (status = 400, description = "the body is not the expected JSON object", body = ErrorBody),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody),
        (status = 403, description = "a token whose role may not set states (wallboard), or `force` with a supervisor token", body = ErrorBody),
        (status = 409, description = "the agent holds a call (reserved or on_call) and `force` is not set", body = ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "the id breaks its pattern, a state that cannot be set, or a reason not in the routing file's away_reasons", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn set_state(
    State(state): State<AppState>,
    ActingCaller(caller): ActingCaller,
    Path(id): Path<String>,
    body: Result<Json<StateBody>, JsonRejection>,
) -> Result<Json<AgentDoc>, ApiError> {
    let Json(body) = body?;
    valid_id(&id)?;
    let target = settable(&body.state)?;
    // Forcing an agent off a call it may really be on is a repair, not a
    // supervisor's everyday move: left to the admin.
    if body.force && caller != Caller::Admin {
        return Err(ApiError::Forbidden(
            "\"force\" takes the admin token".into(),
        ));
    }
    let reason = super::agent_work::checked_reason(&state, target, body.reason.as_deref())?;
    apply_state(&state, &id, target, reason, body.force, &caller.actor())
        .await
        .map(Json)
}

/// `state` as a state an agent can be set to, or 422.
pub(super) fn settable(state: &str) -> Result<SettableState, ApiError> {
    SettableState::parse(state).ok_or_else(|| {
        ApiError::Invalid(format!(
            "state {state:?} must be one of available, away, offline"
        ))
    })
}

/// Moves agent `id` to `target` as `by` asked (the agent itself: also a
/// heartbeat), with an away `reason` already checked: the agent document, 404,
/// or 409 for one holding a call unless `force`.
pub(super) async fn apply_state(
    state: &AppState,
    id: &str,
    target: SettableState,
    reason: Option<&str>,
    force: bool,
    by: &Actor,
) -> Result<AgentDoc, ApiError> {
    match state
        .engine
        .store()
        .set_agent_state_with_reason(id, target, reason, force, by)
        .await?
    {
        SetStateOutcome::Done(view) => {
            state.connect_waiting_soon();
            tracing::info!(
                agent = id,
                state = target.as_str(),
                reason,
                force,
                by = by.label(),
                "agent state set"
            );
            Ok((*view).into())
        }
        SetStateOutcome::NotFound => Err(not_found(id)),
        SetStateOutcome::Conflict(held) if matches!(by, Actor::Agent(_)) => {
            Err(ApiError::Conflict(format!(
                "you are {held}: your state changes when the call ends"
            )))
        }
        SetStateOutcome::Conflict(held) => Err(ApiError::Conflict(format!(
            "agent {id:?} is {held}; set \"force\": true to override"
        ))),
    }
}
