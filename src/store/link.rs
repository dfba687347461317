//! The one connection a process keeps to Redis: multiplexed, and reconnected by
//! redis's `ConnectionManager` by itself. Either to the one Redis of
//! `SWITCHBOARD_REDIS_URL`, or to whichever Redis the Sentinels name master
//! (`SWITCHBOARD_REDIS_SENTINELS` + `SWITCHBOARD_REDIS_SENTINEL_MASTER`). After
//! a failover the old master is unreachable, or back as a read-only replica, so
//! a failure of either kind forgets it and the next command asks the Sentinels
//! again: a failover is followed without a restart. Or to a Redis Cluster
//! (`SWITCHBOARD_REDIS_CLUSTER`): redis's cluster client sends each script to
//! the master of its key's slot (a namespace is one slot) and follows slot
//! moves and failovers itself; what is not about a key (SCRIPT, WAIT) is sent
//! to that master too (`Conn::on_node_of`).

use std::sync::{Arc, Mutex};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

use super::StoreError;

#[derive(Clone)]
pub(super) enum Link {
    Direct(ConnectionManager),
    Sentinel(Arc<SentinelLink>),
    Cluster(Arc<ClusterLink>),
}

/// One connection of either kind, as commands see it (public for tests that
/// read keys directly).
#[doc(hidden)]
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Runs `cmd` on the node that holds `key`: the one Redis, or the master
    /// of `key`'s slot (while the cluster client reconnects to that master, it
    /// may send it to another node). The cluster client would send SCRIPT and
    /// WAIT to every master, so one master down elsewhere would fail a
    /// namespace whose own slot is served.
    pub(super) async fn on_node_of<T: redis::FromRedisValue>(
        &mut self,
        cmd: redis::Cmd,
        key: &str,
    ) -> redis::RedisResult<T> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let node = Route::with_key(key, SlotAddr::Master);
                let reply = c
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node)),
                    )
                    .await?;
                Ok(T::from_redis_value(reply)?)
            }
        }
    }
}

/// A Cluster: connected on first use (a server whose Redis is down still
/// starts), then kept; the cluster client reconnects to nodes by itself.
pub(super) struct ClusterLink {
    client: ClusterClient,
    /// Set once; a failed first connect is tried again by the next command.
    conn: tokio::sync::OnceCell<ClusterConnection>,
}

pub(super) struct SentinelLink {
    /// Asked one at a time; a request that waited uses what the one before
    /// it found.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    master: Mutex<Master>,
    config: ConnectionManagerConfig,
}

/// The master's connection, numbered: a failure on an older connection does
/// not drop a newer one. After the Sentinels could not name a master, requests
/// fail at once for a moment instead of each asking again.
#[derive(Default)]
struct Master {
    conn: Option<ConnectionManager>,
    generation: u64,
    unanswered_until: Option<std::time::Instant>,
}

/// How long a failed question to the Sentinels is not asked again.
const ASK_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

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
            master: Mutex::new(Master::default()),
            config,
        })))
    }

    /// To a Cluster, from its seed nodes' URLs (`rediss://`: over TLS,
    /// trusting `certificates`' CA or the system's roots).
    pub(super) fn cluster(
        seeds: &[String],
        certificates: Option<redis::TlsCertificates>,
        timeout: std::time::Duration,
    ) -> Result<Link, StoreError> {
        let mut builder = ClusterClientBuilder::new(seeds.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout);
        if let Some(certificates) = certificates {
            builder = builder.certs(certificates);
        }
        let client = builder
            .build()
            .map_err(|e| StoreError::Unavailable(format!("Cluster settings: {e}")))?;
        Ok(Link::Cluster(Arc::new(ClusterLink {
            client,
            conn: tokio::sync::OnceCell::new(),
        })))
    }

    /// The connection, and its generation (for `failed`).
    pub(super) async fn conn(&self) -> Result<(Conn, u64), StoreError> {
        match self {
            Link::Direct(conn) => Ok((Conn::Single(conn.clone()), 0)),
            Link::Sentinel(link) => link.master().await.map(|(c, g)| (Conn::Single(c), g)),
            Link::Cluster(link) => {
                let conn = link
                    .conn
                    .get_or_try_init(|| link.client.get_async_connection())
                    .await?;
                Ok((Conn::Cluster(conn.clone()), 0))
            }
        }
    }

    /// Whether a failover can promote a replica: Sentinel and Cluster.
    pub(super) fn has_failover(&self) -> bool {
        matches!(self, Link::Sentinel(_) | Link::Cluster(_))
    }

    /// After a command on connection `generation` failed with `error`: a
    /// Sentinel link forgets that master if it is gone or no longer master, so
    /// the next command asks again.
    pub(super) fn failed(&self, error: &StoreError, generation: u64) {
        if let Link::Sentinel(link) = self
            && master_may_have_moved(error)
        {
            let mut master = link.lock();
            if master.generation == generation {
                master.conn = None;
            }
        }
    }
}

impl SentinelLink {
    async fn master(&self) -> Result<(ConnectionManager, u64), StoreError> {
        let known = || -> Result<Option<(ConnectionManager, u64)>, StoreError> {
            let master = self.lock();
            if let Some(conn) = &master.conn {
                return Ok(Some((conn.clone(), master.generation)));
            }
            match master.unanswered_until {
                Some(until) if std::time::Instant::now() < until => Err(StoreError::Unavailable(
                    "the Sentinels named no master a moment ago".into(),
                )),
                _ => Ok(None),
            }
        };
        if let Some(found) = known()? {
            return Ok(found);
        }
        let mut sentinels = self.sentinels.lock().await;
        // Another request may have asked while this one waited.
        if let Some(found) = known()? {
            return Ok(found);
        }
        let client = match sentinels.async_get_client().await {
            Ok(client) => client,
            Err(e) => {
                self.lock().unanswered_until = Some(std::time::Instant::now() + ASK_AGAIN_AFTER);
                return Err(StoreError::Unavailable(format!(
                    "no master from the Sentinels: {e}"
                )));
            }
        };
        let conn = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        tracing::info!("Redis master found through the Sentinels");
        let mut master = self.lock();
        master.generation += 1;
        master.conn = Some(conn.clone());
        master.unanswered_until = None;
        Ok((conn, master.generation))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Master> {
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
                || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        }
        StoreError::Reply { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_refusal_means_the_master_moved_and_a_script_error_does_not() {
        let read_only = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        assert!(master_may_have_moved(&StoreError::Redis(read_only)));
        let script = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "ERR user_script:1: bad",
        ));
        assert!(!master_may_have_moved(&StoreError::Redis(script)));
        assert!(master_may_have_moved(&StoreError::Timeout(
            std::time::Duration::from_secs(1)
        )));
    }
}
