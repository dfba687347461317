//! The waiting line under a randomized load with a replica killed (issue
//! "Callers wait in line", its target run; benches/line-chaos.sh runs the same
//! with the release binary): about 1,000 callers waiting at once across 20
//! holding queues for 200 agents, through three `serve` processes and two `worker`
//! processes on one Redis, with Twilio's REST side played by `simulate`; one
//! replica is killed with SIGKILL in the middle. Callers answer, miss, hang up
//! while ringing and while waiting, press exit keys; some callbacks are lost or
//! sent twice. Checked from outside the servers: no agent on two calls, nobody
//! overtaken, no agent idle beside a waiting caller for longer than a sweep, no
//! caller left in line after hanging up, and afterwards nobody held. Seeded:
//! LINE_CHAOS_SEED replays a run.
#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::process::Process;
use common::*;
use switchboard::redis_server::free_port;
use switchboard::simulate::{self, SimulateArgs};

const QUEUES: usize = 20;
const AGENTS: usize = 200;
/// 200 agents on calls and the rest in line: over 1,000 callers wait at once.
const CALLS: usize = 1250;
const SWEEP_MS: u64 = 250;
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// 20 queues that hold callers, as `benches/line-chaos.sh` runs them too.
const ROUTING: &str = include_str!("../benches/line-routing.toml");

fn number(queue: usize) -> String {
    format!("+150055520{queue:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_waiting_callers_with_a_replica_killed_are_served_in_order() {
    chaos(
        ROUTING.to_owned(),
        (0..QUEUES).map(number).collect(),
        Vec::new(),
    )
    .await;
}

/// The same run routed by need (issue 21): every queue has steps that relax
/// (a skill at level 2 for 2 s, which nobody has; that skill for 2 s; then
/// anyone), each queue has a second number whose calls also need `es`, and
/// the agents have two of four skills. Nobody is overtaken by a caller who
/// needs the same, and no agent idles beside a caller whose current step it
/// meets for longer than a sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_crowd_routed_by_skills_with_steps_that_relax() {
    let mut routing = String::new();
    let mut queue = 0;
    for line in ROUTING.lines() {
        if let Some(rest) = line.strip_prefix("numbers = [\"") {
            let first = rest.trim_end_matches("\"]");
            routing.push_str(&format!(
                "numbers = [\"{first}\", {{ number = \"{}\", needs = \"es\" }}]\n",
                spanish_number(queue)
            ));
            let skill = format!("l{}", queue % 3);
            routing.push_str(&format!(
                "steps = [{{ needs = \"{skill}>=2\", for_secs = 2 }}, {{ needs = \"{skill}\", for_secs = 2 }}, {{ needs = \"any\" }}]\n"
            ));
            queue += 1;
        } else {
            routing.push_str(line);
            routing.push('\n');
        }
    }
    assert_eq!(queue, QUEUES, "every queue got its steps");
    let to = (0..QUEUES)
        .flat_map(|q| [number(q), spanish_number(q)])
        .collect();
    let skills = ["l0", "l1", "l2", "es"].map(String::from).to_vec();
    chaos(routing, to, skills).await;
}

fn spanish_number(queue: usize) -> String {
    format!("+150055521{queue:02}")
}

