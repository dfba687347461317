//! `cargo bench --bench scale`: the speed and scale figures of
//! docs/performance.md, in one run on this machine. For each roster (100 agents in one
//! queue, 100,000 agents in one queue, 100 agents in 500 queues) it starts a
//! fresh `redis-server` and a release `switchboard serve` process, creates the
//! agents through the admin API, then plays full call cycles with `simulate`
//! (incoming call, agent leg answered and completed, Dial action, number status)
//! at 50 and 200 calls in flight. It prints cycles/s, webhook p50/p99, Redis
//! requests per webhook (from `INFO commandstats`), PINGs, the idle CPU of
//! switchboard and Redis, `GET /v1/queues/{name}`, the server's RSS and binary
//! size, and `redis-benchmark`'s EVALSHA ceiling on the same host. Then the
//! same small roster on a Redis Cluster: one namespace, and two on two masters
//! at once.
//!
//! Then routing by need (`needs100k`, benches/needs/mod.rs): 100,000 agents
//! with skills, 500 callers waiting with mixed needs, one routing decision
//! against the plain single-queue route at the same roster, and `POST
//! /v1/routing/explain`'s rate.
//!
//! It asserts nothing about time: machines are shared and noisy, so read the
//! ratios within one run. `BENCH_SECS` (default 10) sets each load phase,
//! `BENCH_ROSTERS` (e.g. `small,cluster`) picks rosters: small, agents100k,
//! queues500, cluster, needs100k.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use switchboard::redis_server::RedisServer;

/// A release `serve` process, and what the figures are measured on.
#[path = "support/mod.rs"]
mod support;

/// The tests' Cluster: three masters, three replicas, on free loopback ports.
#[path = "../tests/common/cluster.rs"]
#[allow(dead_code)] // the bench needs no TLS cluster
mod cluster;
/// The tests' reading of `INFO commandstats`.
#[path = "../tests/common/commandstats.rs"]
mod commandstats;
use switchboard::simulate::{self, SimulateArgs};

use support::{ADMIN, AUTH, Server, env_or, machine};

/// Routing by need at 100,000 agents.
#[path = "needs/mod.rs"]
mod needs;

/// One roster to measure.
struct Roster {
    name: &'static str,
    agents: usize,
    queues: usize,
}

const ROSTERS: [Roster; 3] = [
    Roster {
        name: "small",
        agents: 100,
        queues: 1,
    },
    Roster {
        name: "agents100k",
        agents: 100_000,
        queues: 1,
    },
    Roster {
        name: "queues500",
        agents: 100,
        queues: 500,
    },
];

#[tokio::main]
async fn main() {
    let secs: f64 = env_or("BENCH_SECS", 10.0);
    let wanted = std::env::var("BENCH_ROSTERS").unwrap_or_default();
    println!("{}", machine());
    // The one the load runs against (support::Server): BENCH_SERVER_BIN's, if set.
    let binary = std::env::var("BENCH_SERVER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchboard").to_owned());
    let size = std::fs::metadata(&binary).map_or(0, |m| m.len());
    println!(
        "switchboard binary: {:.1} MB ({binary})\n",
        size as f64 / 1e6
    );
    let mut summary = Vec::new();
    for roster in ROSTERS
        .iter()
        .filter(|r| wanted.is_empty() || wanted.split(',').any(|w| w == r.name))
    {
        summary.push(measure(roster, secs).await);
    }
    if wanted.is_empty() || wanted.split(',').any(|w| w == "cluster") {
        measure_cluster(secs).await;
    }
    if wanted.is_empty() || wanted.split(',').any(|w| w == "needs100k") {
        summary.push(needs::measure(secs).await);
    }
    println!("\n== summary ==");
    println!(
        "roster | cycles/s @50 | p99 @50 | cycles/s @200 | p99 @200 | requests/webhook | pings | p99 @1000 webhooks/s | idle cpu sb/redis | queue doc | rss"
    );
    for line in &summary {
        println!("{line}");
    }
}

