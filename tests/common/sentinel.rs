//! A Redis master, one replica and three Sentinels watching them, all on free
//! loopback ports, started by the test and stopped by PID when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::redis_server::{RedisServer, free_port};

/// The name the Sentinels know the master by.
pub const MASTER_NAME: &str = "switchboard";

pub struct SentinelSet {
    pub master: RedisServer,
    pub replica: RedisServer,
    sentinels: Vec<Child>,
    /// `redis://127.0.0.1:<port>` of each Sentinel.
    pub urls: Vec<String>,
    dir: std::path::PathBuf,
}

impl SentinelSet {
    /// Starts them and waits until the replica is in sync and every Sentinel
    /// knows it and the other Sentinels (a failover needs all of that).
    pub fn start() -> SentinelSet {
        // A replica's first sync would wait 5 s for others to join it.
        let master =
            RedisServer::start_with_args(vec!["--repl-diskless-sync-delay".into(), "0".into()])
                .unwrap_or_else(|e| panic!("these tests need a real Redis: {e}"));
        let replica = RedisServer::start_with_args(vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port().to_string(),
        ])
        .expect("start the replica");
        let dir = std::env::temp_dir().join(format!(
            "sb-sentinel-{}-{}",
            std::process::id(),
            master.port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sentinels = Vec::new();
        let mut urls = Vec::new();
        for i in 0..3 {
            let port = free_port().unwrap();
            // Sentinel rewrites its file as it learns: one each.
            let conf = dir.join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    dir = dir.display(),
                    master = master.port()
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("redis-server --sentinel ({e}): install it with `sudo apt-get install redis-server` (Debian's includes Sentinel)")
                });
            sentinels.push(child);
            urls.push(format!("redis://127.0.0.1:{port}"));
        }
        let set = SentinelSet {
            master,
            replica,
            sentinels,
            urls,
            dir,
        };
        set.wait_until_watching();
        set
    }

    /// The port the Sentinels name master now (asking the first that answers).
    pub fn master_port(&self) -> Option<u16> {
        for url in &self.urls {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                continue;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(300))
            else {
                continue;
            };
            let addr: redis::RedisResult<Vec<String>> = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(MASTER_NAME)
                .query(&mut conn);
            if let Ok(addr) = addr {
                return addr.get(1).and_then(|p| p.parse().ok());
            }
        }
        None
    }

    fn wait_until_watching(&self) {
        let started = Instant::now();
        loop {
            let ready = self.urls.iter().all(|url| {
                let info = || -> redis::RedisResult<(u64, u64)> {
                    let client = redis::Client::open(url.as_str())?;
                    let mut conn =
                        client.get_connection_with_timeout(Duration::from_millis(300))?;
                    let master: Vec<String> = redis::cmd("SENTINEL")
                        .arg("master")
                        .arg(MASTER_NAME)
                        .query(&mut conn)?;
                    let field = |name: &str| {
                        master
                            .iter()
                            .position(|f| f == name)
                            .and_then(|i| master.get(i + 1))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0)
                    };
                    Ok((field("num-slaves"), field("num-other-sentinels")))
                };
                matches!(info(), Ok((replicas, others)) if replicas >= 1 && others >= 2)
            });
            if ready && self.replica_in_sync() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the Sentinels never saw the replica and each other"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl SentinelSet {
    /// The replica has its master's data and follows it.
    fn replica_in_sync(&self) -> bool {
        let info = || -> redis::RedisResult<String> {
            let client = redis::Client::open(self.replica.url().as_str())?;
            let mut conn = client.get_connection_with_timeout(Duration::from_millis(300))?;
            redis::cmd("INFO").arg("replication").query(&mut conn)
        };
        info().is_ok_and(|i| i.contains("master_link_status:up"))
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for child in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
