//! Redis trouble never reaches the caller: with Redis stopped or paused, every
//! webhook a caller waits on still answers 200 with valid TwiML (the
//! `[emergency]` fallback for a call), a status callback answers 503 so Twilio
//! sends it again, `/readyz` reports it, and everything comes back by itself.

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

/// Every webhook, with Redis in trouble: TwiML, and 200 unless it is a status
/// callback (503: Twilio retries it).
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
        // A status callback that could not be applied is 503, so Twilio
        // sends it again; everything a caller waits on is 200 and TwiML.
        let status_callback = url.contains("/voice/status") || url.contains("/voice/agent");
        assert_eq!(
            a.status,
            if status_callback { 503 } else { 200 },
            "{url}: {a:?}"
        );
        assert!(a.body.starts_with("<?xml"), "{url}: {}", a.body);
    }
}

/// Redis writes its data to disk (`SAVE`), to come back with it after a stop.
/// On a plain connection: the server's own has the short Redis budget of these
/// tests, which a disk busy with other work can outlast.
fn save(app: &TestApp) {
    let client = redis::Client::open(app.redis.url()).expect("redis URL");
    let mut conn = client.get_connection().expect("redis connection");
    let _: () = redis::cmd("SAVE").query(&mut conn).expect("SAVE");
}