/// The runs take the machine: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn chaos(routing: String, to: Vec<String>, agent_skills: Vec<String>) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let seed: u64 = std::env::var("LINE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261126);
    eprintln!("line chaos seed {seed} (LINE_CHAOS_SEED={seed} replays it)");
    let redis = start_redis();
    let routing_file = std::env::temp_dir().join(format!(
        "sb-line-chaos-{}-{}.toml",
        std::process::id(),
        to.len()
    ));
    std::fs::write(&routing_file, routing).unwrap();
    let rest = format!("127.0.0.1:{}", free_port().unwrap());
    let sweep = SWEEP_MS.to_string();
    let routing_path = routing_file.to_string_lossy().into_owned();
    let api_url = format!("http://{rest}");
    let env = |public_url: &str| -> Vec<(&'static str, String)> {
        vec![
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.into()),
            ("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN.into()),
            ("SWITCHBOARD_ROUTING", routing_path.clone()),
            ("SWITCHBOARD_SWEEP_INTERVAL_MS", sweep.clone()),
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.into()),
            ("SWITCHBOARD_TWILIO_API_URL", api_url.clone()),
            ("SWITCHBOARD_PUBLIC_URL", public_url.into()),
            ("RUST_LOG", "warn".into()),
        ]
    };
    // Each process's public URL is its own address, which is what simulate
    // signs for; a redirect's URL goes to whichever replica is next, as
    // through a load balancer, since only its path is used.
    let start = |args: &'static [&'static str], name: String| {
        let port = free_port().unwrap();
        let env = env(&format!("http://127.0.0.1:{port}"));
        let redis_url = redis.url();
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Process::start_on(port, args, &redis_url, &name, &env).await
        }
    };
    let mut replicas = Vec::new();
    for i in 0..3 {
        replicas.push(start(&["serve", "--no-worker"], format!("line-chaos-serve-{i}")).await);
    }
    let mut workers = Vec::new();
    for i in 0..2 {
        workers.push(start(&["worker"], format!("line-chaos-worker-{i}")).await);
    }

    let mut args = SimulateArgs::new(replicas[0].base.clone(), AUTH_TOKEN);
    args.urls = replicas.iter().map(|r| r.base.clone()).collect();
    args.admin_token = ADMIN_TOKEN.into();
    args.agents = AGENTS;
    args.agent_queues = (0..QUEUES).map(|i| format!("q{i}")).collect();
    args.agent_queues_each = 2;
    args.calls = CALLS;
    args.concurrency = CALLS;
    args.rate = Some(625.0);
    args.to = to;
    args.agent_skills = agent_skills;
    args.answer = 0.7;
    args.no_answer = 0.12;
    args.busy = 0.05;
    args.hangup = 0.08;
    args.lost = 0.02;
    args.duplicate = 0.05;
    args.ring_ms = 20;
    args.talk_ms = 3000;
    args.hold_ms = 1000;
    args.wait_hangup = 0.03;
    args.wait_key = 0.03;
    args.seed = seed;
    args.rest_listen = Some(rest.parse().unwrap());
    args.account_sid = ACCOUNT_SID.into();
    args.watch_redis = Some(redis.url());
    args.sweep_ms = SWEEP_MS;
    args.json = true;
    // LINE_CHAOS_TRACE=1 prints every request of every call, to follow one.
    args.trace = std::env::var_os("LINE_CHAOS_TRACE").is_some();

    // One replica dies without a word in the middle of it all.
    let victim = replicas.remove(1);
    let killer = tokio::spawn(async move {
        let mut victim = victim;
        tokio::time::sleep(Duration::from_secs(4)).await;
        victim.kill();
        eprintln!("replica killed at +4 s");
        victim
    });
    let started = Instant::now();
    let report = simulate::run(&args).await.expect("simulate runs");
    eprintln!("run took {:?}", started.elapsed());
    drop(killer.await.unwrap());
    report.print(false);

    assert_eq!(report.calls, CALLS as u64);
    assert_eq!(
        report.violations, 0,
        "an agent on two calls, or a position that went up: {:?}",
        report.examples
    );
    assert_eq!(report.errors, 0, "{:?}", report.examples);
    assert_eq!(report.overtaken, 0, "{:?}", report.examples);
    assert!(
        report.line_pairs_judged > 1000,
        "too few callers' order proven for the check to mean much: {report:?}"
    );
    assert!(report.line_looks > 50, "{report:?}");
    assert!(
        report.most_waiting > 900,
        "not the crowd asked for: {report:?}"
    );
    assert_eq!(report.idle_beside_waiters, 0, "{:?}", report.examples);
    assert_eq!(report.left_in_line, 0, "{:?}", report.examples);
    assert!(
        report.retried > 0,
        "the killed replica was never noticed: {report:?}"
    );
    assert!(report.waited > CALLS as u64 / 2, "{report:?}");
    assert!(report.rest_redirects > 100, "{report:?}");

    // Settled: every line empty, every reservation and heartbeat swept, and no
    // agent holds a call.
    let mut conn = redis_conn(&redis.url()).await;
    let started = Instant::now();
    loop {
        let deadlines: u64 = redis::cmd("ZCARD")
            .arg("sb:{default}:deadlines")
            .query_async(&mut conn)
            .await
            .unwrap();
        if deadlines == 0 {
            break;
        }
        // The longest is a line caller's reservation: ring timeout, grace,
        // a round and the heartbeat's 15 s (30 s here).
        if started.elapsed() > Duration::from_secs(40) {
            let left: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg("sb:{default}:deadlines")
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .unwrap();
            panic!("{deadlines} deadlines never swept: {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for q in 0..QUEUES {
        let waiting: u64 = redis::cmd("ZCARD")
            .arg(format!("sb:{{default}}:line:q{q}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(waiting, 0, "q{q} still has callers in line");
    }
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut path = "/agents?limit=1000".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get_admin(&http, &replicas[0].base, &path).await;
        for agent in page["agents"].as_array().unwrap() {
            seen += 1;
            assert!(agent["call_sid"].is_null(), "still held: {agent}");
            assert!(
                matches!(agent["state"].as_str(), Some("available" | "wrap_up")),
                "{agent}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, AGENTS);
    let _ = std::fs::remove_file(&routing_file);
}
