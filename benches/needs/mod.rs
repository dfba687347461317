//! The `needs100k` part of `cargo bench --bench scale` (issue 21): 100,000
//! agents with 3 of 30 skills each, in a plain queue and in a queue with steps
//! and numbers with needs, 500 callers waiting in the latter with needs nobody
//! free meets. In one run it measures, each call reserving an agent:
//! - one routing decision on the plain queue (today's single-queue route at
//!   the same roster) and on the queue with steps, beside the 500 waiting:
//!   webhook p50/p99 from the client, and Redis' own time per script from
//!   `INFO commandstats` (the matching cost);
//! - what the worker's sweep costs Redis with the 500 waiting;
//! - `POST /v1/routing/explain` requests/s at 32 in flight.
//!
//! Prints figures; asserts nothing about time.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use switchboard::redis_server::RedisServer;
use switchboard::twilio::signature;

use super::support::{ADMIN, AUTH, Server};

const AGENTS: usize = 100_000;
const SKILLS: usize = 30;
const WAITING: usize = 500;
const DECISIONS: usize = 5_000;
const PLAIN: &str = "+15005550100";

/// The number whose calls need skill `k` at level 20 or more and skill
/// `k + 7` (mixed needs, 30 of them).
fn skill_number(k: usize) -> String {
    format!("+150055502{k:02}")
}

/// The numbers of the waiting callers: needs no agent has.
fn rare_number(k: usize) -> String {
    format!("+150055503{k:02}")
}

fn routing_file() -> std::path::PathBuf {
    let mut toml = String::from(
        // Reservations outlive the run: no sweep releases (and re-offers)
        // agents while decisions are measured.
        "[defaults]\nwrap_up_secs = 0\nno_answer_delay_secs = 0\nmax_missed_in_row = 1000\nring_timeout_secs = 600\nreservation_grace_secs = 3600\ndefault_queue = \"plain\"\n\n[[queues]]\nname = \"plain\"\n",
    );
    let _ = writeln!(toml, "numbers = [\"{PLAIN}\"]");
    toml.push_str("\n[[queues]]\nname = \"skilled\"\nnumbers = [\n");
    for k in 0..SKILLS {
        let _ = writeln!(
            toml,
            "  {{ number = \"{}\", needs = \"s{k}>=20 and s{}\" }},",
            skill_number(k),
            (k + 7) % SKILLS
        );
    }
    for k in 0..10 {
        let _ = writeln!(
            toml,
            "  {{ number = \"{}\", needs = \"rare{k} or (s{k} and rare{})\" }},",
            rare_number(k),
            k + 10
        );
    }
    toml.push_str(
        "]\nsteps = [{ needs = \"not trainee\", for_secs = 3600 }, { needs = \"any\" }]\n[queues.hold]\nloop_secs = 30\nmax_waiting = 1000\nmax_wait_secs = 7200\njoin_when_no_agents = true\n",
    );
    let path = std::env::temp_dir().join(format!("sb-bench-needs-{}.toml", std::process::id()));
    std::fs::write(&path, toml).expect("write the routing file");
    path
}

/// Agent `i`'s three skills, spread evenly, with levels 1 to 100.
fn skills_of(i: usize) -> serde_json::Value {
    let mut skills = serde_json::Map::new();
    for (n, k) in [i % SKILLS, (i / SKILLS) % SKILLS, (i * 7 + 3) % SKILLS]
        .into_iter()
        .enumerate()
    {
        let level = (i * 31 + n * 17) % 100 + 1;
        skills.insert(format!("s{k}"), level.into());
    }
    serde_json::Value::Object(skills)
}

/// A signed `POST /twilio/voice`; its latency and answer.
async fn call(http: &reqwest::Client, base: &str, n: usize, to: &str) -> (Duration, String) {
    let url = format!("{base}/twilio/voice");
    let params = vec![
        ("CallSid".to_owned(), format!("CA{n:032x}")),
        ("From".to_owned(), format!("+1500555{:04}", n % 10_000)),
        ("To".to_owned(), to.to_owned()),
    ];
    let sig = signature::compute(AUTH, &url, &params);
    let started = Instant::now();
    let response = http
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&params).expect("form"))
        .send()
        .await
        .expect("POST /twilio/voice");
    let body = response.text().await.unwrap_or_default();
    (started.elapsed(), body)
}

