//! Agents in Redis: the admin API's writes (one script each) and its reads
//! (plain pipelines), with the hash turned into a typed record and the state an
//! operator sees derived from it and the Redis clock.

use std::collections::HashMap;

use redis::Value;

use super::audit::Actor;
use super::requests::{DeleteAgentRequest, SetStateRequest, UpsertAgentRequest};
use super::{Store, StoreError, scripts, text, texts};
use crate::agent::{AgentSpec, AgentState, SettableState, StateCounts};
use crate::needs::{Skills, decode_skills, encode_skills};

/// Most agents one `GET /v1/agents` page may ask for.
pub const MAX_PAGE: usize = 10_000;

/// An agent's hash, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    pub contact: String,
    pub queues: Vec<String>,
    /// `offline`, `available`, `wrap_up`, `reserved`, `on_call` or `away`.
    pub stored_state: String,
    pub state_since_ms: i64,
    /// When a free agent is next offered a call (its score in the queues).
    pub free_at_ms: Option<i64>,
    pub call_sid: Option<String>,
    pub missed_in_row: u32,
    /// Heartbeats expected every so many seconds; 0: none.
    pub heartbeat_secs: u32,
    /// When the agent last sent a heartbeat or changed its own state.
    pub seen_at_ms: Option<i64>,
    /// Why it is away, when it said (one of the routing file's `away_reasons`).
    pub away_reason: Option<String>,
    pub skills: Skills,
}

/// An agent as the admin API shows it at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub record: AgentRecord,
    pub state: AgentState,
    pub state_since_ms: i64,
    pub available_at_ms: Option<i64>,
}

impl AgentView {
    pub fn in_queue(&self, queue: &str) -> bool {
        self.record.queues.iter().any(|q| q == queue)
    }
}

impl AgentRecord {
    fn from_fields(fields: &HashMap<String, String>) -> Option<AgentRecord> {
        if fields.get("deleted").is_some_and(|d| d == "1") {
            return None;
        }
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<i64>().ok());
        Some(AgentRecord {
            id: fields.get("id")?.clone(),
            name: get("name"),
            contact: get("contact"),
            queues: get("queues")
                .split(',')
                .filter(|q| !q.is_empty())
                .map(str::to_owned)
                .collect(),
            stored_state: get("state"),
            state_since_ms: number("state_since").unwrap_or(0),
            free_at_ms: number("free_at"),
            call_sid: fields.get("call_sid").filter(|s| !s.is_empty()).cloned(),
            missed_in_row: number("missed_in_row").unwrap_or(0).try_into().unwrap_or(0),
            heartbeat_secs: (number("heartbeat_ms").unwrap_or(0) / 1000)
                .try_into()
                .unwrap_or(0),
            seen_at_ms: number("seen_at"),
            away_reason: fields.get("away_reason").filter(|r| !r.is_empty()).cloned(),
            skills: decode_skills(&get("skills")),
        })
    }

    /// The state at `now_ms`: wrap-up ends by itself when its score is reached,
    /// and an agent in no-answer delay reads `available` with `available_at` ahead.
    pub fn view(self, now_ms: i64) -> AgentView {
        let future_free = self.free_at_ms.filter(|at| *at > now_ms);
        let (state, state_since_ms) = match self.stored_state.as_str() {
            "wrap_up" if future_free.is_some() => (AgentState::WrapUp, self.state_since_ms),
            "wrap_up" => (
                AgentState::Available,
                self.free_at_ms.unwrap_or(self.state_since_ms),
            ),
            other => (
                AgentState::parse(other).unwrap_or(AgentState::Offline),
                self.state_since_ms,
            ),
        };
        let available_at_ms = match state {
            AgentState::Available | AgentState::WrapUp => future_free,
            _ => None,
        };
        AgentView {
            record: self,
            state,
            state_since_ms,
            available_at_ms,
        }
    }
}

/// `agent_reply` of lib/common.lua: `{code, now, field, value, ...}`.
fn agent_reply(
    script: &'static str,
    value: &Value,
) -> Result<(String, Option<AgentView>), StoreError> {
    let items = texts(script, value)?;
    let code = items.first().cloned().unwrap_or_default();
    let Some(now) = items.get(1).and_then(|n| n.parse::<i64>().ok()) else {
        return Ok((code, None));
    };
    let fields = pairs(&items[2..]);
    Ok((code, AgentRecord::from_fields(&fields).map(|r| r.view(now))))
}

fn pairs(flat: &[String]) -> HashMap<String, String> {
    flat.chunks_exact(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

/// The call an agent holds, as its console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCall {
    pub call_sid: String,
    /// The caller's number; `None` when withheld.
    pub from: Option<String>,
    /// The queue the agent was taken from.
    pub queue: String,
    /// When it was answered, or else when the agent was reserved for it.
    pub since_ms: i64,
}

/// What `PUT /v1/agents/{id}/state` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetStateOutcome {
    /// Boxed: the view is large beside the other variants.
    Done(Box<AgentView>),
    NotFound,
    /// The agent holds a call (its state given) and `force` was not set.
    Conflict(String),
}

