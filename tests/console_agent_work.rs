//! The agent's own work in the console, in a real browser (Debian's chromium
//! through chromedriver): Away with a reason from the routing file's list (and
//! a new reason while away), the wrap-up of the call it talks on, its last
//! calls with that wrap-up, and a wrap-up changed from that list. A note is
//! shown as text, never as markup.

mod common;

use std::time::Duration;

use common::browser::{
    Chromedriver, eval, screenshot, sign_in, wait_for, wait_for_text, wait_until,
};
use common::*;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::json;

const ROUTING: &str = r#"
[console]
away_reasons = ["lunch", "training", "meeting"]
dispositions = ["sale", "support", "no-sale"]

[defaults]
default_queue = "support"
wrap_up_secs = 0

[[queues]]
name = "support"
numbers = ["+15005550007"]
"#;

const WAIT: Duration = Duration::from_secs(10);
const CALLER: &str = "+15005550123";
const NOTE: &str = "wants the <b>blue</b> one";

async fn choose(page: &Client, css: &str, value: &str) {
    let select = page.find(Locator::Css(css)).await.unwrap();
    select.select_by_value(value).await.unwrap();
}

async fn click(page: &Client, css: &str) {
    page.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Polls the admin API until agent `id`'s `field` reads `value`.
async fn agent_field_becomes(app: &TestApp, id: &str, field: &str, value: serde_json::Value) {
    let started = std::time::Instant::now();
    loop {
        let agent = app.agent(id).await;
        if agent[field] == value {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{field} is {}: {agent}",
            agent[field]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The call's history holds the wrap-up `code` with the note; answers the history.
async fn stored_wrap_up_is(app: &TestApp, sid: &str, code: &str) -> serde_json::Value {
    let history = app
        .admin(Method::GET, &format!("/calls/{sid}"), None)
        .await
        .json();
    assert_eq!(history["wrap_up"]["code"], code, "{history:#}");
    assert_eq!(history["wrap_up"]["note"], NOTE, "{history:#}");
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_gives_away_reasons_and_wrap_ups_and_sees_its_last_calls() {
    let app = spawn_app(ROUTING).await;
    // A desk phone: no softphone on the page.
    app.create_agent("ana", "Ana Lima", "+15005550100", &["support"])
        .await;
    let token = app.issue_token("ana").await;
    let driver = Chromedriver::start();
    let page = driver.browser(390, 844).await;
    sign_in(&page, app.base(), &token).await;
    wait_for_text(&page, "#agent-state", "offline", WAIT).await;
    wait_for_text(&page, "#my-calls-empty", "No calls yet.", WAIT).await;

    // The reasons are the routing file's, and Away gives the one chosen.
    wait_for(&page, "#away-reason-field", WAIT).await;
    let options = eval(
        &page,
        "[...document.querySelectorAll('#away-reason option')].map((o) => o.value)",
    )
    .await;
    assert_eq!(options, json!(["", "lunch", "training", "meeting"]));
    choose(&page, "#away-reason", "lunch").await;
    click(&page, "#go-away").await;
    wait_for_text(&page, "#agent-state", "away — lunch", WAIT).await;
    agent_field_becomes(&app, "ana", "away_reason", json!("lunch")).await;
    // Away already, another reason is said at once.
    choose(&page, "#away-reason", "training").await;
    agent_field_becomes(&app, "ana", "away_reason", json!("training")).await;
    wait_for_text(&page, "#agent-state", "away — training", WAIT).await;

    // Available; a call comes and is answered: the call card offers its
    // wrap-up with the queue's codes.
    click(&page, "#go-available").await;
    wait_for_text(&page, "#agent-state", "available", WAIT).await;
    agent_field_becomes(&app, "ana", "away_reason", serde_json::Value::Null).await;
    let sid = call_sid(1);
    let dial = app.call_from(&sid, CALLER, SUPPORT).await;
    assert_eq!(
        dial.element_text("Number").as_deref(),
        Some("+15005550100"),
        "{}",
        dial.body
    );
    wait_for_text(&page, "#agent-state", "ringing", WAIT).await;
    // While it rings there is nothing to wrap up.
    assert_eq!(
        eval(
            &page,
            "document.querySelector('#call-wrap-up form') === null"
        )
        .await,
        json!(true)
    );
    app.agent_leg(&sid, &dial, "in-progress").await;
    wait_for_text(&page, "#agent-state", "on a call", WAIT).await;
    let form = format!("#call-wrap-up form[data-call-sid={sid}]");
    wait_for(&page, &form, WAIT).await;
    let codes = eval(
        &page,
        "[...document.querySelectorAll('#call-wrap-up option')].map((o) => o.value)",
    )
    .await;
    assert_eq!(codes, json!(["", "sale", "support", "no-sale"]));
    choose(&page, &format!("{form} select"), "sale").await;
    page.find(Locator::Css(&format!("{form} input[name=note]")))
        .await
        .unwrap()
        .send_keys(NOTE)
        .await
        .unwrap();
    click(&page, &format!("{form} button[type=submit]")).await;
    wait_for_text(
        &page,
        &format!("{form} .wrap-up-status"),
        &format!("Saved: sale — {NOTE}"),
        WAIT,
    )
    .await;
    stored_wrap_up_is(&app, &sid, "sale").await;
    screenshot(&page, "agent-wrap-up-phone").await;

    // The call ends: it heads the last calls, with its wrap-up, as text.
    app.dial_action(&sid, &dial, "completed").await;
    wait_for_text(&page, "#agent-state", "available", WAIT).await;
    let item = format!("#my-calls-list li[data-call-sid={sid}]");
    wait_for_text(
        &page,
        &format!("{item} .given"),
        &format!("sale — {NOTE}"),
        WAIT,
    )
    .await;
    wait_for_text(&page, &format!("{item} .from"), CALLER, WAIT).await;
    assert_eq!(
        eval(&page, "document.querySelector('#my-calls b') === null").await,
        json!(true)
    );
    assert!(
        page.find(Locator::Css(&form)).await.is_err(),
        "the call card's form went with the call"
    );

    // Changed from the list: the note is kept, the code replaced.
    click(&page, &format!("{item} button")).await;
    wait_for(&page, &format!("{item} form"), WAIT).await;
    choose(&page, &format!("{item} form select"), "no-sale").await;
    click(&page, &format!("{item} form button[type=submit]")).await;
    wait_for_text(
        &page,
        &format!("{item} .given"),
        &format!("no-sale — {NOTE}"),
        WAIT,
    )
    .await;
    let history = stored_wrap_up_is(&app, &sid, "no-sale").await;
    let replaced = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "wrap_up")
        .count();
    assert_eq!(replaced, 2, "{history:#}");
    screenshot(&page, "agent-last-calls-phone").await;

    // A refused wrap-up is said, not silently lost: the agent token is
    // revoked behind the page's back, and the page signs out.
    let revoked = app.admin(Method::DELETE, "/agents/ana/tokens", None).await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    click(&page, &format!("{item} button")).await;
    wait_for(&page, &format!("{item} form"), WAIT).await;
    click(&page, &format!("{item} form button[type=submit]")).await;
    wait_for_text(
        &page,
        "#sign-in-error",
        "Your token was refused: sign in again.",
        WAIT,
    )
    .await;
    wait_until(&page, "document.getElementById('my-calls').hidden", WAIT).await;
    page.close().await.unwrap();
}
