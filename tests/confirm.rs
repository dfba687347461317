//! Agents on real phones (`confirm = true`): the agent must press 1, so a
//! voicemail or an unattended phone that picks up is a miss and the caller moves
//! on to the next agent.

mod common;

use common::*;
use serde_json::json;

const CONFIRM: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 1
no_answer_delay_secs = 30

[[queues]]
name = "desk"
numbers = ["+15005550007"]
confirm = true
fallback = ["voicemail"]
"#;

/// An agent on a phone number (or any contact), available in `desk`.
async fn add_phone_agent(app: &TestApp, id: &str, contact: &str) {
    let put = app
        .admin(
            reqwest::Method::PUT,
            &format!("/agents/{id}"),
            Some(json!({ "name": id, "contact": contact, "queues": ["desk"] })),
        )
        .await;
    assert_eq!(put.status, 201, "{put:?}");
    app.set_state(id, "available").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// Posts to the confirm URL of a `<Dial>` answer as the agent's phone would.
async fn confirm_url(app: &TestApp, dial: &Answer, digits: Option<&str>) -> Answer {
    let url = dial
        .attribute("Number", "url")
        .expect("a <Number> with a confirm url");
    let leg = format!("CA{:032x}", 0xa9e47u64);
    let mut params = vec![
        ("CallSid", leg.as_str()),
        ("From", "+15005550001"),
        ("To", "+15551230001"),
        ("CallStatus", "in-progress"),
    ];
    if let Some(d) = digits {
        params.push(("Digits", d));
    }
    post_signed(&app.http, &url, &params).await
}

#[tokio::test]
async fn an_agents_voicemail_that_picks_up_is_a_miss_and_the_caller_moves_on() {
    let app = spawn_app(CONFIRM).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    add_phone_agent(&app, "b", "+15551230002").await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dial.element_text("Number").as_deref(), Some("+15551230001"));
    assert_eq!(dial.attribute("Number", "method").as_deref(), Some("POST"));

    // The voicemail picks up: the agent hears (nobody hears) the prompt.
    app.agent_leg(&sid, &dial, "in-progress").await;
    assert_eq!(app.agent("a").await["state"], "reserved");
    let prompt = confirm_url(&app, &dial, None).await;
    assert_eq!(prompt.status, 200);
    assert_eq!(
        prompt.attribute("Gather", "numDigits").as_deref(),
        Some("1")
    );
    assert_eq!(prompt.attribute("Gather", "timeout").as_deref(), Some("5"));
    let said = prompt.element_text("Say").unwrap_or_default();
    assert!(
        said.contains("1 5 0 0 5 5 5 0 0 0 1") && said.contains("desk"),
        "{said}"
    );
    assert!(
        prompt.body.contains("</Gather><Hangup/>"),
        "{}",
        prompt.body
    );

    // No key: the leg hangs up; Twilio reports it completed, and so may the
    // Dial action. Both mean a miss, and the caller gets the next agent.
    app.agent_leg(&sid, &dial, "completed").await;
    let a = app.agent("a").await;
    assert_eq!(a["state"], "available", "{a}");
    assert_eq!(a["missed_in_row"], 1, "{a}");
    assert!(a["available_at"].is_string(), "{a}");
    let next = app.dial_action(&sid, &dial, "completed").await;
    assert_eq!(
        next.element_text("Number").as_deref(),
        Some("+15551230002"),
        "{}",
        next.body
    );
}

#[tokio::test]
async fn an_agent_who_presses_1_takes_the_call() {
    let app = spawn_app(CONFIRM).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    add_phone_agent(&app, "b", "+15551230002").await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "in-progress").await;
    let prompt = confirm_url(&app, &dial, None).await;
    let action = prompt
        .attribute("Gather", "action")
        .expect("a Gather action");
    assert!(action.contains("/twilio/voice/confirm?"), "{action}");

    let accepted = confirm_url(&app, &dial, Some("1")).await;
    assert_eq!(accepted.status, 200);
    assert!(
        accepted.body.ends_with("<Response></Response>") || accepted.body.ends_with("<Response/>"),
        "{}",
        accepted.body
    );
    let a = app.agent("a").await;
    assert_eq!(a["state"], "on_call", "{a}");
    assert_eq!(a["missed_in_row"], 0);

    app.agent_leg(&sid, &dial, "completed").await;
    assert_eq!(app.agent("a").await["state"], "wrap_up");
    let end = app.dial_action(&sid, &dial, "completed").await;
    assert!(end.body.contains("<Hangup/>"), "{}", end.body);
    assert_eq!(app.agent("b").await["state"], "available");
}

#[tokio::test]
async fn another_key_declines_and_a_late_1_never_connects_a_call_that_moved_on() {
    let app = spawn_app(CONFIRM).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    add_phone_agent(&app, "b", "+15551230002").await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "in-progress").await;
    let declined = confirm_url(&app, &dial, Some("2")).await;
    assert!(declined.body.contains("<Hangup/>"), "{}", declined.body);
    app.agent_leg(&sid, &dial, "completed").await;
    let next = app.dial_action(&sid, &dial, "no-answer").await;
    assert_eq!(next.element_text("Number").as_deref(), Some("+15551230002"));

    // The first agent's 1, arriving after the call moved on, is refused.
    let late = confirm_url(&app, &dial, Some("1")).await;
    assert!(late.body.contains("<Hangup/>"), "{}", late.body);
    assert_eq!(app.agent("a").await["state"], "available");
    assert_eq!(app.agent("b").await["state"], "reserved");
}

#[tokio::test]
async fn softphones_in_a_confirm_queue_are_not_asked_to_press_1() {
    let app = spawn_app(CONFIRM).await;
    add_phone_agent(&app, "web", "client:web").await;
    let dial = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(dial.element_text("Client").as_deref(), Some("web"));
    assert_eq!(dial.attribute("Client", "url"), None);
    assert!(!dial.body.contains("confirm"), "{}", dial.body);
}

#[tokio::test]
async fn a_forged_confirm_url_is_refused() {
    let app = spawn_app(CONFIRM).await;
    let token = "0123456789abcdef0123456789abcdef";
    let bad = format!(
        "{}/twilio/voice/confirm?call=CA1&queue=desk&agent=a&token={token}&confirm=1",
        app.base()
    );
    let leg = call_sid(9);
    let refused = post_signed(
        &app.http,
        &bad,
        &[("CallSid", leg.as_str()), ("Digits", "1")],
    )
    .await;
    assert_eq!(refused.status, 400);
}
