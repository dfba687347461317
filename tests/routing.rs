//! Incoming calls reach the agent free the longest, atomically, and the same
//! CallSid always gets the same answer.

mod common;

use std::time::Duration;

use common::*;
use redis::AsyncCommands;

/// Redis TIME has ms resolution; a short pause makes "freed earlier" unambiguous.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn calls_go_to_the_agent_free_the_longest_first() {
    let app = spawn_app(ROUTING).await;
    for id in ["carol", "alice", "bob"] {
        app.add_available(id, &["support"]).await;
        tick().await;
    }
    let mut order = Vec::new();
    for n in 1..=3 {
        let a = app.call(&call_sid(n), SUPPORT).await;
        assert_eq!(a.status, 200);
        assert!(a.content_type.starts_with("text/xml"), "{}", a.content_type);
        order.push(dialed(&a).expect("a <Dial><Client>"));
    }
    assert_eq!(order, ["carol", "alice", "bob"]);
    for (n, id) in [(1, "carol"), (2, "alice"), (3, "bob")] {
        let agent = app.agent(id).await;
        assert_eq!(agent["state"], "reserved");
        assert_eq!(agent["call_sid"], call_sid(n));
    }
}

#[tokio::test]
async fn an_agent_freed_again_goes_to_the_back_of_the_line() {
    let app = spawn_app(ROUTING).await;
    for id in ["a", "b"] {
        app.add_available(id, &["support"]).await;
        tick().await;
    }
    // a goes away and comes back: now b has been free longer.
    app.set_state("a", "away").await;
    app.set_state("a", "available").await;
    assert_eq!(
        dialed(&app.call(&call_sid(1), SUPPORT).await).as_deref(),
        Some("b")
    );
    assert_eq!(
        dialed(&app.call(&call_sid(2), SUPPORT).await).as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn an_agent_in_two_queues_is_taken_out_of_both() {
    let app = spawn_app(ROUTING).await;
    app.add_available("both", &["sales", "support"]).await;
    tick().await;
    app.add_available("sup", &["support"]).await;

    let a = app.call(&call_sid(1), SALES).await;
    assert_eq!(dialed(&a).as_deref(), Some("both"));
    let mut redis = app.redis().await;
    let sales: Vec<String> = redis.zrange(app.key("avail:sales"), 0, -1).await.unwrap();
    let support: Vec<String> = redis.zrange(app.key("avail:support"), 0, -1).await.unwrap();
    assert!(sales.is_empty(), "{sales:?}");
    assert_eq!(support, ["sup"]);
    // The support call must not get the agent already ringing for sales.
    assert_eq!(
        dialed(&app.call(&call_sid(2), SUPPORT).await).as_deref(),
        Some("sup")
    );
    let queue = app
        .admin(reqwest::Method::GET, "/queues/support", None)
        .await
        .json();
    assert_eq!(queue["agents"]["reserved"], 2);
    assert_eq!(queue["available"], serde_json::json!([]));
}

#[tokio::test]
async fn agents_whose_score_is_in_the_future_are_skipped_until_then() {
    let app = spawn_app(ROUTING).await;
    app.add_available("early", &["support"]).await;
    tick().await;
    app.add_available("late", &["support"]).await;
    // Put "early" in wrap-up for 300 ms: its score moves into the future, as the
    // lifecycle script does when a call ends.
    let mut redis = app.redis().await;
    let t: (i64, i64) = redis::cmd("TIME").query_async(&mut redis).await.unwrap();
    let until = t.0 * 1000 + t.1 / 1000 + 300;
    let _: () = redis
        .zadd(app.key("avail:support"), "early", until)
        .await
        .unwrap();
    let _: () = redis
        .hset_multiple(
            app.key("agent:early"),
            &[("state", "wrap_up"), ("free_at", &until.to_string())],
        )
        .await
        .unwrap();

    let view = app.agent("early").await;
    assert_eq!(view["state"], "wrap_up");
    assert!(view["available_at"].is_string());
    let queue = app
        .admin(reqwest::Method::GET, "/queues/support", None)
        .await
        .json();
    assert_eq!(
        queue["available"],
        serde_json::json!(["late", "early"]),
        "wrap-up last"
    );

    assert_eq!(
        dialed(&app.call(&call_sid(1), SUPPORT).await).as_deref(),
        Some("late")
    );
    // Nobody eligible now: support's fallback forwards the call.
    let a = app.call(&call_sid(2), SUPPORT).await;
    assert_eq!(a.element_text("Number").as_deref(), Some("+15005550010"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(app.agent("early").await["state"], "available");
    assert_eq!(
        dialed(&app.call(&call_sid(3), SUPPORT).await).as_deref(),
        Some("early")
    );
}

#[tokio::test]
async fn the_same_call_sid_gets_the_same_agent_and_reserves_nobody_new() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["support"]).await;
    tick().await;
    app.add_available("b", &["support"]).await;
    let first = app.call(&call_sid(7), SUPPORT).await;
    let before = app.snapshot().await;
    let again = app.call(&call_sid(7), SUPPORT).await;
    assert_eq!(first.body, again.body);
    assert_eq!(
        app.snapshot().await,
        before,
        "a retried webhook changed Redis"
    );
    assert_eq!(app.agent("b").await["state"], "available");

    // The same holds for a call that went to its fallback.
    app.set_state("b", "offline").await;
    let fb = app.call(&call_sid(8), SUPPORT).await;
    app.set_state("b", "available").await;
    let fb_again = app.call(&call_sid(8), SUPPORT).await;
    assert_eq!(fb.body, fb_again.body);
    assert_eq!(app.agent("b").await["state"], "available");
}

#[tokio::test]
async fn the_dial_carries_the_contract_attributes_and_callbacks() {
    let app = spawn_app(ROUTING).await;
    let body = serde_json::json!({ "name": "Sip", "contact": "sip:desk@pbx.example.com", "queues": ["support"] });
    assert_eq!(
        app.admin(reqwest::Method::PUT, "/agents/sip", Some(body))
            .await
            .status,
        201
    );
    app.set_state("sip", "available").await;
    let a = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(a.attribute("Dial", "method").as_deref(), Some("POST"));
    assert_eq!(a.attribute("Dial", "timeout").as_deref(), Some("20"));
    assert_eq!(a.attribute("Dial", "timeLimit").as_deref(), Some("14400"));
    assert_eq!(
        a.attribute("Dial", "answerOnBridge").as_deref(),
        Some("true")
    );
    let action = a.attribute("Dial", "action").unwrap();
    assert!(
        action.starts_with(&format!(
            "{}/twilio/voice/dial?agent=sip&token=",
            app.base()
        )),
        "{action}"
    );
    let callback = a.attribute("Sip", "statusCallback").unwrap();
    assert!(
        callback.starts_with(&format!(
            "{}/twilio/voice/agent?agent=sip&token=",
            app.base()
        )),
        "{callback}"
    );
    assert_eq!(
        a.attribute("Sip", "statusCallbackEvent").as_deref(),
        Some("initiated ringing answered completed")
    );
    assert_eq!(
        a.element_text("Sip").as_deref(),
        Some("sip:desk@pbx.example.com")
    );
}

#[tokio::test]
async fn keypad_spelled_withheld_caller_ids_neither_use_nor_record_affinity() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_available("a", &["support"]).await;
    tick().await;
    app.add_available("b", &["support"]).await;
    tick().await;
    let mut redis = app.redis().await;
    // Free the longest first.
    let mut free = ["a", "b"];
    for (n, from) in (1..).zip(keypad_withheld()) {
        let from = from.as_str();
        let [longest, other] = free;
        // An entry under the spelling (as an older version would have kept)
        // names the other agent: it must not be used ...
        let _: () = redis
            .set(app.key(&format!("affinity:{from}")), other)
            .await
            .unwrap();
        let sid = call_sid(n);
        let dial = app.call_from(&sid, from, SUPPORT).await;
        assert_eq!(dialed(&dial).as_deref(), Some(longest), "From {from}");
        app.agent_leg(&sid, &dial, "answered").await;
        app.dial_action(&sid, &dial, "completed").await;
        tick().await;
        // ... and the answered call is not remembered under it.
        let kept: Option<String> = redis
            .get(app.key(&format!("affinity:{from}")))
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some(other), "From {from}");
        free = [other, longest];
    }
    // A real number is remembered: affinity is on in this queue.
    let sid = call_sid(100);
    let dial = app.call_from(&sid, "+15005550001", SUPPORT).await;
    let agent = dialed(&dial).expect("an agent");
    app.agent_leg(&sid, &dial, "answered").await;
    app.dial_action(&sid, &dial, "completed").await;
    let kept: Option<String> = redis.get(app.key("affinity:+15005550001")).await.unwrap();
    assert_eq!(kept, Some(agent));
}

