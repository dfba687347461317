//! `/v1/queues`: each queue's agents by state and its offer order, and the
//! recorded voicemail messages.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::agent::AgentState;
use crate::http::AppState;
use crate::store::{AgentView, QueueLine};

#[derive(Debug, Serialize)]
pub struct QueueDoc {
    name: String,
    agents: BTreeMap<&'static str, usize>,
    /// Ids in the order they would be offered calls; those in wrap-up or
    /// no-answer delay last, in the order they come back.
    available: Vec<String>,
}

fn queue_doc(name: &str, agents: &[AgentView], line: Option<&QueueLine>) -> QueueDoc {
    let members: Vec<&AgentView> = agents
        .iter()
        .filter(|a| a.record.queues.iter().any(|q| q == name))
        .collect();
    let mut counts: BTreeMap<&'static str, usize> =
        AgentState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for agent in &members {
        *counts.entry(agent.state.as_str()).or_default() += 1;
    }
    let free = |id: &str| {
        members.iter().any(|a| {
            a.record.id == id && matches!(a.state, AgentState::Available | AgentState::WrapUp)
        })
    };
    let available = line
        .map(|l| {
            l.offer_order
                .iter()
                .filter(|(id, _)| free(id))
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default();
    QueueDoc {
        name: name.to_owned(),
        agents: counts,
        available,
    }
}

pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.engine.store();
    let agents = store.list_agents().await?;
    let lines = store.queue_lines().await?;
    let queues: Vec<QueueDoc> = state
        .engine
        .table()
        .queues()
        .iter()
        .map(|q| queue_doc(&q.name, &agents, lines.get(&q.name)))
        .collect();
    Ok(Json(serde_json::json!({ "queues": queues })))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueDoc>, ApiError> {
    if state.engine.table().queue(&name).is_none() {
        return Err(ApiError::NotFound(format!("no queue {name:?}")));
    }
    let store = state.engine.store();
    let agents = store.list_agents().await?;
    let lines = store.queue_lines().await?;
    Ok(Json(queue_doc(&name, &agents, lines.get(&name))))
}

#[derive(Debug, Deserialize)]
pub struct VoicemailQuery {
    limit: Option<usize>,
}

/// `GET /v1/voicemails?limit=N`: the newest recorded messages (default 100).
pub async fn voicemails(
    State(state): State<AppState>,
    Query(query): Query<VoicemailQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = query
        .limit
        .unwrap_or(100)
        .clamp(1, crate::store::calls::VOICEMAILS_KEPT);
    let messages = state.engine.store().voicemails(limit).await?;
    Ok(Json(serde_json::json!({ "voicemails": messages })))
}
