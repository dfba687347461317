//! The console's softphone and ring alerting in a real browser (Debian's
//! chromium through chromedriver). Twilio's Voice SDK Device is replaced by a
//! test double, injected by this test only (WebDriver `execute` before the
//! sign-in: the console uses a `window.Twilio` already there rather than load
//! the vendored SDK), so no byte leaves the machine. What is checked: the
//! Device gets the token the server minted and registers; a call offered to
//! the agent rings (title, icon, Notification, the aria-live text) and stops
//! ringing once answered; Answer accepts, Mute toggles, Hang up disconnects,
//! Decline rejects; `tokenWillExpire` brings `updateToken` a fresh token. And,
//! without a browser session of the double: the vendored SDK is served gzipped
//! (406 for a client that refuses gzip), loads under the console's
//! Content-Security-Policy, and the page without it stays under 150 KB.

mod common;

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use common::browser::{Chromedriver, eval, sign_in, wait_for, wait_for_text, wait_until};
use common::*;
use serde_json::{Value, json};
use switchboard::twilio::access_token::VoiceTokens;

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
"#;

const WAIT: Duration = Duration::from_secs(10);
const CALLER: &str = "+15005550123";
const SDK_PATH: &str = "/console/vendor/twilio-voice-sdk-2.18.5.min.js";

fn voice() -> VoiceTokens {
    VoiceTokens {
        account_sid: ACCOUNT_SID.into(),
        key_sid: API_KEY_SID.into(),
        secret: API_KEY_SECRET.into(),
        twiml_app_sid: None,
        ttl: Duration::from_secs(3600),
    }
}

/// Twilio's Device and Call, and the browser's Notification, as doubles that
/// record what the console does with them.
const DOUBLES: &str = r#"
window.__phone = { devices: [], calls: [], notifications: [], asked: 0 };
class FakeCall {
  constructor(from) {
    this.parameters = { From: from }; this.handlers = {};
    this.accepted = false; this.rejected = false; this.disconnected = false; this.muted = false;
    window.__phone.calls.push(this);
  }
  on(e, f) { (this.handlers[e] = this.handlers[e] || []).push(f); }
  emit(e, ...a) { (this.handlers[e] || []).forEach((f) => f(...a)); }
  accept() { this.accepted = true; this.emit('accept', this); }
  reject() { this.rejected = true; this.emit('reject'); }
  disconnect() { this.disconnected = true; this.emit('disconnect', this); }
  mute(m) { this.muted = !!m; this.emit('mute', this.muted, this); }
  isMuted() { return this.muted; }
}
class FakeDevice {
  constructor(token, options) {
    this.token = token; this.options = options; this.handlers = {}; this.updated = [];
    this.registered = false; this.destroyed = false; this.incomingSound = true;
    this.audio = { incoming: (on) => { this.incomingSound = on; } };
    window.__phone.devices.push(this);
  }
  on(e, f) { (this.handlers[e] = this.handlers[e] || []).push(f); }
  emit(e, ...a) { (this.handlers[e] || []).forEach((f) => f(...a)); }
  async register() { this.emit('registering'); this.registered = true; this.emit('registered'); }
  updateToken(t) { this.updated.push(t); }
  destroy() { this.destroyed = true; }
}
window.Twilio = { Device: FakeDevice, FakeCall };
class FakeNotification {
  constructor(title, options) {
    this.title = title; this.body = options.body; this.closed = false;
    window.__phone.notifications.push(this);
  }
  close() { this.closed = true; }
}
FakeNotification.permission = 'default';
FakeNotification.requestPermission = async () => {
  window.__phone.asked++;
  FakeNotification.permission = 'granted';
  return 'granted';
};
window.Notification = FakeNotification;
"#;

/// `jwt` is exactly the token the server's key mints for `identity` at its
/// own `nbf`: the server's signature, for the right agent.
fn assert_minted(jwt: &str, identity: &str) {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    assert_eq!(claims["grants"]["identity"], identity);
    let nbf = claims["nbf"].as_i64().expect("nbf");
    assert_eq!(voice().mint(identity, nbf).jwt, jwt);
}

