//! Events: the scripts append every change to the namespace's stream;
//! `GET /v1/events` serves them live as Server-Sent Events (all for the admin,
//! its own for an agent), resumes after `Last-Event-ID`, and
//! `GET /v1/calls/{CallSid}` gives one call's events, oldest first. What a
//! stream may cost is bounded: open streams per agent and per process (429),
//! how far back a resume reads (a `gap` notice past it), ids the stream never
//! gave (400); and at shutdown each stream gets a notice and ends at once.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_calls_life_streams_live_to_the_admin_in_order() {
    let app = spawn_app(NO_WRAP_UP).await;
    let mut events = SseClient::open(&app, ADMIN_TOKEN, None).await;
    app.add_available("ana", &["support"]).await;
    let seen = events
        .until("agent_state", WAIT, |e| {
            e.data["agent"] == "ana" && e.data["state"] == "available"
        })
        .await;
    assert_eq!(seen[0].event, "agent_state", "{seen:#?}");
    assert_eq!(seen[0].data["state"], "offline", "created offline first");

    let sid = call_sid(1);
    let dial = app.call_from(&sid, "+15005550123", SUPPORT).await;
    let routed = events.until("call_routed", WAIT, |_| true).await;
    let routed = routed.last().unwrap();
    assert_eq!(routed.data["call_sid"], sid);
    assert_eq!(routed.data["agent"], "ana");
    assert_eq!(routed.data["queue"], "support");
    assert_eq!(routed.data["from"], "+15005550123");
    assert!(routed.data["at"].is_number());
    app.agent_leg(&sid, &dial, "in-progress").await;
    events
        .until("call_connected", WAIT, |e| e.data["call_sid"] == sid)
        .await;
    app.agent_leg(&sid, &dial, "completed").await;
    app.dial_action(&sid, &dial, "completed").await;
    let tail = events
        .until("call_ended", WAIT, |e| e.data["call_sid"] == sid)
        .await;
    // Ids only grow.
    let ids: Vec<(u64, u64)> = tail
        .iter()
        .map(|e| {
            let (ms, seq) = e.id.split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // No agent: the fallback is an event too.
    app.set_state("ana", "away").await;
    app.call(&call_sid(2), SUPPORT).await;
    let fallback = events.until("fallback", WAIT, |_| true).await;
    assert_eq!(fallback.last().unwrap().data["step"], "voicemail");
}

#[tokio::test]
async fn a_client_resumes_after_its_last_event_id() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    let mut first = SseClient::open(&app, ADMIN_TOKEN, None).await;
    app.set_state("ana", "available").await;
    let seen = first
        .until("agent_state", WAIT, |e| e.data["state"] == "available")
        .await;
    let resume_from = seen.last().unwrap().id.clone();
    drop(first);
    // While the client is away: away, then available again.
    app.set_state("ana", "away").await;
    app.set_state("ana", "available").await;
    let mut again = SseClient::open(&app, ADMIN_TOKEN, Some(&resume_from)).await;
    let missed = again.next(WAIT).await.expect("the first missed event");
    assert_eq!(missed.data["state"], "away", "{missed:?}");
    let next = again.next(WAIT).await.expect("the second missed event");
    assert_eq!(next.data["state"], "available", "{next:?}");
    // Then live, with nothing repeated.
    app.set_state("ana", "offline").await;
    let live = again.next(WAIT).await.expect("a live event");
    assert_eq!(live.data["state"], "offline", "{live:?}");
    assert_eq!(
        again.next(Duration::from_millis(300)).await.map(|e| e.id),
        None
    );
}