/// A `DialCallStatus` or `CallStatus` Twilio may add later: the caller on the
/// line is answered with TwiML (a 4xx would make Twilio play "an application
/// error has occurred"): an unknown `DialCallStatus` is a miss, an unknown
/// `CallStatus` is not final, so the caller gets the next agent.
#[tokio::test]
async fn a_dial_action_with_unknown_statuses_moves_the_caller_to_the_next_agent() {
    for (dial_status, call_status) in [("exploded", "in-progress"), ("no-answer", "levitating")] {
        let app = spawn_app(NO_WRAP_UP).await;
        app.add_available("a", &["support"]).await;
        tick().await;
        app.add_available("b", &["support"]).await;
        let sid = call_sid(1);
        let dial = app.call(&sid, SUPPORT).await;
        assert_eq!(dialed(&dial).as_deref(), Some("a"));
        let next = app
            .dial_action_with(&sid, &dial, dial_status, call_status)
            .await;
        let case = format!("DialCallStatus={dial_status} CallStatus={call_status}");
        assert_eq!(next.status, 200, "{case}: {next:?}");
        assert!(next.content_type.starts_with("text/xml"), "{case}");
        assert_eq!(dialed(&next).as_deref(), Some("b"), "{case}: {}", next.body);
        assert_eq!(app.agent("a").await["missed_in_row"], 1, "{case}");
    }
}

