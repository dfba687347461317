//! Nobody is stuck: a reservation whose callbacks never come, and a lease whose
//! end is never reported, are released by the worker (invariant 2).

mod common;

use std::time::{Duration, Instant};

use common::*;

const EXPIRY: &str = r#"
[defaults]
default_queue = "support"
ring_timeout_secs = 5
reservation_grace_secs = 5
max_call_secs = 2
wrap_up_secs = 0
no_answer_delay_secs = 0

[[queues]]
name = "support"
numbers = ["+15005550007"]
"#;

/// Polls the agent until `state` or `limit` passes; returns how long it took.
async fn wait_for_state(app: &TestApp, id: &str, state: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if app.agent(id).await["state"] == state {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{id} did not become {state} within {limit:?}: {}",
        app.agent(id).await
    );
}

#[tokio::test]
async fn a_reservation_whose_callbacks_never_come_is_released_as_a_miss() {
    let app = spawn_app(EXPIRY).await;
    app.add_available("a", &["support"]).await;
    let dial = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    // ring timeout 5 s + grace 5 s + one sweep interval (100 ms), with slack for
    // a loaded machine; the bound is what matters, not the exact time.
    let took = wait_for_state(&app, "a", "available", Duration::from_secs(14)).await;
    assert!(
        took >= Duration::from_secs(9),
        "released before its deadline: {took:?}"
    );
    let a = app.agent("a").await;
    assert_eq!(a["missed_in_row"], 1);
    let page = app.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_reservations_expired_total{queue=\"support\"}"
        ) >= 1.0,
        "{page}"
    );
    assert!(
        page.contains("switchboard_agents{queue=\"support\",state=\"available\"}"),
        "{page}"
    );

    // The late Dial action moves the call on (no other agent: fallback), and
    // does not touch a again.
    let late = app.dial_action(&call_sid(1), &dial, "no-answer").await;
    assert!(late.body.contains("<Record"), "{}", late.body);
    assert_eq!(app.agent("a").await["missed_in_row"], 1);
}

