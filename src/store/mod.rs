//! Redis: the only shared state. Every change is one script of `lua/`, given its
//! key and one structured argument (`requests`); this module runs them within the
//! Redis deadline and turns replies into types. Callers above see `StoreError`,
//! never redis types.
//!
//! One multiplexed connection per process (`ConnectionManager`), shared by every
//! request: commands from concurrent webhooks are pipelined on it, a dropped
//! connection is re-made in the background, and nothing is sent but the commands
//! themselves. (A pool such as deadpool-redis checks each connection out with a
//! `PING` round trip, which doubled the commands of a webhook; a multiplexed
//! connection needs no pool.)

pub mod agent_work;
pub mod agents;
pub mod alt_lines;
pub mod audit;
pub mod callbacks;
pub mod calls;
pub mod events;
pub mod explain;
pub mod keys;
pub mod lifecycle;
mod link;
mod outage;
pub mod presence;
pub mod requests;
pub mod scripts;
pub mod softphone;
pub mod staff;
pub mod stats;
pub mod tokens;
pub mod watch;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;

pub use agents::{AgentRecord, AgentView, SetStateOutcome};
pub use audit::Actor;
pub use calls::RouteOutcome;
pub use keys::Keys;
pub use lifecycle::{NextStep, Outcome, SettleCode, Settled, SweepResult};
pub use link::Conn;
pub use requests::{AttemptRequest, PlanEntry, RouteRequest};

use crate::metrics;

/// Why Redis could not do what was asked. Each variant is one `reason` label of
/// `switchboard_routing_failures_total`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("no Redis connection: {0}")]
    Unavailable(String),
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from {script}: {detail}")]
    Reply {
        script: &'static str,
        detail: String,
    },
}

impl StoreError {
    /// The `reason` label of `switchboard_routing_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Timeout(_) => "redis_timeout",
            StoreError::Redis(e) if e.is_timeout() => "redis_timeout",
            StoreError::Unavailable(_) => "redis_unavailable",
            StoreError::Redis(e) if e.is_io_error() || e.is_connection_dropped() => {
                "redis_unavailable"
            }
            StoreError::Redis(e) if e.is_connection_refusal() => "redis_unavailable",
            StoreError::Redis(_) => "redis_error",
            StoreError::Reply { .. } => "bad_reply",
        }
    }

    /// Redis may take the same command later: it was not reached, or it
    /// answered that it cannot now (loading its data, failing over, out of
    /// memory under `noeviction`, busy with a script). What redis-rs calls
    /// permanent includes OOM and BUSY, which pass with the outage here.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Timeout(_) | StoreError::Unavailable(_) => true,
            StoreError::Redis(e) => {
                matches!(
                    e.code(),
                    Some(
                        "LOADING"
                            | "READONLY"
                            | "MASTERDOWN"
                            | "CLUSTERDOWN"
                            | "TRYAGAIN"
                            | "OOM"
                            | "BUSY"
                            | "NOREPLICAS"
                    )
                ) || !matches!(e.retry_method(), redis::RetryMethod::NoRetry)
            }
            StoreError::Reply { .. } => false,
        }
    }

    fn reply(script: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Reply {
            script,
            detail: detail.into(),
        }
    }
}

/// Server certificates must chain to the CA of `ca_pem`; no client certificate
/// (managed Redis services authenticate with a password over TLS).
fn trusting(ca_pem: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca_pem.to_vec()),
    }
}

/// The longest a reservation waits for a replica to confirm it (Sentinel and
/// Cluster mode).
pub const REPLICA_WAIT: Duration = Duration::from_millis(50);

/// After no replica confirmed a write in time, how long reservations do not
/// wait for one: a master without a replica (a Cluster without replicas, a
/// replica down) would otherwise cost every call `REPLICA_WAIT`.
pub const NO_REPLICA_BACKOFF: Duration = Duration::from_secs(5);

/// What a replica said of the writes made so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicated {
    /// A replica has them.
    Confirmed,
    /// None confirmed them within `REPLICA_WAIT`.
    NotConfirmed,
    /// Not asked: none confirmed within `NO_REPLICA_BACKOFF`.
    NotAsked,
}

