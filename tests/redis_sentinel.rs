//! Sentinel mode: the master is found through three Sentinels, and when it is
//! killed (SIGKILL) while calls come in, switchboard follows the failover to
//! the promoted replica without a restart. Callers get the emergency answer
//! only during the gap, routing resumes on the new master, and no agent is on
//! two calls afterwards.

mod common;

use std::time::{Duration, Instant};

use common::sentinel::{MASTER_NAME, SentinelSet};
use common::*;
use switchboard::config::Sentinels;
use switchboard::store::Replicated;

/// A server that finds its Redis through `set`'s Sentinels, with four agents.
async fn app_through(set: &SentinelSet) -> TestApp {
    // Only the master's credentials come from the URL (none here).
    let mut s = settings("redis://127.0.0.1", WITH_EMERGENCY);
    s.redis_sentinels = Some(Sentinels {
        urls: set.urls.clone(),
        master: MASTER_NAME.into(),
    });
    s.redis_timeout = Duration::from_millis(500);
    let server = TestServer::start(s).await;
    let app = TestApp::elsewhere(server);
    for id in ["a", "b", "c", "d"] {
        app.add_available(id, &["sales"]).await;
    }
    app
}

/// Places calls from `n` on until one is routed to an agent again; every
/// other answer meanwhile must be the emergency one. How long it took, the
/// agent, and how many got the emergency answer.
async fn calls_until_routed(app: &TestApp, mut n: u64, limit: Duration) -> (Duration, String, u32) {
    let started = Instant::now();
    let mut emergencies = 0;
    loop {
        let answer = app.call(&call_sid(n), SALES).await;
        n += 1;
        assert_eq!(answer.status, 200, "{answer:?}");
        if let Some(agent) = dialed(&answer) {
            return (started.elapsed(), agent, emergencies);
        }
        assert!(is_emergency(&answer), "{}", answer.body);
        emergencies += 1;
        assert!(started.elapsed() < limit, "routing never resumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_followed_to_the_promoted_replica() {
    let mut set = SentinelSet::start();
    let app = app_through(&set).await;
    let first = app.call(&call_sid(1), SALES).await;
    let held = dialed(&first).expect("routed through the master the Sentinels name");
    let old_master = set.master.port();
    assert_eq!(set.master_port(), Some(old_master));
    // The reservation reached the replica before the master dies.
    tokio::time::sleep(Duration::from_millis(200)).await;

    set.master.stop();
    let (took, agent, emergencies) = calls_until_routed(&app, 2, Duration::from_secs(30)).await;
    eprintln!(
        "routing resumed {took:?} after the master was killed ({emergencies} calls got the emergency answer meanwhile)"
    );
    assert_eq!(set.master_port(), Some(set.replica.port()), "no failover");
    assert_ne!(agent, held, "{held} was handed a second call");
    assert!(
        took < Duration::from_secs(15),
        "routing resumed only after {took:?}"
    );
    // Afterwards every agent holds one call at most.
    let mut holders = std::collections::HashMap::new();
    for id in ["a", "b", "c", "d"] {
        let agent = app.agent(id).await;
        if let Some(call) = agent["call_sid"].as_str() {
            assert!(
                holders.insert(call.to_owned(), id).is_none(),
                "{call} held twice"
            );
        }
    }
    assert_eq!(holders.len(), 2, "{holders:?}");
}

/// A manual failover demotes a master that stays up: its writes are refused
/// (READONLY), and switchboard leaves it for the master the Sentinels name now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_demoted_while_it_stays_up_is_left_for_the_new_one() {
    let set = SentinelSet::start();
    let app = app_through(&set).await;
    assert!(dialed(&app.call(&call_sid(1), SALES).await).is_some());
    let client = redis::Client::open(set.urls[0].as_str()).unwrap();
    let mut sentinel = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(MASTER_NAME)
        .query_async(&mut sentinel)
        .await
        .unwrap();
    let started = Instant::now();
    while set.master_port() != Some(set.replica.port()) {
        assert!(started.elapsed() < Duration::from_secs(20), "no failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (took, _, _) = calls_until_routed(&app, 2, Duration::from_secs(20)).await;
    eprintln!("routing resumed {took:?} after the Sentinels named the new master");
    // And it keeps working there, writes included.
    assert!(dialed(&app.call(&call_sid(100), SALES).await).is_some());
}

#[test]
fn sentinel_mode_refuses_a_tls_url_rather_than_connect_in_plain_text() {
    let error = settings_from_args(&[
        "--redis-url",
        "rediss://:secret@ignored:6380",
        "--redis-sentinels",
        "redis://127.0.0.1:26379",
        "--redis-sentinel-master",
        "m",
    ])
    .map(|_| ())
    .unwrap_err();
    assert!(
        error.to_string().contains("does not support TLS"),
        "{error}"
    );
}

/// In Sentinel mode each reservation is confirmed by a replica (`WAIT 1`)
/// before its agent is dialled. Prints what that costs, against the same master
/// reached directly; with the replica down, one reservation waits the replica
/// wait (50 ms) and the ones after it do not wait at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_wait_for_a_replica_and_its_cost_is_measured() {
    let mut set = SentinelSet::start();
    let through_sentinels = app_through(&set).await;
    let mut direct_settings = settings(&set.master.url(), WITH_EMERGENCY);
    direct_settings.redis_timeout = Duration::from_millis(500);
    let direct = TestApp::elsewhere(TestServer::start(direct_settings).await);
    let calls = 200u64;
    let latency = |app: &'static str| (app, Vec::new());
    let mut measured = [
        latency("through Sentinels (WAIT 1)"),
        latency("direct (no WAIT)"),
    ];
    for n in 0..calls {
        for (i, app) in [&through_sentinels, &direct].into_iter().enumerate() {
            let sid = call_sid(1000 + n * 2 + i as u64);
            let started = std::time::Instant::now();
            let answer = app.call(&sid, SALES).await;
            measured[i].1.push(started.elapsed());
            assert!(dialed(&answer).is_some(), "{}", answer.body);
            app.call_status(&sid, "completed").await;
        }
    }
    for (name, mut took) in measured {
        took.sort();
        let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
        eprintln!(
            "incoming call webhook, {name}: p50 {:?}, p99 {:?} ({calls} calls, one at a time)",
            at(0.50),
            at(0.99)
        );
    }
    let page = through_sentinels.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_redis_script_duration_seconds_count{script=\"wait_replica\"}"
        ) >= calls as f64,
        "{page}"
    );

    // No replica: nothing confirms within the replica wait, and reservations
    // do not wait for one for a moment (NO_REPLICA_BACKOFF, far longer than
    // the ten calls below take), so calls are dialled at their usual speed.
    set.replica.stop();
    let store = through_sentinels.server.state.engine.store();
    let first = store.wait_for_replica().await;
    assert!(matches!(first, Ok(Replicated::NotConfirmed)), "{first:?}");
    let next = store.wait_for_replica().await;
    assert!(matches!(next, Ok(Replicated::NotAsked)), "{next:?}");
    for n in 0..10 {
        let started = std::time::Instant::now();
        let answer = through_sentinels.call(&call_sid(9000 + n), SALES).await;
        let took = started.elapsed();
        assert!(dialed(&answer).is_some(), "{}", answer.body);
        through_sentinels
            .call_status(&call_sid(9000 + n), "completed")
            .await;
        eprintln!("with the replica down, call {n} was dialled after {took:?}");
    }
}

/// The chaos run of issue "Every Redis a user runs": three replicas through the
/// Sentinels, a random mix with lost and duplicated callbacks, and the master
/// killed in the middle. No agent is ever on two calls, every webhook a caller
/// waits on is answered 200 with TwiML (status callbacks refused during the
/// gap are sent again, as Twilio's connection overrides ask), and once
/// everything settles no agent is stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_in_the_middle_of_a_random_mix_books_nobody_twice_and_settles_clean() {
    // Short deadlines, so lost callbacks settle within the test.
    let routing = WITH_EMERGENCY.replace(
        "wrap_up_secs = 0",
        "wrap_up_secs = 0\nring_timeout_secs = 5\nreservation_grace_secs = 5\nmax_call_secs = 3\nno_answer_delay_secs = 0\nmax_missed_in_row = 1000",
    );
    let mut set = SentinelSet::start();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let mut s = settings("redis://127.0.0.1", &routing);
        s.redis_sentinels = Some(Sentinels {
            urls: set.urls.clone(),
            master: MASTER_NAME.into(),
        });
        s.redis_timeout = Duration::from_millis(500);
        replicas.push(TestServer::start(s).await);
    }
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let agents = 12;
    for i in 0..agents {
        let id = format!("agent{i}");
        assert_eq!(
            put_agent(&http, &replicas[0].base, ADMIN_TOKEN, &id, &["sales"]).await,
            201
        );
        put_state(&http, &replicas[0].base, ADMIN_TOKEN, &id, "available").await;
    }
    let mut args = switchboard::simulate::SimulateArgs::new(replicas[0].base.clone(), AUTH_TOKEN);
    args.urls = replicas.iter().map(|r| r.base.clone()).collect();
    args.calls = 400;
    args.concurrency = 20;
    args.rate = Some(50.0);
    args.to = vec![SALES.into()];
    args.answer = 0.6;
    args.no_answer = 0.15;
    args.busy = 0.05;
    args.hangup = 0.2;
    args.lost = 0.05;
    args.duplicate = 0.1;
    args.ring_ms = 20;
    args.talk_ms = 100;
    args.seed = 20261126;
    args.json = true;
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        set.master.stop();
        eprintln!("master killed at +3 s");
        set
    });
    let report = switchboard::simulate::run(&args)
        .await
        .expect("simulate runs");
    let set = killer.await.unwrap();
    report.print(false);
    assert_eq!(set.master_port(), Some(set.replica.port()), "no failover");
    assert_eq!(
        report.violations, 0,
        "an agent on two calls: {:?}",
        report.examples
    );
    assert_eq!(report.errors, 0, "{:?}", report.examples);

    // Settled: lost callbacks are covered by the deadlines (reservations
    // 10 s, leases 3 s); then nobody holds a call.
    let started = Instant::now();
    loop {
        let mut held = Vec::new();
        for i in 0..agents {
            let agent = get_admin(&http, &replicas[1].base, &format!("/agents/agent{i}")).await;
            if !agent["call_sid"].is_null() || agent["state"] != "available" {
                held.push(agent);
            }
        }
        if held.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "stuck after the failover settled: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
