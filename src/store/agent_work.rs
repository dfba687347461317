//! What an agent does around its calls, in Redis: the wrap-up (disposition
//! code and note) it gives a call it answered (lua/set_wrap_up.lua), and its
//! last answered calls, a capped list the scripts that end a call write
//! (`log_agent_call` in lua/lib/calls.lua), read here with one `LRANGE`.

use super::requests::{AGENT_CALLS_KEPT, WRAP_UP_WINDOW_MS, WrapUpRequest};
use super::{Store, StoreError, scripts, texts};

/// A call's wrap-up, as stored with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct WrapUp {
    pub code: String,
    pub note: String,
    /// When it was given (Redis clock, ms).
    pub at: i64,
}

/// One entry of an agent's last calls, as `log_agent_call` writes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct AgentCall {
    pub call_sid: String,
    /// The caller's number; `None` when withheld.
    pub from: Option<String>,
    /// The queue the agent took the call through.
    pub queue: String,
    /// When the call came in (ms).
    pub started_at: i64,
    /// When the agent answered (ms); `None` when the answer was never reported
    /// (the call's end was).
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    pub wrap_up: Option<WrapUp>,
}

/// Who may use a disposition code: every queue (`None`), or these.
pub type CodeQueues<'a> = Option<Vec<&'a str>>;

/// What `set_wrap_up.lua` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapUpOutcome {
    /// Stored; `replaced`: the call had one, now gone. `queue`: the one the
    /// agent took the call through.
    Stored { replaced: bool, queue: String },
    /// No record of the call (never here, or over for more than an hour).
    Unknown,
    /// Another agent's call.
    NotYours,
    /// The agent has not answered it (it rings, or went elsewhere).
    NotAnswered,
    /// It ended longer ago than the window allows (ms since it ended).
    TooLate(u64),
    /// The code is not in the list of the queue the call came through.
    BadCode(String),
}

impl Store {
    /// Agent `agent`'s wrap-up of call `sid`: `code` (checked by the caller
    /// against the lists; `queues`: where it is valid) and `note`.
    pub async fn set_wrap_up(
        &self,
        sid: &str,
        agent: &str,
        code: &str,
        note: &str,
        queues: CodeQueues<'_>,
    ) -> Result<WrapUpOutcome, StoreError> {
        let request = WrapUpRequest {
            sid,
            agent,
            code,
            note,
            window_ms: WRAP_UP_WINDOW_MS,
            queues,
        };
        let name = scripts::SET_WRAP_UP.name;
        let reply = self
            .invoke(&scripts::SET_WRAP_UP, self.keys().call(sid), &request)
            .await?;
        let items = texts(name, &reply)?;
        let second = || items.get(1).cloned().unwrap_or_default();
        match items.first().map(String::as_str) {
            Some(code @ ("stored" | "replaced")) => Ok(WrapUpOutcome::Stored {
                replaced: code == "replaced",
                queue: second(),
            }),
            Some("unknown") => Ok(WrapUpOutcome::Unknown),
            Some("not_yours") => Ok(WrapUpOutcome::NotYours),
            Some("not_answered") => Ok(WrapUpOutcome::NotAnswered),
            Some("too_late") => second()
                .parse()
                .map(WrapUpOutcome::TooLate)
                .map_err(|_| StoreError::reply(name, format!("{items:?}"))),
            Some("bad_code") => Ok(WrapUpOutcome::BadCode(second())),
            _ => Err(StoreError::reply(name, format!("{items:?}"))),
        }
    }

    /// Agent `id`'s last answered calls, newest first (at most
    /// `AGENT_CALLS_KEPT`). An entry that cannot be read is left out, logged.
    pub async fn agent_calls(&self, id: &str) -> Result<Vec<AgentCall>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("LRANGE")
            .arg(self.keys().agent_calls(id))
            .arg(0)
            .arg(AGENT_CALLS_KEPT - 1);
        let (entries,): (Vec<String>,) = self.query("agent_calls", pipe).await?;
        Ok(entries
            .iter()
            .filter_map(|json| match serde_json::from_str(json) {
                Ok(call) => Some(call),
                Err(e) => {
                    tracing::error!(agent = id, error = %e, "an unreadable last-call entry: left out");
                    None
                }
            })
            .collect())
    }

    /// Call `sid`'s wrap-up and the agent who gave it (the call's agent), if
    /// one was given and the call's record is still there.
    pub async fn call_wrap_up(&self, sid: &str) -> Result<Option<(String, WrapUp)>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(self.keys().call(sid)).arg(&[
            "agent",
            "wrap_up_code",
            "wrap_up_note",
            "wrap_up_at",
        ]);
        let (fields,): (Vec<Option<String>>,) = self.query("call_wrap_up", pipe).await?;
        let field = |i: usize| fields.get(i).cloned().flatten();
        Ok(field(1).map(|code| {
            (
                field(0).unwrap_or_default(),
                WrapUp {
                    code,
                    note: field(2).unwrap_or_default(),
                    at: field(3).and_then(|v| v.parse().ok()).unwrap_or(0),
                },
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_call_entry_reads_as_the_script_writes_it() {
        let json = r#"{"call_sid":"CA1","queue":"support","started_at":1000,"answered_at":2000,"ended_at":5000,"from":"+15005550001","wrap_up":{"code":"sale","note":"","at":6000}}"#;
        let call: AgentCall = serde_json::from_str(json).unwrap();
        assert_eq!(call.answered_at, Some(2000));
        assert_eq!(call.wrap_up.unwrap().code, "sale");
        let bare = r#"{"call_sid":"CA1","queue":"q","started_at":1,"ended_at":2}"#;
        let call: AgentCall = serde_json::from_str(bare).unwrap();
        assert_eq!(
            (call.from, call.answered_at, call.wrap_up),
            (None, None, None)
        );
    }
}
