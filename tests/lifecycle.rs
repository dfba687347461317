//! A call's life after the first `<Dial>`: answered, completed, missed, hung up,
//! retried callbacks, and the affinity of a caller to the agent who last answered.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// Small timings, so tests wait little: wrap-up and no-answer delay of 1 s.
const LIFECYCLE: &str = r#"
[defaults]
default_queue = "support"
wrap_up_secs = 1
no_answer_delay_secs = 1
max_missed_in_row = 3
max_attempts = 3

[[queues]]
name = "support"
numbers = ["+15005550007"]
fallback = ["number:+15005550010"]

[[queues]]
name = "strict"
numbers = ["+15005550008"]
no_answer_delay_secs = 0
max_attempts = 1
fallback = ["voicemail"]
"#;
const STRICT: &str = "+15005550008";

async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

async fn app_with_agents(ids: &[&str]) -> TestApp {
    let app = spawn_app(LIFECYCLE).await;
    for id in ids {
        app.add_available(id, &["support", "strict"]).await;
        tick().await;
    }
    app
}

#[tokio::test]
async fn a_no_answer_moves_the_call_to_the_next_agent_never_the_same_one() {
    let app = app_with_agents(&["a", "b"]).await;
    let sid = call_sid(1);
    let first = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&first).as_deref(), Some("a"));
    let second = app.dial_action(&sid, &first, "no-answer").await;
    assert_eq!(dialed(&second).as_deref(), Some("b"), "{}", second.body);
    let a = app.agent("a").await;
    assert_eq!(a["state"], "available");
    assert!(
        a["available_at"].is_string(),
        "skipped for no_answer_delay_secs: {a}"
    );
    assert_eq!(a["missed_in_row"], 1);
    assert_eq!(a["call_sid"], serde_json::Value::Null);

    // b is busy too; a is back from its delay but was already tried: fallback.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.agent("a").await["available_at"],
        serde_json::Value::Null
    );
    let third = app.dial_action(&sid, &second, "busy").await;
    assert_eq!(
        third.element_text("Number").as_deref(),
        Some("+15005550010"),
        "{}",
        third.body
    );
    assert_eq!(third.attribute("Dial", "action"), None);
}

#[tokio::test]
async fn max_attempts_ends_in_the_fallback_chain() {
    let app = app_with_agents(&["a", "b", "c", "d"]).await;
    let sid = call_sid(1);
    let mut answer = app.call(&sid, SUPPORT).await;
    for expected in ["a", "b", "c"] {
        assert_eq!(dialed(&answer).as_deref(), Some(expected));
        answer = app.dial_action(&sid, &answer, "failed").await;
    }
    assert_eq!(
        answer.element_text("Number").as_deref(),
        Some("+15005550010"),
        "{}",
        answer.body
    );
    assert_eq!(app.agent("d").await["state"], "available");
}

#[tokio::test]
async fn three_misses_in_a_row_set_the_agent_away_and_an_answer_resets_the_count() {
    let app = app_with_agents(&["a"]).await;
    for n in 1..=2 {
        let sid = call_sid(n);
        let dial = app.call(&sid, STRICT).await;
        assert_eq!(dialed(&dial).as_deref(), Some("a"));
        let next = app.dial_action(&sid, &dial, "no-answer").await;
        assert!(
            next.body.contains("<Record"),
            "max_attempts = 1: voicemail: {}",
            next.body
        );
        assert_eq!(app.agent("a").await["missed_in_row"], n);
    }
    // An answered call resets the count.
    let sid = call_sid(3);
    let dial = app.call(&sid, STRICT).await;
    app.agent_leg(&sid, &dial, "answered").await;
    assert_eq!(app.agent("a").await["missed_in_row"], 0);
    assert_eq!(app.agent("a").await["state"], "on_call");
    let end = app.dial_action(&sid, &dial, "completed").await;
    assert!(end.body.contains("<Hangup/>"));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    for n in 4..=6 {
        let sid = call_sid(n);
        let dial = app.call(&sid, STRICT).await;
        assert_eq!(dialed(&dial).as_deref(), Some("a"), "call {n}");
        app.dial_action(&sid, &dial, "no-answer").await;
    }
    let a = app.agent("a").await;
    assert_eq!(a["state"], "away");
    assert_eq!(a["missed_in_row"], 3);
    assert!(
        app.call(&call_sid(7), STRICT)
            .await
            .body
            .contains("<Record")
    );
    // Set available by an operator: the count starts again.
    app.set_state("a", "available").await;
    assert_eq!(app.agent("a").await["missed_in_row"], 0);
}

