//! `cargo bench --bench event_streams`: the targets of docs/api.md ("Agents
//! and supervisors"), on this machine. A release `switchboard serve` process and a
//! fresh `redis-server`; 1,000 agents, each with its own token. First a steady
//! load (about 1,000 webhooks a second, played by `simulate`) with no event
//! stream open; then 1,000 streams open (each agent's console: its own
//! events), idle, then under the same load; `BENCH_ROUNDS` (default 3) times,
//! alternating, so the machine's drift is not taken for the streams' cost.
//! It prints the server's RSS with and without the streams, webhook p50/p99
//! and the CPU the server, Redis and this process spent per webhook in both
//! runs (steadier than p99 here: it is what showed glibc's malloc slowing
//! down around the streams' buffers), and how long events took from the
//! script that made them (`at`, Redis's clock) to a client (this machine's
//! clock, the same one).
//!
//! It asserts nothing about time: machines are shared and noisy, so read the
//! ratios within one run. `BENCH_SECS` (default 10) sets each load phase,
//! `BENCH_STREAMS` (default 1000) the streams; `BENCH_IDLE=1` opens them for
//! agents in no queue (nothing to deliver), and `BENCH_NICE_CLIENTS=1` runs
//! the stream clients at the lowest priority, as if they were elsewhere.
//!
//! `BENCH_MODE=resume_storm` measures instead what resuming costs the
//! webhooks: the namespace's stream is filled with 10,000 events (a tenth of
//! them the storm's agent's), then one agent token asks for
//! `BENCH_RESUMES` (default 1,000) streams at once with `Last-Event-ID: 0-0`,
//! each read until it goes quiet, wave after wave (at most one a second)
//! for the whole load phase; the same load runs without the storm first.
//! It prints webhook p50/p99 and CPU per webhook with and without, and what
//! the storm got: streams served and refused (by status), and the events
//! and `gap` notices read. The storm comes from 127.0.0.2, the load from
//! 127.0.0.1: the server's per-address connection cap is the storm's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use switchboard::redis_server::RedisServer;
use switchboard::simulate::{self, SimulateArgs};

#[path = "support/mod.rs"]
#[allow(dead_code)] // the Cluster start is the scale bench's
mod support;

use support::{ADMIN, AUTH, Server, cpu_secs_of, env_or, machine};

#[tokio::main]
async fn main() {
    let secs: f64 = env_or("BENCH_SECS", 10.0);
    let streams: usize = env_or("BENCH_STREAMS", 1000);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    println!("{}", machine());
    if std::env::var("BENCH_MODE").as_deref() == Ok("resume_storm") {
        resume_storm(secs, rounds).await;
        return;
    }
    let (redis, server) = start();
    let http = switchboard::tls::http_client_builder()
        .pool_max_idle_per_host(2 * streams)
        .build()
        .expect("http client");
    let mut tokens = agents_with_tokens(&http, &server.base, "a", &["q0"], streams).await;
    println!("{streams} agents available, each with a token");
    // BENCH_IDLE=1: the streams belong to agents in no queue, who get no
    // events: what open streams cost without anything to deliver.
    if env_or("BENCH_IDLE", 0) == 1 {
        tokens = agents_with_tokens(&http, &server.base, "idle", &[], streams).await;
        println!("the streams are of {streams} other agents, in no queue: no events for them");
    }

    let rss_before = server.rss_mb();
    println!("no streams: server RSS {rss_before:.1} MB");
    let latencies = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000, 3).expect("histogram"),
    ));
    // Runs without and with the streams, alternating, so a drift of the
    // machine over time does not pass for the streams' cost.
    let mut p99 = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let without = measured(&server, &redis, secs).await;
        report(&format!("round {}, no streams", round + 1), &without);
        p99[0].push(without.load.latency_ms.p99);

        let (streams, opened) = open_streams(&server.base, &tokens, &latencies).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_open = server.rss_mb();
        println!(
            "{opened} streams open, idle: server RSS {rss_open:.1} MB ({:+.1} MB)",
            rss_open - rss_before
        );
        let with = measured(&server, &redis, secs).await;
        report(
            &format!("round {}, {opened} streams open", round + 1),
            &with,
        );
        p99[1].push(with.load.latency_ms.p99);
        let rss_loaded = server.rss_mb();
        println!(
            "server RSS after the load with the streams: {rss_loaded:.1} MB ({:+.1} MB)",
            rss_loaded - rss_before
        );
        streams.close();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (without, with) = (median(&mut p99[0]), median(&mut p99[1]));
    println!(
        "webhook p99, median of {rounds} rounds: {without:.2} ms without streams, {with:.2} ms with ({:+.0} %)",
        (with / without.max(1e-9) - 1.0) * 100.0
    );
    let events = latencies.lock().expect("histogram").clone();
    println!(
        "events delivered: {}; from script to client p50 {} ms, p99 {} ms, max {} ms",
        events.len(),
        events.value_at_quantile(0.50),
        events.value_at_quantile(0.99),
        events.max()
    );
    drop(server);
}

