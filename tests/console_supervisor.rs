//! The supervisor's console in a real browser (Debian's chromium through
//! chromedriver): what it shows is true (an agent in its no-answer delay or
//! wrap-up is not shown as free; a caller put back in line after a miss keeps
//! its place and its whole wait; figures stop and dim when the stream is
//! lost), what a supervisor does from it (set an agent's state, remove a
//! waiting caller, each confirmed; find agents by text, state and queue), the
//! wallboard, the dark scheme, a phone's width without sideways scrolling,
//! and how long it takes to redraw 1,000 agents and 200 waiting callers
//! (printed, not asserted: the machine is shared).

mod common;

use std::time::{Duration, Instant};

use common::browser::{Chromedriver, screenshot, sign_in, wait_for, wait_for_js, wait_for_text};
use common::*;
use fantoccini::{Client, Locator};
use reqwest::Method;

const FLOOR: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 120
no_answer_delay_secs = 120

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
[queues.hold]
loop_secs = 20
join_when_no_agents = true
max_waiting = 300

[[queues]]
name = "sales"
numbers = ["+15005550006"]
fallback = ["voicemail"]
"#;

const WAIT: Duration = Duration::from_secs(10);

async fn click(browser: &Client, css: &str) {
    wait_for(browser, css, WAIT).await.click().await.unwrap();
}