/// What `INFO memory` says of a Redis's memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisMemory {
    pub used: u64,
    /// 0: no limit.
    pub max: u64,
}

impl RedisMemory {
    /// `used_memory` and `maxmemory` of an `INFO memory` reply; `None`
    /// without both.
    fn from_info(info: &redis::InfoDict) -> Option<RedisMemory> {
        Some(RedisMemory {
            used: info.get("used_memory")?,
            max: info.get("maxmemory")?,
        })
    }
}

fn outage_log(target: String) -> Arc<outage::OutageLog> {
    Arc::new(outage::OutageLog::new(target))
}

/// `urls` without their passwords, comma-separated.
fn redacted(urls: &[String]) -> String {
    urls.iter()
        .map(|u| crate::config::RedisUrl::from(u.as_str()).redacted())
        .collect::<Vec<_>>()
        .join(",")
}

/// A handle on one namespace of one Redis, cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: link::Link,
    keys: Keys,
    timeout: Duration,
    /// Until when reservations do not wait for a replica.
    no_replica_until: Arc<Mutex<Option<Instant>>>,
    /// Says when Redis stops answering readiness checks, and when it is back.
    outage: Arc<outage::OutageLog>,
}

impl Store {
    /// Sets up the connection; it is made on the first command, so a server whose
    /// Redis is down still starts.
    pub fn new(redis_url: &str, namespace: &str, timeout: Duration) -> Result<Store, StoreError> {
        Store::with_ca(redis_url, None, namespace, timeout)
    }

