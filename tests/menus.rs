//! Keypad menus (issue 21, item 4) against a real Redis: a number answers with
//! its menu's prompt, a key routes to its option's queue with its needs (kept
//! for every later attempt of the call), runs its step, or hears the prompt
//! again; the second time without a valid key the default option is taken.
//! Nothing is written in Redis before the caller chose.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const MENU_NUMBER: &str = "+15005550011";

const ROUTING: &str = r##"
[defaults]
default_queue = "desk"
wrap_up_secs = 0
no_answer_delay_secs = 0
max_missed_in_row = 100

[[queues]]
name = "desk"
numbers = ["+15005550007", { number = "+15005550011", menu = "main" }]
fallback = ["voicemail"]
[queues.hold]
loop_secs = 5
max_waiting = 10
max_wait_secs = 600
join_when_no_agents = true

[menus.main]
prompt = "For support press 1. Para español, oprima 2. To leave a message press 0."
timeout_secs = 4
default = "1"
options = { "1" = { queue = "desk" }, "2" = { queue = "desk", needs = "es" }, "3" = { queue = "desk", priority = 5 }, "0" = { step = "voicemail" } }
"##;

/// The menu's action URL in `answer` (the `<Gather>`'s), checked to be the
/// `<Redirect>`'s too.
fn action(answer: &Answer) -> String {
    let gather = answer
        .attribute("Gather", "action")
        .unwrap_or_else(|| panic!("a menu: {}", answer.body))
        .replace("&amp;", "&");
    let redirect = answer
        .element_text("Redirect")
        .unwrap_or_default()
        .replace("&amp;", "&");
    assert_eq!(
        gather, redirect,
        "no key goes to the same URL: {}",
        answer.body
    );
    gather
}

/// The caller presses `digits` (None: no key, Twilio follows the Redirect).
async fn press(app: &TestApp, sid: &str, menu: &Answer, digits: Option<&str>) -> Answer {
    let mut params = vec![
        ("CallSid", sid),
        ("From", "+15005550001"),
        ("To", MENU_NUMBER),
        ("CallStatus", "in-progress"),
    ];
    if let Some(d) = digits {
        params.push(("Digits", d));
    }
    post_signed(&app.http, &action(menu), &params).await
}

#[tokio::test]
async fn a_number_answers_with_its_menu_and_a_key_routes_with_its_needs() {
    let app = spawn_app(ROUTING).await;
    app.add_skilled("cy", &["desk"], json!({})).await;
    app.add_skilled("eva", &["desk"], json!({"es": 2})).await;
    app.add_skilled("ed", &["desk"], json!({"es": 1})).await;

    let sid = call_sid(1);
    let before = app.snapshot().await;
    let menu = app.call(&sid, MENU_NUMBER).await;
    assert_eq!(menu.status, 200);
    assert!(
        menu.body
            .contains(r#"<Gather numDigits="1" timeout="4" finishOnKey="" action=""#),
        "{}",
        menu.body
    );
    assert!(
        menu.body.contains("Para español, oprima 2."),
        "{}",
        menu.body
    );
    assert!(action(&menu).ends_with("/twilio/voice/menu?menu=main&try=1"));
    assert_eq!(
        app.snapshot().await,
        before,
        "nothing written before the choice"
    );

    // 2: Spanish. cy has been free longest, but the option needs es.
    let dial = press(&app, &sid, &menu, Some("2")).await;
    assert_eq!(dialed(&dial).as_deref(), Some("eva"), "{}", dial.body);
    // Its needs stay with the call: the next attempt needs es too, and when
    // no Spanish speaker is left the chain runs rather than cy ringing.
    let next = app.dial_action(&sid, &dial, "no-answer").await;
    assert_eq!(dialed(&next).as_deref(), Some("ed"), "{}", next.body);
    let last = app.dial_action(&sid, &next, "no-answer").await;
    assert!(
        last.body.contains("<Redirect"),
        "back in line, not to cy: {}",
        last.body
    );
    assert_eq!(app.agent("cy").await["state"], "available");
    let history = app
        .admin(Method::GET, &format!("/calls/{sid}"), None)
        .await
        .json();
    let needs: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "call_routed")
        .map(|e| &e["data"]["needs"])
        .collect();
    assert_eq!(needs, [&json!("es"), &json!("es")], "{history:#}");
}