async fn screenshot(browser: &fantoccini::Client, name: &str) {
    common::browser::screenshot(browser, name).await;
}

async fn click(browser: &fantoccini::Client, css: &str) {
    wait_for(browser, css, WAIT).await.click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_softphone_agent_is_rung_answers_mutes_and_hangs_up_in_a_browser() {
    let app = spawn_app_with(DESK, true, |s| s.voice_tokens = Some(voice())).await;
    app.create_agent("ana", "Ana Lima", "client:ana", &["desk"])
        .await;
    let token = app.issue_token("ana").await;

    let driver = Chromedriver::start();
    let browser = driver.browser(1024, 768).await;
    browser
        .goto(&format!("{}/console/", app.base()))
        .await
        .unwrap();
    wait_for(&browser, "#token", WAIT).await;
    browser.execute(DOUBLES, vec![]).await.unwrap();
    let field = browser
        .find(fantoccini::Locator::Id("token"))
        .await
        .unwrap();
    field.send_keys(&token).await.unwrap();
    field.send_keys("\u{E007}").await.unwrap();

    // The Device: made with the minted token, registered, the SDK's own
    // ring off (the console rings itself); the vendored SDK never loaded.
    wait_for_text(&browser, "#phone-status", "Ready: calls ring here", WAIT).await;
    wait_for_text(&browser, "#announcer", "Your phone is ready.", WAIT).await;
    assert_eq!(eval(&browser, "window.__phone.devices.length").await, 1);
    let device_token = eval(&browser, "window.__phone.devices[0].token").await;
    assert_minted(device_token.as_str().expect("a token"), "ana");
    assert_eq!(
        eval(&browser, "window.__phone.devices[0].registered").await,
        true
    );
    assert_eq!(
        eval(&browser, "window.__phone.devices[0].incomingSound").await,
        false
    );
    assert_eq!(
        eval(
            &browser,
            "document.querySelectorAll('script[src*=\"voice-sdk\"]').length"
        )
        .await,
        0
    );

    // Notifications: offered once, asked on the click (a user gesture).
    click(&browser, "#notify").await;
    wait_for_text(&browser, "#announcer", "Call notifications are on.", WAIT).await;
    assert_eq!(eval(&browser, "window.__phone.asked").await, 1);
    assert_eq!(
        eval(&browser, "document.getElementById('notify').hidden").await,
        true
    );

    // A caller waits; the agent goes available and is offered the call: the
    // page rings.
    let round = app.call_from(&call_sid(1), CALLER, SUPPORT).await;
    assert!(round.body.contains("<Redirect"), "{}", round.body);
    click(&browser, "#go-available").await;
    wait_for_text(&browser, "#agent-state", "ringing", WAIT).await;
    wait_until(
        &browser,
        "document.title.startsWith('☎ Ringing: +15005550123')",
        WAIT,
    )
    .await;
    wait_until(
        &browser,
        "document.querySelector('link[rel=icon]').getAttribute('href') === 'favicon-ringing.svg'",
        WAIT,
    )
    .await;
    wait_for_text(
        &browser,
        "#announcer",
        "Incoming call from +15005550123.",
        WAIT,
    )
    .await;
    assert_eq!(
        eval(&browser, "document.body.dataset.ringing").await,
        "true"
    );
    assert_eq!(
        eval(&browser, "window.__phone.notifications.length").await,
        1
    );
    assert_eq!(
        eval(&browser, "window.__phone.notifications[0].body").await,
        CALLER
    );

    // Twilio's call reaches the Device: Answer and Decline are offered.
    browser
        .execute(
            "window.__phone.devices[0].emit('incoming', new window.Twilio.FakeCall(arguments[0]));",
            vec![json!(CALLER)],
        )
        .await
        .unwrap();
    wait_for_text(
        &browser,
        "#phone-caller",
        "Incoming call from +15005550123",
        WAIT,
    )
    .await;
    wait_for(&browser, "#phone-decline", WAIT).await;
    screenshot(&browser, "softphone-ringing").await;
    click(&browser, "#phone-answer").await;
    assert_eq!(
        eval(&browser, "window.__phone.calls[0].accepted").await,
        true
    );
    wait_for_text(&browser, "#announcer", "Call answered.", WAIT).await;
    // Answered: the ringing stops although the agent is still `reserved`
    // until Twilio's callback.
    wait_until(&browser, "document.title === 'switchboard console'", WAIT).await;
    assert_eq!(
        eval(
            &browser,
            "document.querySelector('link[rel=icon]').getAttribute('href')"
        )
        .await,
        "favicon.svg"
    );
    assert_eq!(
        eval(&browser, "window.__phone.notifications[0].closed").await,
        true
    );
    assert_eq!(
        eval(&browser, "document.body.dataset.ringing").await,
        "false"
    );

    // Mute toggles; Hang up disconnects.
    click(&browser, "#phone-mute").await;
    assert_eq!(eval(&browser, "window.__phone.calls[0].muted").await, true);
    wait_for(&browser, "#phone-mute[aria-pressed=true]", WAIT).await;
    wait_for_text(&browser, "#announcer", "Muted.", WAIT).await;
    click(&browser, "#phone-mute").await;
    assert_eq!(eval(&browser, "window.__phone.calls[0].muted").await, false);
    wait_for_text(&browser, "#announcer", "Unmuted.", WAIT).await;
    screenshot(&browser, "softphone-on-call").await;
    click(&browser, "#phone-hangup").await;
    assert_eq!(
        eval(&browser, "window.__phone.calls[0].disconnected").await,
        true
    );
    wait_for_text(&browser, "#announcer", "Call ended.", WAIT).await;
    wait_for_text(&browser, "#phone-status", "Ready: calls ring here", WAIT).await;

    // Another call to the Device: Decline rejects it, and it stops ringing.
    browser
        .execute(
            "window.__phone.devices[0].emit('incoming', new window.Twilio.FakeCall('client:bo'));",
            vec![],
        )
        .await
        .unwrap();
    wait_until(&browser, "document.title.startsWith('☎ Ringing: bo')", WAIT).await;
    click(&browser, "#phone-decline").await;
    assert_eq!(
        eval(&browser, "window.__phone.calls[1].rejected").await,
        true
    );
    wait_until(&browser, "document.title === 'switchboard console'", WAIT).await;
    wait_for_text(&browser, "#announcer", "Call declined.", WAIT).await;

    // The token is renewed when the Device says it will expire.
    browser
        .execute("window.__phone.devices[0].emit('tokenWillExpire');", vec![])
        .await
        .unwrap();
    wait_until(
        &browser,
        "window.__phone.devices[0].updated.length === 1",
        WAIT,
    )
    .await;
    let renewed = eval(&browser, "window.__phone.devices[0].updated[0]").await;
    assert_minted(renewed.as_str().expect("a token"), "ana");

    // Signing out ends the Device.
    click(&browser, "#sign-out").await;
    wait_until(&browser, "window.__phone.devices[0].destroyed", WAIT).await;
    browser.close().await.unwrap();
}

/// An agent whose calls ring a phone gets no softphone, but its console still
/// rings when a call is offered, and comes back after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_is_rung_and_a_phone_agent_gets_no_softphone() {
    let app = spawn_app_with(DESK, true, |s| s.voice_tokens = Some(voice())).await;
    app.create_agent("bo", "Bo", "+15005550100", &["desk"])
        .await;
    let token = app.issue_token("bo").await;
    let driver = Chromedriver::start();
    let browser = driver.browser(390, 844).await;
    sign_in(&browser, app.base(), &token).await;
    wait_for_text(&browser, "#agent-state", "offline", WAIT).await;
    assert_eq!(
        eval(&browser, "document.getElementById('softphone').hidden").await,
        true
    );
    assert_eq!(eval(&browser, "typeof window.Twilio").await, "undefined");

    let round = app.call_from(&call_sid(2), CALLER, SUPPORT).await;
    assert!(round.body.contains("<Redirect"), "{}", round.body);
    click(&browser, "#go-available").await;
    wait_until(
        &browser,
        "document.title.startsWith('☎ Ringing: +15005550123')",
        WAIT,
    )
    .await;
    wait_for_text(
        &browser,
        "#announcer",
        "Incoming call from +15005550123.",
        WAIT,
    )
    .await;
    // Answered on the agent's phone: the console stops ringing.
    let url = round
        .element_text("Redirect")
        .unwrap()
        .replace("&amp;", "&");
    let dial = post_signed(
        &app.http,
        &url,
        &[
            ("CallSid", call_sid(2).as_str()),
            ("CallStatus", "in-progress"),
        ],
    )
    .await;
    app.agent_leg(&call_sid(2), &dial, "in-progress").await;
    wait_for_text(&browser, "#agent-state", "on a call", WAIT).await;
    wait_until(&browser, "document.title === 'switchboard console'", WAIT).await;
    assert_eq!(
        eval(
            &browser,
            "document.querySelector('link[rel=icon]').getAttribute('href')"
        )
        .await,
        "favicon.svg"
    );
    wait_for_text(&browser, "#announcer", "You are on a call.", WAIT).await;
    browser.close().await.unwrap();
}