/// A forward's action (`/twilio/voice/fallback`) with an unknown status goes
/// on to the chain's next step, as an unanswered forward does.
#[tokio::test]
async fn a_forward_action_with_unknown_statuses_goes_on_to_the_next_step() {
    const FORWARD_THEN_VOICEMAIL: &str = r#"
[[queues]]
name = "support"
numbers = ["+15005550007"]
fallback = ["number:+15005550010", "voicemail"]
"#;
    let app = spawn_app(FORWARD_THEN_VOICEMAIL).await;
    let sid = call_sid(1);
    let forward = app.call(&sid, SUPPORT).await;
    let action = forward
        .attribute("Dial", "action")
        .expect("a forward that reports");
    for (dial_status, call_status) in [("exploded", "in-progress"), ("no-answer", "levitating")] {
        let next = post_signed(
            &app.http,
            &action,
            &[
                ("CallSid", sid.as_str()),
                ("CallStatus", call_status),
                ("DialCallStatus", dial_status),
            ],
        )
        .await;
        let case = format!("DialCallStatus={dial_status} CallStatus={call_status}");
        assert_eq!(next.status, 200, "{case}: {next:?}");
        assert!(next.body.contains("<Record"), "{case}: {}", next.body);
    }
}

/// Webhooks a caller waits on that do not read a status answer TwiML whatever
/// it says; status callbacks (nobody on the line) refuse an unknown one with
/// 400 and change nothing, so it shows in Twilio's debugger.
#[tokio::test]
async fn unknown_statuses_elsewhere_answer_twiml_to_callers_and_400_to_status_callbacks() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_available("a", &["support"]).await;
    let sid = call_sid(1);
    let voice = post_signed(
        &app.http,
        &format!("{}/twilio/voice", app.base()),
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "levitating"),
            ("From", "+15005550001"),
            ("To", SUPPORT),
        ],
    )
    .await;
    assert_eq!(dialed(&voice).as_deref(), Some("a"), "{voice:?}");
    let voicemail = post_signed(
        &app.http,
        &format!("{}/twilio/voice/voicemail", app.base()),
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "levitating"),
            ("RecordingSid", "RE0123456789abcdef0123456789abcdef"),
            (
                "RecordingUrl",
                "https://api.twilio.com/x/Recordings/RE0123456789abcdef0123456789abcdef",
            ),
        ],
    )
    .await;
    assert_eq!(voicemail.status, 200, "{voicemail:?}");
    assert!(voicemail.body.contains("<Hangup/>"), "{}", voicemail.body);

    let before = app.snapshot().await;
    let leg = app.agent_leg(&sid, &voice, "levitating").await;
    assert_eq!(leg.status, 400, "{leg:?}");
    let status = app.call_status(&sid, "levitating").await;
    assert_eq!(status.status, 400, "{status:?}");
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.agent("a").await["state"], "reserved");
}