#[tokio::test]
async fn a_completed_call_puts_the_agent_in_wrap_up_then_back_in_line() {
    let app = app_with_agents(&["a"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "ringing").await;
    assert_eq!(app.agent("a").await["state"], "reserved");
    app.agent_leg(&sid, &dial, "in-progress").await;
    assert_eq!(app.agent("a").await["state"], "on_call");
    let hangup = app.dial_action(&sid, &dial, "completed").await;
    assert_eq!(hangup.status, 200);
    assert!(hangup.body.contains("<Hangup/>"), "{}", hangup.body);
    // The agent leg's completed arrives after the Dial action: idempotent.
    app.agent_leg(&sid, &dial, "completed").await;
    let a = app.agent("a").await;
    assert_eq!(a["state"], "wrap_up");
    assert!(a["available_at"].is_string());

    let during = app.call(&call_sid(2), SUPPORT).await;
    assert_eq!(
        during.element_text("Number").as_deref(),
        Some("+15005550010"),
        "skipped in wrap-up"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.agent("a").await["state"], "available");
    assert_eq!(
        dialed(&app.call(&call_sid(3), SUPPORT).await).as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_ringing_frees_the_agent_at_once_without_a_miss() {
    let app = app_with_agents(&["a", "b"]).await;
    // Through the number's status callback...
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    assert_eq!(app.call_status(&sid, "canceled").await.status, 200);
    let a = app.agent("a").await;
    assert_eq!(a["state"], "available");
    assert_eq!(a["available_at"], serde_json::Value::Null);
    assert_eq!(a["missed_in_row"], 0);
    // ...the late Dial action then gets no new Dial.
    let late = app.dial_action(&sid, &dial, "canceled").await;
    assert!(late.body.contains("<Hangup/>"), "{}", late.body);
    assert_eq!(app.agent("b").await["state"], "available");

    // Through the Dial action alone (no status callback configured).
    let sid = call_sid(2);
    let dial = app.call(&sid, SUPPORT).await;
    let holder = dialed(&dial).unwrap();
    let end = app.dial_action(&sid, &dial, "canceled").await;
    assert!(end.body.contains("<Hangup/>"));
    let agent = app.agent(&holder).await;
    assert_eq!(agent["state"], "available");
    assert_eq!(agent["missed_in_row"], 0);
}

#[tokio::test]
async fn the_number_status_callback_ends_an_answered_call_in_wrap_up() {
    let app = app_with_agents(&["a"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "answered").await;
    app.call_status(&sid, "completed").await;
    assert_eq!(app.agent("a").await["state"], "wrap_up");
    // Progress statuses change nothing; bad ones are 400.
    assert_eq!(app.call_status(&call_sid(2), "ringing").await.status, 200);
    assert_eq!(app.call_status(&call_sid(2), "exploded").await.status, 400);
}

#[tokio::test]
async fn replayed_callbacks_after_the_agent_moved_on_change_nothing() {
    let app = app_with_agents(&["a", "b"]).await;
    let sid = call_sid(1);
    let first = app.call(&sid, SUPPORT).await;
    let second = app.dial_action(&sid, &first, "no-answer").await;
    assert_eq!(dialed(&second).as_deref(), Some("b"));

    let before = app.snapshot().await;
    // The first attempt's callbacks, again and out of order.
    let replay = app.dial_action(&sid, &first, "no-answer").await;
    assert_eq!(
        replay.body, second.body,
        "a replayed action answers the same TwiML"
    );
    app.agent_leg(&sid, &first, "answered").await;
    app.agent_leg(&sid, &first, "completed").await;
    app.dial_action(&sid, &first, "completed").await;
    assert_eq!(
        app.snapshot().await,
        before,
        "a stale callback changed Redis"
    );

    // b answers and finishes; the same callbacks replayed later change nothing.
    app.agent_leg(&sid, &second, "answered").await;
    let end = app.dial_action(&sid, &second, "completed").await;
    assert!(end.body.contains("<Hangup/>"));
    let before = app.snapshot().await;
    app.agent_leg(&sid, &second, "answered").await;
    assert_eq!(
        app.dial_action(&sid, &second, "completed").await.body,
        end.body
    );
    app.dial_action(&sid, &second, "no-answer").await;
    app.call_status(&sid, "completed").await;
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.agent("b").await["state"], "wrap_up");
}

#[tokio::test]
async fn a_forced_agent_is_not_touched_by_its_old_calls_callbacks() {
    let app = app_with_agents(&["a"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.force_state("a", "offline").await;
    app.agent_leg(&sid, &dial, "answered").await;
    app.dial_action(&sid, &dial, "completed").await;
    assert_eq!(app.agent("a").await["state"], "offline");
}

#[tokio::test]
async fn an_agent_deleted_during_a_call_is_gone_when_it_ends() {
    let app = app_with_agents(&["a"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "answered").await;
    assert_eq!(
        app.admin(reqwest::Method::DELETE, "/agents/a", None)
            .await
            .status,
        204
    );
    app.dial_action(&sid, &dial, "completed").await;
    let mut redis = app.redis().await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(app.key("agent:a"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!exists);
    let q = app
        .admin(reqwest::Method::GET, "/queues/support", None)
        .await
        .json();
    assert_eq!(q["available"], json!([]));
}

#[tokio::test]
async fn a_caller_goes_first_to_the_agent_who_last_answered_them_if_free() {
    let app = app_with_agents(&["a", "b", "c"]).await;
    let caller = "+15005550099";
    let sid = call_sid(1);
    let dial = app.call_from(&sid, caller, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    app.agent_leg(&sid, &dial, "answered").await;
    app.dial_action(&sid, &dial, "completed").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a's wrap-up

    // b and c have been free longer than a, but the caller knows a.
    let again = app.call_from(&call_sid(2), caller, SUPPORT).await;
    assert_eq!(dialed(&again).as_deref(), Some("a"), "affinity hit");
    let page = app.metrics().await;
    assert!(
        page.contains("switchboard_routed_total{queue=\"support\",via=\"affinity\"}"),
        "{page}"
    );

    // a is busy now: the caller's next call goes to the queue as usual.
    let busy = app.call_from(&call_sid(3), caller, SUPPORT).await;
    assert_eq!(dialed(&busy).as_deref(), Some("b"), "affinity miss");
    // Another caller has no affinity.
    assert_eq!(
        dialed(&app.call_from(&call_sid(4), "+15005550098", SUPPORT).await).as_deref(),
        Some("c")
    );
}

#[tokio::test]
async fn a_dial_action_whose_caller_hung_up_reserves_nobody_and_costs_no_miss() {
    let app = app_with_agents(&["a", "b"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    // What Twilio posts when the caller hangs up while the agent rings: the
    // agent leg's no-answer, with the caller's own leg completed.
    let action = app
        .dial_action_with(&sid, &dial, "no-answer", "completed")
        .await;
    assert_eq!(action.status, 200);
    assert!(action.body.contains("<Hangup/>"), "{}", action.body);
    assert_eq!(dialed(&action), None);
    for id in ["a", "b"] {
        let agent = app.agent(id).await;
        assert_eq!(agent["state"], "available", "{agent}");
        assert_eq!(agent["missed_in_row"], 0, "{agent}");
        assert_eq!(agent["available_at"], serde_json::Value::Null, "{agent}");
    }
    // Replayed, it still rings nobody.
    let again = app
        .dial_action_with(&sid, &dial, "no-answer", "completed")
        .await;
    assert!(again.body.contains("<Hangup/>"), "{}", again.body);
    assert_eq!(app.agent("b").await["state"], "available");

    // A Dial action without the caller's CallStatus is refused.
    let url = dial.attribute("Dial", "action").unwrap();
    let bare = post_signed(
        &app.http,
        &url,
        &[("CallSid", sid.as_str()), ("DialCallStatus", "no-answer")],
    )
    .await;
    assert_eq!(bare.status, 400);
}

#[tokio::test]
async fn withheld_caller_ids_share_no_affinity() {
    let app = app_with_agents(&["a", "b", "c"]).await;
    let sid = call_sid(1);
    let dial = app.call_from(&sid, "anonymous", SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    app.agent_leg(&sid, &dial, "answered").await;
    app.dial_action(&sid, &dial, "completed").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a's wrap-up

    // b and c have been free longer: another withheld caller is not a's.
    for (n, from, expected) in [(2, "Anonymous", "b"), (3, "", "c")] {
        let next = app.call_from(&call_sid(n), from, SUPPORT).await;
        assert_eq!(dialed(&next).as_deref(), Some(expected), "From {from:?}");
    }
    let mut redis = app.redis().await;
    let remembered: Vec<String> = redis::cmd("KEYS")
        .arg(app.key("affinity:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(remembered.is_empty(), "{remembered:?}");
}

#[tokio::test]
async fn a_caller_hang_up_takes_back_the_miss_the_agent_legs_no_answer_charged_first() {
    let app = app_with_agents(&["a", "b"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    // Twilio's callbacks race: the agent leg's own no-answer arrives first and
    // is read as a miss ...
    app.agent_leg(&sid, &dial, "no-answer").await;
    assert_eq!(app.agent("a").await["missed_in_row"], 1);
    // ... then the Dial action says the caller's leg is over.
    let action = app
        .dial_action_with(&sid, &dial, "no-answer", "completed")
        .await;
    assert!(action.body.contains("<Hangup/>"), "{}", action.body);
    let a = app.agent("a").await;
    assert_eq!(a["missed_in_row"], 0, "{a}");
    assert_eq!(a["state"], "available", "{a}");
    assert_eq!(
        a["available_at"],
        serde_json::Value::Null,
        "free at once: {a}"
    );
    assert_eq!(
        app.agent("b").await["state"],
        "available",
        "nobody else rang"
    );
}