#[tokio::test]
async fn a_lease_whose_end_is_never_reported_ends_at_max_call_secs() {
    let app = spawn_app(EXPIRY).await;
    app.add_available("a", &["support"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dial.attribute("Dial", "timeLimit").as_deref(), Some("2"));
    app.agent_leg(&sid, &dial, "answered").await;
    assert_eq!(app.agent("a").await["state"], "on_call");
    let took = wait_for_state(&app, "a", "available", Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(1500),
        "lease ended early: {took:?}"
    );
    // The worker's wrap-up settling (a sweep later) is not what is checked:
    // wait for it, so the snapshot holds still.
    let mut conn = app.redis().await;
    let started = std::time::Instant::now();
    loop {
        let stored: Option<String> = redis::cmd("HGET")
            .arg(app.key("agent:a"))
            .arg("state")
            .query_async(&mut conn)
            .await
            .unwrap();
        if stored.as_deref() == Some("available") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{stored:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The call the worker ended is among the agent's last calls, as long as
    // its lease lasted (its end is the lease's, not a report's).
    let calls = app
        .admin(reqwest::Method::GET, "/agents/a/calls", None)
        .await;
    assert_eq!(calls.status, 200, "{calls:?}");
    let calls = calls.json()["calls"].clone();
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");
    assert_eq!(calls[0]["call_sid"], sid);
    assert!(calls[0]["answered"].is_string(), "{calls}");
    let talk = calls[0]["talk_secs"].as_u64().unwrap();
    assert!((1..=3).contains(&talk), "{calls}");
    // The completed callback that finally arrives changes nothing.
    let before = app.snapshot().await;
    app.dial_action(&sid, &dial, "completed").await;
    let after = app.snapshot().await;
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| after.get(*k) != before.get(*k))
        .collect();
    assert_eq!(after, before, "changed: {changed:?}");
}

#[tokio::test]
async fn many_workers_sweeping_at_once_release_each_reservation_once() {
    let app = spawn_app(EXPIRY).await;
    let mut extra = Vec::new();
    for _ in 0..3 {
        extra.push(TestServer::start(settings(&app.redis.url(), EXPIRY)).await);
    }
    for i in 0..20 {
        app.add_available(&format!("a{i}"), &["support"]).await;
    }
    for n in 0..20 {
        app.call(&call_sid(n), SUPPORT).await;
    }
    for i in 0..20 {
        wait_for_state(&app, &format!("a{i}"), "available", Duration::from_secs(14)).await;
    }
    for i in 0..20 {
        assert_eq!(
            app.agent(&format!("a{i}")).await["missed_in_row"],
            1,
            "released once"
        );
    }
    let mut redis = app.redis().await;
    let left: i64 = redis::cmd("ZCARD")
        .arg("sb:{default}:deadlines")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// `switchboard worker` alone sweeps for servers started with `--no-worker`.
#[tokio::test]
async fn a_separate_worker_process_releases_for_servers_without_workers() {
    // reqwest::get builds a client: the TLS provider must be there first.
    switchboard::tls::install_crypto_provider();
    let app = spawn_app_with(EXPIRY, false, |_| {}).await;
    app.add_available("a", &["support"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "answered").await;

    let dir = std::env::temp_dir().join(format!("sb-worker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routing = dir.join("routing.toml");
    std::fs::write(&routing, EXPIRY).unwrap();
    let port = switchboard::redis_server::free_port().unwrap();
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("worker")
        .env("SWITCHBOARD_REDIS_URL", app.redis.url())
        .env("SWITCHBOARD_ROUTING", &routing)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_SWEEP_INTERVAL_MS", "100")
        .env("SWITCHBOARD_LOG_FORMAT", "pretty")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start switchboard worker");

    // The lease (max_call_secs = 2) is ended by the worker process alone.
    let result = tokio::time::timeout(
        Duration::from_secs(6),
        wait_for_state(&app, "a", "available", Duration::from_secs(6)),
    )
    .await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .map(|r| r.status());
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result.expect("the worker released the agent");
    assert_eq!(metrics.expect("the worker serves /metrics"), 200);
}

/// Agents a and b; a call rings a, and no callback comes until the worker has
/// released a's reservation as a miss. The call's sid and its `<Dial>`.
async fn call_released_unanswered(app: &TestApp) -> (String, Answer) {
    app.add_available("a", &["support"]).await;
    app.add_available("b", &["support"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    wait_for_state(app, "a", "available", Duration::from_secs(14)).await;
    (sid, dial)
}

/// The agent answered but the "answered" callback was lost: the worker releases
/// the reservation as a miss. The late reports then take the agent back, and the
/// call is never offered to anyone else.
#[tokio::test]
async fn a_late_answer_after_the_reservation_expired_takes_the_agent_back() {
    let app = spawn_app(EXPIRY).await;
    let (sid, dial) = call_released_unanswered(&app).await;
    assert_eq!(app.agent("a").await["missed_in_row"], 1);

    app.agent_leg(&sid, &dial, "answered").await;
    let a = app.agent("a").await;
    assert_eq!(a["state"], "on_call", "{a}");
    assert_eq!(a["missed_in_row"], 0);
    assert_eq!(a["call_sid"], sid.as_str());
    let queue = app
        .admin(reqwest::Method::GET, "/queues/support", None)
        .await
        .json();
    assert_eq!(
        queue["available"],
        serde_json::json!(["b"]),
        "a is out of line again"
    );

    let end = app.dial_action(&sid, &dial, "completed").await;
    assert!(end.body.contains("<Hangup/>"), "{}", end.body);
    assert_eq!(
        app.agent("b").await["state"],
        "available",
        "nobody else was rung"
    );
    assert!(matches!(
        app.agent("a").await["state"].as_str(),
        Some("wrap_up" | "available")
    ));
}

/// Only the final Dial action of an answered call arrives, after the worker
/// released the reservation: the caller is hung up on, nobody new is rung.
#[tokio::test]
async fn a_completed_dial_action_after_expiry_never_rings_another_agent() {
    let app = spawn_app(EXPIRY).await;
    let (sid, dial) = call_released_unanswered(&app).await;
    let end = app.dial_action(&sid, &dial, "completed").await;
    assert!(end.body.contains("<Hangup/>"), "{}", end.body);
    assert_eq!(app.agent("b").await["state"], "available");
    assert_eq!(
        app.agent("a").await["missed_in_row"],
        0,
        "the answered call is no miss"
    );

    // An operator's change in between wins over a late report.
    let sid = call_sid(2);
    let dial = app.call(&sid, SUPPORT).await;
    let holder = dialed(&dial).unwrap();
    wait_for_state(&app, &holder, "available", Duration::from_secs(14)).await;
    app.set_state(&holder, "offline").await;
    app.agent_leg(&sid, &dial, "answered").await;
    assert_eq!(app.agent(&holder).await["state"], "offline");
}

#[tokio::test]
async fn a_deadline_entry_nobody_wrote_is_dropped_and_stalls_nothing() {
    let app = spawn_app(EXPIRY).await;
    app.add_available("a", &["support"]).await;
    let mut redis = app.redis().await;
    let _: () = redis::cmd("ZADD")
        .arg("sb:{default}:deadlines")
        .arg(0)
        .arg("garbage")
        .query_async(&mut redis)
        .await
        .unwrap();
    app.call(&call_sid(1), SUPPORT).await;
    wait_for_state(&app, "a", "available", Duration::from_secs(14)).await;
    let left: i64 = redis::cmd("ZCARD")
        .arg("sb:{default}:deadlines")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
