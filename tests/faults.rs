//! Redis trouble never reaches the caller: with Redis stopped or paused, every
//! webhook still answers 200 with valid TwiML (the `[emergency]` fallback for a
//! call), `/readyz` reports it, and everything comes back by itself.

mod common;

use std::time::{Duration, Instant};

use common::*;

const ROUTING_WITH_EMERGENCY: &str = r#"
[[queues]]
name = "default"
fallback = ["voicemail"]

[emergency]
fallback = "number:+15005550010"
"#;

/// A bound far above the Redis budget and far below Twilio's 15 s: a correctness
/// limit, not a speed goal (the figures are in the README).
const ANSWER_BOUND: Duration = Duration::from_secs(5);

async fn app() -> TestApp {
    spawn_app_with(ROUTING_WITH_EMERGENCY, true, |s| {
        s.redis_timeout = Duration::from_millis(300)
    })
    .await
}

async fn ready(app: &TestApp) -> u16 {
    app.http
        .get(format!("{}/readyz", app.base()))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn is_emergency(a: &Answer) -> bool {
    a.status == 200
        && a.content_type.starts_with("text/xml")
        && a.element_text("Number").as_deref() == Some("+15005550010")
        && a.attribute("Dial", "action").is_none()
}

/// Every webhook, with Redis in trouble: 200 and TwiML, never a 5xx.
async fn every_webhook_answers(app: &TestApp, n: u64) {
    let sid = call_sid(n);
    let started = Instant::now();
    let call = app.call(&sid, "+15005550006").await;
    let took = started.elapsed();
    assert!(is_emergency(&call), "{call:?}");
    assert!(took < ANSWER_BOUND, "took {took:?}");
    let base = app.base();
    let token = "0123456789abcdef0123456789abcdef";
    let leg = format!("CA{:032x}", n + 1000);
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("{base}/twilio/voice/status"),
            vec![("CallSid", &sid), ("CallStatus", "completed")],
        ),
        (
            format!("{base}/twilio/voice/dial?agent=a&token={token}"),
            vec![
                ("CallSid", &sid),
                ("CallStatus", "in-progress"),
                ("DialCallStatus", "no-answer"),
            ],
        ),
        (
            format!("{base}/twilio/voice/dial?agent=a&token={token}"),
            vec![
                ("CallSid", &sid),
                ("CallStatus", "in-progress"),
                ("DialCallStatus", "completed"),
            ],
        ),
        (
            format!("{base}/twilio/voice/agent?agent=a&token={token}"),
            vec![
                ("CallSid", &leg),
                ("ParentCallSid", &sid),
                ("CallStatus", "in-progress"),
            ],
        ),
        (
            format!("{base}/twilio/voice/voicemail"),
            vec![
                ("CallSid", &sid),
                ("RecordingSid", "RE0123456789abcdef0123456789abcdef"),
                ("RecordingUrl", "https://x"),
            ],
        ),
    ];
    for (url, params) in cases {
        let a = post_signed(&app.http, &url, &params).await;
        assert_eq!(a.status, 200, "{url}: {a:?}");
        assert!(a.body.starts_with("<?xml"), "{url}: {}", a.body);
    }
}

#[tokio::test]
async fn with_redis_stopped_calls_get_the_emergency_twiml_and_readiness_comes_back() {
    let mut app = app().await;
    app.add_available("a", &["default"]).await;
    assert_eq!(ready(&app).await, 200);

    app.redis.stop();
    every_webhook_answers(&app, 1).await;
    assert_eq!(ready(&app).await, 503);
    let page = app.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_routing_failures_total{reason=\"redis_unavailable\"}"
        ) >= 1.0,
        "{page}"
    );
    // The admin API is not a webhook: it says Redis is unavailable.
    let admin = app.admin(reqwest::Method::GET, "/agents", None).await;
    assert_eq!(admin.status, 503);

    app.redis.restart().unwrap();
    let started = Instant::now();
    while ready(&app).await != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "/readyz never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis is empty: the roster is added again, and calls route.
    app.add_available("a", &["default"]).await;
    assert_eq!(
        dialed(&app.call(&call_sid(2), "+15005550006").await).as_deref(),
        Some("a")
    );
}

#[cfg(unix)]
#[tokio::test]
async fn with_redis_paused_calls_are_answered_at_the_deadline() {
    let app = app().await;
    app.add_available("a", &["default"]).await;
    let pid = app.redis.pid().expect("redis runs") as libc::pid_t;
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let started = Instant::now();
    every_webhook_answers(&app, 1).await;
    let all = started.elapsed();
    let readiness = ready(&app).await;
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(readiness, 503);
    assert!(
        all >= Duration::from_millis(300),
        "answered before the deadline: {all:?}"
    );
    let page = app.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_routing_failures_total{reason=\"redis_timeout\"}"
        ) >= 1.0,
        "{page}"
    );

    let started = Instant::now();
    while ready(&app).await != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "/readyz never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        dialed(&app.call(&call_sid(2), "+15005550006").await).as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn a_server_started_without_redis_serves_the_emergency_twiml_until_redis_appears() {
    let port = switchboard::redis_server::free_port().unwrap();
    let mut s = settings(&format!("redis://127.0.0.1:{port}"), ROUTING_WITH_EMERGENCY);
    s.redis_timeout = Duration::from_millis(300);
    let server = TestServer::start(s).await;
    let http = reqwest::Client::new();
    let url = format!("{}/twilio/voice", server.base);
    let sid = call_sid(1);
    let a = post_signed(
        &http,
        &url,
        &[("CallSid", sid.as_str()), ("To", "+15005550006")],
    )
    .await;
    assert!(is_emergency(&a), "{a:?}");
    let ready = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(ready, 503);
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(health, 200);
}