/// One page of agents and where the next begins (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct AgentPage {
    pub agents: Vec<AgentView>,
    pub next_cursor: Option<u64>,
}

impl Store {
    /// Stores a checked agent (`AgentSpec::check`): what `PUT /v1/agents/{id}`
    /// and `agents import` write; `true` when it was created. An agent with
    /// `heartbeat_secs` > 0 that is not heard from for twice that while free
    /// is set offline (lua/expire_presence.lua).
    pub async fn put_agent(
        &self,
        spec: &AgentSpec,
        by: &Actor,
    ) -> Result<(bool, AgentView), StoreError> {
        let request = UpsertAgentRequest {
            id: &spec.id,
            name: &spec.name,
            contact: &spec.contact,
            queues: &spec.queues,
            skills: encode_skills(&spec.skills),
            heartbeat_ms: u64::from(spec.heartbeat_secs) * 1000,
            spare_token: super::calls::new_token(),
            by: by.label(),
        };
        let reply = self
            .invoke(
                &scripts::UPSERT_AGENT,
                self.keys().agent(&spec.id),
                &request,
            )
            .await?;
        match agent_reply(scripts::UPSERT_AGENT.name, &reply)? {
            (code, Some(view)) if code == "created" || code == "updated" => {
                Ok((code == "created", view))
            }
            (code, _) => Err(StoreError::reply(scripts::UPSERT_AGENT.name, code)),
        }
    }

    /// Moves an agent to `state`, as `by` asked; the agent itself asking
    /// (with its token) also counts as a heartbeat.
    pub async fn set_agent_state(
        &self,
        id: &str,
        state: SettableState,
        force: bool,
        by: &Actor,
    ) -> Result<SetStateOutcome, StoreError> {
        self.set_agent_state_with_reason(id, state, None, force, by)
            .await
    }

    /// As `set_agent_state`, with an away reason (`away` only; the caller
    /// checked it against the routing file's list): kept until the next move.
    pub async fn set_agent_state_with_reason(
        &self,
        id: &str,
        state: SettableState,
        reason: Option<&str>,
        force: bool,
        by: &Actor,
    ) -> Result<SetStateOutcome, StoreError> {
        let request = SetStateRequest {
            state: state.as_str(),
            force,
            seen: matches!(by, Actor::Agent(agent) if agent == id),
            spare_token: super::calls::new_token(),
            by: by.label(),
            reason: reason.filter(|_| state == SettableState::Away),
        };
        let reply = self
            .invoke(&scripts::SET_AGENT_STATE, self.keys().agent(id), &request)
            .await?;
        let name = scripts::SET_AGENT_STATE.name;
        match agent_reply(name, &reply)? {
            (code, Some(view)) if code == "ok" => Ok(SetStateOutcome::Done(Box::new(view))),
            (code, _) if code == "not_found" => Ok(SetStateOutcome::NotFound),
            (code, _) if code == "conflict" => {
                let held = texts(name, &reply)?.get(1).cloned().unwrap_or_default();
                Ok(SetStateOutcome::Conflict(held))
            }
            (code, _) => Err(StoreError::reply(name, code)),
        }
    }

    /// `true` when an agent was deleted, `false` when there was none.
    pub async fn delete_agent(&self, id: &str, by: &Actor) -> Result<bool, StoreError> {
        let reply = self
            .invoke(
                &scripts::DELETE_AGENT,
                self.keys().agent(id),
                &DeleteAgentRequest { id, by: by.label() },
            )
            .await?;
        match text(&reply).as_deref() {
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            _ => Err(StoreError::reply(
                scripts::DELETE_AGENT.name,
                format!("{reply:?}"),
            )),
        }
    }

