//! A queue's figures (issue 20, items 3 and 9): service level over the last
//! 15 and 60 minutes and today, today's tiles, the last hour's trend, the
//! totals and `[queues.targets]`, driven through the webhooks. Long waits are
//! made by moving a call's arrival (`offered_at`) back in Redis, never by
//! sleeping.

mod common;

use common::*;
use redis::AsyncCommands;
use switchboard::config::RoutingTable;

const DESK: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 10
no_answer_delay_secs = 0
max_missed_in_row = 100
timezone = "Asia/Kathmandu"

[defaults.targets]
waiting = { warn = 3, bad = 6 }

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
[queues.hold]
loop_secs = 5
service_level_secs = 20
[queues.targets]
service_level_pct = { warn = 90, bad = 75 }
"#;

async fn desk(app: &TestApp) -> serde_json::Value {
    get_admin(&app.http, app.base(), "/queues/desk").await
}

/// Moves the call's arrival `secs` back, as if it had waited that long.
async fn waited(app: &TestApp, sid: &str, secs: i64) {
    let mut redis = app.redis().await;
    let key = app.key(&format!("call:{sid}"));
    let offered: i64 = redis.hget(&key, "offered_at").await.expect("offered_at");
    let _: () = redis
        .hset(&key, "offered_at", offered - secs * 1000)
        .await
        .expect("hset");
}

#[tokio::test]
async fn an_idle_queue_has_no_service_level_rather_than_zero_percent() {
    let app = spawn_app(DESK).await;
    let doc = desk(&app).await;
    for window in ["last_15m", "last_60m", "today"] {
        let w = &doc["service_level"][window];
        assert!(w.is_object(), "{window} in {doc}");
        assert!(w["pct"].is_null(), "{window}: {w}");
        assert_eq!(w["answered"], 0);
        assert!(w["start"].is_string(), "{w}");
    }
    assert_eq!(doc["service_level"]["target_secs"], 20);
    assert_eq!(doc["today"]["offered"], 0);
    assert!(doc["today"]["asa_secs"].is_null(), "{}", doc["today"]);
    assert!(doc["today"]["aht_secs"].is_null());
    let trend = doc["trend"].as_array().expect("trend");
    assert_eq!(trend.len(), 60);
    assert!(trend.iter().all(|p| p["service_level_pct"].is_null()));
    assert!(trend.iter().all(|p| p["waiting"] == 0));
}

#[tokio::test]
async fn answered_and_abandoned_calls_fill_the_windows_today_and_the_trend() {
    let app = spawn_app(DESK).await;
    app.add_available("a", &["desk"]).await;
    app.add_available("b", &["desk"]).await;

    // Answered at once: within the service level.
    let quick = call_sid(1);
    let dial = app.call(&quick, SUPPORT).await;
    assert!(dialed(&dial).is_some(), "{}", dial.body);
    app.agent_leg(&quick, &dial, "answered").await;
    app.dial_action(&quick, &dial, "completed").await;

    // Answered after 30 s: outside it.
    let slow = call_sid(2);
    let dial = app.call(&slow, SUPPORT).await;
    assert!(dialed(&dial).is_some(), "{}", dial.body);
    waited(&app, &slow, 30).await;
    app.agent_leg(&slow, &dial, "answered").await;
    app.dial_action(&slow, &dial, "completed").await;

    // Both agents in wrap-up: the next callers wait in line, one hangs up
    // after 30 s (abandoned), one at once (a short abandon).
    let gone = call_sid(3);
    let round = app.call(&gone, SUPPORT).await;
    assert!(round.body.contains("<Redirect"), "{}", round.body);
    let short = call_sid(4);
    app.call(&short, SUPPORT).await;
    waited(&app, &gone, 30).await;
    app.call_status(&gone, "completed").await;
    app.call_status(&short, "completed").await;

    let doc = desk(&app).await;
    for window in ["last_15m", "last_60m", "today"] {
        let w = &doc["service_level"][window];
        assert_eq!(w["answered"], 2, "{window}: {w}");
        assert_eq!(w["within"], 1, "{window}: {w}");
        assert_eq!(w["abandoned"], 1, "{window}: {w}");
        assert_eq!(w["short_abandoned"], 1, "{window}: {w}");
        assert_eq!(w["pct"], 33.3, "{window}: {w}");
    }
    let today = &doc["today"];
    assert_eq!(today["offered"], 4, "{today}");
    assert_eq!(today["answered"], 2);
    assert_eq!(today["abandoned"], 1);
    assert_eq!(today["abandoned_pct"], 33.3);
    assert_eq!(today["service_level_pct"], 33.3);
    // Waits of about 0 and 30 s; handle times of about 0 s talk + 10 s wrap-up.
    let asa = today["asa_secs"].as_f64().expect("asa");
    assert!((15.0..16.0).contains(&asa), "{today}");
    let aht = today["aht_secs"].as_f64().expect("aht");
    assert!((10.0..11.0).contains(&aht), "{today}");

    let trend = doc["trend"].as_array().expect("trend");
    assert_eq!(trend.len(), 60);
    let answered: u64 = trend.iter().map(|p| p["answered"].as_u64().unwrap()).sum();
    assert_eq!(answered, 2);
    // Two callers waited together at some point.
    let peak = trend.iter().map(|p| p["waiting"].as_u64().unwrap()).max();
    assert_eq!(peak, Some(2), "{trend:?}");

    let list = get_admin(&app.http, app.base(), "/queues").await;
    let totals = &list["totals"];
    assert_eq!(totals["today"]["offered"], 4, "{totals}");
    assert_eq!(totals["service_level"]["last_15m"]["pct"], 33.3);
    assert!(totals["service_level"]["target_secs"].is_null());
    assert_eq!(totals["waiting"], 0);
}

