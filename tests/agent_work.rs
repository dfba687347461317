//! An agent's work around its calls: away reasons from the routing file's
//! list (accepted, refused, cleared, in the agent document and its events), a
//! wrap-up (disposition code and note) of a call the agent answered, stored
//! with the call and refused for another agent's call or an unknown code, and
//! the agent's last calls, capped at 20 and newest first.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

const ROUTING_WITH_LISTS: &str = r#"
[console]
away_reasons = ["lunch", "training", "meeting"]
dispositions = ["sale", "support", "no-sale"]

[defaults]
default_queue = "support"
wrap_up_secs = 0

[[queues]]
name = "support"
numbers = ["+15005550007"]

[[queues]]
name = "vip"
numbers = ["+15005550008"]
dispositions = ["vip-care"]
"#;

/// A call from `from` to `to`, rung at `expect`, answered and completed.
async fn answered_call(app: &TestApp, n: u64, from: &str, to: &str, expect: &str) -> String {
    let sid = call_sid(n);
    let dial = app.call_from(&sid, from, to).await;
    assert_eq!(dialed(&dial).as_deref(), Some(expect), "call {n}: {dial:?}");
    app.agent_leg(&sid, &dial, "answered").await;
    let end = app.dial_action(&sid, &dial, "completed").await;
    assert!(end.body.contains("<Hangup/>"), "{end:?}");
    sid
}

