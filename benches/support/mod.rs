//! What the benchmarks share: a release `switchboard serve` child and the
//! machine the figures were measured on.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard::redis_server::{RedisServer, free_port, wait_listening};

pub const AUTH: &str = "bench-auth-token";
pub const ADMIN: &str = "bench-admin-token-0123456789";

/// A release `switchboard serve` child, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(redis: &RedisServer, routing: &std::path::Path) -> Server {
        Server::start_with(&[("SWITCHBOARD_REDIS_URL", redis.url())], routing)
    }

    /// On a Redis Cluster through `seeds`, in `namespace`.
    pub fn start_on_cluster(
        seeds: &[String],
        namespace: &str,
        routing: &std::path::Path,
    ) -> Server {
        Server::start_with(
            &[
                ("SWITCHBOARD_REDIS_CLUSTER", seeds.join(",")),
                ("SWITCHBOARD_NAMESPACE", namespace.to_owned()),
            ],
            routing,
        )
    }

    pub fn start_with(redis: &[(&str, String)], routing: &std::path::Path) -> Server {
        let port = free_port().expect("free port");
        // BENCH_SERVER_BIN: another build to compare with (e.g. an older commit's).
        let bin = std::env::var("BENCH_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchboard").to_owned());
        let child = Command::new(bin)
            .arg("serve")
            .envs(redis.iter().map(|(k, v)| (k, v)))
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD_ROUTING", routing)
            .env("TWILIO_AUTH_TOKEN", AUTH)
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start switchboard serve");
        let base = format!("http://127.0.0.1:{port}");
        assert!(
            wait_listening(port, Duration::from_secs(10)),
            "serve did not start"
        );
        Server { child, base }
    }

    /// User + system CPU seconds of the process, from /proc.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of(&self.child.id().to_string())
    }

    pub fn rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The benchmarks' knobs: `name` from the environment, else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of process `pid` (`self`: this one), from /proc.
pub fn cpu_secs_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) end at ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after ')'.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let redis = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "machine: {cpu}, {cores} cores, {memory:.0} GiB; {redis}; load generator on the same machine"
    )
}
