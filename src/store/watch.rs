//! A read-only view of every line and the agents free beside it, taken in one
//! script so it is one instant of Redis's state. No replica reads it: it is how
//! `switchboard simulate --watch-redis` checks invariant 7 (nobody idle beside a
//! waiting caller for longer than a sweep, nobody left in line after hanging up)
//! from outside the servers.

use super::requests::WatchRequest;
use super::{Store, StoreError, scripts, texts};

/// Free agents listed per queue at most: enough to see one idle beside a line.
const FREE_LISTED: usize = 50;

/// Every line at one instant of the Redis clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinesView {
    pub now_ms: i64,
    pub lines: Vec<LineView>,
}

/// One queue's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineView {
    pub queue: String,
    /// The queue's hold round, as published in `hold_queues`.
    pub loop_ms: u64,
    /// CallSids in line, head first.
    pub waiting: Vec<String>,
    /// Agents of the queue free right now (listed only when someone waits).
    pub free: Vec<FreeAgent>,
}

/// An agent free right now, and since when (ms): the same `free_since` seen
/// twice is one uninterrupted stretch of being free.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FreeAgent {
    pub id: String,
    pub free_since: i64,
}

impl Store {
    pub async fn watch_lines(&self) -> Result<LinesView, StoreError> {
        let name = scripts::WATCH_LINES.name;
        let reply = self
            .invoke(
                &scripts::WATCH_LINES,
                self.keys().hold_queues(),
                &WatchRequest {
                    free_listed: FREE_LISTED,
                },
            )
            .await?;
        decode_lines(&texts(name, &reply)?)
            .ok_or_else(|| StoreError::reply(name, format!("{reply:?}")))
    }
}

/// The flat reply (see lua/watch_lines.lua), strictly: `None` unless every
/// count and field is there.
fn decode_lines(items: &[String]) -> Option<LinesView> {
    let mut items = items.iter();
    let number =
        |items: &mut std::slice::Iter<'_, String>| -> Option<usize> { items.next()?.parse().ok() };
    let now_ms = items.next()?.parse().ok()?;
    let queues = number(&mut items)?;
    let mut lines = Vec::with_capacity(queues);
    for _ in 0..queues {
        let queue = items.next()?.clone();
        let loop_ms = items.next()?.parse().ok()?;
        let waiting = number(&mut items)?;
        let waiting = (0..waiting)
            .map(|_| items.next().cloned())
            .collect::<Option<Vec<_>>>()?;
        let free = number(&mut items)?;
        let free = (0..free)
            .map(|_| {
                let (id, since) = items.next()?.split_once('|')?;
                Some(FreeAgent {
                    id: id.to_owned(),
                    free_since: since.parse().ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        lines.push(LineView {
            queue,
            loop_ms,
            waiting,
            free,
        });
    }
    items
        .next()
        .is_none()
        .then_some(LinesView { now_ms, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_reply_decodes_line_by_line() {
        let view = decode_lines(&strings(&[
            "1700", "2", "a", "5000", "2", "CA1", "CA2", "1", "x|1600", "b", "1000", "0", "0",
        ]))
        .unwrap();
        assert_eq!(view.now_ms, 1700);
        assert_eq!(view.lines[0].waiting, ["CA1", "CA2"]);
        assert_eq!(view.lines[0].free[0].id, "x");
        assert_eq!(view.lines[1].loop_ms, 1000);
        assert!(view.lines[1].waiting.is_empty());
    }

    #[test]
    fn a_short_or_long_reply_is_refused() {
        assert!(decode_lines(&strings(&["1700", "1", "a", "5000", "2", "CA1"])).is_none());
        assert!(decode_lines(&strings(&["1700", "0", "extra"])).is_none());
        assert!(decode_lines(&strings(&["1700", "1", "a", "5000", "0", "1", "no-bar"])).is_none());
        assert!(decode_lines(&strings(&["1700", "1", "a", "5000", "0", "1", "x|soon"])).is_none());
    }
}