#[tokio::test]
async fn an_agent_streams_its_own_events_only() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    app.add_agent("bob", &["support"]).await;
    let token = app.issue_token("ana").await;
    let mut mine = SseClient::open(&app, &token, None).await;
    app.set_state("bob", "available").await;
    app.set_state("ana", "available").await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("bob"), "free the longest");
    let sid2 = call_sid(2);
    app.call(&sid2, SUPPORT).await;
    let seen = mine
        .until("call_routed", WAIT, |e| e.data["call_sid"] == sid2)
        .await;
    assert!(
        seen.iter().all(|e| e.data["agent"] == "ana"),
        "another agent's event reached ana: {seen:#?}"
    );
    // Refused: a token in the URL, a bad Last-Event-ID, no token.
    let in_url = app
        .http
        .get(format!("{}/v1/events?token={token}", app.base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(in_url.status(), 401);
    let bad_id = app
        .http
        .get(format!("{}/v1/events", app.base()))
        .bearer_auth(&token)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), 400);
    let none = app
        .http
        .get(format!("{}/v1/events", app.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
}

#[tokio::test]
async fn a_calls_history_lists_its_events_oldest_first() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_available("ana", &["support"]).await;
    app.add_available("bob", &["support"]).await;
    let sid = call_sid(7);
    let first = app.call(&sid, SUPPORT).await;
    let second = app.dial_action(&sid, &first, "no-answer").await;
    app.agent_leg(&sid, &second, "in-progress").await;
    app.call_status(&sid, "completed").await;

    let history = app.admin(Method::GET, &format!("/calls/{sid}"), None).await;
    assert_eq!(history.status, 200, "{history:?}");
    let history = history.json();
    assert_eq!(history["call_sid"], sid);
    let kinds: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] != "agent_state")
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["data"]["agent"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("call_routed".to_owned(), "ana".to_owned()),
            ("call_routed".to_owned(), "bob".to_owned()),
            ("call_connected".to_owned(), "bob".to_owned()),
            ("call_ended".to_owned(), "bob".to_owned()),
        ],
        "{history:#}"
    );
    assert_eq!(
        app.admin(Method::GET, &format!("/calls/{}", call_sid(99)), None)
            .await
            .status,
        404
    );
    assert_eq!(
        app.admin(Method::GET, "/calls/CA123", None).await.status,
        422
    );
    let token = app.issue_token("ana").await;
    let agent = app
        .with_token(&token, Method::GET, &format!("/calls/{sid}"), None)
        .await;
    assert_eq!(agent.status, 401, "history is for admins");
}

#[tokio::test]
async fn an_agents_stream_ends_when_its_token_stops_working() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    app.add_agent("bob", &["support"]).await;
    // Deleted: the deletion is the last event its stream sends.
    let bobs = app.issue_token("bob").await;
    let mut bob = SseClient::open(&app, &bobs, None).await;
    assert_eq!(
        app.admin(Method::DELETE, "/agents/bob", None).await.status,
        204
    );
    let last = bob.next(WAIT).await.expect("the deletion");
    assert_eq!(last.data["state"], "deleted", "{last:?}");
    assert!(bob.next(WAIT).await.is_none(), "the stream went on");

    // Revoked: the stream ends at its next check (every 15 s), and an open
    // stream counted as a heartbeat until then.
    let anas = app.issue_token("ana").await;
    let mut ana = SseClient::open(&app, &anas, None).await;
    assert_eq!(
        app.admin(Method::DELETE, "/agents/ana/tokens", None)
            .await
            .status,
        204
    );
    let started = std::time::Instant::now();
    app.set_state("ana", "available").await;
    assert!(ana.next(WAIT).await.is_some(), "its own event");
    assert!(
        ana.next(Duration::from_secs(20)).await.is_none(),
        "the stream outlived its token"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
}

/// XRANGE calls Redis has run: the reader's looks (and catch-up pages).
async fn xranges(app: &TestApp) -> u64 {
    let mut conn = app.redis().await;
    command_counts(&mut conn)
        .await
        .get("xrange")
        .copied()
        .unwrap_or(0)
}

/// Waits until no XRANGE ran for a second (the reader looks every 20 ms: 50
/// looks missed); false if that never happened within `wait`.
async fn reader_stopped(app: &TestApp, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    let mut before = xranges(app).await;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = xranges(app).await;
        if now == before {
            return true;
        }
        before = now;
    }
    false
}

