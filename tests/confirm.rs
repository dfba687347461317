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
    confirm_url_from(app, dial, "+15005550001", digits).await
}

/// The same, for a call whose caller id is `from`.
async fn confirm_url_from(
    app: &TestApp,
    dial: &Answer,
    from: &str,
    digits: Option<&str>,
) -> Answer {
    let url = dial
        .attribute("Number", "url")
        .expect("a <Number> with a confirm url");
    let leg = format!("CA{:032x}", 0xa9e47u64);
    let mut params = vec![
        ("CallSid", leg.as_str()),
        ("From", from),
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
async fn the_same_1_sent_twice_connects_both_times() {
    let app = spawn_app(CONFIRM).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "in-progress").await;
    for _ in 0..2 {
        let accepted = confirm_url(&app, &dial, Some("1")).await;
        assert!(!accepted.body.contains("<Hangup"), "{}", accepted.body);
    }
    assert_eq!(app.agent("a").await["state"], "on_call");
}

#[tokio::test]
async fn dial_bridged_decides_a_confirm_attempt_when_twilio_sends_it() {
    let app = spawn_app(CONFIRM).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    add_phone_agent(&app, "b", "+15551230002").await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    let url = dial.attribute("Dial", "action").unwrap();
    let action = |bridged: &'static str, dial_sid: String| {
        let url = url.clone();
        let http = app.http.clone();
        async move {
            post_signed(
                &http,
                &url,
                &[
                    ("CallSid", dial_sid.as_str()),
                    ("CallStatus", "in-progress"),
                    ("DialCallStatus", "completed"),
                    ("DialBridged", bridged),
                ],
            )
            .await
        }
    };
    // Not bridged: the leg that "completed" was a machine; the next agent rings.
    let next = action("false", sid.clone()).await;
    assert_eq!(
        next.element_text("Number").as_deref(),
        Some("+15551230002"),
        "{}",
        next.body
    );
    assert_eq!(app.agent("a").await["missed_in_row"], 1);
    // Bridged: a conversation happened; the call ends in wrap-up.
    let url = next.attribute("Dial", "action").unwrap();
    let ended = post_signed(
        &app.http,
        &url,
        &[
            ("CallSid", sid.as_str()),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "completed"),
            ("DialBridged", "true"),
        ],
    )
    .await;
    assert!(ended.body.contains("<Hangup/>"), "{}", ended.body);
    assert_eq!(app.agent("b").await["state"], "wrap_up");
}

/// No skip after a miss, so an agent can be taken by the next call at once.
const CONFIRM_NO_DELAY: &str = r#"
[defaults]
default_queue = "desk"
no_answer_delay_secs = 0

[[queues]]
name = "desk"
numbers = ["+15005550007"]
confirm = true
fallback = ["voicemail"]
"#;