/// Clicks the confirmation dialog's button that reads `text`.
async fn choose(browser: &Client, text: &str) {
    let xpath = format!("//dialog[@id='confirm']//button[normalize-space()='{text}']");
    let started = Instant::now();
    loop {
        if let Ok(button) = browser.find(Locator::XPath(&xpath)).await
            && button.is_displayed().await.unwrap_or(false)
        {
            button.click().await.unwrap();
            return;
        }
        assert!(started.elapsed() < WAIT, "no button {text:?} in the dialog");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// "3 s", "1 min 4 s", … as seconds.
fn seconds(text: &str) -> u64 {
    let mut total = 0;
    let words: Vec<&str> = text.split_whitespace().collect();
    for pair in words.chunks(2) {
        let n: u64 = pair[0].parse().unwrap_or_else(|_| panic!("{text:?}"));
        total += match pair.get(1) {
            Some(&"h") => n * 3600,
            Some(&"min") => n * 60,
            _ => n,
        };
    }
    total
}

async fn rows(browser: &Client, table: &str) -> u64 {
    browser
        .execute(
            &format!("return document.querySelectorAll('#{table} tbody tr').length"),
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_what_is_true_and_acts_from_the_page() {
    let port = switchboard::redis_server::free_port().unwrap();
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut app = spawn_app_with(FLOOR, true, |s| s.listen = listen).await;
    app.add_agent("ana", &["desk"]).await;
    app.add_agent("bo", &["desk", "sales"]).await;
    app.add_agent("cy", &["sales"]).await;

    let driver = Chromedriver::start();
    let page = driver.browser(1280, 900).await;
    sign_in(&page, app.base(), ADMIN_TOKEN).await;
    wait_for(&page, "#queues tr[data-queue=desk]", WAIT).await;
    wait_for_text(&page, "#connection", "Live", WAIT).await;

    // Two callers wait; nobody is available.
    let first = call_sid(1);
    let round1 = app.call_from(&first, "+15005550101", SUPPORT).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = call_sid(2);
    app.call_from(&second, "+15005550102", SUPPORT).await;
    let row1 = format!("#calls tr[data-call-sid={first}]");
    let row2 = format!("#calls tr[data-call-sid={second}]");
    wait_for_text(&page, &format!("{row2} td.position"), "#2", WAIT).await;
    wait_for_text(&page, &format!("{row1} td.position"), "#1", WAIT).await;

    // The supervisor sets ana available, confirming it: the head of the line
    // is offered to her.
    click(&page, "#agents tr[data-agent=ana] button").await;
    choose(&page, "Set available").await;
    choose(&page, "Yes, set available").await;
    wait_for_text(&page, "#agents tr[data-agent=ana] .state", "ringing", WAIT).await;
    assert_eq!(app.agent("ana").await["call_sid"], first.as_str());

    // She does not answer: she is not "available" beside waiting callers but
    // missed, free only after her no-answer delay; the first caller is back
    // at the head of the line, with its whole wait.
    let url = round1
        .element_text("Redirect")
        .unwrap()
        .replace("&amp;", "&");
    let dial = post_signed(
        &app.http,
        &url,
        &[("CallSid", first.as_str()), ("CallStatus", "in-progress")],
    )
    .await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    app.dial_action(&first, &dial, "no-answer").await;
    wait_for(&page, "#agents tr[data-agent=ana][data-state=delay]", WAIT).await;
    let state = text_of(&page, "#agents tr[data-agent=ana] .state").await;
    assert!(state.starts_with("missed — free in "), "{state:?}");
    let free_in = seconds(state.trim_start_matches("missed — free in "));
    assert!((100..=120).contains(&free_in), "{state:?}");
    wait_for_text(&page, "#agents tr[data-agent=ana] td.missed", "1", WAIT).await;
    wait_for(&page, &format!("{row1}[data-status=waiting]"), WAIT).await;
    wait_for_text(&page, &format!("{row1} td.position"), "#1", WAIT).await;
    let order: Vec<String> = page
        .execute(
            "return [...document.querySelectorAll('#calls tbody tr')].map(r => r.dataset.callSid)",
            vec![],
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, [first.clone(), second.clone()]);
    let waited1 = seconds(&text_of(&page, &format!("{row1} td.waited")).await);
    let waited2 = seconds(&text_of(&page, &format!("{row2} td.waited")).await);
    assert!(waited1 > waited2, "{waited1} s against {waited2} s");

    // Finding agents: by text, by what they really are, by queue; sorted.
    let search = page.find(Locator::Id("agent-search")).await.unwrap();
    search.send_keys("bo").await.unwrap();
    wait_for_js(
        &page,
        "return [...document.querySelectorAll('#agents tbody tr')].map(r => r.dataset.agent).join() === 'bo'",
        WAIT,
    )
    .await;
    search.clear().await.unwrap();
    page.execute(
        "const s = document.getElementById('agent-state-filter'); s.value = 'delay'; s.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await
    .unwrap();
    wait_for_js(
        &page,
        "return [...document.querySelectorAll('#agents tbody tr')].map(r => r.dataset.agent).join() === 'ana'",
        WAIT,
    )
    .await;
    page.execute(
        "const s = document.getElementById('agent-state-filter'); s.value = ''; s.dispatchEvent(new Event('input'));\
         const q = document.getElementById('agent-queue-filter'); q.value = 'sales'; q.dispatchEvent(new Event('input'));\
         const o = document.getElementById('agent-sort'); o.value = 'name'; o.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await
    .unwrap();
    wait_for_js(
        &page,
        "return [...document.querySelectorAll('#agents tbody tr')].map(r => r.dataset.agent).join() === 'bo,cy'",
        WAIT,
    )
    .await;
    page.execute(
        "const q = document.getElementById('agent-queue-filter'); q.value = ''; q.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await
    .unwrap();
    wait_for_js(
        &page,
        "return document.querySelectorAll('#agents tbody tr').length === 3",
        WAIT,
    )
    .await;

    // Removing the second caller, confirmed: it leaves the line for the
    // queue's fallback.
    click(&page, &format!("{row2} button")).await;
    choose(&page, "Yes, remove").await;
    wait_for_js(
        &page,
        &format!(
            "const r = document.querySelector('{row2}'); return !r || r.dataset.status === 'ended'"
        ),
        WAIT,
    )
    .await;
    let desk = app.admin(Method::GET, "/queues/desk", None).await.json();
    let waiting: Vec<&str> = desk["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["call_sid"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, [first.as_str()]);

    // bo takes the first caller and hangs up: wrap-up, counting down.
    app.set_state("bo", "available").await;
    wait_for_text(&page, "#agents tr[data-agent=bo] .state", "ringing", WAIT).await;
    let dial = post_signed(
        &app.http,
        &url,
        &[("CallSid", first.as_str()), ("CallStatus", "in-progress")],
    )
    .await;
    assert_eq!(dialed(&dial).as_deref(), Some("bo"), "{}", dial.body);
    app.agent_leg(&first, &dial, "in-progress").await;
    wait_for(&page, &format!("{row1}[data-status=talking]"), WAIT).await;
    app.call_status(&first, "completed").await;
    wait_for(&page, "#agents tr[data-agent=bo][data-state=wrap_up]", WAIT).await;
    // Today's figures and the windows: two calls offered, one answered
    // within the service level, one removed; an idle queue reads "–", never
    // "0 %".
    wait_for_text(&page, "#queues tr[data-queue=desk] td.answered", "1", WAIT).await;
    wait_for_text(&page, "#queues tr[data-queue=desk] .sl-15", "100 %", WAIT).await;
    wait_for_text(
        &page,
        "#queues tr[data-queue=desk] .sl-today",
        "100 %",
        WAIT,
    )
    .await;
    wait_for_text(&page, "#queues tr[data-queue=sales] .sl-15", "–", WAIT).await;
    wait_for_text(&page, "#totals .tile.answered strong", "1", WAIT).await;
    wait_for_text(&page, "#totals .tile.offered strong", "2", WAIT).await;
    wait_for_js(
        &page,
        "return document.querySelectorAll('#queues tr[data-queue=desk] svg.spark polyline').length === 2",
        WAIT,
    )
    .await;
    let state = text_of(&page, "#agents tr[data-agent=bo] .state").await;
    assert!(state.starts_with("wrap-up — "), "{state:?}");

    // The wallboard: one queue in large type, no control on the page.
    click(&page, "#wallboard-toggle").await;
    wait_for_text(&page, "#wall-queue", "desk", WAIT).await;
    wait_for_js(
        &page,
        "return document.body.classList.contains('wallboard') && document.getElementById('agents').offsetParent === null",
        WAIT,
    )
    .await;
    click(&page, "#wallboard-toggle").await;
    wait_for(&page, "#agents", WAIT).await;

    // The stream is lost: the figures dim and stop, and say since when.
    let redis_url = app.redis.url();
    app.server.shutdown().await;
    wait_for(&page, "#stale", WAIT).await;
    assert!(
        text_of(&page, "#stale")
            .await
            .starts_with("Not live: figures as of ")
    );
    let frozen = text_of(&page, "#agents tr[data-agent=bo] td.for").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        text_of(&page, "#agents tr[data-agent=bo] td.for").await,
        frozen
    );
    assert!(
        page.execute("return document.body.classList.contains('stale')", vec![])
            .await
            .unwrap()
            .as_bool()
            .unwrap()
    );
    let mut again = settings(&redis_url, FLOOR);
    again.listen = listen;
    app.server = TestServer::start(again).await;
    wait_for_js(
        &page,
        "return !document.body.classList.contains('stale') && document.getElementById('stale').hidden",
        Duration::from_secs(20),
    )
    .await;
    page.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_scrolls_sideways_on_a_phone_or_a_desktop_and_the_dark_scheme_is_honoured() {
    let app = spawn_app_with(FLOOR, true, |_| {}).await;
    app.add_agent("ana", &["desk"]).await;
    app.call_from(&call_sid(1), "+15005550101", SUPPORT).await;
    let driver = Chromedriver::start();

    let phone = driver.browser(390, 844).await;
    sign_in(&phone, app.base(), ADMIN_TOKEN).await;
    wait_for_text(&phone, "#queues tr[data-queue=desk] td.waiting", "1", WAIT).await;
    wait_for(&phone, "#agents tr[data-agent=ana]", WAIT).await;
    // Each table is a stack of cards as wide as the screen, each cell labelled.
    wait_for_js(
        &phone,
        "return document.documentElement.scrollWidth <= window.innerWidth \
         && [...document.querySelectorAll('.table-wrap')].every(w => w.scrollWidth <= w.clientWidth) \
         && getComputedStyle(document.querySelector('#queues tbody tr')).display === 'block' \
         && getComputedStyle(document.querySelector('#queues td.waiting'), '::before').content === '\"Waiting\"'",
        WAIT,
    )
    .await;
    screenshot(&phone, "supervisor-phone").await;
    phone.close().await.unwrap();

    let dark = driver.dark_browser(1280, 800).await;
    sign_in(&dark, app.base(), ADMIN_TOKEN).await;
    wait_for(&dark, "#queues tr[data-queue=desk]", WAIT).await;
    wait_for_js(
        &dark,
        "return matchMedia('(prefers-color-scheme: dark)').matches \
         && getComputedStyle(document.body).backgroundColor === 'rgb(13, 17, 23)'",
        WAIT,
    )
    .await;
    // At a desktop's 1280 px the queue table fits too: one column for the
    // three service-level windows, one for the agents' states.
    wait_for_js(
        &dark,
        "const w = document.querySelector('#queues').closest('.table-wrap'); \
         return w.scrollWidth <= w.clientWidth \
         && document.querySelector('#queues tr[data-queue=desk] .count.offline').textContent === '1 offline'",
        WAIT,
    )
    .await;
    screenshot(&dark, "supervisor-dark").await;
    dark.close().await.unwrap();
}

/// The issue's goals for the supervisor view: with 1,000 agents and 200
/// waiting callers an update renders in < 50 ms, and the page (without the
/// softphone's SDK) is < 150 KB over the wire. Size is asserted (it does not
/// depend on the machine); render time is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agents_and_two_hundred_callers_redraw_quickly_on_a_small_page() {
    let app = spawn_app_with(FLOOR, true, |_| {}).await;
    let mut bytes = 0;
    // Everything index.html loads (every script loads for every role).
    for file in [
        "",
        "console.js",
        "supervisor.js",
        "agentwork.js",
        "alerts.js",
        "softphone.js",
        "console.css",
        "favicon.svg",
    ] {
        let body = app
            .http
            .get(format!("{}/console/{file}", app.base()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        bytes += body.len();
    }
    assert!(bytes < 150 * 1024, "the console is {bytes} bytes");

    let ids: Vec<String> = (0..1000).map(|n| format!("agent{n:04}")).collect();
    for chunk in ids.chunks(50) {
        let puts = chunk.iter().map(|id| app.add_agent(id, &["desk"]));
        futures_util::future::join_all(puts).await;
    }
    for chunk in (1..=200).collect::<Vec<u64>>().chunks(25) {
        let calls = chunk.iter().map(|n| {
            let sid = call_sid(*n);
            let from = format!("+1500555{n:04}");
            let app = &app;
            async move { app.call_from(&sid, &from, SUPPORT).await }
        });
        futures_util::future::join_all(calls).await;
    }

    let driver = Chromedriver::start();
    let page = driver.browser(1280, 900).await;
    sign_in(&page, app.base(), ADMIN_TOKEN).await;
    wait_for_js(
        &page,
        "return document.getElementById('agent-count').textContent === '1–100 of 1000 agents' \
         && document.querySelectorAll('#calls tbody tr[data-status=waiting]').length === 200",
        Duration::from_secs(30),
    )
    .await;
    // A page of 100 agents is shown, the longest in their state first.
    assert_eq!(rows(&page, "agents").await, 100);
    page.execute("performance.clearMeasures('sb-render')", vec![])
        .await
        .unwrap();
    // Updates as the floor makes them: agents change state one by one.
    for id in ids.iter().take(40) {
        app.set_state(id, "away").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_js(
        &page,
        "return [...document.querySelectorAll('#agents tbody tr')].every(r => r.dataset.state === 'offline')",
        WAIT,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut figures = Vec::new();
    for name in ["sb-render", "sb-frame"] {
        let measured = page
            .execute(
                &format!("return performance.getEntriesByName('{name}').map(m => m.duration)"),
                vec![],
            )
            .await
            .unwrap();
        let mut ms: Vec<f64> = measured
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(ms.len() >= 5, "{name} measured: {ms:?}");
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        figures.push(format!(
            "{name} ({} updates) p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            ms.len(),
            at(0.5),
            at(0.9),
            at(1.0)
        ));
    }
    eprintln!(
        "supervisor view, 1,000 agents and 200 waiting: {}; page {bytes} bytes ({} cores)",
        figures.join("; "),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    page.close().await.unwrap();
}

/// A queue whose waiting callers may ask to be called back, with a minute of
/// wrap-up so each call is a cycle of about a minute.
const CALLBACK_FLOOR: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 60

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
[queues.hold]
loop_secs = 20
max_waiting = 10
announce = "both"
callback_key = "2"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_keeps_its_row_in_the_line_with_a_badge_and_callers_show_their_estimate() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = spawn_app_with(
        CALLBACK_FLOOR,
        true,
        connect_through(stand_in.auth_token_config()),
    )
    .await;
    app.add_available("ana", &["desk"]).await;
    // Five cycles of about a minute, so waits can be estimated.
    for n in 10..15 {
        let dial = app.call(&call_sid(n), SUPPORT).await;
        app.agent_leg(&call_sid(n), &dial, "answered").await;
        app.dial_action(&call_sid(n), &dial, "completed").await;
        app.set_state("ana", "available").await;
    }
    let busy = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(dialed(&busy).as_deref(), Some("ana"));
    app.agent_leg(&call_sid(1), &busy, "answered").await;
    let round2 = app.call_from(&call_sid(2), "+15005550001", SUPPORT).await;
    app.call_from(&call_sid(3), "+15005550003", SUPPORT).await;
    ask_for_callback(&app, &call_sid(2), &round2).await;
    app.call_status(&call_sid(2), "completed").await;

    let driver = Chromedriver::start();
    let page = driver.browser(1280, 900).await;
    sign_in(&page, app.base(), ADMIN_TOKEN).await;
    let row2 = format!("#calls tr[data-call-sid={}]", call_sid(2));
    let row3 = format!("#calls tr[data-call-sid={}]", call_sid(3));
    wait_for_text(&page, &format!("{row2} td.position"), "#1", WAIT).await;
    wait_for_text(&page, &format!("{row3} td.position"), "#2", WAIT).await;
    wait_for_js(
        &page,
        &format!("return !document.querySelector('{row2} .badge.callback').hidden"),
        WAIT,
    )
    .await;
    wait_for_js(
        &page,
        &format!("return document.querySelector('{row3} .badge.callback').hidden"),
        WAIT,
    )
    .await;
    // One agent, a minute a cycle: the caller behind the callback waits about
    // two minutes.
    wait_for_text(&page, &format!("{row3} td.estimate"), "≈ 2 min", WAIT).await;
    screenshot(&page, "supervisor-callback").await;
}