#[tokio::test]
async fn the_reader_runs_only_while_a_stream_is_open() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    assert!(
        reader_stopped(&app, Duration::from_secs(10)).await,
        "no stream yet: no reader"
    );

    let mut first = SseClient::open(&app, ADMIN_TOKEN, None).await;
    app.set_state("ana", "available").await;
    first
        .until("agent_state", WAIT, |e| e.data["state"] == "available")
        .await;
    let reading = xranges(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        xranges(&app).await > reading,
        "a stream is open: the reader looks"
    );

    // hyper notices the client's close; the events below are a backstop
    // (a write to a closed socket fails).
    drop(first);
    for state in ["away", "available", "away", "available"] {
        app.set_state("ana", state).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reader_stopped(&app, Duration::from_secs(10)).await,
        "the last stream closed, yet the reader still looks"
    );

    // The next stream starts a reader again: live events are delivered.
    let mut second = SseClient::open(&app, ADMIN_TOKEN, None).await;
    app.set_state("ana", "offline").await;
    let seen = second
        .until("agent_state", WAIT, |e| e.data["state"] == "offline")
        .await;
    assert_eq!(seen.len(), 1, "{seen:#?}");
}

/// The error message of a refused request, checking it is JSON `{"error"}`.
async fn error_of(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("a JSON error");
    body["error"].as_str().expect("an error message").to_owned()
}

/// Appends `n` events as the scripts do (lua/lib/common.lua `emit`), event
/// `i` about agent `agent_of(i)`.
async fn append_events(app: &TestApp, n: usize, agent_of: impl Fn(usize) -> &'static str) {
    let mut conn = app.redis().await;
    let mut pipe = redis::pipe();
    for i in 0..n {
        let data = serde_json::json!({"agent": agent_of(i), "state": "away", "previous": "away", "n": i, "at": 0});
        pipe.cmd("XADD")
            .arg(app.key("events"))
            .arg("*")
            .arg("event")
            .arg("agent_state")
            .arg("data")
            .arg(data.to_string())
            .ignore();
    }
    let () = pipe.query_async(&mut conn).await.unwrap();
}

/// The id of the stream's newest event.
async fn newest_id(app: &TestApp) -> String {
    let mut conn = app.redis().await;
    let newest: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(app.key("events"))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    newest[0].0.clone()
}