/// `cmdstat_evalsha`'s calls and microseconds in Redis.
async fn evalsha(conn: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    let line = info
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .unwrap_or("");
    let field = |name: &str| {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls"), field("usec"))
}

/// Decisions to `to(n)`, sequential: p50 and p99 (ms), Redis µs per script,
/// and how many were dialled.
async fn decisions(
    http: &reqwest::Client,
    base: &str,
    conn: &mut redis::aio::MultiplexedConnection,
    first: usize,
    to: impl Fn(usize) -> String,
) -> (f64, f64, f64, usize) {
    let mut took = Vec::with_capacity(DECISIONS);
    let mut dialled = 0;
    let (calls0, usec0) = evalsha(conn).await;
    for n in first..first + DECISIONS {
        let (t, body) = call(http, base, n, &to(n)).await;
        dialled += usize::from(body.contains("<Dial"));
        took.push(t.as_secs_f64() * 1000.0);
    }
    let (calls1, usec1) = evalsha(conn).await;
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    let per_script = (usec1 - usec0) as f64 / (calls1 - calls0).max(1) as f64;
    (at(0.5), at(0.99), per_script, dialled)
}

/// Explain requests/s at 32 in flight for `secs`, and p99 (ms).
async fn explain_rate(http: &reqwest::Client, base: &str, secs: f64) -> (f64, f64) {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32usize {
        let (http, url) = (http.clone(), format!("{base}/v1/routing/explain"));
        tasks.spawn(async move {
            let mut took = Vec::new();
            let mut n = t;
            while Instant::now() < until {
                let body =
                    serde_json::json!({"to": skill_number(n % SKILLS), "waited_secs": n % 7200});
                let started = Instant::now();
                let response = http.post(&url).bearer_auth(ADMIN).json(&body).send().await;
                if let Ok(r) = response
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    took.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                n += 32;
            }
            took
        });
    }
    let mut took = Vec::new();
    while let Some(Ok(mine)) = tasks.join_next().await {
        took.extend(mine);
    }
    took.sort_by(f64::total_cmp);
    let p99 = took
        .get((took.len() as f64 * 0.99) as usize)
        .copied()
        .unwrap_or(0.0);
    (took.len() as f64 / secs, p99)
}

pub async fn measure(secs: f64) -> String {
    println!(
        "== needs100k: {AGENTS} agents, {SKILLS} skills (3 each), {WAITING} waiting with needs nobody free meets =="
    );
    let redis = RedisServer::start().expect("redis-server (apt-get install redis-server)");
    let server = Server::start(&redis, &routing_file());
    let http = switchboard::tls::http_client_builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("http client");
    let mut conn = redis::Client::open(redis.url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let started = Instant::now();
    super::create_agents_with(
        &http,
        &server.base,
        AGENTS,
        |i| serde_json::json!({ "queues": ["plain", "skilled"], "skills": skills_of(i) }),
    )
    .await;
    println!(
        "created {AGENTS} agents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for n in 0..WAITING {
        let (_, body) = call(&http, &server.base, 1_000_000 + n, &rare_number(n % 10)).await;
        assert!(body.contains("<Redirect"), "a rare caller waits: {body}");
    }
    println!("{WAITING} callers wait in `skilled`");

    let (plain_p50, plain_p99, plain_us, plain_dialled) =
        decisions(&http, &server.base, &mut conn, 0, |_| PLAIN.to_owned()).await;
    println!(
        "plain queue (no steps): p50 {plain_p50:.2} ms, p99 {plain_p99:.2} ms, {plain_us:.0} µs in Redis per script; {plain_dialled}/{DECISIONS} dialled"
    );
    let (skilled_p50, skilled_p99, skilled_us, skilled_dialled) =
        decisions(&http, &server.base, &mut conn, 100_000, |n| {
            skill_number(n % SKILLS)
        })
        .await;
    println!(
        "queue with steps and needs, {WAITING} waiting: p50 {skilled_p50:.2} ms, p99 {skilled_p99:.2} ms, {skilled_us:.0} µs in Redis per script; {skilled_dialled}/{DECISIONS} dialled"
    );
    println!(
        "matching cost, with needs / plain: {:.2}x in Redis, {:.2}x at p50",
        skilled_us / plain_us.max(1.0),
        skilled_p50 / plain_p50.max(0.001)
    );

    // The worker's sweeps (every second) with the 500 waiting and free agents
    // none of them can take.
    let (calls0, usec0) = evalsha(&mut conn).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (calls1, usec1) = evalsha(&mut conn).await;
    println!(
        "idle, 5 s of sweeps: {} scripts, {:.1} ms of Redis time a second",
        calls1 - calls0,
        (usec1 - usec0) as f64 / 5_000.0
    );

    let (rate, explain_p99) = explain_rate(&http, &server.base, secs).await;
    println!(
        "POST /v1/routing/explain: {rate:.0} requests/s at 32 in flight, p99 {explain_p99:.2} ms"
    );
    format!(
        "needs100k | decision p99 {skilled_p99:.2} ms (plain {plain_p99:.2}) | Redis per decision {skilled_us:.0} µs vs {plain_us:.0} µs ({:.2}x) | explain {rate:.0}/s",
        skilled_us / plain_us.max(1.0)
    )
}