async fn measure(roster: &Roster, secs: f64) -> String {
    println!(
        "== {}: {} agents, {} queue(s) ==",
        roster.name, roster.agents, roster.queues
    );
    let redis = RedisServer::start().expect("redis-server (apt-get install redis-server)");
    let routing = routing_file(roster.queues);
    let server = Server::start(&redis, &routing);
    let http = switchboard::tls::http_client_builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("http client");
    let mut redis_conn = redis::Client::open(redis.url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let empty = used_memory(&mut redis_conn).await;
    let started = Instant::now();
    create_agents(&http, &server.base, roster).await;
    let with_agents = used_memory(&mut redis_conn).await;
    println!(
        "created {} agents in {:.1} s; Redis holds {:.0} bytes per agent",
        roster.agents,
        started.elapsed().as_secs_f64(),
        with_agents.saturating_sub(empty) as f64 / roster.agents as f64
    );

    let mut line = format!(
        "{} ({} agents, {} queues)",
        roster.name, roster.agents, roster.queues
    );
    let mut pings = 0;
    let mut per_webhook = Vec::new();
    let mut scripts_per_sec: f64 = 0.0;
    let mut cycles_played = 0;
    for concurrency in [50, 200] {
        // A short warm-up, which also calibrates how many calls fill `secs`.
        let warm = play(&server.base, concurrency, 500, None).await;
        cycles_played += warm.calls;
        let calls = ((warm.calls_per_sec * secs) as usize).clamp(1000, 400_000);
        let before = commandstats(&mut redis_conn).await;
        let cpu_before = server.cpu_secs();
        let report = play(&server.base, concurrency, calls, None).await;
        let cpu = server.cpu_secs() - cpu_before;
        cycles_played += report.calls;
        let after = commandstats(&mut redis_conn).await;
        let delta = diff(&before, &after);
        let commands: u64 = delta.values().sum();
        let ping = delta.get("ping").copied().unwrap_or(0);
        pings += ping;
        // What a client sends: scripts, and whatever goes around them (PINGs,
        // pre-reads). INFO counts the commands scripts run inside Redis too;
        // those are shown apart.
        let sent: u64 = [
            "evalsha", "eval", "ping", "unwatch", "hgetall", "zrange", "smembers",
        ]
        .iter()
        .filter_map(|c| delta.get(*c))
        .sum();
        let round_trips = sent as f64 / report.webhooks.max(1) as f64;
        per_webhook.push(round_trips);
        let scripts = delta.get("evalsha").copied().unwrap_or(0) as f64;
        scripts_per_sec = scripts_per_sec.max(scripts / report.seconds.max(1e-9));
        println!(
            "{concurrency:>3} in flight: {:.0} cycles/s, webhook p50 {:.2} ms p99 {:.2} ms, \
             {} webhooks, {} errors, {} violations",
            report.calls_per_sec,
            report.latency_ms.p50,
            report.latency_ms.p99,
            report.webhooks,
            report.errors,
            report.violations
        );
        println!(
            "     switchboard: {:.0} % of a core, {:.0} µs of CPU per webhook",
            cpu / report.seconds.max(1e-9) * 100.0,
            cpu / report.webhooks.max(1) as f64 * 1e6
        );
        println!(
            "     Redis: {round_trips:.2} requests per webhook ({:.2} scripts per cycle), {ping} PINGs; \
             {commands} commands run ({:.1} per cycle): {}",
            scripts / report.calls.max(1) as f64,
            commands as f64 / report.calls.max(1) as f64,
            top(&delta)
        );
        let _ = write!(
            line,
            " | {:.0} | {:.2} ms",
            report.calls_per_sec, report.latency_ms.p99
        );
    }
    let _ = write!(
        line,
        " | {:.2} | {pings}",
        per_webhook.iter().sum::<f64>() / per_webhook.len() as f64
    );

    // A steady load well inside capacity: 143 cycles/s is ~1,000 webhooks/s.
    let steady = play(&server.base, 50, (143.0 * secs) as usize, Some(143.0)).await;
    cycles_played += steady.calls;
    println!(
        "steady {:.0} webhooks/s: webhook p50 {:.2} ms p99 {:.2} ms",
        steady.webhooks as f64 / steady.seconds.max(1e-9),
        steady.latency_ms.p50,
        steady.latency_ms.p99
    );
    let _ = write!(line, " | {:.2} ms", steady.latency_ms.p99);

    // Idle: nothing calls for 5 s; the worker and gauges still run.
    let (sb_before, redis_before) = (server.cpu_secs(), redis_cpu(&mut redis_conn).await);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sb_idle = (server.cpu_secs() - sb_before) / 5.0 * 100.0;
    let redis_idle = (redis_cpu(&mut redis_conn).await - redis_before) / 5.0 * 100.0;
    println!("idle 5 s: switchboard {sb_idle:.1} % of a core, Redis {redis_idle:.1} %");
    let _ = write!(line, " | {sb_idle:.1} % / {redis_idle:.1} %");

    let doc = queue_doc_latency(&http, &server.base).await;
    println!("GET /v1/queues/q0: median {doc:.2} ms of 20");
    let rss = server.rss_mb();
    println!("server RSS after load: {rss:.1} MB");
    let _ = write!(line, " | {doc:.2} ms | {rss:.1} MB");

    let memory = used_memory(&mut redis_conn).await;
    println!(
        "Redis used_memory: {:.1} MB; {:.0} bytes per call kept (its 1 h tail), over {cycles_played} calls",
        memory as f64 / 1e6,
        memory.saturating_sub(with_agents) as f64 / cycles_played.max(1) as f64
    );
    let ceiling = evalsha_ceiling(redis.port());
    let ratio = ceiling
        .split("requests per second")
        .next()
        .and_then(|l| l.rsplit(' ').nth(1))
        .and_then(|n| n.parse::<f64>().ok())
        .map_or_else(
            || "unknown".to_owned(),
            |c| format!("{:.0} % of it", scripts_per_sec / c * 100.0),
        );
    println!("redis-benchmark EVALSHA ceiling (50 clients): {ceiling}");
    println!("switchboard's best: {scripts_per_sec:.0} scripts/s, {ratio}\n");
    drop(server);
    line
}

/// One namespace on a 3-master, 3-replica Cluster (100 agents, 50 calls in
/// flight), then two namespaces on two different masters at once, each with
/// its own server: what one namespace does on a Cluster, and whether a second
/// one on another master adds to it (on this machine the CPU is shared by
/// everything, so it cannot double).
async fn measure_cluster(secs: f64) {
    println!("== cluster: 100 agents per namespace, 3 masters + 3 replicas ==");
    let cluster = cluster::Cluster::start();
    let seeds = cluster.urls();
    let routing = routing_file(1);
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let roster = Roster {
        name: "cluster",
        agents: 100,
        queues: 1,
    };
    // Two namespaces whose slots are on different masters.
    let mut namespaces: Vec<String> = Vec::new();
    let mut masters = Vec::new();
    for n in 0.. {
        let ns = format!("tenant{n}");
        let master = cluster.master_of(&format!("sb:{{{ns}}}:agents"));
        if master.is_some() && !masters.contains(&master) {
            masters.push(master);
            namespaces.push(ns);
        }
        if namespaces.len() == 2 {
            break;
        }
    }
    let servers: Vec<Server> = namespaces
        .iter()
        .map(|ns| Server::start_on_cluster(&seeds, ns, &routing))
        .collect();
    for server in &servers {
        create_agents(&http, &server.base, &roster).await;
    }
    let warm = play(&servers[0].base, 50, 500, None).await;
    let calls = ((warm.calls_per_sec * secs) as usize).clamp(1000, 400_000);
    let one = play(&servers[0].base, 50, calls, None).await;
    println!(
        "one namespace ({}): {:.0} cycles/s, webhook p50 {:.2} ms p99 {:.2} ms, {} errors, {} violations",
        namespaces[0],
        one.calls_per_sec,
        one.latency_ms.p50,
        one.latency_ms.p99,
        one.errors,
        one.violations
    );
    let (a, b) = tokio::join!(
        play(&servers[0].base, 50, calls / 2, None),
        play(&servers[1].base, 50, calls / 2, None)
    );
    println!(
        "two namespaces on two masters at once: {:.0} + {:.0} = {:.0} cycles/s, p99 {:.2} / {:.2} ms, {} errors, {} violations",
        a.calls_per_sec,
        b.calls_per_sec,
        a.calls_per_sec + b.calls_per_sec,
        a.latency_ms.p99,
        b.latency_ms.p99,
        a.errors + b.errors,
        a.violations + b.violations
    );
}

/// `[[queues]]` q0…q{n-1}; calls go to q0's number.
fn routing_file(queues: usize) -> std::path::PathBuf {
    let mut toml = String::from(
        "[defaults]\nwrap_up_secs = 0\nno_answer_delay_secs = 0\nmax_missed_in_row = 1000\ndefault_queue = \"q0\"\n",
    );
    for i in 0..queues {
        let _ = write!(toml, "\n[[queues]]\nname = \"q{i}\"\n");
        if i == 0 {
            toml.push_str("numbers = [\"+15005550006\"]\n");
        }
    }
    let path = std::env::temp_dir().join(format!("sb-bench-{}-{queues}.toml", std::process::id()));
    std::fs::write(&path, toml).expect("write the routing file");
    path
}

async fn create_agents(http: &reqwest::Client, base: &str, roster: &Roster) {
    let queues = roster.queues;
    create_agents_with(
        http,
        base,
        roster.agents,
        move |i| serde_json::json!({ "queues": queues_of(i, queues) }),
    )
    .await;
}

/// Agents `a0`… `a{total - 1}`, available, 32 at a time: each named by its
/// id, contact `client:<id>`, and the other fields of `fields(i)`.
async fn create_agents_with(
    http: &reqwest::Client,
    base: &str,
    total: usize,
    fields: impl Fn(usize) -> serde_json::Value + Send + Sync + 'static,
) {
    let fields = std::sync::Arc::new(fields);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (http, base, next) = (http.clone(), base.to_owned(), next.clone());
        let fields = fields.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let id = format!("a{i}");
                let mut body = fields(i);
                body["name"] = id.clone().into();
                body["contact"] = format!("client:{id}").into();
                put(&http, &format!("{base}/v1/agents/{id}"), body).await;
                put(
                    &http,
                    &format!("{base}/v1/agents/{id}/state"),
                    serde_json::json!({ "state": "available" }),
                )
                .await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Agent `i`'s queues: q0 (where the calls go) and, with more queues, two
/// others. The table is large; an agent's own queues are few, as in a call
/// center with many queues.
fn queues_of(i: usize, queues: usize) -> Vec<String> {
    let mut mine = vec!["q0".to_owned()];
    if queues > 1 {
        for k in [i % (queues - 1) + 1, (i * 7 + 3) % (queues - 1) + 1] {
            let name = format!("q{k}");
            if !mine.contains(&name) {
                mine.push(name);
            }
        }
    }
    mine
}

async fn put(http: &reqwest::Client, url: &str, body: serde_json::Value) {
    let response = http
        .put(url)
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    assert!(
        response.status().is_success(),
        "PUT {url}: {}",
        response.status()
    );
}

/// Full cycles: every attempt answered at once, no callback lost; at `rate`
/// calls/s, or as fast as `concurrency` allows.
async fn play(base: &str, concurrency: usize, calls: usize, rate: Option<f64>) -> simulate::Report {
    let mut args = SimulateArgs::new(base, AUTH);
    args.calls = calls;
    args.concurrency = concurrency;
    args.rate = rate;
    args.answer_every_attempt();
    args.ring_ms = 0;
    args.talk_ms = 0;
    args.trace = false;
    simulate::run(&args).await.expect("simulate")
}

async fn queue_doc_latency(http: &reqwest::Client, base: &str) -> f64 {
    let mut took = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let response = http
            .get(format!("{base}/v1/queues/q0"))
            .bearer_auth(ADMIN)
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        if let Ok(r) = response {
            let _ = r.bytes().await;
        }
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    took[took.len() / 2]
}

/// `cmdstat_<name>:calls=N` of `INFO commandstats`.
async fn commandstats(conn: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    commandstats::calls(&info)
}

/// Commands sent between two snapshots, without the bench's own INFO.
fn diff(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .map(|(name, n)| (name.clone(), n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn top(delta: &BTreeMap<String, u64>) -> String {
    let mut by_count: Vec<_> = delta.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    by_count
        .iter()
        .take(6)
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `INFO` section (empty if Redis cannot say).
async fn info(conn: &mut redis::aio::MultiplexedConnection, section: &str) -> redis::InfoDict {
    redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap_or_else(|_| redis::InfoDict::new(""))
}

async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let cpu = info(conn, "cpu").await;
    ["used_cpu_sys", "used_cpu_user"]
        .iter()
        .filter_map(|k| cpu.get::<f64>(k))
        .sum()
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    info(conn, "memory").await.get("used_memory").unwrap_or(0)
}

/// Requests/s of a small script doing what a reservation does to a sorted set
/// and a hash, from `redis-benchmark` (50 clients, no pipelining).
fn evalsha_ceiling(port: u16) -> String {
    let script = "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) redis.call('HSET', KEYS[2], 'state', 'reserved') return redis.call('ZPOPMIN', KEYS[1])";
    let port_s = port.to_string();
    let sha = Command::new("redis-cli")
        .args(["-p", &port_s, "SCRIPT", "LOAD", script])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if sha.len() != 40 {
        return "unknown (redis-cli missing?)".into();
    }
    let out = Command::new("redis-benchmark")
        .args([
            "-p", &port_s, "-c", "50", "-n", "200000", "-q", "EVALSHA", &sha, "2", "{b}z", "{b}h",
            "1", "m",
        ])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .rev()
            .find(|l| l.contains("requests per second"))
            .map(|l| l.rsplit('\r').next().unwrap_or(l).trim().to_owned())
            .unwrap_or_else(|| "unknown".into()),
        Err(_) => "unknown (redis-benchmark missing: apt-get install redis-tools)".into(),
    }
}