#[tokio::test]
async fn an_agent_holds_at_most_five_streams_and_the_next_is_refused_429() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    app.add_agent("bob", &["support"]).await;
    // Two tokens of one agent share its cap.
    let tokens = [app.issue_token("ana").await, app.issue_token("ana").await];
    let mut open = Vec::new();
    for n in 0..5 {
        open.push(SseClient::open(&app, &tokens[n % 2], None).await);
    }
    for token in &tokens {
        let refused = SseClient::request(&app, token, Some("0-0")).await;
        assert_eq!(refused.status(), 429);
        let error = error_of(refused).await;
        assert!(
            error.contains("this agent has 5 event streams open"),
            "{error}"
        );
    }
    // Others are not held to ana's cap.
    let bobs = app.issue_token("bob").await;
    let _bob = SseClient::open(&app, &bobs, None).await;
    let _admin = SseClient::open(&app, ADMIN_TOKEN, None).await;
    assert!(
        metric(
            &app.metrics().await,
            r#"switchboard_event_streams_dropped_total{reason="refused"}"#
        ) >= 2.0
    );

    // A stream that closes frees its place: once the server notices (an
    // event written to the closed socket, at the latest).
    drop(open.pop());
    let started = std::time::Instant::now();
    for state in ["away", "available"].into_iter().cycle() {
        app.set_state("ana", state).await;
        let again = SseClient::request(&app, &tokens[0], None).await;
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 429);
        assert!(started.elapsed() < WAIT, "the closed stream still counts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_token_whose_agent_is_at_its_cap_is_refused_without_a_read_of_redis() {
    // No worker: what reaches Redis is the streams' and these requests'.
    let app = spawn_app_with(NO_WRAP_UP, false, |_| {}).await;
    app.add_agent("ana", &["support"]).await;
    let token = app.issue_token("ana").await;
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(SseClient::open(&app, &token, None).await);
    }
    let mut conn = app.redis().await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    const STORM: usize = 50;
    for n in 0..STORM {
        let resume = (n % 2 == 0).then_some("0-0");
        let refused = SseClient::request(&app, &token, resume).await;
        assert_eq!(refused.status(), 429);
        let error = error_of(refused).await;
        assert!(
            error.contains("this agent has 5 event streams open"),
            "{error}"
        );
    }
    // A token check is one HMGET; the five open streams may each make one
    // (they check their token every 15 s), the refused requests none.
    let sent = command_counts(&mut conn).await;
    let checks = sent.get("hmget").copied().unwrap_or(0);
    assert!(
        checks <= 5,
        "{checks} token checks for {STORM} refusals: {sent:?}"
    );
    assert!(
        metric(
            &app.metrics().await,
            r#"switchboard_event_streams_dropped_total{reason="refused"}"#
        ) >= STORM as f64
    );

    // Another token of ana's is checked as before (it opened nothing here),
    // and refused by the hub's count; one stream closing lets the token in.
    let other = app.issue_token("ana").await;
    assert_eq!(SseClient::request(&app, &other, None).await.status(), 429);
    drop(open.pop());
    let started = std::time::Instant::now();
    let mut states = ["away", "available"].into_iter().cycle();
    let _again = loop {
        app.set_state("ana", states.next().unwrap()).await;
        let again = SseClient::request(&app, &token, None).await;
        if again.status() == 200 {
            break again;
        }
        assert_eq!(again.status(), 429);
        assert!(started.elapsed() < WAIT, "the closed stream still counts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // A forged token (right shape, wrong secret) is not taken for it, while
    // the real one is at the cap again (that stream kept open).
    assert_eq!(SseClient::request(&app, &token, None).await.status(), 429);
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    assert_eq!(SseClient::request(&app, &forged, None).await.status(), 401);
}

#[tokio::test]
async fn past_the_processs_cap_a_stream_is_refused_429() {
    let app = spawn_app_with(NO_WRAP_UP, true, |s| s.event_streams.total = 3).await;
    app.add_agent("ana", &["support"]).await;
    let token = app.issue_token("ana").await;
    let _open = [
        SseClient::open(&app, ADMIN_TOKEN, None).await,
        SseClient::open(&app, ADMIN_TOKEN, None).await,
        SseClient::open(&app, &token, None).await,
    ];
    for who in [ADMIN_TOKEN, token.as_str()] {
        let refused = SseClient::request(&app, who, None).await;
        assert_eq!(refused.status(), 429);
        let error = error_of(refused).await;
        assert!(
            error.contains("this server has 3 event streams open"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_resume_from_further_back_than_the_window_gets_a_gap_then_its_own_events() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    app.add_agent("bob", &["support"]).await;
    let token = app.issue_token("ana").await;
    // More than the 500 a resume may go back; a third of them ana's.
    append_events(&app, 600, |i| if i % 3 == 0 { "ana" } else { "bob" }).await;
    let newest = newest_id(&app).await;

    let mut ana = SseClient::open(&app, &token, Some("0-0")).await;
    let gap = ana.next(WAIT).await.expect("a gap notice");
    assert_eq!(gap.event, "gap", "{gap:?}");
    assert_eq!(gap.data["missed_after"], "0-0", "{gap:?}");
    assert_eq!(gap.data["resume_window"], 500, "{gap:?}");
    assert_eq!(gap.id, newest, "the next resume starts after the gap");
    // Then live, and only ana's.
    app.set_state("bob", "available").await;
    app.set_state("ana", "available").await;
    let live = ana.next(WAIT).await.expect("a live event");
    assert_eq!(
        (live.data["agent"].as_str(), live.data["state"].as_str()),
        (Some("ana"), Some("available")),
        "{live:?}"
    );
    drop(ana);

    // Within the window: what was missed, ana's only, in order.
    append_events(&app, 30, |i| if i % 3 == 0 { "ana" } else { "bob" }).await;
    let mut again = SseClient::open(&app, &token, Some(&live.id)).await;
    let mut missed = Vec::new();
    while let Some(event) = again.next(Duration::from_millis(500)).await {
        missed.push(event);
    }
    let numbers: Vec<u64> = missed
        .iter()
        .map(|e| {
            assert_eq!(e.data["agent"], "ana", "{e:?}");
            e.data["n"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(numbers, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);

    // The admin's resume is bounded alike.
    append_events(&app, 501, |_| "bob").await;
    let mut admin = SseClient::open(&app, ADMIN_TOKEN, Some(&live.id)).await;
    let gap = admin.next(WAIT).await.expect("a gap notice");
    assert_eq!(gap.event, "gap", "{gap:?}");
    assert_eq!(gap.id, newest_id(&app).await);
}

#[tokio::test]
async fn a_last_event_id_the_stream_never_gave_is_refused_400() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    let token = app.issue_token("ana").await;
    let newest = newest_id(&app).await;
    let (ms, seq) = newest.split_once('-').unwrap();
    let (ms, seq): (u64, u64) = (ms.parse().unwrap(), seq.parse().unwrap());
    for (who, id) in [
        (ADMIN_TOKEN, format!("{ms}-{}", seq + 1)),
        (token.as_str(), format!("{}-0", ms + 60_000)),
        (token.as_str(), format!("{}-{}", u64::MAX, u64::MAX)),
    ] {
        let refused = SseClient::request(&app, who, Some(&id)).await;
        assert_eq!(refused.status(), 400, "{id}");
        let error = error_of(refused).await;
        assert!(
            error.contains("after this stream's newest event"),
            "{error}"
        );
    }
    for id in [
        "yesterday",
        "1-2-3",
        "-1",
        "1-",
        "18446744073709551616-0",
        "1.5-0",
    ] {
        let refused = SseClient::request(&app, &token, Some(id)).await;
        assert_eq!(refused.status(), 400, "{id}");
        let error = error_of(refused).await;
        assert!(error.contains("<ms>-<seq>"), "{error}");
    }
    // The newest id itself resumes with nothing missed.
    let mut resumed = SseClient::open(&app, &token, Some(&newest)).await;
    app.set_state("ana", "available").await;
    let live = resumed.next(WAIT).await.expect("a live event");
    assert_eq!(live.data["state"], "available", "{live:?}");
}

#[tokio::test]
async fn at_shutdown_a_stream_gets_a_notice_and_ends_at_once() {
    let app = spawn_app(NO_WRAP_UP).await;
    app.add_agent("ana", &["support"]).await;
    let token = app.issue_token("ana").await;
    let mut admin = SseClient::open(&app, ADMIN_TOKEN, None).await;
    let mut agent = SseClient::open(&app, &token, None).await;
    app.set_state("ana", "available").await;
    admin
        .until("agent_state", WAIT, |e| e.data["state"] == "available")
        .await;
    agent
        .until("agent_state", WAIT, |e| e.data["state"] == "available")
        .await;

    let TestApp {
        server,
        redis: _redis,
        ..
    } = app;
    // A stream is a request in flight, which the drain (11 s here) would
    // otherwise wait for.
    assert!(
        tokio::time::timeout(Duration::from_secs(6), server.shutdown())
            .await
            .is_ok(),
        "the server waited out its drain for the open streams"
    );
    for stream in [&mut admin, &mut agent] {
        let (rest, ended) = stream.rest(WAIT).await;
        assert!(ended, "the stream was cut, not ended: {rest:?}");
        let notice = rest
            .split("\n\n")
            .find(|block| block.contains("event: shutdown"))
            .unwrap_or_else(|| panic!("no shutdown notice in {rest:?}"));
        let field = |name: &str| {
            notice
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let retry: u64 = field("retry:").expect("a retry: field").parse().unwrap();
        assert!((1000..3000).contains(&retry), "{notice}");
        let data: serde_json::Value = serde_json::from_str(field("data:").unwrap()).unwrap();
        assert_eq!(data["retry_ms"], retry, "{notice}");
        assert_eq!(field("id:"), None, "the client resumes from its last event");
    }
}