    /// As [`Store::new`]; a `rediss://` server's certificate must chain to the
    /// CA of `ca_pem` (default: the system's roots).
    pub fn with_ca(
        redis_url: &str,
        ca_pem: Option<&[u8]>,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        let client = match ca_pem {
            Some(pem) => redis::Client::build_with_tls(redis_url, trusting(pem)),
            None => redis::Client::open(redis_url),
        }
        .map_err(|e| StoreError::Unavailable(format!("bad Redis URL or CA: {e}")))?;
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config(timeout))?;
        Ok(Store {
            conn: link::Link::Direct(conn),
            keys: Keys::new(namespace),
            timeout,
            no_replica_until: Arc::default(),
            outage: outage_log(crate::config::RedisUrl::from(redis_url).redacted()),
        })
    }

    /// To a Redis Cluster through its `seeds`: the namespace's keys share one
    /// slot, so each script goes to that slot's master. `rediss://` seeds'
    /// certificates must chain to `ca_pem` (default: the system's roots).
    pub fn with_cluster(
        seeds: &[String],
        ca_pem: Option<&[u8]>,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            conn: link::Link::cluster(seeds, ca_pem.map(trusting), timeout)?,
            keys: Keys::new(namespace),
            timeout,
            no_replica_until: Arc::default(),
            outage: outage_log(format!("Cluster seeds {}", redacted(seeds))),
        })
    }

    /// Through Sentinels: commands go to the master they name `master`, and
    /// follow it when they fail over; `redis_url` gives the master's user,
    /// password and database (not its address).
    pub fn with_sentinels(
        sentinel_urls: &[String],
        master: &str,
        redis_url: &str,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            conn: link::Link::sentinel(sentinel_urls, master, redis_url, manager_config(timeout))?,
            keys: Keys::new(namespace),
            timeout,
            no_replica_until: Arc::default(),
            outage: outage_log(format!(
                "master {master} of Sentinels {}",
                redacted(sentinel_urls)
            )),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Which Redis this store uses, fit for logs: its URL (or Sentinels, or
    /// Cluster seeds) with any password replaced by `***`.
    pub fn target(&self) -> &str {
        self.outage.target()
    }

    /// [`Store::check_ready`], as the worker and `/readyz` ask it: the result
    /// also sets `switchboard_redis_up`, and an outage is logged when it
    /// starts, with back-off while it lasts, and when it ends.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let ready = self.check_ready().await;
        metrics::redis_up(ready.is_ok());
        self.outage.note(&ready);
        ready
    }

    /// Runs `op` on the shared connection within the Redis deadline, timing it
    /// as `script`.
    async fn with_conn<T, F, Fut>(&self, script: &'static str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(link::Conn) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let started = Instant::now();
        let generation = std::sync::atomic::AtomicU64::new(u64::MAX);
        let run = async {
            let (conn, current) = self.conn.conn().await?;
            generation.store(current, std::sync::atomic::Ordering::Relaxed);
            op(conn).await
        };
        let result = match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        if let Err(e) = &result {
            self.conn
                .failed(e, generation.load(std::sync::atomic::Ordering::Relaxed));
        }
        metrics::record_script(script, started.elapsed());
        result
    }

    /// Invokes a script of `lua/` with `key` as KEYS[1] and `request` (plus the
    /// namespace prefix) as its one JSON argument: one `EVALSHA`.
    async fn invoke<T: Serialize>(
        &self,
        lua: &'static scripts::Lua,
        key: String,
        request: &T,
    ) -> Result<Value, StoreError> {
        let json = serde_json::to_string(&requests::Envelope {
            prefix: self.keys.prefix(),
            events_kept: requests::EVENTS_KEPT,
            audit_kept: requests::AUDIT_KEPT,
            agent_calls_kept: requests::AGENT_CALLS_KEPT,
            agent_calls_ttl_ms: requests::AGENT_CALLS_TTL_MS,
            body: request,
        })
        .map_err(|e| StoreError::reply(lua.name, format!("cannot encode the request: {e}")))?;
        let mut invocation = lua.script.key(key);
        invocation.arg(json);
        self.with_conn(lua.name, |mut conn| async move {
            Ok(invocation.invoke_async(&mut conn).await?)
        })
        .await
    }

    /// The connection itself, for tests that read keys directly (every
    /// change goes through a script).
    #[doc(hidden)]
    pub async fn connection(&self) -> Result<Conn, StoreError> {
        Ok(self.conn.conn().await?.0)
    }

    /// Whether writes are confirmed by a replica before a reservation is
    /// dialled: in Sentinel and Cluster mode, where a failover promotes a
    /// replica.
    pub fn waits_for_replicas(&self) -> bool {
        self.conn.has_failover()
    }

    /// `WAIT 1 <ms>` on the namespace's master: whether a replica has every
    /// write made on this connection so far, waiting up to `REPLICA_WAIT` for
    /// one — unless none did, or WAIT failed, a moment ago. (While the cluster
    /// client reconnects to that master it may send the WAIT to another node,
    /// which then confirms nothing of ours: a rare false "confirmed".)
    pub async fn wait_for_replica(&self) -> Result<Replicated, StoreError> {
        let backoff = || {
            self.no_replica_until
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        if backoff().is_some_and(|until| Instant::now() < until) {
            return Ok(Replicated::NotAsked);
        }
        let ms = u64::try_from(REPLICA_WAIT.as_millis()).unwrap_or(u64::MAX);
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(ms);
        let node = self.keys.agents();
        let confirmed: Result<u64, StoreError> = self
            .with_conn("wait_replica", |mut conn| async move {
                Ok(conn.on_node_of(wait, &node).await?)
            })
            .await;
        // A Redis that refuses WAIT (some managed services do) or cannot
        // answer it is not asked again for every call either.
        let confirmed = confirmed.inspect_err(|_| {
            *backoff() = Some(Instant::now() + NO_REPLICA_BACKOFF);
        })?;
        if confirmed > 0 {
            *backoff() = None;
            Ok(Replicated::Confirmed)
        } else {
            *backoff() = Some(Instant::now() + NO_REPLICA_BACKOFF);
            Ok(Replicated::NotConfirmed)
        }
    }

    /// The namespace's node's memory in use and its `maxmemory` (0: no
    /// limit), from `INFO memory`: a full Redis refuses every write, so
    /// operators are warned before (deploy/prometheus/alerts.yml).
    pub async fn memory(&self) -> Result<RedisMemory, StoreError> {
        let mut info = redis::cmd("INFO");
        info.arg("memory");
        let node = self.keys.agents();
        let info: redis::InfoDict = self
            .with_conn("info_memory", |mut conn| async move {
                Ok(conn.on_node_of(info, &node).await?)
            })
            .await?;
        RedisMemory::from_info(&info)
            .ok_or_else(|| StoreError::reply("info_memory", "no used_memory or maxmemory"))
    }

    /// Loads every script on the namespace's node, so the first call after
    /// start does not pay for it.
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        let node = self.keys.agents();
        let every_node = self
            .with_conn("load_scripts", |mut conn| async move {
                for lua in scripts::all() {
                    let mut load = redis::cmd("SCRIPT");
                    load.arg("LOAD").arg(lua.source.as_str());
                    let _hash: String = conn.on_node_of(load, &node).await?;
                }
                Ok(conn)
            })
            .await?;
        // In a Cluster, on every node too (SCRIPT LOAD is not replicated), so
        // a promoted replica has them: apart, and bounded, so a node hanging
        // elsewhere does not hold up this namespace.
        if let Conn::Cluster(mut every_node) = every_node {
            let timeout = self.timeout;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(timeout, async {
                    for lua in scripts::all() {
                        let _ = lua
                            .script
                            .prepare_invoke()
                            .load_async(&mut every_node)
                            .await;
                    }
                })
                .await;
            });
        }
        Ok(())
    }

    /// The namespace's node (in a Cluster: its slot's master) answers a read
    /// of its keys and has every script loaded; loads them if it has not
    /// (Redis restarted empty), so readiness comes back by itself.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let mut exists = redis::cmd("SCRIPT");
        exists.arg("EXISTS");
        for lua in scripts::all() {
            exists.arg(lua.script.get_hash());
        }
        let node = self.keys.agents();
        let loaded: Vec<bool> = self
            .with_conn("script_exists", |mut conn| async move {
                // A command on a key of the namespace: only the master of its
                // slot answers it (another node redirects there), where the
                // cluster client may send a command for a node elsewhere when
                // that node is down.
                let _: bool = redis::cmd("EXISTS")
                    .arg(&node)
                    .query_async(&mut conn)
                    .await?;
                Ok(conn.on_node_of(exists, &node).await?)
            })
            .await?;
        if loaded.iter().all(|l| *l) {
            Ok(())
        } else {
            self.load_scripts().await
        }
    }

    /// Runs a read-only pipeline (reads need no script: they change nothing).
    async fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        name: &'static str,
        pipe: redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.with_conn(name, |mut conn| async move {
            Ok(pipe.query_async(&mut conn).await?)
        })
        .await
    }
}