/// The real vendored SDK, loaded into the console's page under its
/// Content-Security-Policy (no Device is made: that would reach for Twilio).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendored_sdk_loads_under_the_consoles_policy() {
    let app = spawn_app(DESK).await;
    let driver = Chromedriver::start();
    let browser = driver.browser(800, 600).await;
    browser
        .goto(&format!("{}/console/", app.base()))
        .await
        .unwrap();
    wait_for(&browser, "#token", WAIT).await;
    browser
        .execute(
            "window.__violations = [];
             document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
             const s = document.createElement('script');
             s.src = arguments[0];
             s.onload = () => { window.__loaded = true; };
             s.onerror = () => { window.__loaded = false; };
             document.head.appendChild(s);",
            vec![json!(SDK_PATH)],
        )
        .await
        .unwrap();
    wait_until(&browser, "window.__loaded !== undefined", WAIT).await;
    assert_eq!(eval(&browser, "window.__loaded").await, true);
    assert_eq!(
        eval(&browser, "typeof window.Twilio.Device").await,
        "function"
    );
    assert_eq!(eval(&browser, "window.__violations").await, json!([]));
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_sdk_is_served_gzipped_and_the_page_stays_small() {
    let app = spawn_app(DESK).await;
    let vendored = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/console/vendor/twilio.min.js"
    ))
    .expect("the vendored SDK");
    // reqwest here decodes nothing: what the server sends is what is read.
    let get = |encoding: &'static str| {
        let http = app.http.clone();
        let url = format!("{}{SDK_PATH}", app.base());
        async move {
            http.get(url)
                .header("accept-encoding", encoding)
                .send()
                .await
                .expect("request")
        }
    };
    let gzipped = get("gzip, deflate, br").await;
    assert_eq!(gzipped.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header(&gzipped, "content-encoding"), "gzip");
    assert_eq!(
        header(&gzipped, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert!(header(&gzipped, "vary").contains("accept-encoding"));
    let csp = header(&gzipped, "content-security-policy");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let body = gzipped.bytes().await.expect("body");
    assert!(body.len() < 100_000, "{} bytes gzipped", body.len());
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut decoded)
        .expect("gzip");
    assert_eq!(decoded, vendored);

    // A client that refuses gzip is told so (no decoder in the binary).
    let plain = get("identity").await;
    assert_eq!(plain.status(), 406);
    assert!(plain.text().await.expect("body").contains("gzip"));

    // The page an agent or supervisor loads, without the SDK.
    let mut page = 0;
    for file in [
        "",
        "console.js",
        "supervisor.js",
        "agentwork.js",
        "console.css",
        "alerts.js",
        "softphone.js",
        "favicon.svg",
    ] {
        let r = app
            .http
            .get(format!("{}/console/{file}", app.base()))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{file}");
        page += r.bytes().await.expect("body").len();
    }
    assert!(page < 150 * 1024, "{page} bytes");
}
