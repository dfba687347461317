//! When no agent is free, the first step of the queue's fallback chain that
//! applies: an overflow queue, a number, a client, voicemail.

mod common;

use common::*;
use redis::AsyncCommands;

#[tokio::test]
async fn an_empty_queue_overflows_to_the_next_queue_of_its_chain() {
    let app = spawn_app(ROUTING).await;
    app.add_available("sup", &["support"]).await;
    let a = app.call(&call_sid(1), SALES).await;
    assert_eq!(dialed(&a).as_deref(), Some("sup"));
    let page = app.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_routed_total{queue=\"sales\",via=\"overflow\"}"
        ) >= 1.0,
        "{page}"
    );
    assert!(
        metric(
            &page,
            "switchboard_fallbacks_total{queue=\"sales\",step=\"queue:support\"}"
        ) >= 1.0
    );
}

#[tokio::test]
async fn with_no_agent_anywhere_the_chain_ends_in_voicemail() {
    let app = spawn_app(ROUTING).await;
    let a = app.call(&call_sid(1), SALES).await;
    assert_eq!(a.status, 200);
    assert!(
        a.body
            .contains("<Say>All our agents are busy. Please leave a message after the tone.</Say>"),
        "{}",
        a.body
    );
    assert_eq!(a.attribute("Record", "maxLength").as_deref(), Some("120"));
    assert_eq!(
        a.attribute("Record", "action"),
        Some(format!("{}/twilio/voice/voicemail", app.base()))
    );
    assert!(a.body.ends_with("<Hangup/></Response>"));
}

#[tokio::test]
async fn a_number_step_forwards_the_call() {
    let app = spawn_app(ROUTING).await;
    let a = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(a.element_text("Number").as_deref(), Some("+15005550010"));
    assert_eq!(
        a.attribute("Dial", "action"),
        None,
        "a forward has no agent callbacks"
    );
}

#[tokio::test]
async fn a_client_step_forwards_the_call_to_that_identity() {
    let app = spawn_app(ROUTING).await;
    let a = app.call(&call_sid(1), VIP).await;
    assert_eq!(a.element_text("Client").as_deref(), Some("concierge"));
}

#[tokio::test]
async fn a_queue_without_a_fallback_chain_takes_voicemail() {
    let app = spawn_app(ROUTING).await;
    let a = app.call(&call_sid(1), NIGHT).await;
    assert!(a.body.contains("<Record"), "{}", a.body);
}

#[tokio::test]
async fn an_unlisted_number_lands_in_the_default_queue() {
    let app = spawn_app(ROUTING).await;
    app.add_available("sup", &["support"]).await;
    assert_eq!(
        dialed(&app.call(&call_sid(1), "+15009999999").await).as_deref(),
        Some("sup")
    );
}

#[tokio::test]
async fn offline_and_away_agents_get_no_call() {
    let app = spawn_app(ROUTING).await;
    app.add_agent("off", &["support"]).await;
    app.add_available("away", &["support"]).await;
    app.set_state("away", "away").await;
    let a = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(a.element_text("Number").as_deref(), Some("+15005550010"));
}

#[tokio::test]
async fn a_recorded_voicemail_is_kept_once_and_listed() {
    let app = spawn_app(ROUTING).await;
    let sid = call_sid(1);
    app.call(&sid, SALES).await;
    let url = format!("{}/twilio/voice/voicemail", app.base());
    let rec = format!("RE{:032x}", 9);
    let params = [
        ("CallSid", sid.as_str()),
        ("From", "+15005550001"),
        ("To", SALES),
        ("RecordingSid", rec.as_str()),
        (
            "RecordingUrl",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE9",
        ),
        ("RecordingDuration", "12"),
    ];
    for _ in 0..2 {
        let a = post_signed(&app.http, &url, &params).await;
        assert_eq!(a.status, 200);
        assert!(a.body.contains("<Hangup/>"));
    }
    let mut redis = app.redis().await;
    let stored: Vec<String> = redis
        .lrange("sb:{default}:voicemails", 0, -1)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "recorded once: {stored:?}");
    let list = app
        .admin(reqwest::Method::GET, "/voicemails", None)
        .await
        .json();
    let message = &list["voicemails"][0];
    assert_eq!(message["call_sid"], sid);
    assert_eq!(message["queue"], "sales");
    assert_eq!(message["duration_secs"], 12);
    assert!(message["received_at"].is_i64());
}