/// A fresh redis-server and a release server on it, with one queue `q0`.
fn start() -> (RedisServer, Server) {
    let redis = RedisServer::start().expect("redis-server (apt-get install redis-server)");
    let routing = std::env::temp_dir().join(format!("sb-bench-events-{}.toml", std::process::id()));
    std::fs::write(
        &routing,
        "[defaults]\nwrap_up_secs = 0\nno_answer_delay_secs = 0\nmax_missed_in_row = 1000\ndefault_queue = \"q0\"\n\n[[queues]]\nname = \"q0\"\nnumbers = [\"+15005550006\"]\n",
    )
    .expect("routing file");
    let server = Server::start(&redis, &routing);
    (redis, server)
}

/// `BENCH_MODE=resume_storm` (see the header).
async fn resume_storm(secs: f64, rounds: usize) {
    let resumes: usize = env_or("BENCH_RESUMES", 1000);
    let (redis, server) = start();
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    // Agents for the load to ring, and the storm's agent, in no queue.
    agents_with_tokens(&http, &server.base, "a", &["q0"], 50).await;
    let token = agents_with_tokens(&http, &server.base, "storm", &[], 1)
        .await
        .remove(0);
    fill_events(&redis, 10_000, "storm0").await;
    println!(
        "{resumes} resumes a wave from Last-Event-ID 0-0 with one agent token (storm0), against a stream of 10,000 events"
    );
    let mut p99 = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let without = measured(&server, &redis, secs).await;
        report(&format!("round {}, no storm", round + 1), &without);
        p99[0].push(without.load.latency_ms.p99);

        let storm = Storm::start(server.base.clone(), token.clone(), resumes);
        let with = measured(&server, &redis, secs).await;
        let tally = storm.stop();
        report(&format!("round {}, resume storm", round + 1), &with);
        println!(
            "  the storm: {} waves, {} resumes: {} served ({} events, {} gap notices read), refused {:?}, {} failed to connect",
            tally.waves,
            tally.resumes,
            tally.served,
            tally.events,
            tally.gaps,
            tally.refused,
            tally.failed
        );
        p99[1].push(with.load.latency_ms.p99);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "webhook p99, median of {rounds} rounds: {:.2} ms without the storm, {:.2} ms with it",
        median(&mut p99[0]),
        median(&mut p99[1])
    );
}