#[tokio::test]
async fn with_redis_stopped_calls_get_the_emergency_twiml_and_readiness_comes_back() {
    let mut app = app().await;
    app.add_available("a", &["default"]).await;
    assert_eq!(app.readyz().await, 200);

    app.redis.stop();
    every_webhook_answers(&app, 1).await;
    assert_eq!(app.readyz().await, 503);
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
    while app.readyz().await != 200 {
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
    let readiness = app.readyz().await;
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
    while app.readyz().await != 200 {
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
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
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

/// A status callback that arrives while Redis cannot apply it is not lost: it
/// is answered 503, and the copy Twilio sends again (the agent leg's
/// statusCallback URL asks for retries in its connection overrides) is applied.
/// Redis is stopped and comes back with the data it had saved (as after a
/// failover to a replica that had it all), so nothing was applied meanwhile.
#[tokio::test]
async fn a_status_callback_refused_while_redis_is_down_is_applied_when_sent_again() {
    let mut app = app().await;
    app.add_available("a", &["default"]).await;
    let sid = call_sid(7);
    let dial = app.call(&sid, "+15005550006").await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    let url = dial.attribute("Client", "statusCallback").unwrap();
    assert!(url.ends_with("#rc=5&rp=5xx,ct,rt"), "{url}");
    assert_eq!(app.agent_leg(&sid, &dial, "in-progress").await.status, 200);
    assert_eq!(app.agent("a").await["state"], "on_call");
    save(&app);

    app.redis.stop();
    let refused = app.agent_leg(&sid, &dial, "completed").await;
    let number = app.call_status(&sid, "completed").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(number.status, 503, "{number:?}");
    app.redis.restart().unwrap();

    // Twilio sends both again; they are applied, by the retry or by the
    // replica that kept them (whichever comes first), and the other changes
    // nothing.
    let started = Instant::now();
    while app.agent_leg(&sid, &dial, "completed").await.status != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.call_status(&sid, "completed").await.status, 200);
    let a = app.agent("a").await;
    assert!(a["call_sid"].is_null(), "{a}");
    assert_eq!(a["state"], "wrap_up", "{a}");
    assert_eq!(a["missed_in_row"], 0, "{a}");
    assert!(app.server.state.engine.unapplied().is_empty());
}

/// Waits (bounded) until agent `id` satisfies `done`; its last view.
async fn agent_until(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let a = app.agent(id).await;
        if done(&a) {
            return a;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what} never happened: {a}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Twilio retries a status callback answered 503 at most `rc=5` times within
/// its total timeout (`tt`, 15 s at most): an outage longer than that outlasts
/// every retry. The replica that answered 503 keeps the report and applies it
/// once Redis is back, with no callback sent again: the agent whose call ended
/// goes to wrap-up. Redis comes back with the data it had saved (`SAVE`).
#[tokio::test]
async fn a_final_agent_leg_status_sent_only_during_the_outage_is_applied_when_redis_returns() {
    let mut app = app().await;
    app.add_available("a", &["default"]).await;
    let sid = call_sid(12);
    let dial = app.call(&sid, "+15005550006").await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    assert_eq!(app.agent_leg(&sid, &dial, "in-progress").await.status, 200);
    save(&app);
    app.redis.stop();
    // The first try and Twilio's five retries all find Redis away.
    for _ in 0..6 {
        let refused = app.agent_leg(&sid, &dial, "completed").await;
        assert_eq!(refused.status, 503, "{refused:?}");
    }
    assert_eq!(app.server.state.engine.unapplied().len(), 1, "kept once");
    app.redis.restart().unwrap();
    let a = agent_until(&app, "a", "the kept agent leg status", |a| {
        a["state"] != "on_call"
    })
    .await;
    assert_eq!(a["state"], "wrap_up", "{a}");
    assert!(a["call_sid"].is_null(), "{a}");
    assert_eq!(a["missed_in_row"], 0, "{a}");
    assert!(app.server.state.engine.unapplied().is_empty());
}

fn redis_config(app: &TestApp, name: &str, value: &str) {
    let client = redis::Client::open(app.redis.url()).expect("redis URL");
    let mut conn = client.get_connection().expect("redis connection");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(&mut conn)
        .expect("CONFIG SET");
}

/// A Redis that answers but cannot take writes for now (full under
/// `noeviction`, as deploy/ runs it; the same holds for LOADING, READONLY
/// during a failover, BUSY): the report is kept, not dropped as if Redis had
/// refused it for good, and applied once Redis has room again.
#[tokio::test]
async fn a_final_agent_leg_status_refused_while_redis_is_full_is_applied_once_it_has_room() {
    let app = app().await;
    app.add_available("a", &["default"]).await;
    let sid = call_sid(14);
    let dial = app.call(&sid, "+15005550006").await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    assert_eq!(app.agent_leg(&sid, &dial, "in-progress").await.status, 200);
    redis_config(&app, "maxmemory-policy", "noeviction");
    redis_config(&app, "maxmemory", "1");
    let refused = app.agent_leg(&sid, &dial, "completed").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(app.server.state.engine.unapplied().len(), 1, "kept");
    // Several retries of the replica find Redis still full: still kept.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.server.state.engine.unapplied().len(),
        1,
        "a full Redis is an outage, not a refusal"
    );
    assert_eq!(app.agent("a").await["state"], "on_call");
    redis_config(&app, "maxmemory", "0");
    let a = agent_until(&app, "a", "the kept agent leg status", |a| {
        a["state"] != "on_call"
    })
    .await;
    assert_eq!(a["state"], "wrap_up", "{a}");
    assert!(app.server.state.engine.unapplied().is_empty());
}

/// The number's status callback with a final status, refused during an outage
/// and never sent again, still ends the call once Redis is back: the agent it
/// had reserved (still ringing) is free at once, without a miss, instead of
/// at the reservation's deadline.
#[tokio::test]
async fn a_final_call_status_sent_only_during_the_outage_is_applied_when_redis_returns() {
    let mut app = app().await;
    app.add_available("a", &["default"]).await;
    let sid = call_sid(13);
    let dial = app.call(&sid, "+15005550006").await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    assert_eq!(app.agent("a").await["state"], "reserved");
    save(&app);
    app.redis.stop();
    for _ in 0..6 {
        let refused = app.call_status(&sid, "canceled").await;
        assert_eq!(refused.status, 503, "{refused:?}");
    }
    app.redis.restart().unwrap();
    let a = agent_until(&app, "a", "the kept call end", |a| a["state"] != "reserved").await;
    assert!(a["call_sid"].is_null(), "{a}");
    assert_eq!(a["missed_in_row"], 0, "{a}");
    assert!(app.server.state.engine.unapplied().is_empty());
    // The call is over: a Dial action that comes late rings nobody new.
    let late = app.dial_action(&sid, &dial, "no-answer").await;
    assert_eq!(dialed(&late), None, "{late:?}");
}

/// With Redis paused, a status callback times out and is answered 503, though
/// its script may still run once Redis resumes: the copy Twilio sends again
/// then changes nothing more (every move is token-fenced).
#[cfg(unix)]
#[tokio::test]
async fn a_status_callback_answered_503_and_applied_late_is_harmless_when_sent_again() {
    let app = app().await;
    app.add_available("a", &["default"]).await;
    let sid = call_sid(9);
    let dial = app.call(&sid, "+15005550006").await;
    app.agent_leg(&sid, &dial, "in-progress").await;
    let pid = app.redis.pid().expect("redis runs") as libc::pid_t;
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let refused = app.agent_leg(&sid, &dial, "completed").await;
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(refused.status, 503, "{refused:?}");
    let started = Instant::now();
    while app.agent_leg(&sid, &dial, "completed").await.status != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a = app.agent("a").await;
    assert_eq!(a["state"], "wrap_up", "{a}");
    assert_eq!(a["missed_in_row"], 0, "{a}");
}

/// Twilio's docs do not say whether it signs a URL's connection overrides (the
/// `#…` fragment, which never reaches the server): a callback signed either way
/// is accepted, and one signed with another fragment is not.
#[tokio::test]
async fn a_status_callback_is_accepted_signed_with_or_without_its_overrides() {
    let app = app().await;
    app.add_available("a", &["default"]).await;
    let sid = call_sid(8);
    let dial = app.call(&sid, "+15005550006").await;
    let url = dial.attribute("Client", "statusCallback").unwrap();
    let (bare, _) = url.split_once('#').unwrap();
    let leg = format!("CA{:032x}", 88u64);
    let params = [
        ("CallSid", leg.as_str()),
        ("ParentCallSid", sid.as_str()),
        ("CallStatus", "ringing"),
    ];
    for signed in [url.as_str(), bare] {
        let a = post_signed(&app.http, signed, &params).await;
        assert_eq!(a.status, 200, "signed over {signed}: {a:?}");
    }
    let other = format!("{bare}#rc=1");
    let a = post_signed(&app.http, &other, &params).await;
    assert_eq!(a.status, 403, "signed over {other}: {a:?}");
}

/// A Dial action Redis cannot take still answers the caller (the emergency
/// TwiML), and the replica applies the attempt's end itself once Redis answers
/// again: the agent is not left reserved until the worker's deadline. Redis
/// comes back with the data it had saved (`SAVE`).
#[tokio::test]
async fn a_dial_action_redis_could_not_take_is_applied_when_it_answers_again() {
    let mut app = app().await;
    app.add_available("a", &["default"]).await;
    let sid = call_sid(11);
    let dial = app.call(&sid, "+15005550006").await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));
    save(&app);
    app.redis.stop();
    let answer = app.dial_action(&sid, &dial, "no-answer").await;
    assert!(is_emergency(&answer), "{answer:?}");
    assert_eq!(app.server.state.engine.unapplied().len(), 1);
    app.redis.restart().unwrap();
    // No callback comes again: the replica applies the miss it kept.
    let started = Instant::now();
    loop {
        let a = app.agent("a").await;
        if a["state"] != "reserved" {
            assert_eq!(a["missed_in_row"], 1, "{a}");
            assert!(a["call_sid"].is_null(), "{a}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the kept dial action was never applied: {a}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.server.state.engine.unapplied().is_empty());
}

#[tokio::test]
async fn a_restarted_redis_is_routed_again_without_restarting_switchboard() {
    let mut app = spawn_app(ROUTING).await;
    app.add_available("a", &["support"]).await;
    assert_eq!(
        dialed(&app.call(&call_sid(1), SUPPORT).await).as_deref(),
        Some("a")
    );

    // Redis restarts empty: its script cache is gone (NOSCRIPT), the roster too.
    app.redis.stop();
    app.redis.restart().expect("redis restarts");
    let mut routed = None;
    for _ in 0..50 {
        let a = app.call(&call_sid(2), SUPPORT).await;
        assert_eq!(a.status, 200, "callers never get an error: {a:?}");
        if a.element_text("Number").as_deref() == Some("+15005550010")
            && a.attribute("Dial", "action").is_none()
        {
            routed = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(routed.is_some(), "no routing after the restart");
    // The roster is added again through the API and calls reach agents again.
    app.add_available("b", &["support"]).await;
    assert_eq!(
        dialed(&app.call(&call_sid(3), SUPPORT).await).as_deref(),
        Some("b")
    );
    let ready = app
        .http
        .get(format!("{}/readyz", app.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// The default `[emergency]` answer is voicemail, whose `<Record action>` Twilio
/// posts to: behind a public URL with a path prefix it must be that URL.
const EMERGENCY_VOICEMAIL: &str = r#"
[[queues]]
name = "default"
fallback = ["voicemail"]
"#;

#[cfg(unix)]
#[tokio::test]
async fn the_timeout_layers_emergency_voicemail_records_under_the_public_urls_path_prefix() {
    const PUBLIC: &str = "https://calls.example/sb";
    let app = spawn_app_with(EMERGENCY_VOICEMAIL, false, |s| {
        s.public_url = Some(PUBLIC.into());
        // The Redis budget never answers first: the request timeout layer does.
        s.redis_timeout = Duration::from_secs(10);
        s.request_timeout = Duration::from_millis(300);
    })
    .await;
    let pid = app.redis.pid().expect("redis runs") as libc::pid_t;
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let sid = call_sid(1);
    let answer = post_signed_through(
        &app.http,
        AUTH_TOKEN,
        &format!("{PUBLIC}/twilio/voice"),
        &format!("{}/twilio/voice", app.base()),
        &[
            ("CallSid", sid.as_str()),
            ("From", "+15005550001"),
            ("To", "+15005550006"),
        ],
    )
    .await;
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.attribute("Record", "action").as_deref(),
        Some("https://calls.example/sb/twilio/voice/voicemail"),
        "{}",
        answer.body
    );
    let page = app.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_routing_failures_total{reason=\"request_timeout\"}"
        ) >= 1.0,
        "the timeout layer answered: {page}"
    );
}