    pub async fn get_agent(&self, id: &str) -> Result<Option<AgentView>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        pipe.hgetall(self.keys().agent(id));
        let (time, fields): ((i64, i64), HashMap<String, String>) =
            self.query("get_agent", pipe).await?;
        let now = super::redis_ms(time);
        Ok(AgentRecord::from_fields(&fields).map(|r| r.view(now)))
    }

    /// Call `call_sid`, as the agent holding it sees it; `None` once its
    /// record is gone.
    pub async fn held_call(&self, call_sid: &str) -> Result<Option<HeldCall>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(self.keys().call(call_sid)).arg(&[
            "caller",
            "agent_queue",
            "status",
            "reserved_at",
            "answered_at",
        ]);
        let (fields,): (Vec<Option<String>>,) = self.query("held_call", pipe).await?;
        let field = |i: usize| fields.get(i).cloned().flatten().filter(|v| !v.is_empty());
        let ms = |i: usize| field(i).and_then(|v| v.parse::<i64>().ok());
        let since_ms = if field(2).as_deref() == Some("on_call") {
            ms(4)
        } else {
            ms(3)
        };
        Ok(field(1).map(|queue| HeldCall {
            call_sid: call_sid.to_owned(),
            from: field(0),
            queue,
            since_ms: since_ms.unwrap_or(0),
        }))
    }

    /// A page of agents from `cursor` (0: the first), about `limit` of them
    /// (SSCAN's COUNT: Redis may give a few more or fewer), sorted by id within
    /// the page. Cost is O(limit), whatever the roster's size.
    pub async fn list_agents(&self, cursor: u64, limit: usize) -> Result<AgentPage, StoreError> {
        let (next, ids): (u64, Vec<String>) = self
            .with_conn("list_agents", |mut conn| {
                let key = self.keys().agents();
                async move {
                    Ok(redis::cmd("SSCAN")
                        .arg(key)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(limit.clamp(1, MAX_PAGE))
                        .query_async(&mut conn)
                        .await?)
                }
            })
            .await?;
        let mut ids = ids;
        ids.sort();
        ids.dedup();
        let agents = self.agents_by_id(&ids).await?;
        Ok(AgentPage {
            agents,
            next_cursor: (next != 0).then_some(next),
        })
    }

    /// The agents of `ids` that exist, in that order, in one round trip.
    async fn agents_by_id(&self, ids: &[String]) -> Result<Vec<AgentView>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        for id in ids {
            pipe.hgetall(self.keys().agent(id));
        }
        let replies: Vec<Value> = self.query("list_agents", pipe).await?;
        let mut replies = replies.into_iter();
        let time: (i64, i64) = match replies.next() {
            Some(v) => redis::from_redis_value(v)
                .map_err(|e| StoreError::reply("list_agents", e.to_string()))?,
            None => return Err(StoreError::reply("list_agents", "no TIME reply")),
        };
        let now = super::redis_ms(time);
        let mut agents = Vec::with_capacity(ids.len());
        for reply in replies {
            let fields: HashMap<String, String> = redis::from_redis_value(reply)
                .map_err(|e| StoreError::reply("list_agents", e.to_string()))?;
            agents.extend(AgentRecord::from_fields(&fields).map(|r| r.view(now)));
        }
        Ok(agents)
    }

    /// Every queue's agents by stored state, from the counts the scripts keep
    /// (`counts`, lua/lib/agents.lua): O(queues × states), whatever the roster.
    pub async fn state_counts(&self) -> Result<HashMap<String, StateCounts>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.hgetall(self.keys().counts());
        let (fields,): (HashMap<String, i64>,) = self.query("state_counts", pipe).await?;
        let mut counts: HashMap<String, StateCounts> = HashMap::new();
        for (field, n) in fields {
            let Some((queue, state)) = field.rsplit_once('|') else {
                continue;
            };
            if let Some(state) = AgentState::parse(state) {
                counts
                    .entry(queue.to_owned())
                    .or_default()
                    .add(state, usize::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// One queue's counts by state, and the first `limit` agents of its line in
    /// offer order (lowest score first: those in wrap-up or no-answer delay
    /// last), in one round trip.
    pub async fn queue_summary(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<(StateCounts, Vec<String>), StoreError> {
        let mut pipe = redis::pipe();
        let fields: Vec<String> = AgentState::ALL
            .iter()
            .map(|s| format!("{queue}|{}", s.as_str()))
            .collect();
        pipe.cmd("HMGET").arg(self.keys().counts()).arg(&fields);
        pipe.zrange(self.keys().avail(queue), 0, limit.max(1) as isize - 1);
        let (numbers, line): (Vec<Option<i64>>, Vec<String>) =
            self.query("queue_summary", pipe).await?;
        let mut counts = StateCounts::default();
        for (state, n) in AgentState::ALL.into_iter().zip(numbers) {
            counts.add(state, n.and_then(|n| usize::try_from(n).ok()).unwrap_or(0));
        }
        Ok((counts, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str, free_at: Option<i64>) -> AgentRecord {
        AgentRecord {
            id: "a".into(),
            name: "A".into(),
            contact: "+15551230001".into(),
            queues: vec!["q".into()],
            stored_state: state.into(),
            state_since_ms: 100,
            free_at_ms: free_at,
            call_sid: None,
            missed_in_row: 0,
            heartbeat_secs: 0,
            seen_at_ms: None,
            away_reason: None,
            skills: Skills::new(),
        }
    }

    #[test]
    fn wrap_up_reads_available_once_its_time_has_come() {
        let during = record("wrap_up", Some(2000)).view(1000);
        assert_eq!(during.state, AgentState::WrapUp);
        assert_eq!(during.available_at_ms, Some(2000));
        let after = record("wrap_up", Some(2000)).view(3000);
        assert_eq!(after.state, AgentState::Available);
        assert_eq!(after.available_at_ms, None);
        assert_eq!(after.state_since_ms, 2000);
    }

    #[test]
    fn no_answer_delay_reads_available_with_a_future_available_at() {
        let view = record("available", Some(5000)).view(1000);
        assert_eq!(view.state, AgentState::Available);
        assert_eq!(view.available_at_ms, Some(5000));
    }
}
