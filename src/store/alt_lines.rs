//! Lines of free agents kept per alternative a routing file names (issue 21,
//! `lua/lib/skills.lua`): publishing them, and building the lines of those
//! published while agents were already free.

use std::time::Duration;

use super::requests::{BuildAltLinesRequest, PublishAltsRequest, QueueAlts};
use super::{Store, StoreError, scripts};

/// What a publication changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Alternatives no replica had published: their lines start now.
    pub added: u64,
    /// Alternatives nobody published for `stale`: dropped with their lines.
    pub dropped: u64,
}

/// How far one build run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// Free agents read.
    pub read: u64,
    /// Queues whose alternatives are still not ready.
    pub pending: u64,
}

impl Store {
    /// Publishes `queues`' alternatives (refreshing those already there) and
    /// drops every alternative nobody published for `stale`.
    pub async fn publish_alts(
        &self,
        queues: Vec<QueueAlts<'_>>,
        stale: Duration,
    ) -> Result<Published, StoreError> {
        let request = PublishAltsRequest {
            queues,
            stale_ms: u64::try_from(stale.as_millis()).unwrap_or(u64::MAX),
        };
        let reply = self
            .invoke(&scripts::PUBLISH_ALTS, self.keys().alt_queues(), &request)
            .await?;
        let [added, dropped] = two_counts(scripts::PUBLISH_ALTS.name, &reply)?;
        Ok(Published { added, dropped })
    }

    /// Reads up to `max` free agents into the lines of alternatives not yet
    /// ready.
    pub async fn build_alt_lines(&self, max: usize) -> Result<Built, StoreError> {
        let reply = self
            .invoke(
                &scripts::BUILD_ALT_LINES,
                self.keys().alt_queues(),
                &BuildAltLinesRequest { max },
            )
            .await?;
        let [read, pending] = two_counts(scripts::BUILD_ALT_LINES.name, &reply)?;
        Ok(Built { read, pending })
    }
}

fn two_counts(script: &'static str, reply: &redis::Value) -> Result<[u64; 2], StoreError> {
    if let [a, b] = super::texts(script, reply)?.as_slice()
        && let (Ok(a), Ok(b)) = (a.parse(), b.parse())
    {
        return Ok([a, b]);
    }
    Err(StoreError::reply(script, format!("{reply:?}")))
}
