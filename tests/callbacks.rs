//! Callbacks (docs/callbacks.md): a waiting caller asks to be called back and
//! keeps its place; when an agent is free for it, switchboard reserves the
//! agent and places the call to the customer through Twilio's REST API (a
//! local stand-in that checks what Twilio checks); the customer presses 1 and
//! is connected. Tries the customer misses are retried, then fail; every
//! report names its try, so a stale or forged one changes nothing; calls are
//! placed at the account's pace across replicas.

mod common;

use std::time::Duration;

use common::*;

const CALLBACKS: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0
no_answer_delay_secs = 0
max_missed_in_row = 100

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
[queues.hold]
loop_secs = 5
max_waiting = 10
announce = "position"
callback_key = "2"
callback_retries = 1
callback_retry_secs = 5
"#;

async fn app_with_rest(stand_in: &TwilioApiStandIn, cps: f64) -> TestApp {
    let rest = connect_through(stand_in.auth_token_config());
    spawn_app_with(CALLBACKS, true, move |s| {
        rest(s);
        s.twilio_cps = cps;
    })
    .await
}

/// The calls the stand-in placed, once there are `n`.
async fn placed(stand_in: &TwilioApiStandIn, n: usize) -> Vec<PlacedCall> {
    for _ in 0..300 {
        let seen = stand_in.placed();
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} calls placed, saw {:?}", stand_in.placed());
}

/// Twilio posts the outbound call's status callback.
async fn outbound_status(app: &TestApp, call: &PlacedCall, status: &str) -> Answer {
    let url = call.status_callback.split('#').next().unwrap_or_default();
    post_signed(
        &app.http,
        url,
        &[("CallSid", call.call_sid.as_str()), ("CallStatus", status)],
    )
    .await
}

/// The customer answers: Twilio fetches the call's Url.
async fn customer_answers(app: &TestApp, call: &PlacedCall, answered_by: Option<&str>) -> Answer {
    let mut params = vec![
        ("CallSid", call.call_sid.as_str()),
        ("CallStatus", "in-progress"),
        ("From", call.from.as_str()),
        ("To", call.to.as_str()),
    ];
    if let Some(by) = answered_by {
        params.push(("AnsweredBy", by));
    }
    post_signed(&app.http, &call.url, &params).await
}

/// Agent a of desk takes caller 1: its `<Dial>`.
async fn agent_a_on_caller_1(app: &TestApp) -> Answer {
    app.add_available("a", &["desk"]).await;
    app.call(&call_sid(1), SUPPORT).await
}

/// Caller 1 takes agent a; caller 2 asks to be called back and hangs up;
/// caller 1's call ends: a is reserved for the callback, and its call placed.
async fn callback_given_agent_a(app: &TestApp) {
    let first = agent_a_on_caller_1(app).await;
    let round2 = app.call(&call_sid(2), SUPPORT).await;
    ask_for_callback(app, &call_sid(2), &round2).await;
    app.call_status(&call_sid(2), "completed").await;
    app.agent_leg(&call_sid(1), &first, "answered").await;
    app.dial_action(&call_sid(1), &first, "completed").await;
}

/// The customer presses 1 at `prompt` (the outbound call `call`'s).
async fn customer_presses_1(app: &TestApp, prompt: &Answer, call: &PlacedCall) -> Answer {
    post_signed(
        &app.http,
        &gather_action(prompt),
        &[
            ("CallSid", call.call_sid.as_str()),
            ("CallStatus", "in-progress"),
            ("Digits", "1"),
        ],
    )
    .await
}

/// The admin API cancels callback `sid` of desk.
async fn cancel(app: &TestApp, sid: &str) -> Answer {
    app.admin(
        reqwest::Method::DELETE,
        &format!("/queues/desk/callbacks/{sid}"),
        None,
    )
    .await
}