#[tokio::test]
async fn a_voicemail_with_only_what_twilio_documents_is_kept_under_the_urls_recording_id() {
    let app = spawn_app(ROUTING).await;
    let sid = call_sid(1);
    app.call(&sid, SALES).await;
    let url = format!("{}/twilio/voice/voicemail", app.base());
    let rec = format!("RE{:032x}", 7);
    let recording_url = format!("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{rec}");
    // The <Record> action's documented parameters: no RecordingSid.
    let params = [
        ("CallSid", sid.as_str()),
        ("RecordingUrl", recording_url.as_str()),
        ("RecordingDuration", "9"),
        ("Digits", "hangup"),
    ];
    for _ in 0..2 {
        let a = post_signed(&app.http, &url, &params).await;
        assert_eq!(a.status, 200);
        assert!(a.body.contains("<Hangup/>"));
    }
    let list = app
        .admin(reqwest::Method::GET, "/voicemails", None)
        .await
        .json();
    let messages = list["voicemails"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "kept once: {list}");
    assert_eq!(messages[0]["recording_sid"], rec);
    assert_eq!(messages[0]["recording_url"], recording_url);
    assert_eq!(messages[0]["duration_secs"], 9);
    assert_eq!(messages[0]["digits"], "hangup");

    // No recording at all (the caller hung up before the tone): nothing kept.
    let none = post_signed(&app.http, &url, &[("CallSid", call_sid(2).as_str())]).await;
    assert_eq!(none.status, 200);
    let list = app
        .admin(reqwest::Method::GET, "/voicemails", None)
        .await
        .json();
    assert_eq!(list["voicemails"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_forward_whose_caller_hung_up_ends_instead_of_trying_the_next_step() {
    let app = spawn_app(CHAINED).await;
    let sid = call_sid(1);
    let first = app.call(&sid, "+15005550001").await;
    let action = first
        .attribute("Dial", "action")
        .expect("a chained forward");
    let gone = post_signed(
        &app.http,
        &action,
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "completed"),
            ("DialCallStatus", "no-answer"),
        ],
    )
    .await;
    assert_eq!(gone.status, 200);
    assert!(gone.body.contains("<Hangup/>"), "{}", gone.body);
}

const CHAINED: &str = r#"
[[queues]]
name = "default"
fallback = ["number:+15005550010", "queue:other", "client:night-desk", "voicemail"]

[[queues]]
name = "other"
numbers = ["+15005550009"]
"#;

#[tokio::test]
async fn an_unanswered_forward_goes_on_to_the_next_step_of_the_chain() {
    let app = spawn_app(CHAINED).await;
    let sid = call_sid(1);
    let first = app.call(&sid, SALES).await;
    assert_eq!(
        first.element_text("Number").as_deref(),
        Some("+15005550010")
    );
    let action = first
        .attribute("Dial", "action")
        .expect("a forward with more steps reports back");
    assert!(
        action.contains("/twilio/voice/fallback?queue=default&step=2"),
        "{action}"
    );

    let busy = post_signed(
        &app.http,
        &action,
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "busy"),
        ],
    )
    .await;
    assert_eq!(busy.status, 200);
    assert_eq!(
        busy.element_text("Client").as_deref(),
        Some("night-desk"),
        "{}",
        busy.body
    );
    let next = busy
        .attribute("Dial", "action")
        .expect("voicemail still follows");

    let unanswered = post_signed(
        &app.http,
        &next,
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "no-answer"),
        ],
    )
    .await;
    assert!(unanswered.body.contains("<Record"), "{}", unanswered.body);
    let answered = post_signed(
        &app.http,
        &next,
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "completed"),
        ],
    )
    .await;
    assert!(answered.body.contains("<Hangup/>"), "{}", answered.body);

    let page = app.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_fallbacks_total{queue=\"default\",step=\"client\"}"
        ) >= 1.0,
        "{page}"
    );
    let bad = format!("{}/twilio/voice/fallback?queue=default&step=1", app.base());
    let refused = post_signed(
        &app.http,
        &bad,
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "busy"),
        ],
    )
    .await;
    assert_eq!(
        refused.status, 400,
        "step 1 is a queue step, not one a forward can go on to"
    );
}

#[tokio::test]
async fn a_forward_that_ends_its_chain_reports_nowhere() {
    let app = spawn_app(ROUTING).await;
    let a = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(a.attribute("Dial", "action"), None);
}
