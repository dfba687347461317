//! Reading the events the scripts append (`emit` in lua/lib/common.lua): the
//! namespace's stream `events`, and a call's own list `call_events:<sid>`.
//! Reads only; no event is written from Rust.

use redis::Value;

use super::{Store, StoreError};

/// One event: its stream id (`<ms>-<seq>`), kind and JSON data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub kind: String,
    pub data: String,
    /// The agent the event is about, from its data, if any.
    pub agent: Option<String>,
}

impl StoredEvent {
    pub(crate) fn new(id: String, kind: String, data: String) -> StoredEvent {
        let agent = serde_json::from_str::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v.get("agent").and_then(|a| a.as_str()).map(str::to_owned));
        StoredEvent {
            id,
            kind,
            data,
            agent,
        }
    }
}

/// A stream id, `<ms>-<seq>`, as two numbers (ordered as Redis orders them).
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Entries of an XRANGE / XREAD reply: `[[id, [field, value, ...]], ...]`.
fn entries(value: Value) -> Result<Vec<StoredEvent>, StoreError> {
    let bad = |what: &str| StoreError::reply("read_events", what.to_owned());
    let Value::Array(items) = value else {
        return Err(bad(&format!("not a list of entries: {value:?}")));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (id, fields): (String, Vec<String>) =
            redis::from_redis_value(item).map_err(|e| bad(&e.to_string()))?;
        let field = |name: &str| {
            fields
                .chunks_exact(2)
                .find(|kv| kv[0] == name)
                .map(|kv| kv[1].clone())
        };
        let (Some(kind), Some(data)) = (field("event"), field("data")) else {
            return Err(bad("an event without its kind or data"));
        };
        out.push(StoredEvent::new(id, kind, data));
    }
    Ok(out)
}

/// The id of the one entry of a `read_newest` reply, `0-0` without one.
fn newest_of(reply: Value) -> Result<String, StoreError> {
    Ok(entries(reply)?
        .pop()
        .map_or_else(|| "0-0".to_owned(), |e| e.id))
}

impl Store {
    /// Adds the read of the newest event to `pipe` (`newest_of` decodes it).
    fn read_newest(&self, pipe: &mut redis::Pipeline) {
        pipe.cmd("XREVRANGE")
            .arg(self.keys().events())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }

    /// The id of the newest event, `0-0` when there is none.
    pub async fn last_event_id(&self) -> Result<String, StoreError> {
        let mut pipe = redis::pipe();
        self.read_newest(&mut pipe);
        let (newest,): (Value,) = self.query("read_events", pipe).await?;
        newest_of(newest)
    }

    /// What a resume after `after` may be sent, read at once: the newest
    /// event's id (`0-0` when there is none) and the newest `window` events
    /// after `after`, oldest first. Bounded work however old `after` is, and
    /// one round trip.
    pub async fn resume_after(
        &self,
        after: &str,
        window: usize,
    ) -> Result<(String, Vec<StoredEvent>), StoreError> {
        let mut pipe = redis::pipe();
        self.read_newest(&mut pipe);
        // The first id after `after`, inclusive: Redis refuses `(` before the
        // largest id there is; after that one there is nothing.
        let first = parse_id(after)
            .and_then(|(ms, seq)| match seq.checked_add(1) {
                Some(seq) => Some((ms, seq)),
                None => Some((ms.checked_add(1)?, 0)),
            })
            .map_or_else(|| "+".to_owned(), |(ms, seq)| format!("{ms}-{seq}"));
        pipe.cmd("XREVRANGE")
            .arg(self.keys().events())
            .arg("+")
            .arg(first)
            .arg("COUNT")
            .arg(window);
        let (newest, found): (Value, Value) = self.query("read_events", pipe).await?;
        let newest = newest_of(newest)?;
        let mut found = entries(found)?;
        found.reverse();
        Ok((newest, found))
    }

    /// Up to `count` events after `after` (exclusive), oldest first.
    pub async fn events_after(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(self.keys().events())
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let (found,): (Value,) = self.query("read_events", pipe).await?;
        entries(found)
    }

    /// Call `call_sid`'s events, oldest first (each `{id, event, data}` as
    /// JSON); empty once its record is gone.
    pub async fn call_events(&self, call_sid: &str) -> Result<Vec<String>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("LRANGE")
            .arg(self.keys().call_events(call_sid))
            .arg(0)
            .arg(-1);
        let (events,): (Vec<String>,) = self.query("read_events", pipe).await?;
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_as_numbers() {
        assert!(parse_id("1700000000000-2") < parse_id("1700000000000-10"));
        assert!(parse_id("999-0") < parse_id("1000-0"));
        assert_eq!(parse_id("12"), None);
        assert_eq!(parse_id("a-1"), None);
    }

    #[test]
    fn an_events_agent_is_read_from_its_data() {
        let e = StoredEvent::new(
            "1-0".into(),
            "agent_state".into(),
            r#"{"agent":"ana"}"#.into(),
        );
        assert_eq!(e.agent.as_deref(), Some("ana"));
        let e = StoredEvent::new(
            "1-0".into(),
            "call_waiting".into(),
            r#"{"queue":"q"}"#.into(),
        );
        assert_eq!(e.agent, None);
    }
}
