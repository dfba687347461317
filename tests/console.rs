//! The console in a real browser (Debian's chromium through chromedriver): an
//! agent signs in with its token and goes available; a caller waiting in line
//! reaches it and the agent's page shows the caller; the supervisor's page
//! shows that caller waiting, then ringing, then talking; both pages say when
//! the connection is lost and when it is back. Screenshots of both views at a
//! phone and a desktop width go to target/console-screenshots/ (README's are
//! copies).

mod common;

use std::time::Duration;

use common::browser::{Chromedriver, wait_for, wait_for_text};
use common::*;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::json;

const DESK: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
[queues.hold]
loop_secs = 20
join_when_no_agents = true

[[queues]]
name = "sales"
numbers = ["+15005550006"]
fallback = ["voicemail"]
"#;

const WAIT: Duration = Duration::from_secs(10);
const CALLER: &str = "+15005550123";

async fn sign_in(browser: &Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/console/")).await.unwrap();
    let field = wait_for(browser, "#token", WAIT).await;
    field.send_keys(token).await.unwrap();
    // The keyboard alone: Enter submits the form.
    field.send_keys("\u{E007}").await.unwrap();
}

async fn screenshot(browser: &Client, name: &str, width: u32, height: u32) {
    browser.set_window_size(width, height).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    common::browser::screenshot(browser, name).await;
}