async fn history_events(app: &TestApp, sid: &str) -> Vec<String> {
    let history = app
        .admin(reqwest::Method::GET, &format!("/calls/{sid}"), None)
        .await
        .json();
    history["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["event"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn callbacks(app: &TestApp) -> serde_json::Value {
    let list = app
        .admin(reqwest::Method::GET, "/queues/desk/callbacks", None)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    list.json()["callbacks"].clone()
}

async fn until_agent(app: &TestApp, id: &str, state: &str) -> serde_json::Value {
    for _ in 0..200 {
        let a = app.agent(id).await;
        if a["state"] == state {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} never {state}: {}", app.agent(id).await);
}

#[tokio::test]
async fn a_caller_called_back_keeps_its_place_and_is_connected_when_it_presses_1() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    let first = agent_a_on_caller_1(&app).await;
    let round2 = app.call(&call_sid(2), SUPPORT).await;
    let round3 = app.call(&call_sid(3), SUPPORT).await;
    assert!(
        round2.body.contains("press 2"),
        "the offer: {}",
        round2.body
    );

    // Caller 2 asks to be called back and hangs up; it keeps its place.
    let thanks = ask_for_callback(&app, &call_sid(2), &round2).await;
    assert!(
        thanks
            .body
            .contains("We will call you back at 1 5 0 0 5 5 5 0 0 0 1"),
        "{}",
        thanks.body
    );
    assert!(thanks.body.contains("<Hangup/>"), "{}", thanks.body);
    app.call_status(&call_sid(2), "completed").await;
    let listed = callbacks(&app).await;
    assert_eq!(listed[0]["call_sid"], call_sid(2).as_str(), "{listed}");
    assert_eq!(listed[0]["status"], "waiting");
    assert_eq!(listed[0]["to"], "+15005550001");
    let doc = app
        .admin(reqwest::Method::GET, "/queues/desk", None)
        .await
        .json();
    assert_eq!(doc["waiting"][0]["call_sid"], call_sid(2).as_str(), "{doc}");
    assert_eq!(doc["waiting"][0]["callback"], true, "{doc}");
    assert_eq!(doc["waiting"][1]["position"], 2, "{doc}");

    // The agent is free: it goes to the callback at the head, and the
    // customer is called from the number the caller called.
    app.agent_leg(&call_sid(1), &first, "answered").await;
    app.dial_action(&call_sid(1), &first, "completed").await;
    let calls = placed(&stand_in, 1).await;
    let call = &calls[0];
    assert_eq!(
        (call.to.as_str(), call.from.as_str()),
        ("+15005550001", SUPPORT)
    );
    assert_eq!(call.account, ACCOUNT_SID);
    assert!(
        call.url.starts_with(&format!(
            "{}/twilio/voice/callback/answer?call={}",
            app.base(),
            call_sid(2)
        )),
        "{call:?}"
    );
    assert_eq!(
        call.events,
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(call.timeout, 30);
    assert_eq!(call.machine_detection, None);
    let a = app.agent("a").await;
    assert_eq!(
        (&a["state"], &a["call_sid"]),
        (&"reserved".into(), &call_sid(2).as_str().into())
    );

    // Twilio reports the call ringing, the customer answers and presses 1:
    // the outbound call rings the agent.
    outbound_status(&app, call, "ringing").await;
    let prompt = customer_answers(&app, call, None).await;
    assert!(prompt.body.contains("Press 1"), "{}", prompt.body);
    let dial = customer_presses_1(&app, &prompt, call).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"), "{}", dial.body);
    app.agent_leg(&call.call_sid, &dial, "answered").await;
    let a = app.agent("a").await;
    assert_eq!(
        (&a["state"], &a["call_sid"]),
        (&"on_call".into(), &call.call_sid.as_str().into())
    );
    assert!(callbacks(&app).await.as_array().is_some_and(Vec::is_empty));
    let events = history_events(&app, &call_sid(2)).await;
    for event in [
        "callback_requested",
        "callback_dialing",
        "callback_placed",
        "callback_answered",
        "callback_connected",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
    // The call ends as any call (the Dial action first, below).
    outbound_status(&app, call, "in-progress").await;

    // Caller 3 was never passed: it is next.
    stand_in.answer(&call_sid(3), CallAnswer::Succeed);
    app.dial_action(&call.call_sid, &dial, "completed").await;
    let a = until_agent(&app, "a", "reserved").await;
    assert_eq!(a["call_sid"], call_sid(3).as_str(), "{a}");
    drop(round3);
    // The metrics are the test binary's, shared by its tests: only this one
    // connects a callback.
    let page = app.metrics().await;
    for event in ["requested", "dialled", "connected"] {
        let series = format!("switchboard_callbacks_total{{queue=\"desk\",event=\"{event}\"}}");
        assert!(metric(&page, &series) >= 1.0, "{series}: {page}");
    }
    assert_eq!(
        metric(
            &page,
            "switchboard_callbacks_total{queue=\"desk\",event=\"connected\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn a_callback_the_customer_misses_is_tried_again_then_fails_and_no_agent_is_held() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    callback_given_agent_a(&app).await;

    // Try 1: nobody answers. The agent is free again at once, without a miss.
    let calls = placed(&stand_in, 1).await;
    outbound_status(&app, &calls[0], "no-answer").await;
    let a = until_agent(&app, "a", "available").await;
    assert_eq!(a["missed_in_row"], 0, "not a miss: {a}");
    let listed = callbacks(&app).await;
    assert_eq!(listed[0]["status"], "retry", "{listed}");
    assert_eq!(listed[0]["tries"], 1);
    // A late report of that try changes nothing.
    outbound_status(&app, &calls[0], "busy").await;

    // After callback_retry_secs it is back at its place and tried again.
    let calls = placed(&stand_in, 2).await;
    assert_ne!(calls[0].url, calls[1].url, "each try its own token");
    // A machine answers (answering machine detection): the last try is over.
    let hung_up = customer_answers(&app, &calls[1], Some("machine_start")).await;
    assert!(hung_up.body.contains("<Hangup/>"), "{}", hung_up.body);
    until_agent(&app, "a", "available").await;
    assert!(callbacks(&app).await.as_array().is_some_and(Vec::is_empty));
    let events = history_events(&app, &call_sid(2)).await;
    assert!(events.iter().any(|e| e == "callback_ended"), "{events:?}");
    // The stale try's Url hangs up and places nothing.
    let stale = customer_answers(&app, &calls[0], None).await;
    assert!(stale.body.contains("<Hangup/>"), "{}", stale.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stand_in.placed().len(), 2);
    let page = app.metrics().await;
    assert!(
        metric(
            &page,
            "switchboard_callbacks_total{queue=\"desk\",event=\"failed\"}"
        ) >= 1.0,
        "{page}"
    );
}

#[tokio::test]
async fn twilio_busy_is_tried_again_uncounted_and_a_refused_number_fails_the_callback() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    let first = agent_a_on_caller_1(&app).await;
    let round2 = app.call(&call_sid(2), SUPPORT).await;
    ask_for_callback(&app, &call_sid(2), &round2).await;
    // Every try of the first placing is answered 429 (the client retries
    // within its budget): the customer was never called.
    for _ in 0..4 {
        stand_in.next_place_answer(PlaceAnswer::TooManyRequests);
    }
    app.agent_leg(&call_sid(1), &first, "answered").await;
    app.dial_action(&call_sid(1), &first, "completed").await;
    let mut listed = serde_json::Value::Null;
    for _ in 0..200 {
        listed = callbacks(&app).await;
        if listed[0]["status"] == "retry" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(listed[0]["status"], "retry", "{listed}");
    assert_eq!(listed[0]["tries"], 0, "not counted: {listed}");
    until_agent(&app, "a", "available").await;
    // The next placing is refused: an invalid number fails the callback.
    stand_in.next_place_answer(PlaceAnswer::Refuse(21211));
    for _ in 0..400 {
        if callbacks(&app).await.as_array().is_some_and(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(callbacks(&app).await.as_array().is_some_and(Vec::is_empty));
    assert!(stand_in.placed().is_empty());
    until_agent(&app, "a", "available").await;
}

#[tokio::test]
async fn a_try_is_claimed_once_and_forged_or_stale_reports_change_nothing() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    callback_given_agent_a(&app).await;
    let calls = placed(&stand_in, 1).await;
    // The try is claimed: another claim (a replica holding a copy of its
    // entry) gets nothing.
    let store = app.server.state.engine.store();
    let again = store
        .claim_callback(&call_sid(2), 10.0, 60_000)
        .await
        .expect("claim");
    assert_eq!(again, switchboard::store::callbacks::Claim::Stale);
    // A token that is not the try's, correctly signed: refused as stale.
    let forged_url = calls[0]
        .url
        .split("token=")
        .next()
        .map(|head| format!("{head}token={}&queue=desk", "0".repeat(32)))
        .expect("a token");
    let forged = post_signed(
        &app.http,
        &forged_url,
        &[
            ("CallSid", calls[0].call_sid.as_str()),
            ("CallStatus", "in-progress"),
        ],
    )
    .await;
    assert!(forged.body.contains("<Hangup/>"), "{}", forged.body);
    // Unsigned: refused before anything.
    let unsigned = app
        .http
        .post(&calls[0].url)
        .form(&[("CallSid", calls[0].call_sid.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(unsigned.status(), 403);
    assert_eq!(app.agent("a").await["state"], "reserved");
    // A cancel frees the agent; the customer who answers then hears nothing.
    let cancelled = cancel(&app, &call_sid(2)).await;
    assert_eq!(cancelled.status, 204, "{cancelled:?}");
    until_agent(&app, "a", "available").await;
    let late = customer_answers(&app, &calls[0], None).await;
    assert!(late.body.contains("<Hangup/>"), "{}", late.body);
    let again = cancel(&app, &call_sid(2)).await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn callbacks_are_placed_at_the_accounts_pace_across_replicas() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 4.0).await;
    let rest = connect_through(stand_in.auth_token_config());
    let mut settings = app.server.state.settings.as_ref().clone();
    rest(&mut settings);
    settings.twilio_cps = 4.0;
    let other = TestServer::start_with(settings, true).await;
    // Six callers become callbacks; then six agents sign in at once, and
    // both replicas place the calls.
    let mut rounds = Vec::new();
    app.add_available("busy", &["desk"]).await;
    let _held = app.call(&call_sid(100), SUPPORT).await;
    for n in 1..=6 {
        rounds.push(app.call(&call_sid(n), SUPPORT).await);
    }
    for (n, round) in (1..=6).zip(&rounds) {
        ask_for_callback(&app, &call_sid(n), round).await;
    }
    for i in 0..6 {
        let base = if i % 2 == 0 {
            app.base()
        } else {
            other.base.as_str()
        };
        let id = format!("ag{i}");
        assert!(put_agent(&app.http, base, ADMIN_TOKEN, &id, &["desk"]).await < 300);
        assert_eq!(
            put_state(&app.http, base, ADMIN_TOKEN, &id, "available").await,
            200
        );
    }
    placed(&stand_in, 6).await;
    // When each was claimed, on Redis's clock: never two within 250 ms.
    let mut at: Vec<i64> = Vec::new();
    for n in 1..=6 {
        let ms = app
            .hget(&format!("call:{}", call_sid(n)), "dialed_at")
            .await;
        at.push(ms.expect("dialled"));
    }
    at.sort_unstable();
    for pair in at.windows(2) {
        assert!(pair[1] - pair[0] >= 250, "4 a second at most: {at:?}");
    }
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_plays_callers_who_ask_to_be_called_back_and_the_customers_twilio_calls() {
    let rest = SimulatedRest::new();
    let routing = CALLBACKS
        .replace("max_waiting = 10", "max_waiting = 100")
        .replace(
            "callback_retry_secs = 5",
            "callback_retry_secs = 5\ncallback_machine_detection = true",
        );
    let connect = connect_through(rest.config.clone());
    let app = spawn_app_with(&routing, true, move |s| {
        connect(s);
        s.twilio_cps = 5.0;
    })
    .await;
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.admin_token = ADMIN_TOKEN.into();
    args.agents = 2;
    args.agent_queues = vec!["desk".into()];
    args.calls = 16;
    args.concurrency = 16;
    args.to = vec![SUPPORT.into()];
    args.answer_every_attempt();
    args.ring_ms = 5;
    args.talk_ms = 300;
    args.hold_ms = 200;
    args.callback = 0.5;
    args.callback_ring_ms = 50;
    args.callback_wait_ms = 20_000;
    args.cps = Some(5.0);
    args.lost = 0.02;
    args.duplicate = 0.05;
    args.seed = 22;
    rest.play(&mut args);
    let report = simulate_cleanly(&args).await;
    assert!(report.callbacks_requested >= 3, "{report:?}");
    assert!(report.callbacks_connected >= 1, "{report:?}");
    let outcomes = report.callback_outcomes.as_ref().expect("histories read");
    assert_eq!(outcomes.requested, report.callbacks_requested, "{report:?}");
    assert_eq!(outcomes.without_one_outcome, 0, "{report:?}");
    assert_eq!(report.dialled_twice, 0);
    assert!(report.most_placed_in_a_second <= 5, "{report:?}");
    assert_eq!(report.agents_held_after, 0, "{report:?}");
}

#[tokio::test]
async fn an_agent_first_callback_rings_the_agent_then_dials_the_customer_from_that_call() {
    let stand_in = TwilioApiStandIn::start().await;
    let routing = CALLBACKS.replace(
        "callback_retry_secs = 5",
        "callback_retry_secs = 5\ncallback_agent_first = true",
    );
    let rest = connect_through(stand_in.auth_token_config());
    let app = spawn_app_with(&routing, true, rest).await;
    callback_given_agent_a(&app).await;

    // Try 1 rings the agent's own phone; the agent does not answer: a miss
    // of the agent's, not a try of the customer's.
    let calls = placed(&stand_in, 1).await;
    assert_eq!(calls[0].to, "client:a");
    assert_eq!(calls[0].from, SUPPORT);
    assert_eq!(calls[0].machine_detection, None);
    outbound_status(&app, &calls[0], "no-answer").await;
    let a = until_agent(&app, "a", "available").await;
    assert_eq!(a["missed_in_row"], 1, "{a}");
    let listed = callbacks(&app).await;
    assert_eq!(
        (&listed[0]["status"], &listed[0]["tries"]),
        (&"retry".into(), &0.into()),
        "{listed}"
    );

    // Try 2: the agent answers and hears who it calls back; the customer is
    // dialled from the number the caller called, and answers.
    let calls = placed(&stand_in, 2).await;
    let agent_call = &calls[1];
    let dial = post_signed(
        &app.http,
        &agent_call.url,
        &[
            ("CallSid", agent_call.call_sid.as_str()),
            ("CallStatus", "in-progress"),
        ],
    )
    .await;
    assert!(dial.body.contains("Calling back"), "{}", dial.body);
    assert_eq!(dial.attribute("Dial", "callerId").as_deref(), Some(SUPPORT));
    assert_eq!(dial.element_text("Number").as_deref(), Some("+15005550001"));
    let answered_url = dial
        .attribute("Number", "statusCallback")
        .expect("the customer's answer is reported")
        .replace("&amp;", "&");
    post_signed(
        &app.http,
        answered_url.split('#').next().unwrap_or_default(),
        &[
            ("CallSid", "CA0000000000000000000000000000c001"),
            ("ParentCallSid", agent_call.call_sid.as_str()),
            ("CallStatus", "in-progress"),
        ],
    )
    .await;
    let a = app.agent("a").await;
    assert_eq!(
        (&a["state"], &a["call_sid"]),
        (&"on_call".into(), &agent_call.call_sid.as_str().into())
    );
    assert!(callbacks(&app).await.as_array().is_some_and(Vec::is_empty));

    // The customer hangs up: the Dial action ends the call; the agent wraps up.
    let action = dial
        .attribute("Dial", "action")
        .expect("a Dial action")
        .replace("&amp;", "&");
    let over = post_signed(
        &app.http,
        &action,
        &[
            ("CallSid", agent_call.call_sid.as_str()),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "completed"),
            ("DialCallSid", "CA0000000000000000000000000000c001"),
        ],
    )
    .await;
    assert!(over.body.contains("<Hangup/>"), "{}", over.body);
    until_agent(&app, "a", "available").await;
    let events = history_events(&app, &call_sid(2)).await;
    assert!(
        events.iter().any(|e| e == "callback_connected"),
        "{events:?}"
    );
}

/// `answer`'s body holds `text` (said, or in a URL).
#[track_caller]
fn body_has(answer: &Answer, text: &str) {
    assert!(answer.body.contains(text), "{text:?} in {}", answer.body);
}

/// The caller at `sid` presses the callback key in `round`, then keys
/// `digits` (from `from`): the number prompt, and its answer.
async fn key_number(
    app: &TestApp,
    sid: &str,
    from: &str,
    round: &Answer,
    digits: &str,
) -> (Answer, Answer) {
    let params = |keys| {
        [
            ("CallSid", sid),
            ("CallStatus", "in-progress"),
            ("From", from),
            ("To", SUPPORT),
            ("Digits", keys),
        ]
    };
    let prompt = post_signed(&app.http, &gather_action(round), &params("2")).await;
    let answer = post_signed(&app.http, &gather_action(&prompt), &params(digits)).await;
    (prompt, answer)
}

#[tokio::test]
async fn only_numbers_the_queue_may_call_are_taken_and_a_live_callback_never_expires() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    agent_a_on_caller_1(&app).await;

    // No callback_number_prefixes: the caller's own number only. The prompt
    // offers no other, and a number keyed in is not taken.
    let round2 = app.call(&call_sid(2), SUPPORT).await;
    let (prompt, keyed) =
        key_number(&app, &call_sid(2), "+15005550001", &round2, "4930123456").await;
    body_has(&prompt, "press 1, then pound.");
    assert!(!prompt.body.contains("another number"), "{}", prompt.body);
    body_has(&keyed, "That was not a number we can call");
    assert!(callbacks(&app).await.as_array().is_some_and(Vec::is_empty));
    // A withheld number: nothing to call back.
    let round3 = app.call_from(&call_sid(3), "anonymous", SUPPORT).await;
    let (withheld, _) = key_number(&app, &call_sid(3), "anonymous", &round3, "4930123456").await;
    body_has(&withheld, "we cannot call you back at your number");
    body_has(&withheld, "/twilio/voice/wait?queue=desk");

    // Its own number is taken; the callback keeps its place without expiring.
    let round4 = app.call(&call_sid(4), SUPPORT).await;
    let (_, thanks) = key_number(&app, &call_sid(4), "+15005550001", &round4, "1").await;
    body_has(&thanks, "We will call you back");
    let mut redis = app.redis().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(app.key(&format!("call:{}", call_sid(4))))
        .query_async(&mut redis)
        .await
        .expect("PTTL");
    assert_eq!(ttl, -1, "a live callback does not expire");

    // With prefixes, a keyed number that starts with one is taken, and the
    // caller's own number is not when it starts with none.
    let prefixed = CALLBACKS.replace(
        "callback_retry_secs = 5",
        "callback_retry_secs = 5\ncallback_number_prefixes = [\"+49\", \"+44\"]",
    );
    let rest = connect_through(stand_in.auth_token_config());
    let app = spawn_app_with(&prefixed, true, rest).await;
    agent_a_on_caller_1(&app).await;
    let round2 = app.call(&call_sid(2), SUPPORT).await;
    let (prompt, own) = key_number(&app, &call_sid(2), "+15005550001", &round2, "1").await;
    body_has(&prompt, "enter your number with its country code");
    body_has(&own, "That was not a number we can call");
    let round3 = app.call(&call_sid(3), SUPPORT).await;
    let (_, premium) = key_number(&app, &call_sid(3), "+15005550001", &round3, "19005550100").await;
    body_has(&premium, "That was not a number we can call");
    let round4 = app.call(&call_sid(4), SUPPORT).await;
    let (_, thanks) = key_number(&app, &call_sid(4), "+15005550001", &round4, "4930123456").await;
    body_has(&thanks, "We will call you back at 4 9 3 0 1 2 3 4 5 6");
    assert_eq!(callbacks(&app).await[0]["to"], "+4930123456");
}

#[test]
fn a_prefix_that_is_not_one_stops_start_up() {
    let bad = CALLBACKS.replace(
        "callback_retry_secs = 5",
        "callback_retry_secs = 5\ncallback_number_prefixes = [\"49\"]",
    );
    let err = switchboard::config::RoutingTable::parse(&bad, "routing.toml")
        .expect_err("a prefix without +")
        .to_string();
    assert!(err.contains("callback_number_prefixes"), "{err}");
}

#[tokio::test]
async fn a_customer_whose_agent_was_forced_free_is_called_again_and_a_try_being_connected_is_not_cancelled()
 {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    callback_given_agent_a(&app).await;
    let calls = placed(&stand_in, 1).await;
    let prompt = customer_answers(&app, &calls[0], None).await;
    body_has(&prompt, "Press 1");
    // The customer hears the prompt: a cancel now would free an agent the
    // customer is about to reach.
    let cancelled = cancel(&app, &call_sid(2)).await;
    assert_eq!(cancelled.status, 409, "{cancelled:?}");
    assert_eq!(callbacks(&app).await[0]["status"], "answered");
    // The agent is forced away meanwhile; the customer's 1 finds it gone.
    app.force_state("a", "away").await;
    let pressed = customer_presses_1(&app, &prompt, &calls[0]).await;
    body_has(&pressed, "We will call you back");
    // Not the customer's fault: the try is not counted, the callback waits
    // for its next.
    let listed = callbacks(&app).await;
    assert_eq!(
        (&listed[0]["status"], &listed[0]["tries"]),
        (&"retry".into(), &0.into()),
        "{listed}"
    );
    // Cancelled between tries, a customer who answers a late try hears it.
    let cancelled = cancel(&app, &call_sid(2)).await;
    assert_eq!(cancelled.status, 204, "{cancelled:?}");
    let again = customer_presses_1(&app, &prompt, &calls[0]).await;
    body_has(&again, "can no longer be connected");
}

#[tokio::test]
async fn credentials_twilio_refuses_count_as_a_try_and_the_callback_is_tried_again() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    stand_in.next_place_answer(PlaceAnswer::Unauthorized);
    callback_given_agent_a(&app).await;
    let mut listed = serde_json::Value::Null;
    for _ in 0..200 {
        listed = callbacks(&app).await;
        if listed[0]["status"] == "retry" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Not the number's fault: counted, but not failed; the next try is placed.
    assert_eq!(
        (&listed[0]["status"], &listed[0]["tries"]),
        (&"retry".into(), &1.into()),
        "{listed}"
    );
    until_agent(&app, "a", "available").await;
    let calls = placed(&stand_in, 1).await;
    assert_eq!(calls[0].to, "+15005550001");
    let events = history_events(&app, &call_sid(2)).await;
    assert!(events.iter().any(|e| e == "callback_attempt"), "{events:?}");
}

#[tokio::test]
async fn a_caller_keying_its_number_keeps_its_place_and_is_dialled_if_an_agent_came_meanwhile() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in, 10.0).await;
    let first = agent_a_on_caller_1(&app).await;
    let round2 = app.call(&call_sid(2), SUPPORT).await;
    let params = |keys| {
        [
            ("CallSid", call_sid(2)),
            ("CallStatus", "in-progress".into()),
            ("From", "+15005550001".into()),
            ("To", SUPPORT.into()),
            ("Digits", String::from(keys)),
        ]
    };
    let prompt = post_signed(
        &app.http,
        &gather_action(&round2),
        &params("2").each_ref().map(|(k, v)| (*k, v.as_str())),
    )
    .await;
    body_has(&prompt, "press 1");
    // No wait fetch comes while the caller listens and keys: its heartbeat
    // allows minutes, not a round.
    let mut redis = app.redis().await;
    let (now_secs, _): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut redis)
        .await
        .expect("TIME");
    let deadline: Option<f64> = redis::cmd("ZSCORE")
        .arg(app.key("deadlines"))
        .arg(format!("wait|{}||", call_sid(2)))
        .query_async(&mut redis)
        .await
        .expect("ZSCORE");
    let deadline = deadline.expect("the caller's heartbeat");
    assert!(
        deadline >= (now_secs * 1000 + 170_000) as f64,
        "{deadline} vs now {now_secs} s"
    );
    // The agent comes free while the caller keys: it is the caller's (and
    // Twilio takes the REST redirect that connects it).
    stand_in.answer(&call_sid(2), CallAnswer::Succeed);
    app.agent_leg(&call_sid(1), &first, "answered").await;
    app.dial_action(&call_sid(1), &first, "completed").await;
    let a = until_agent(&app, "a", "reserved").await;
    assert_eq!(a["call_sid"], call_sid(2).as_str(), "{a}");
    let answer = post_signed(
        &app.http,
        &gather_action(&prompt),
        &params("1").each_ref().map(|(k, v)| (*k, v.as_str())),
    )
    .await;
    assert!(!answer.body.contains("call you back"), "{}", answer.body);
    assert!(callbacks(&app).await.as_array().is_some_and(Vec::is_empty));
    let connect: Option<String> = app.hget(&format!("call:{}", call_sid(2)), "connect").await;
    match dialed(&answer) {
        // Dialled here: the REST redirect (if any comes) must not dial again.
        Some(agent) => {
            assert_eq!(agent, "a");
            assert_eq!(connect.as_deref(), Some("dialed"), "{}", answer.body);
        }
        // A REST redirect is on its way: a short pause, and its fetch dials.
        None => assert!(
            answer.body.contains("/twilio/voice/wait?queue=desk"),
            "{}",
            answer.body
        ),
    }
}

#[tokio::test]
async fn with_redis_down_every_callback_webhook_answers_twiml_and_bad_input_is_refused() {
    let stand_in = TwilioApiStandIn::start().await;
    let rest = connect_through(stand_in.auth_token_config());
    let mut app = spawn_app_with(CALLBACKS, true, move |s| {
        rest(s);
        s.redis_timeout = Duration::from_millis(300);
    })
    .await;
    let base = app.base().to_owned();
    let (sid, outbound) = (call_sid(2), format!("CA{:032x}", 0xcb00_u64));
    let token = "0123456789abcdef0123456789abcdef";
    let fenced = format!("call={sid}&token={token}&queue=desk");
    let keyed = [
        ("CallSid", sid.as_str()),
        ("CallStatus", "in-progress"),
        ("From", "+15005550001"),
        ("To", SUPPORT),
        ("Digits", "1"),
    ];
    let leg = [
        ("CallSid", outbound.as_str()),
        ("CallStatus", "in-progress"),
        ("Digits", "1"),
    ];
    let customer = [
        ("CallSid", "CA00000000000000000000000000000abc"),
        ("ParentCallSid", outbound.as_str()),
        ("CallStatus", "in-progress"),
    ];
    let dialed = [
        ("CallSid", outbound.as_str()),
        ("CallStatus", "in-progress"),
        ("DialCallStatus", "no-answer"),
    ];
    // Bad input first, Redis up: refused with a 4xx, nothing written.
    for (url, params) in [
        (format!("{base}/twilio/voice/callback/number"), &keyed[..]),
        (
            format!("{base}/twilio/voice/callback/number?queue=a%20b"),
            &keyed[..],
        ),
        (
            format!("{base}/twilio/voice/callback/answer?call={sid}&token=nope&queue=desk"),
            &leg[..],
        ),
        (
            format!("{base}/twilio/voice/callback/connect?{fenced}&first=human"),
            &leg[..],
        ),
        (
            format!("{base}/twilio/voice/callback/status?call=CA1&token={token}&queue=desk"),
            &leg[..],
        ),
    ] {
        let refused = post_signed(&app.http, &url, params).await;
        assert!((400..500).contains(&refused.status), "{url}: {refused:?}");
    }
    assert!(callbacks(&app).await.as_array().is_some_and(Vec::is_empty));

    // Redis down: what a caller or customer hears is TwiML (200); a status
    // callback is 503 for Twilio to send it again.
    app.redis.stop();
    for (path, params, status) in [
        (
            "/twilio/voice/callback/number?queue=desk".to_owned(),
            &keyed[..],
            200,
        ),
        (
            format!("/twilio/voice/callback/answer?{fenced}"),
            &leg[..],
            200,
        ),
        (
            format!("/twilio/voice/callback/connect?{fenced}"),
            &leg[..],
            200,
        ),
        (
            format!("/twilio/voice/callback/dialed?{fenced}&first=agent"),
            &dialed[..],
            200,
        ),
        (
            format!("/twilio/voice/callback/status?{fenced}"),
            &leg[..],
            503,
        ),
        (
            format!("/twilio/voice/callback/customer?{fenced}&first=agent"),
            &customer[..],
            503,
        ),
    ] {
        let answer = post_signed(&app.http, &format!("{base}{path}"), params).await;
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        assert!(answer.body.starts_with("<?xml"), "{path}: {}", answer.body);
    }
}