#[tokio::test]
async fn today_is_the_local_day_of_the_queues_zone() {
    let app = spawn_app(DESK).await;
    let today = &desk(&app).await["today"];
    assert_eq!(today["timezone"], "Asia/Kathmandu");
    let start = today["start"].as_str().expect("start");
    assert!(start.ends_with("T00:00:00+05:45"), "{start}");
}

#[tokio::test]
async fn targets_come_from_the_queue_over_the_defaults_and_the_api_shows_them() {
    let app = spawn_app(DESK).await;
    let targets = &desk(&app).await["targets"];
    assert_eq!(targets["service_level_pct"]["warn"], 90, "{targets}");
    assert_eq!(targets["service_level_pct"]["bad"], 75);
    assert_eq!(targets["waiting"]["warn"], 3);
    assert_eq!(targets["longest_wait_secs"]["bad"], 120);

    let table = RoutingTable::parse(DESK, "r.toml").expect("valid");
    let queue = table.queue("desk").expect("desk");
    assert_eq!(queue.stats.targets.waiting.bad, 6);
    assert_eq!(queue.stats.timezone.iana_name(), Some("Asia/Kathmandu"));
}

#[tokio::test]
async fn upside_down_targets_and_unknown_zones_stop_start_up_with_their_line() {
    let upside =
        "[[queues]]\nname = \"q\"\n[queues.targets]\nservice_level_pct = { warn = 60, bad = 80 }\n";
    let e = RoutingTable::parse(upside, "r.toml").expect_err("refused");
    assert_eq!(e.line, 4, "{e}");
    assert!(
        e.message
            .contains("targets.service_level_pct: warn (60) must be at least bad (80)"),
        "{e}"
    );
    let wait = "[[queues]]\nname = \"q\"\n[queues.targets]\nwaiting = { warn = 9, bad = 3 }\n";
    let e = RoutingTable::parse(wait, "r.toml").expect_err("refused");
    assert!(e.message.contains("must be at most bad (3)"), "{e}");
    let pct = "[defaults.targets]\nabandoned_pct = { warn = 101 }\n";
    let e = RoutingTable::parse(pct, "r.toml").expect_err("refused");
    assert!(e.message.contains("between 0 and 100, not 101"), "{e}");
    let zone = "[defaults]\ntimezone = \"Mars/Olympus\"\n";
    let e = RoutingTable::parse(zone, "r.toml").expect_err("refused");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("not an IANA time zone"), "{e}");
}

#[tokio::test]
async fn the_worker_samples_the_line_and_sets_the_service_level_gauges() {
    // No worker of its own: the test steps it.
    let app = spawn_app_with(DESK, false, |_| {}).await;
    app.add_available("a", &["desk"]).await;
    let quick = call_sid(1);
    let dial = app.call(&quick, SUPPORT).await;
    app.agent_leg(&quick, &dial, "answered").await;
    let waiting = call_sid(2);
    app.call(&waiting, SUPPORT).await;
    // The join counted the caller; wipe the figures' minutes so only the
    // worker's sample can bring the peak back.
    let mut redis = app.redis().await;
    let key = app.key("stats:desk");
    let fields: Vec<String> = redis.hkeys(&key).await.expect("hkeys");
    for field in fields.iter().filter(|f| f.starts_with('m')) {
        let line: String = redis.hget(&key, field).await.expect("hget");
        let mut values: Vec<&str> = line.split(',').collect();
        *values.last_mut().expect("peak") = "0";
        let _: () = redis
            .hset(&key, field, values.join(","))
            .await
            .expect("hset");
    }
    let engine = &app.server.state.engine;
    let peak = |doc: &serde_json::Value| {
        doc["trend"]
            .as_array()
            .expect("trend")
            .iter()
            .map(|p| p["waiting"].as_u64().unwrap())
            .max()
    };
    assert_eq!(peak(&desk(&app).await), Some(0));
    switchboard::worker::refresh_figures(engine)
        .await
        .expect("figures");
    assert_eq!(peak(&desk(&app).await), Some(1));
    let page = app.metrics().await;
    assert_eq!(
        metric(
            &page,
            "switchboard_service_level_ratio{queue=\"desk\",window=\"15m\"}"
        ),
        1.0,
        "{page}"
    );
}