/// Without JavaScript, Enter in the token field (or a click on the button)
/// must not submit the form: a GET would put `?token=…` in the URL, which
/// lands in history and access logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_sign_in_form_never_puts_the_token_in_the_url() {
    let app = spawn_app(DESK).await;
    let page = format!("{}/console/", app.base());
    let driver = Chromedriver::start();
    let browser = driver.browser_without_javascript(390, 844).await;
    browser.goto(&page).await.unwrap();
    let field = wait_for(&browser, "#token", WAIT).await;
    field.send_keys(ADMIN_TOKEN).await.unwrap();
    field.send_keys("\u{E007}").await.unwrap();
    let _ = browser
        .find(Locator::Css("#sign-in-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await;
    // Give a navigation the time to happen, if one was started.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.as_str(), page, "the form was submitted");
    let form = browser.find(Locator::Id("sign-in-form")).await.unwrap();
    assert_eq!(
        form.attr("method").await.unwrap().as_deref(),
        Some("post"),
        "a GET is the default"
    );
    let field = browser.find(Locator::Id("token")).await.unwrap();
    assert_eq!(
        field.attr("name").await.unwrap(),
        None,
        "a named field would be submitted"
    );
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_and_a_supervisor_follow_a_call_in_a_browser() {
    let port = switchboard::redis_server::free_port().unwrap();
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut app = spawn_app_with(DESK, true, |s| s.listen = listen).await;
    let put = app
        .admin(
            Method::PUT,
            "/agents/ana",
            Some(json!({"name": "Ana Lima", "contact": "client:ana", "queues": ["desk", "sales"], "heartbeat_secs": 30})),
        )
        .await;
    assert_eq!(put.status, 201);
    for id in ["bo", "cy"] {
        app.add_agent(id, &["sales"]).await;
    }
    app.set_state("bo", "away").await;
    let token = app.issue_token("ana").await;

    let driver = Chromedriver::start();
    let agent = driver.browser(390, 844).await;
    let supervisor = driver.browser(1280, 800).await;

    // A wrong token is refused, and said so.
    sign_in(&agent, app.base(), "sbat_0000000000000000_nope").await;
    wait_for_text(&agent, "#sign-in-error", "That token was refused.", WAIT).await;
    agent.refresh().await.unwrap();
    sign_in(&agent, app.base(), &token).await;
    wait_for_text(&agent, "#agent-state", "offline", WAIT).await;
    wait_for_text(&agent, "#agent-name", "Ana Lima (ana)", WAIT).await;
    // No away reasons configured: no picker.
    let picker = agent.find(Locator::Id("away-reason-field")).await.unwrap();
    assert!(!picker.is_displayed().await.unwrap());
    sign_in(&supervisor, app.base(), ADMIN_TOKEN).await;
    wait_for(&supervisor, "#queues tr[data-queue=desk]", WAIT).await;
    wait_for_text(&supervisor, "#connection", "Live", WAIT).await;

    // A caller calls while nobody is available: it waits in line.
    let sid = call_sid(1);
    let round = app.call_from(&sid, CALLER, SUPPORT).await;
    assert!(round.body.contains("<Redirect"), "{}", round.body);
    let row = format!("#calls tr[data-call-sid={sid}]");
    wait_for_text(&supervisor, &format!("{row} td.from"), CALLER, WAIT).await;
    wait_for(&supervisor, &format!("{row}[data-status=waiting]"), WAIT).await;
    wait_for_text(
        &supervisor,
        "#queues tr[data-queue=desk] td.waiting",
        "1",
        WAIT,
    )
    .await;
    screenshot(&supervisor, "supervisor-desktop", 1280, 800).await;

    // The agent goes available (keyboard: focus the button, press Enter):
    // the waiting caller is offered to it at once, and its page shows who.
    let available = agent.find(Locator::Id("go-available")).await.unwrap();
    available.send_keys("\u{E007}").await.unwrap();
    wait_for_text(&agent, "#agent-state", "ringing", WAIT).await;
    wait_for_text(&agent, "#call-from", CALLER, WAIT).await;
    wait_for_text(&agent, "#call-queue", "desk", WAIT).await;
    wait_for(&supervisor, &format!("{row}[data-status=ringing]"), WAIT).await;
    wait_for_text(&supervisor, &format!("{row} td.agent"), "ana", WAIT).await;

    // The caller's next wait fetch dials ana; ana answers.
    let url = round
        .element_text("Redirect")
        .unwrap()
        .replace("&amp;", "&");
    let dial = post_signed(
        &app.http,
        &url,
        &[("CallSid", sid.as_str()), ("CallStatus", "in-progress")],
    )
    .await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    app.agent_leg(&sid, &dial, "in-progress").await;
    wait_for_text(&agent, "#agent-state", "on a call", WAIT).await;
    wait_for_text(&agent, "#call-since-label", "Talking for", WAIT).await;
    wait_for(&supervisor, &format!("{row}[data-status=talking]"), WAIT).await;
    wait_for_text(
        &supervisor,
        "#agents tr[data-agent=ana] .state",
        "on a call",
        WAIT,
    )
    .await;
    screenshot(&agent, "agent-phone", 390, 844).await;
    screenshot(&agent, "agent-desktop", 1280, 800).await;
    // Holding a call, the agent's buttons are off.
    let away = agent.find(Locator::Id("go-away")).await.unwrap();
    assert_eq!(
        away.attr("disabled").await.unwrap().as_deref(),
        Some("true")
    );

    // The server goes away: both pages say so; it comes back on the same
    // address: both say so, and show the present again.
    let redis_url = app.redis.url();
    app.server.shutdown().await;
    wait_for_text(
        &agent,
        "#connection",
        "Connection lost — reconnecting…",
        WAIT,
    )
    .await;
    wait_for_text(
        &supervisor,
        "#connection",
        "Connection lost — reconnecting…",
        WAIT,
    )
    .await;
    let mut again = settings(&redis_url, DESK);
    again.listen = listen;
    app.server = TestServer::start(again).await;
    app.call_status(&sid, "completed").await;
    for page in [&agent, &supervisor] {
        let started = std::time::Instant::now();
        loop {
            let text = page
                .find(Locator::Id("connection"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if text == "Connected again" || text == "Live" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "still {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    wait_for_text(&agent, "#agent-state", "available", WAIT).await;
    wait_for(&supervisor, &format!("{row}[data-status=ended]"), WAIT).await;

    agent.close().await.unwrap();
    supervisor.close().await.unwrap();
}

#[tokio::test]
async fn the_servers_address_leads_to_the_console_which_has_an_icon() {
    let app = spawn_app(DESK).await;
    let http = switchboard::tls::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // Before: 404 for both.
    let root = http.get(format!("{}/", app.base())).send().await.unwrap();
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(location(&root).as_deref(), Some("/console/"));
    let ico = http
        .get(format!("{}/favicon.ico", app.base()))
        .send()
        .await
        .unwrap();
    assert!(ico.status().is_redirection(), "{}", ico.status());
    assert_eq!(location(&ico).as_deref(), Some("/console/favicon.svg"));

    let icon = http
        .get(format!("{}/console/favicon.svg", app.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), 200);
    let header = |name: &str| icon.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "image/svg+xml");
    assert!(header("content-security-policy").contains("default-src 'none'"));
    assert!(icon.text().await.unwrap().starts_with("<svg"));
    let page = http
        .get(format!("{}/console/", app.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<link rel="icon" href="favicon.svg""#));
}