#[tokio::test]
async fn a_late_1_never_connects_an_agent_another_call_holds() {
    let app = spawn_app(CONFIRM_NO_DELAY).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    app.agent_leg(&first, &dial, "in-progress").await;
    // The agent listens too long: its reservation expires (deadline brought
    // forward in Redis) and the worker releases it as a miss.
    let mut conn = app.redis().await;
    let _: () = redis::cmd("EVAL")
        .arg("for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do redis.call('ZADD', KEYS[1], 0, m) end")
        .arg(1)
        .arg("sb:{default}:deadlines")
        .query_async(&mut conn)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while app.agent("a").await["state"] != "available" {
        assert!(started.elapsed().as_secs() < 5, "never released");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Another call takes the agent.
    let second = app.call(&call_sid(2), SUPPORT).await;
    assert_eq!(
        second.element_text("Number").as_deref(),
        Some("+15551230001")
    );
    // The first call's late 1 must not connect a phone now ringing for another.
    let late = confirm_url(&app, &dial, Some("1")).await;
    assert!(late.body.contains("<Hangup/>"), "{}", late.body);
    assert_eq!(app.agent("a").await["call_sid"], call_sid(2).as_str());
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

/// `simulate` against `routing`, agents `p0`…`p5` on phone numbers in `desk`.
async fn simulate_on_phones(
    routing: &str,
    mix: impl FnOnce(&mut switchboard::simulate::SimulateArgs),
) -> (TestApp, switchboard::simulate::Report) {
    let app = spawn_app(routing).await;
    for i in 0..6 {
        add_phone_agent(&app, &format!("p{i}"), &format!("+1555123000{i}")).await;
    }
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.calls = 60;
    args.concurrency = 3;
    args.to = vec![SUPPORT.into()];
    args.ring_ms = 1;
    args.talk_ms = 1;
    mix(&mut args);
    let report = simulate_cleanly(&args).await;
    (app, report)
}

/// No wrap-up or skip, so the six agents keep taking calls.
const CONFIRM_FAST: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0
no_answer_delay_secs = 0
max_missed_in_row = 1000
max_attempts = 6

[[queues]]
name = "desk"
numbers = ["+15005550007"]
confirm = true
fallback = ["voicemail"]
"#;

#[tokio::test]
async fn simulate_plays_agents_voicemails_that_pick_up_and_confirm_turns_them_into_misses() {
    let (_app, confirmed) = simulate_on_phones(CONFIRM_FAST, |a| {
        a.answer = 0.5;
        a.no_answer = 0.0;
        a.busy = 0.0;
        a.hangup = 0.0;
        a.agent_voicemail = 0.5;
    })
    .await;
    assert!(confirmed.voicemail_pickups > 5, "{confirmed:?}");
    assert!(confirmed.missed_attempts >= confirmed.voicemail_pickups);
    assert_eq!(
        confirmed.outcomes.get("agent_voicemail"),
        None,
        "{confirmed:?}"
    );
    assert!(confirmed.outcomes.get("answered").copied().unwrap_or(0) > 40);

    // The same mix without confirm: the machines take calls.
    let plain = CONFIRM_FAST.replace("confirm = true\n", "");
    let (_app, unconfirmed) = simulate_on_phones(&plain, |a| {
        a.answer = 0.5;
        a.no_answer = 0.0;
        a.busy = 0.0;
        a.hangup = 0.0;
        a.agent_voicemail = 0.5;
    })
    .await;
    assert!(
        unconfirmed
            .outcomes
            .get("agent_voicemail")
            .copied()
            .unwrap_or(0)
            > 5,
        "{unconfirmed:?}"
    );
}

#[tokio::test]
async fn simulate_plays_callers_who_hang_up_while_an_agent_rings() {
    let (app, report) = simulate_on_phones(CONFIRM_FAST, |a| {
        a.answer = 0.0;
        a.no_answer = 0.0;
        a.busy = 0.0;
        a.hangup = 1.0;
    })
    .await;
    assert_eq!(
        report.outcomes.get("caller_hung_up"),
        Some(&60),
        "{report:?}"
    );
    assert_eq!(report.attempts, 60, "nobody else rang: {report:?}");
    assert_eq!(report.missed_attempts, 0);
    for i in 0..6 {
        let agent = app.agent(&format!("p{i}")).await;
        assert_eq!(agent["state"], "available", "{agent}");
        assert_eq!(agent["missed_in_row"], 0, "{agent}");
    }
}

/// Twilio has delivered withheld caller ids as words and as their keypad
/// spellings (ANONYMOUS, RESTRICTED, UNAVAILABLE, UNKNOWN, BLOCKED): the agent
/// hears "a withheld number", never a string of digits.
#[tokio::test]
async fn the_whisper_calls_every_spelling_of_a_withheld_caller_id_a_withheld_number() {
    let app = spawn_app(CONFIRM).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    let sid = call_sid(1);
    let dial = app.call_from(&sid, "+266696687", SUPPORT).await;
    let mut withheld = keypad_withheld();
    withheld.extend(["anonymous", "Restricted", "UNAVAILABLE", "blocked"].map(String::from));
    for from in &withheld {
        let prompt = confirm_url_from(&app, &dial, from, None).await;
        assert_eq!(prompt.status, 200, "{from}: {prompt:?}");
        let said = prompt.element_text("Say").unwrap_or_default();
        assert_eq!(
            said, "Call from a withheld number for desk. Press 1 to accept.",
            "From {from}"
        );
    }
    // A number is read digit by digit.
    let prompt = confirm_url_from(&app, &dial, "+4930123", None).await;
    let said = prompt.element_text("Say").unwrap_or_default();
    assert!(
        said.starts_with("Call from 4 9 3 0 1 2 3 for desk"),
        "{said}"
    );
}

#[tokio::test]
async fn the_whisper_speaks_in_the_queues_voice_and_language() {
    let routing = CONFIRM.replace(
        "confirm = true\n",
        "confirm = true\nsay_voice = \"Polly.Mia\"\nsay_language = \"es-MX\"\n",
    );
    let app = spawn_app(&routing).await;
    add_phone_agent(&app, "a", "+15551230001").await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    app.agent_leg(&sid, &dial, "in-progress").await;
    let prompt = confirm_url(&app, &dial, None).await;
    assert_eq!(
        prompt.attribute("Say", "voice").as_deref(),
        Some("Polly.Mia")
    );
    assert_eq!(
        prompt.attribute("Say", "language").as_deref(),
        Some("es-MX"),
        "{}",
        prompt.body
    );
}
