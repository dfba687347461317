//! Nobody is stuck: a reservation whose callbacks never come, and a lease whose
//! end is never reported, are released by the worker (invariant 2).

mod common;

use std::time::{Duration, Instant};

use common::*;

const EXPIRY: &str = r#"
[defaults]
default_queue = "support"
ring_timeout_secs = 5
reservation_grace_secs = 1
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

fn metric(page: &str, prefix: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_reservation_whose_callbacks_never_come_is_released_as_a_miss() {
    let app = spawn_app(EXPIRY).await;
    app.add_available("a", &["support"]).await;
    let dial = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    // ring timeout 5 s + grace 1 s + one sweep interval (100 ms), with slack for
    // a loaded machine; the bound is what matters, not the exact time.
    let took = wait_for_state(&app, "a", "available", Duration::from_secs(9)).await;
    assert!(
        took >= Duration::from_secs(5),
        "released before its deadline: {took:?}"
    );
    let a = app.agent("a").await;
    assert_eq!(a["missed_in_row"], 1);
    let page = app
        .http
        .get(format!("{}/metrics", app.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    // The completed callback that finally arrives changes nothing.
    let mut redis = app.redis().await;
    let before = snapshot(&mut redis).await;
    app.dial_action(&sid, &dial, "completed").await;
    assert_eq!(snapshot(&mut redis).await, before);
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
        wait_for_state(&app, &format!("a{i}"), "available", Duration::from_secs(9)).await;
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
