//! The queues' figures in Redis: one `HGETALL` of each queue's bounded
//! `stats:<queue>` hash and one `TIME`, in one pipeline (src/stats.rs turns
//! them into windows), and the worker's sample of waiting callers.

use super::requests::SampleRequest;
use super::{Store, StoreError, redis_ms, scripts, text};
use crate::stats::Buckets;

impl Store {
    /// Redis' clock (ms) and the buckets of each of `queues`, in order.
    pub async fn queue_stats(&self, queues: &[&str]) -> Result<(i64, Vec<Buckets>), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        for queue in queues {
            pipe.hgetall(self.keys().stats(queue));
        }
        let replies: Vec<redis::Value> = self.query("queue_stats", pipe).await?;
        let bad = |e: String| StoreError::reply("queue_stats", e);
        let mut replies = replies.into_iter();
        let time: (i64, i64) = match replies.next() {
            Some(v) => redis::from_redis_value(v).map_err(|e| bad(e.to_string()))?,
            None => return Err(bad("no TIME reply".into())),
        };
        let buckets = replies
            .map(|v| {
                let fields: Vec<(String, String)> =
                    redis::from_redis_value(v).map_err(|e| bad(e.to_string()))?;
                Buckets::parse(&fields).map_err(|e| bad(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((redis_ms(time), buckets))
    }

    /// Records how many callers wait in each holding queue now, as its
    /// current minute's peak; returns how many queues had any.
    pub async fn sample_waiting(&self) -> Result<u64, StoreError> {
        let name = scripts::SAMPLE_WAITING.name;
        let reply = self
            .invoke(
                &scripts::SAMPLE_WAITING,
                self.keys().hold_queues(),
                &SampleRequest {},
            )
            .await?;
        text(&reply)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::reply(name, format!("{reply:?}")))
    }
}