#[tokio::test]
async fn no_key_hears_the_prompt_again_then_the_default_and_0_leaves_a_message() {
    let app = spawn_app(ROUTING).await;
    app.add_skilled("cy", &["desk"], json!({})).await;

    let sid = call_sid(1);
    let menu = app.call(&sid, MENU_NUMBER).await;
    // No key, then a key that is no option: once more, then the default (1).
    let again = press(&app, &sid, &menu, None).await;
    assert!(
        action(&again).ends_with("menu=main&try=2"),
        "{}",
        again.body
    );
    let default = press(&app, &sid, &again, Some("7")).await;
    assert_eq!(dialed(&default).as_deref(), Some("cy"), "{}", default.body);

    let other = call_sid(2);
    let menu = app.call(&other, MENU_NUMBER).await;
    let message = press(&app, &other, &menu, Some("0")).await;
    assert!(message.body.contains("<Record"), "{}", message.body);

    // A forged try past the second is refused, and changes nothing.
    let forged = post_signed(
        &app.http,
        &action(&menu).replace("try=1", "try=3"),
        &[
            ("CallSid", call_sid(3).as_str()),
            ("To", MENU_NUMBER),
            ("Digits", "1"),
        ],
    )
    .await;
    assert_eq!(forged.status, 400, "{forged:?}");
    assert_eq!(app.agent("cy").await["call_sid"], call_sid(1).as_str());
}

#[tokio::test]
async fn a_key_with_a_priority_goes_before_callers_who_came_earlier() {
    let app = spawn_app(ROUTING).await;
    // Nobody free: a plain caller waits, then one who pressed 3 (priority 5).
    let plain = call_sid(1);
    let round = app.call(&plain, "+15005550007").await;
    assert!(round.body.contains("<Redirect"), "{}", round.body);
    let vip = call_sid(2);
    let menu = app.call(&vip, MENU_NUMBER).await;
    let waits = press(&app, &vip, &menu, Some("3")).await;
    assert!(
        waits.body.contains("number 1 in line"),
        "the priority caller is first: {}",
        waits.body
    );
    // The queue document lists them in the order they are served.
    let doc = app.admin(Method::GET, "/queues/desk", None).await.json();
    let listed: Vec<(&str, u64)> = doc["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["call_sid"].as_str().unwrap(),
                w["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(vip.as_str(), 5), (plain.as_str(), 0)], "{doc:#}");
    assert!(doc["longest_wait_secs"].as_u64().is_some());
    app.add_skilled("cy", &["desk"], json!({})).await;
    assert_eq!(app.agent("cy").await["call_sid"], vip.as_str());
    app.add_skilled("bo", &["desk"], json!({})).await;
    assert_eq!(app.agent("bo").await["call_sid"], plain.as_str());
}

#[tokio::test]
async fn with_redis_down_the_menu_still_answers_and_a_key_gets_the_emergency_answer() {
    let emergency = format!("[emergency]\nfallback = \"number:{EMERGENCY_NUMBER}\"\n");
    let mut app = spawn_app(&format!("{ROUTING}\n{emergency}")).await;
    app.redis.stop();
    // The menu needs no Redis: the caller hears it.
    let sid = call_sid(1);
    let menu = app.call(&sid, MENU_NUMBER).await;
    assert_eq!(menu.status, 200);
    assert!(menu.body.contains("<Gather"), "{}", menu.body);
    // Its choice needs Redis: valid TwiML all the same, the emergency answer.
    let chosen = press(&app, &sid, &menu, Some("1")).await;
    assert_eq!(chosen.status, 200, "{chosen:?}");
    assert!(is_emergency(&chosen), "{}", chosen.body);
    app.redis.restart().unwrap();
}