/// `n` events appended as the scripts append them (`emit` in
/// lua/lib/common.lua), one in ten about `agent`, the rest about 100 others.
async fn fill_events(redis: &RedisServer, n: usize, agent: &str) {
    let client = redis::Client::open(redis.url()).expect("redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    for start in (0..n).step_by(500) {
        let mut pipe = redis::pipe();
        for i in start..(start + 500).min(n) {
            let who = if i % 10 == 0 {
                agent.to_owned()
            } else {
                format!("a{}", i % 100)
            };
            let data = serde_json::json!({
                "call_sid": format!("CA{i:032x}"), "queue": "q0", "from": "+15005550123",
                "agent": who, "agent_queue": "q0", "via": "queue", "attempt": 1,
                "at": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            });
            pipe.cmd("XADD")
                .arg("sb:{default}:events")
                .arg("MAXLEN")
                .arg("~")
                .arg(10_000)
                .arg("*")
                .arg("event")
                .arg("call_routed")
                .arg("data")
                .arg(data.to_string())
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await.expect("XADD");
    }
}

/// What the storm's clients got.
#[derive(Default, Debug)]
struct Tally {
    waves: usize,
    resumes: usize,
    served: usize,
    /// Answers other than 200, by status.
    refused: std::collections::BTreeMap<u16, usize>,
    failed: usize,
    events: usize,
    gaps: usize,
}

/// Where the storm's connections come from (all of 127/8 is this machine's).
const STORM_ADDRESS: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Waves of resumes on a thread and runtime of their own (as `Streams`),
/// until stopped.
struct Storm {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Tally>,
}

impl Storm {
    fn start(base: String, token: String, resumes: usize) -> Storm {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = clients_runtime();
            runtime.block_on(async move {
                // From an address of its own, as an attacker's would be: the
                // server's per-peer connection cap is then the storm's, not
                // the webhooks' (on one address, the storm's connections
                // crowded the load's out and its refused webhooks were not
                // in the p99).
                let http = switchboard::tls::http_client_builder()
                    .pool_max_idle_per_host(resumes)
                    .local_address(STORM_ADDRESS)
                    .build()
                    .expect("http client");
                let tally = Arc::new(Mutex::new(Tally::default()));
                loop {
                    let wave_started = Instant::now();
                    let mut wave = tokio::task::JoinSet::new();
                    for _ in 0..resumes {
                        wave.spawn(resume(
                            http.clone(),
                            base.clone(),
                            token.clone(),
                            tally.clone(),
                        ));
                    }
                    tally.lock().expect("tally").waves += 1;
                    let finished = async {
                        while wave.join_next().await.is_some() {}
                        let pause = Duration::from_secs(1).saturating_sub(wave_started.elapsed());
                        tokio::time::sleep(pause).await;
                    };
                    tokio::select! {
                        () = finished => {}
                        _ = &mut stopped => break,
                    }
                }
                std::mem::take(&mut *tally.lock().expect("tally"))
            })
        });
        Storm { stop, thread }
    }

    fn stop(self) -> Tally {
        let _ = self.stop.send(());
        self.thread.join().expect("storm thread")
    }
}

/// One resume from `0-0`, read until 300 ms pass without a byte.
async fn resume(http: reqwest::Client, base: String, token: String, tally: Arc<Mutex<Tally>>) {
    let sent = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(&token)
        .header("last-event-id", "0-0")
        .send()
        .await;
    tally.lock().expect("tally").resumes += 1;
    let mut response = match sent {
        Ok(r) if r.status() == 200 => r,
        Ok(r) => {
            *tally
                .lock()
                .expect("tally")
                .refused
                .entry(r.status().as_u16())
                .or_default() += 1;
            return;
        }
        Err(_) => {
            tally.lock().expect("tally").failed += 1;
            return;
        }
    };
    tally.lock().expect("tally").served += 1;
    let (mut events, mut gaps) = (0, 0);
    // The last bytes of the previous chunk, so a marker split between two
    // chunks is counted too (and one wholly in them, once).
    let mut carry: Vec<u8> = Vec::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_millis(300), response.chunk()).await
    {
        let mut bytes = std::mem::take(&mut carry);
        let (events_before, gaps_before) = (count(&bytes, b"id: "), count(&bytes, b"event: gap"));
        bytes.extend_from_slice(&chunk);
        events += count(&bytes, b"id: ") - events_before;
        gaps += count(&bytes, b"event: gap") - gaps_before;
        carry = bytes[bytes.len().saturating_sub(16)..].to_vec();
    }
    let mut tally = tally.lock().expect("tally");
    tally.events += events;
    tally.gaps += gaps;
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| w == &needle)
        .count()
}

/// A load phase and the CPU each process spent on it.
struct Measured {
    load: simulate::Report,
    /// CPU milliseconds per webhook: the server, Redis, this process (the
    /// load generator and the stream clients together).
    cpu_ms: [f64; 3],
}

async fn measured(server: &Server, redis: &RedisServer, secs: f64) -> Measured {
    let redis_pid = redis
        .pid()
        .expect("the bench's own redis-server")
        .to_string();
    let cpu = || {
        [
            server.cpu_secs(),
            cpu_secs_of(&redis_pid),
            cpu_secs_of("self"),
        ]
    };
    let before = cpu();
    // Boxed: the load generator's future is deep enough to overflow the
    // layout query's depth limit inside this one.
    let load = Box::pin(steady(&server.base, secs)).await;
    let after = cpu();
    let webhooks = load.webhooks.max(1) as f64;
    let cpu_ms = [0, 1, 2].map(|i| (after[i] - before[i]) * 1000.0 / webhooks);
    Measured { load, cpu_ms }
}

fn report(name: &str, m: &Measured) {
    let r = &m.load;
    println!(
        "{name}: steady {:.0} webhooks/s: p50 {:.2} ms, p99 {:.2} ms, {} errors; CPU ms a webhook: server {:.3}, Redis {:.3}, bench (load + clients) {:.3}",
        r.webhooks as f64 / r.seconds.max(1e-9),
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.errors,
        m.cpu_ms[0],
        m.cpu_ms[1],
        m.cpu_ms[2],
    );
}