async fn wrap_up(app: &TestApp, token: &str, sid: &str, body: serde_json::Value) -> Answer {
    app.with_token(
        token,
        Method::PUT,
        &format!("/me/calls/{sid}/wrap-up"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn an_away_reason_from_the_list_is_kept_shown_and_cleared() {
    let app = spawn_app(ROUTING_WITH_LISTS).await;
    app.add_agent("ana", &["support"]).await;
    let token = app.issue_token("ana").await;
    let mut events = SseClient::open(&app, ADMIN_TOKEN, None).await;

    let away = app
        .with_token(
            &token,
            Method::PUT,
            "/me/state",
            Some(json!({"state": "away", "reason": "lunch"})),
        )
        .await;
    assert_eq!(away.status, 200, "{away:?}");
    assert_eq!(away.json()["state"], "away");
    assert_eq!(away.json()["away_reason"], "lunch");
    assert_eq!(app.agent("ana").await["away_reason"], "lunch");
    events
        .until("agent_state", Duration::from_secs(10), |e| {
            e.data["agent"] == "ana"
                && e.data["state"] == "away"
                && e.data["away_reason"] == "lunch"
        })
        .await;

    // Another reason while away is a change too (an event), by an admin here.
    let admin = app
        .admin(
            Method::PUT,
            "/agents/ana/state",
            Some(json!({"state": "away", "reason": "meeting"})),
        )
        .await;
    assert_eq!(admin.status, 200, "{admin:?}");
    assert_eq!(app.agent("ana").await["away_reason"], "meeting");
    events
        .until("agent_state", Duration::from_secs(10), |e| {
            e.data["state"] == "away" && e.data["away_reason"] == "meeting"
        })
        .await;

    // Refused: a reason not in the list (a listed reason with another state
    // is dropped, not refused: the served schema lists the reasons, and a body
    // it accepts is one the API accepts).
    for body in [json!({"state": "away", "reason": "nap"})] {
        let refused = app
            .with_token(&token, Method::PUT, "/me/state", Some(body.clone()))
            .await;
        assert_eq!(refused.status, 422, "{body}: {refused:?}");
        assert!(refused.json()["error"].is_string());
    }
    assert_eq!(app.agent("ana").await["away_reason"], "meeting");

    // Away with no reason is allowed, and clears the one before.
    let plain = app.set_my_state(&token, "away").await;
    assert_eq!(plain.status, 200, "{plain:?}");
    assert!(plain.json()["away_reason"].is_null(), "{plain:?}");

    // Any other state clears it.
    app.admin(
        Method::PUT,
        "/agents/ana/state",
        Some(json!({"state": "away", "reason": "training"})),
    )
    .await;
    assert_eq!(app.agent("ana").await["away_reason"], "training");
    let back = app.set_my_state(&token, "available").await;
    assert_eq!(back.status, 200);
    assert!(app.agent("ana").await["away_reason"].is_null());
    let seen = events
        .until("agent_state", Duration::from_secs(10), |e| {
            e.data["state"] == "available"
        })
        .await;
    assert!(
        seen.last().unwrap().data.get("away_reason").is_none(),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn without_a_configured_list_away_takes_no_reason() {
    let app = spawn_app(ROUTING).await;
    app.add_agent("ana", &["support"]).await;
    let refused = app
        .admin(
            Method::PUT,
            "/agents/ana/state",
            Some(json!({"state": "away", "reason": "lunch"})),
        )
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    let plain = app
        .admin(
            Method::PUT,
            "/agents/ana/state",
            Some(json!({"state": "away"})),
        )
        .await;
    assert_eq!(plain.status, 200);
    let token = app.issue_token("ana").await;
    let me = app
        .with_token(&token, Method::GET, "/me", None)
        .await
        .json();
    assert_eq!(me["away_reasons"], json!([]));
}

#[tokio::test]
async fn the_agent_who_answered_a_call_gives_its_wrap_up() {
    let app = spawn_app(ROUTING_WITH_LISTS).await;
    app.add_agent("ana", &["support"]).await;
    app.add_agent("bob", &["support"]).await;
    let ana = app.issue_token("ana").await;
    let bob = app.issue_token("bob").await;
    app.set_my_state(&ana, "available").await;
    let mut events = SseClient::open(&app, &ana, None).await;

    // The console's pickers: the reasons `away` takes, and the codes the
    // held call's wrap-up takes (its queue's).
    let me = app.with_token(&ana, Method::GET, "/me", None).await.json();
    assert_eq!(me["away_reasons"], json!(["lunch", "training", "meeting"]));
    let sid = call_sid(1);
    let dial = app.call_from(&sid, "+15005550123", SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"));
    let me = app.with_token(&ana, Method::GET, "/me", None).await.json();
    assert_eq!(me["call"]["call_sid"], sid);
    assert_eq!(
        me["call"]["dispositions"],
        json!(["sale", "support", "no-sale"])
    );
    // Ringing: not answered yet.
    let early = wrap_up(&app, &ana, &sid, json!({"code": "sale"})).await;
    assert_eq!(early.status, 409, "{early:?}");
    app.agent_leg(&sid, &dial, "answered").await;
    app.dial_action(&sid, &dial, "completed").await;

    let given = wrap_up(
        &app,
        &ana,
        &sid,
        json!({"code": "sale", "note": "wants the blue one"}),
    )
    .await;
    assert_eq!(given.status, 200, "{given:?}");
    assert_eq!(
        given.json(),
        json!({"call_sid": sid, "queue": "support", "code": "sale",
            "note": "wants the blue one", "replaced": false})
    );
    let event = events
        .until("wrap_up", Duration::from_secs(10), |_| true)
        .await
        .pop()
        .unwrap();
    assert_eq!(event.data["call_sid"], sid);
    assert_eq!(event.data["agent"], "ana");
    assert_eq!(event.data["code"], "sale");
    assert_eq!(event.data["note"], "wants the blue one");
    assert_eq!(event.data["replaced"], false);

    // Given again, it replaces the one before.
    let again = wrap_up(&app, &ana, &sid, json!({"code": "no-sale"})).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["replaced"], true);
    let history = app.admin(Method::GET, &format!("/calls/{sid}"), None).await;
    assert_eq!(history.status, 200);
    let history = history.json();
    assert_eq!(history["wrap_up"]["agent"], "ana");
    assert_eq!(history["wrap_up"]["code"], "no-sale");
    assert_eq!(history["wrap_up"]["note"], "");
    assert!(history["wrap_up"]["at"].is_string());
    let wrap_ups: Vec<&serde_json::Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "wrap_up")
        .collect();
    assert_eq!(wrap_ups.len(), 2, "{history:#}");
    assert_eq!(wrap_ups[1]["data"]["code"], "no-sale");
    assert_eq!(wrap_ups[1]["data"]["replaced"], true);

    // In the agent's last calls, seen by the agent and by an admin.
    let mine = app.with_token(&ana, Method::GET, "/me/calls", None).await;
    assert_eq!(mine.status, 200, "{mine:?}");
    let calls = mine.json()["calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call["call_sid"], sid);
    assert_eq!(call["from"], "+15005550123");
    assert_eq!(call["queue"], "support");
    for field in ["started", "answered", "ended"] {
        assert!(call[field].is_string(), "{field}: {call}");
    }
    assert!(call["talk_secs"].is_u64(), "{call}");
    assert_eq!(call["wrap_up"]["code"], "no-sale");
    assert_eq!(call["dispositions"], json!(["sale", "support", "no-sale"]));
    let ended = time::OffsetDateTime::parse(
        call["ended"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until = time::OffsetDateTime::parse(
        call["wrap_up_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(until - ended, time::Duration::minutes(30), "{call}");
    let by_admin = app.admin(Method::GET, "/agents/ana/calls", None).await;
    assert_eq!(by_admin.status, 200);
    assert_eq!(by_admin.json()["calls"], json!(calls));

    // Another agent's call, an unknown code, a code of another queue's list,
    // a bad note: refused, nothing changed.
    let other = wrap_up(&app, &bob, &sid, json!({"code": "sale"})).await;
    assert_eq!(other.status, 404, "{other:?}");
    for body in [
        json!({"code": "upsell"}),
        json!({"code": "vip-care"}),
        json!({"code": "sale", "note": "two\nlines"}),
        json!({"code": "sale", "note": "x".repeat(501)}),
    ] {
        let refused = wrap_up(&app, &ana, &sid, body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {refused:?}");
    }
    let unknown = wrap_up(&app, &ana, &call_sid(99), json!({"code": "sale"})).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let history = app
        .admin(Method::GET, &format!("/calls/{sid}"), None)
        .await
        .json();
    assert_eq!(history["wrap_up"]["code"], "no-sale");
    let bobs = app.with_token(&bob, Method::GET, "/me/calls", None).await;
    assert_eq!(bobs.json()["calls"], json!([]));
}

#[tokio::test]
async fn a_queues_own_dispositions_replace_the_tables() {
    let app = spawn_app(ROUTING_WITH_LISTS).await;
    app.add_available("ana", &["vip"]).await;
    let token = app.issue_token("ana").await;
    let sid = answered_call(&app, 1, "+15005550123", VIP, "ana").await;
    let refused = wrap_up(&app, &token, &sid, json!({"code": "sale"})).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    let given = wrap_up(&app, &token, &sid, json!({"code": "vip-care"})).await;
    assert_eq!(given.status, 200, "{given:?}");
    assert_eq!(given.json()["queue"], "vip");
    let calls = app.with_token(&token, Method::GET, "/me/calls", None).await;
    assert_eq!(
        calls.json()["calls"][0]["dispositions"],
        json!(["vip-care"])
    );
}

#[tokio::test]
async fn an_agents_last_calls_are_the_newest_twenty() {
    let app = spawn_app(ROUTING_WITH_LISTS).await;
    app.add_available("ana", &["support"]).await;
    let token = app.issue_token("ana").await;
    let mut sids = Vec::new();
    for n in 1..=23 {
        let from = format!("+1500555{:04}", 1000 + n);
        sids.push(answered_call(&app, n, &from, SUPPORT, "ana").await);
    }
    // A wrap-up given after its call ended reaches its entry.
    let given = wrap_up(&app, &token, &sids[22], json!({"code": "support"})).await;
    assert_eq!(given.status, 200, "{given:?}");

    let calls = app
        .with_token(&token, Method::GET, "/me/calls", None)
        .await
        .json()["calls"]
        .as_array()
        .unwrap()
        .clone();
    let listed: Vec<&str> = calls
        .iter()
        .map(|c| c["call_sid"].as_str().unwrap())
        .collect();
    let newest: Vec<&str> = sids.iter().rev().take(20).map(String::as_str).collect();
    assert_eq!(listed, newest);
    assert_eq!(calls[0]["wrap_up"]["code"], "support");
    assert!(calls[1]["wrap_up"].is_null());
    // The list is one bounded key.
    let mut redis = app.redis().await;
    let len: usize = redis::cmd("LLEN")
        .arg(app.key("agent_calls:ana"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(len, 20);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(app.key("agent_calls:ana"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(ttl > 0, "the list expires: {ttl}");
}

#[test]
fn a_bad_list_stops_start_up_at_its_line() {
    use switchboard::config::RoutingTable;
    for (toml, line, said) in [
        (
            "[console]\naway_reasons = [\"lunch\", \"lunch\"]\n",
            2,
            "lists \"lunch\" twice",
        ),
        (
            "[console]\ndispositions = [\"ok\"]\n\n[[queues]]\nname = \"q\"\ndispositions = [\"<b>\"]\n",
            6,
            "dispositions entry \"<b>\"",
        ),
        (
            "[console]\nreasons = [\"x\"]\n",
            2,
            "unknown field `reasons`",
        ),
    ] {
        let e = RoutingTable::parse(toml, "r.toml").expect_err(toml);
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains(said), "{e}");
    }
}
