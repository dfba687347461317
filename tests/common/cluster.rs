//! A Redis Cluster of three masters and three replicas on free loopback ports
//! (`redis-cli --cluster create`), started by the test; every node is stopped
//! by its PID when dropped.

use std::process::Command;
use std::time::{Duration, Instant};

use switchboard::redis_server::{RedisServer, TlsFiles};

pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(None)
    }

    /// Nodes that also serve TLS (clients, the cluster bus and replication)
    /// with `tls`'s certificate, trusting each other's through the CA at
    /// `ca`; clients on the TLS ports are told the nodes' TLS ports (see
    /// [`Cluster::tls_urls`]).
    pub fn start_tls(tls: &TlsFiles, ca: &std::path::Path) -> Cluster {
        Cluster::start_with(Some((tls, ca)))
    }

    fn start_with(tls: Option<(&TlsFiles, &std::path::Path)>) -> Cluster {
        let node = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "1000",
            "--repl-diskless-sync-delay",
            "0",
            // A slot without a master stops only its own keys.
            "--cluster-require-full-coverage",
            "no",
        ]
        .map(String::from)
        .to_vec();
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| match tls {
                None => RedisServer::start_with_args(node.clone()),
                Some((files, ca)) => RedisServer::start_tls_with_args(
                    files,
                    [
                        node.clone(),
                        ["--tls-cluster", "yes", "--tls-replication", "yes"]
                            .map(String::from)
                            .to_vec(),
                        vec![
                            "--tls-ca-cert-file".into(),
                            ca.to_string_lossy().into_owned(),
                        ],
                    ]
                    .concat(),
                ),
            })
            .map(|started| started.unwrap_or_else(|e| panic!("these tests need a real Redis: {e}")))
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-cli is needed ({e}): install it with `sudo apt-get install redis-tools`"
                )
            });
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Cluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// `redis://127.0.0.1:<port>` of every node, the seeds.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `rediss://127.0.0.1:<tls port>` of every node, for a TLS cluster.
    pub fn tls_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| n.tls_port().map(|p| format!("rediss://127.0.0.1:{p}")))
            .collect()
    }

    /// The node that serves `key`'s slot as master now.
    pub fn master_of(&self, key: &str) -> Option<usize> {
        self.nodes.iter().position(|node| {
            let Ok(client) = redis::Client::open(node.url()) else {
                return false;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(300))
            else {
                return false;
            };
            let role: redis::RedisResult<Vec<redis::Value>> = redis::cmd("ROLE").query(&mut conn);
            let is_master =
                matches!(role.as_deref(), Ok([redis::Value::BulkString(r), ..]) if r == b"master");
            // A master answers a key of its own slots (nil or a value), and
            // MOVED for the others.
            let here: redis::RedisResult<Option<String>> =
                redis::cmd("TYPE").arg(key).query(&mut conn);
            is_master && here.is_ok()
        })
    }

    /// Every node still running agrees the cluster is ok.
    pub fn wait_until_ok(&self) {
        let started = Instant::now();
        loop {
            let ok = self.nodes.iter().filter(|n| n.pid().is_some()).all(|node| {
                let info = || -> redis::RedisResult<String> {
                    let client = redis::Client::open(node.url())?;
                    let mut conn =
                        client.get_connection_with_timeout(Duration::from_millis(300))?;
                    redis::cmd("CLUSTER").arg("INFO").query(&mut conn)
                };
                info().is_ok_and(|i| i.contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the cluster never came to cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
