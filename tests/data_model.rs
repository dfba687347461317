//! The data model for speed and scale: one script call per webhook and no
//! PINGs, per-queue counts kept by the scripts, paged agent lists, and keys
//! that expire on their own (a call's tail, a caller's affinity).

mod common;

use std::time::Duration;

use common::*;
use redis::AsyncCommands;

#[tokio::test]
async fn a_full_call_cycle_is_one_script_call_per_webhook_and_no_ping() {
    // No worker: only the webhooks talk to Redis.
    let app = spawn_app_with(ROUTING, false, |_| {}).await;
    app.add_available("a", &["support"]).await;
    let mut conn = app.redis().await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();

    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    app.agent_leg(&sid, &dial, "initiated").await;
    app.agent_leg(&sid, &dial, "ringing").await;
    app.agent_leg(&sid, &dial, "answered").await;
    app.agent_leg(&sid, &dial, "completed").await;
    let end = app.dial_action(&sid, &dial, "completed").await;
    assert!(end.body.contains("<Hangup/>"), "{}", end.body);
    app.call_status(&sid, "completed").await;

    let sent = command_counts(&mut conn).await;
    // voice, answered, completed (leg), Dial action, number status: five
    // scripts; initiated and ringing change nothing and touch no Redis.
    // (commandstats also counts what the scripts run inside Redis, so the
    // check names the commands a client would send around them.)
    assert_eq!(sent.get("evalsha"), Some(&5), "{sent:?}");
    for client_side in [
        "ping", "unwatch", "eval", "script", "hgetall", "zrange", "multi",
    ] {
        assert_eq!(sent.get(client_side), None, "{client_side} sent: {sent:?}");
    }
}

#[tokio::test]
async fn queue_counts_follow_every_move_and_wrap_up_settles_within_a_sweep() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["support", "sales"]).await;
    app.add_available("b", &["support"]).await;
    app.add_agent("c", &["support"]).await;
    let counts = |doc: &serde_json::Value| doc["agents"].clone();
    let support = || app.admin(reqwest::Method::GET, "/queues/support", None);

    let q = support().await.json();
    assert_eq!(counts(&q)["available"], 2);
    assert_eq!(counts(&q)["offline"], 1);

    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    let q = support().await.json();
    assert_eq!(
        (
            counts(&q)["available"].clone(),
            counts(&q)["reserved"].clone()
        ),
        (1.into(), 1.into())
    );
    let sales = app
        .admin(reqwest::Method::GET, "/queues/sales", None)
        .await
        .json();
    assert_eq!(
        sales["agents"]["reserved"], 1,
        "every queue of the agent counts it"
    );

    app.agent_leg(&sid, &dial, "answered").await;
    assert_eq!(support().await.json()["agents"]["on_call"], 1);
    app.dial_action(&sid, &dial, "completed").await;
    // ROUTING's wrap-up is the default 15 s: bring it to its end in Redis and let
    // the worker (100 ms sweeps) settle it.
    let mut conn = app.redis().await;
    let _: () = conn.zadd("sb:{default}:wrap_ups", "a", 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let q = support().await.json();
    assert_eq!(counts(&q)["wrap_up"], 0, "{q}");
    assert_eq!(counts(&q)["available"], 2, "{q}");

    // Changing queues and deleting move the counts too.
    let body = serde_json::json!({ "name": "c", "contact": "client:c", "queues": ["sales"] });
    app.admin(reqwest::Method::PUT, "/agents/c", Some(body))
        .await;
    assert_eq!(support().await.json()["agents"]["offline"], 0);
    assert_eq!(
        app.admin(reqwest::Method::GET, "/queues/sales", None)
            .await
            .json()["agents"]["offline"],
        1
    );
    app.admin(reqwest::Method::DELETE, "/agents/c", None).await;
    app.admin(reqwest::Method::DELETE, "/agents/b", None).await;
    let q = support().await.json();
    assert_eq!(counts(&q)["available"], 1, "{q}");
}

#[tokio::test]
async fn agents_are_listed_a_page_at_a_time() {
    let app = spawn_app(ROUTING).await;
    for i in 0..25 {
        app.add_agent(&format!("agent{i:02}"), &["support"]).await;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/agents?limit=10&cursor={c}"),
            None => "/agents?limit=10".to_owned(),
        };
        let page = app.admin(reqwest::Method::GET, &path, None).await;
        assert_eq!(page.status, 200, "{page:?}");
        let doc = page.json();
        for agent in doc["agents"].as_array().unwrap() {
            seen.insert(agent["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match doc["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 30, "paging never ends");
    }
    assert_eq!(seen.len(), 25);
    // Redis 7.0 pages a set of strings by its hash table; Redis 7.2+ and
    // Valkey keep up to 128 members as one list and give it whole.
    let compact_set = redis_version(&app).await >= (7, 2);
    assert!(
        pages >= 2 || compact_set,
        "25 agents at 10 a page take pages: {pages}"
    );
    for bad in [
        "/agents?limit=0",
        "/agents?limit=10001",
        "/agents?cursor=abc",
    ] {
        assert_eq!(
            app.admin(reqwest::Method::GET, bad, None).await.status,
            422,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn an_ended_call_keeps_a_short_tail_and_affinity_expires_on_its_own() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["support"]).await;
    let sid = call_sid(1);
    let caller = "+15005550099";
    let dial = app.call_from(&sid, caller, SUPPORT).await;
    let mut conn = app.redis().await;
    let key = format!("sb:{{default}}:call:{sid}");
    let ringing: i64 = conn.pttl(&key).await.unwrap();
    assert!(
        ringing > 4 * 3_600_000,
        "a live call's hash outlives its longest call: {ringing}"
    );
    app.agent_leg(&sid, &dial, "answered").await;
    app.dial_action(&sid, &dial, "completed").await;
    let tail: i64 = conn.pttl(&key).await.unwrap();
    assert!(
        (1..=3_600_000).contains(&tail),
        "an ended call keeps an hour: {tail}"
    );

    let affinity: i64 = conn
        .pttl(format!("sb:{{default}}:affinity:{caller}"))
        .await
        .unwrap();
    let thirty_days = 30 * 86_400_000;
    assert!(
        (thirty_days - 60_000..=thirty_days).contains(&affinity),
        "affinity_days as the key's own TTL: {affinity}"
    );
}

/// The `redis_version` (major, minor) the server's Redis reports (Valkey
/// reports the Redis version it is compatible with).
async fn redis_version(app: &TestApp) -> (u32, u32) {
    let mut conn = app.redis().await;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .expect("INFO server has redis_version");
    let mut parts = version.trim().split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}