/// How the shared connection (re)connects. redis-rs has its own defaults (500
/// ms per response, 1 s to connect); the Redis budget is the one limit, so both
/// take it. A failed connect is retried once, quickly: the next command tries
/// again anyway, and a webhook must answer the emergency TwiML fast while Redis
/// is down.
fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(100))
}

/// Redis `TIME` (seconds, microseconds) in ms: the clock every script uses.
fn redis_ms((secs, micros): (i64, i64)) -> i64 {
    secs * 1000 + micros / 1000
}

/// A reply element as text: scripts answer bulk strings and integers.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A script's array reply as text, or a `Reply` error naming the script.
fn texts(script: &'static str, value: &Value) -> Result<Vec<String>, StoreError> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| text(v).ok_or_else(|| StoreError::reply(script, format!("{v:?}"))))
            .collect(),
        other => Err(StoreError::reply(script, format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_its_own_fields_only() {
        let info = "# Memory\r\nused_memory:1049408\r\nused_memory_human:1.00M\r\nused_memory_rss:7340032\r\nmaxmemory:419430400\r\nmaxmemory_human:400.00M\r\nmaxmemory_policy:noeviction\r\n";
        assert_eq!(
            RedisMemory::from_info(&redis::InfoDict::new(info)),
            Some(RedisMemory {
                used: 1_049_408,
                max: 419_430_400
            })
        );
        assert_eq!(
            RedisMemory::from_info(&redis::InfoDict::new(
                "used_memory_rss:5\r\nmaxmemory:0\r\n"
            )),
            None
        );
    }
}
