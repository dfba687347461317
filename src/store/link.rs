//! The one connection a process keeps to Redis: multiplexed, and reconnected by
//! redis's `ConnectionManager` by itself. Either to the one Redis of
//! `SWITCHBOARD_REDIS_URL`, or to whichever Redis the Sentinels name master
//! (`SWITCHBOARD_REDIS_SENTINELS` + `SWITCHBOARD_REDIS_SENTINEL_MASTER`). After
//! a failover the old master is unreachable, or back as a read-only replica, so
//! a failure of either kind forgets it and the next command asks the Sentinels
//! again: a failover is followed without a restart.

use std::sync::{Arc, Mutex};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

use super::StoreError;

#[derive(Clone)]
pub(super) enum Link {
    Direct(ConnectionManager),
    Sentinel(Arc<SentinelLink>),
}

pub(super) struct SentinelLink {
    /// Asked one at a time: a failover seen by many requests asks once.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    master: Mutex<Option<ConnectionManager>>,
    config: ConnectionManagerConfig,
}

impl Link {
    /// Through the Sentinels at `sentinel_urls`, to the master they name
    /// `master_name`; `redis_url` gives what the master itself needs (user,
    /// password, database), not where it is.
    pub(super) fn sentinel(
        sentinel_urls: &[String],
        master_name: &str,
        redis_url: &str,
        config: ConnectionManagerConfig,
    ) -> Result<Link, StoreError> {
        let bad = |e: redis::RedisError| StoreError::Unavailable(format!("Sentinel settings: {e}"));
        let master_info =
            redis::IntoConnectionInfo::into_connection_info(redis_url).map_err(bad)?;
        let node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(master_info.redis_settings().clone());
        let client = SentinelClient::build(
            sentinel_urls.to_vec(),
            master_name,
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(bad)?;
        Ok(Link::Sentinel(Arc::new(SentinelLink {
            sentinels: tokio::sync::Mutex::new(client),
            master: Mutex::new(None),
            config,
        })))
    }

    pub(super) async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        match self {
            Link::Direct(conn) => Ok(conn.clone()),
            Link::Sentinel(link) => link.master().await,
        }
    }

    /// After a command failed with `error`: a Sentinel link forgets a master
    /// that is gone or no longer master, so the next command asks again.
    pub(super) fn failed(&self, error: &StoreError) {
        if let Link::Sentinel(link) = self
            && master_may_have_moved(error)
        {
            *link.lock() = None;
        }
    }
}

impl SentinelLink {
    async fn master(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(conn) = self.lock().clone() {
            return Ok(conn);
        }
        let mut sentinels = self.sentinels.lock().await;
        // Another request may have asked while this one waited.
        if let Some(conn) = self.lock().clone() {
            return Ok(conn);
        }
        let client = sentinels
            .async_get_client()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no master from the Sentinels: {e}")))?;
        let conn = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        tracing::info!("Redis master found through the Sentinels");
        *self.lock() = Some(conn.clone());
        Ok(conn)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ConnectionManager>> {
        self.master.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A failure that a failover explains: no answer, no connection, or a
/// refusal to write (the old master came back as a replica).
fn master_may_have_moved(error: &StoreError) -> bool {
    match error {
        StoreError::Timeout(_) | StoreError::Unavailable(_) => true,
        StoreError::Redis(e) => {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
                || e.to_string().contains("READONLY")
        }
        StoreError::Reply { .. } => false,
    }
}