/// The open streams: their own thread and runtime, so their reading does not
/// queue behind (or ahead of) the load generator's requests in one runtime.
struct Streams {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Streams {
    fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A runtime on the current thread, for clients kept off the load
/// generator's.
fn clients_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One stream per token, each followed by its own task on a thread of their
/// own; waits until all answered.
async fn open_streams(
    base: &str,
    tokens: &[String],
    latencies: &Arc<Mutex<Histogram<u64>>>,
) -> (Streams, usize) {
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (base, tokens_owned, latencies_owned, opened_owned) = (
        base.to_owned(),
        tokens.to_vec(),
        latencies.clone(),
        opened.clone(),
    );
    let thread = std::thread::spawn(move || {
        // BENCH_NICE_CLIENTS=1: the stream clients stand in for browsers on
        // other machines; at the lowest priority they take less of the cores
        // the server and the load generator share with them.
        if env_or("BENCH_NICE_CLIENTS", 0) == 1 {
            // SAFETY: gettid and setpriority have no preconditions; on Linux
            // PRIO_PROCESS with a thread id sets that thread's nice value.
            let niced =
                unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
            if niced != 0 {
                println!(
                    "could not lower the stream clients' priority: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        let runtime = clients_runtime();
        runtime.block_on(async move {
            let http = switchboard::tls::http_client_builder()
                .pool_max_idle_per_host(2 * tokens_owned.len())
                .build()
                .expect("http client");
            let mut clients = tokio::task::JoinSet::new();
            for token in tokens_owned {
                clients.spawn(follow(
                    http.clone(),
                    base.clone(),
                    token,
                    latencies_owned.clone(),
                    opened_owned.clone(),
                ));
            }
            let _ = stopped.await;
            clients.shutdown().await;
        });
    });
    let started = Instant::now();
    while opened.load(std::sync::atomic::Ordering::Relaxed) < tokens.len() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} streams opened",
            opened.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (
        Streams {
            stop: Some(stop),
            thread: Some(thread),
        },
        tokens.len(),
    )
}

/// `n` agents `<prefix><i>` in `queues`, available, and a token each.
async fn agents_with_tokens(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    queues: &[&str],
    n: usize,
) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{prefix}{i}");
        let admin = |r: reqwest::RequestBuilder| r.bearer_auth(ADMIN);
        let put = admin(http.put(format!("{base}/v1/agents/{id}")))
            .json(&serde_json::json!({"name": id, "contact": format!("client:{id}"), "queues": queues}))
            .send()
            .await
            .expect("PUT agent");
        assert!(put.status().is_success(), "PUT agent: {}", put.status());
        let state = admin(http.put(format!("{base}/v1/agents/{id}/state")))
            .json(&serde_json::json!({"state": "available"}))
            .send()
            .await
            .expect("PUT state");
        assert!(state.status().is_success());
        let issued: serde_json::Value = admin(http.post(format!("{base}/v1/agents/{id}/tokens")))
            .send()
            .await
            .expect("POST token")
            .json()
            .await
            .expect("token JSON");
        tokens.push(issued["token"].as_str().expect("a token").to_owned());
    }
    tokens
}

/// One console: reads its stream and records each event's delay.
async fn follow(
    http: reqwest::Client,
    base: String,
    token: String,
    latencies: Arc<Mutex<Histogram<u64>>>,
    opened: Arc<std::sync::atomic::AtomicUsize>,
) {
    let Ok(mut response) = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
    else {
        return;
    };
    opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            if let Some(at) = serde_json::from_str::<serde_json::Value>(data.trim())
                .ok()
                .and_then(|v| v["at"].as_u64())
            {
                let _ = latencies
                    .lock()
                    .expect("histogram")
                    .record(now.saturating_sub(at).max(1));
            }
        }
    }
}

/// About 1,000 webhooks a second for `secs`: every attempt answered.
async fn steady(base: &str, secs: f64) -> simulate::Report {
    let mut args = SimulateArgs::new(base, AUTH);
    args.calls = (143.0 * secs) as usize;
    args.concurrency = 50;
    args.rate = Some(143.0);
    args.answer_every_attempt();
    args.ring_ms = 0;
    args.talk_ms = 0;
    args.trace = false;
    simulate::run(&args).await.expect("simulate")
}
