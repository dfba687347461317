//! Presence by heartbeat: an agent with `heartbeat_secs` that goes silent
//! while free is set offline by the worker (so a closed console is never
//! rung), never while it holds a call; heartbeats keep it available.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::json;

/// The tests of this file one at a time: they read the process-wide count of
/// agents set offline.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An agent `id` in support with heartbeats every `secs`, its token.
async fn agent_with_heartbeats(app: &TestApp, id: &str, secs: u32) -> String {
    let put = app
        .admin(
            Method::PUT,
            &format!("/agents/{id}"),
            Some(json!({
                "name": id,
                "contact": format!("client:{id}"),
                "queues": ["support"],
                "heartbeat_secs": secs,
            })),
        )
        .await;
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(put.json()["heartbeat_secs"], secs);
    let token = app.issue_token(id).await;
    let set = app.set_my_state(&token, "available").await;
    assert_eq!(set.status, 200, "{set:?}");
    token
}

/// Polls agent `id` until its state is `state`, for up to `within`.
async fn wait_for_state(app: &TestApp, id: &str, state: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if app.agent(id).await["state"] == state {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{id} is still {} after {within:?}",
            app.agent(id).await["state"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_silent_agent_goes_offline_and_one_that_beats_stays() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = spawn_app(ROUTING).await;
    agent_with_heartbeats(&app, "silent", 1).await;
    let beating = agent_with_heartbeats(&app, "beating", 1).await;
    app.add_available("plain", &["support"]).await;
    let offline_before = metric(&app.metrics().await, "switchboard_presence_offline_total");

    // Half the deadline (2 × 1 s): nobody is offline yet.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.agent("silent").await["state"], "available");
    let started = Instant::now();
    let mut silent_offline = None;
    while started.elapsed() < Duration::from_secs(4) {
        let beat = app
            .with_token(&beating, Method::POST, "/me/heartbeat", None)
            .await;
        assert_eq!(beat.status, 204);
        if silent_offline.is_none() && app.agent("silent").await["state"] == "offline" {
            silent_offline = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let took = silent_offline.expect("the silent agent was never set offline");
    eprintln!(
        "silent agent offline {took:?} after the 1 s check (deadline 2 s from its last sign)"
    );
    assert_eq!(app.agent("beating").await["state"], "available");
    assert_eq!(
        app.agent("plain").await["state"],
        "available",
        "no heartbeats asked"
    );
    // An agent set offline by the worker is rung no more.
    let dial = app.call(&call_sid(1), SUPPORT).await;
    assert_ne!(dialed(&dial).as_deref(), Some("silent"));
    let offline_after = metric(&app.metrics().await, "switchboard_presence_offline_total");
    assert_eq!(offline_after, offline_before + 1.0, "only the silent agent");
}

#[tokio::test]
async fn an_agent_on_a_call_is_never_set_offline_but_is_after_it() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = spawn_app(ROUTING).await;
    agent_with_heartbeats(&app, "ana", 1).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"));
    app.agent_leg(&sid, &dial, "in-progress").await;
    // Well past its deadline, silent, on the call.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(app.agent("ana").await["state"], "on_call");
    // The call ends; still silent: offline once its wrap-up lets it be free.
    app.agent_leg(&sid, &dial, "completed").await;
    app.dial_action(&sid, &dial, "completed").await;
    let took = wait_for_state(&app, "ana", "offline", Duration::from_secs(5)).await;
    eprintln!("offline {took:?} after the call ended");
}

#[tokio::test]
async fn heartbeats_can_be_turned_off_and_bad_intervals_are_refused() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = spawn_app(ROUTING).await;
    agent_with_heartbeats(&app, "ana", 1).await;
    // The same agent without heartbeat_secs: none expected any more.
    let put = app
        .admin(
            Method::PUT,
            "/agents/ana",
            Some(json!({"name": "ana", "contact": "client:ana", "queues": ["support"]})),
        )
        .await;
    assert_eq!(put.status, 200);
    assert!(put.json()["heartbeat_secs"].is_null());
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(app.agent("ana").await["state"], "available");
    let bad = app
        .admin(
            Method::PUT,
            "/agents/ana",
            Some(json!({"name": "ana", "contact": "client:ana", "queues": [], "heartbeat_secs": 86401})),
        )
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");
}
