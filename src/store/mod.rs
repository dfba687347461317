//! Redis: the only shared state. Every change is one script of `lua/`; this module
//! builds their KEYS and ARGV, bounds every round trip by the Redis deadline, and
//! turns replies into types. Callers above see `StoreError`, never redis types.

pub mod agents;
pub mod calls;
pub mod keys;
pub mod lifecycle;
pub mod scripts;

use std::future::Future;
use std::time::{Duration, Instant};

use deadpool_redis::{Pool, Runtime};
use redis::Value;

pub use agents::{AgentRecord, AgentView, SetStateOutcome};
pub use calls::{RouteOutcome, RouteRequest};
pub use keys::Keys;
pub use lifecycle::{Outcome, Settled, SweepResult};

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
            StoreError::Redis(_) => "redis_error",
            StoreError::Reply { .. } => "bad_reply",
        }
    }

    fn reply(script: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Reply {
            script,
            detail: detail.into(),
        }
    }
}

/// A handle on one namespace of one Redis, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    keys: Keys,
    timeout: Duration,
    /// The configured queues: every script that moves agents between queues gets
    /// all of their keys, so it never has to build a key itself.
    queue_names: Vec<String>,
    queue_keys: Vec<String>,
}

impl Store {
    /// Builds the pool; no connection is made until the first command.
    pub fn new(
        redis_url: &str,
        namespace: &str,
        timeout: Duration,
        queue_names: Vec<String>,
    ) -> Result<Store, StoreError> {
        // redis-rs has its own defaults (500 ms per response, 1 s to connect);
        // the Redis budget is the one limit, so both take it.
        let connection = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout));
        let manager = deadpool_redis::Manager::new_with_config(redis_url, connection)
            .map_err(|e| StoreError::Unavailable(format!("bad Redis URL: {e}")))?;
        let pool = Pool::builder(manager)
            .max_size(64)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot build the Redis pool: {e}")))?;
        let keys = Keys::new(namespace);
        let queue_keys = queue_names.iter().map(|q| keys.avail(q)).collect();
        Ok(Store {
            pool,
            keys,
            timeout,
            queue_names,
            queue_keys,
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Runs `op` on a pooled connection within the Redis deadline (pool wait,
    /// connect and command together), timing it as `script`.
    async fn with_conn<T, F, Fut>(&self, script: &'static str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let started = Instant::now();
        let work = async {
            let conn = self.pool.get().await.map_err(|e| match e {
                deadpool_redis::PoolError::Timeout(_) => StoreError::Timeout(self.timeout),
                deadpool_redis::PoolError::Backend(e) => StoreError::Redis(e),
                other => StoreError::Unavailable(other.to_string()),
            })?;
            op(conn).await
        };
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        metrics::record_script(script, started.elapsed());
        result
    }

    /// Invokes a script of `lua/` with the configured queues' names and keys
    /// placed as `lib/common.lua` expects, after `fixed_keys`.
    async fn invoke(
        &self,
        lua: &'static scripts::Lua,
        fixed_keys: &[String],
        extra_keys: &[String],
        args: &[String],
    ) -> Result<Value, StoreError> {
        let mut invocation = lua.script.prepare_invoke();
        invocation
            .key(fixed_keys)
            .key(&self.queue_keys)
            .key(extra_keys)
            .arg(self.queue_names.len())
            .arg(&self.queue_names)
            .arg(args);
        self.with_conn(lua.name, |mut conn| async move {
            Ok(invocation.invoke_async(&mut conn).await?)
        })
        .await
    }

    /// Invokes a script that moves no agent between queues: just its keys and args.
    async fn invoke_plain(
        &self,
        lua: &'static scripts::Lua,
        keys: &[String],
        args: &[String],
    ) -> Result<Value, StoreError> {
        let mut invocation = lua.script.prepare_invoke();
        invocation.key(keys).arg(args);
        self.with_conn(lua.name, |mut conn| async move {
            Ok(invocation.invoke_async(&mut conn).await?)
        })
        .await
    }

    /// Loads every script, so the first call after start does not pay for it.
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        self.with_conn("load_scripts", |mut conn| async move {
            for lua in scripts::all() {
                lua.script.prepare_invoke().load_async(&mut conn).await?;
            }
            Ok(())
        })
        .await
    }

    /// Redis answers and has every script loaded; loads them if it has not
    /// (Redis restarted empty), so readiness comes back by itself.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let hashes: Vec<String> = scripts::all()
            .iter()
            .map(|lua| lua.script.get_hash().to_owned())
            .collect();
        let loaded: Vec<bool> = self
            .with_conn("script_exists", |mut conn| async move {
                Ok(redis::cmd("SCRIPT")
                    .arg("EXISTS")
                    .arg(&hashes)
                    .query_async(&mut conn)
                    .await?)
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
