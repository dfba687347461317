//! Callers wait in line (SPEC 1 "Callers wait in line", invariant 7): nobody
//! overtakes, a freed agent goes to the longest-waiting caller, a caller whose
//! agent did not answer keeps its place, and every way of leaving the line.

mod common;

use std::time::Duration;

use common::*;

const LINE: &str = r#"
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
max_waiting = 3
max_wait_secs = 600
exit_digits = { "1" = "voicemail" }
"#;

/// Fetches the wait URL of a hold round, as Twilio does at the round's end.
async fn wait_fetch(app: &TestApp, sid: &str, round: &Answer) -> Answer {
    wait_fetch_with(app, sid, round, None).await
}

async fn wait_fetch_with(app: &TestApp, sid: &str, round: &Answer, digits: Option<&str>) -> Answer {
    let url = round
        .element_text("Redirect")
        .unwrap_or_else(|| panic!("a hold round ends in <Redirect>: {}", round.body))
        .replace("&amp;", "&");
    let mut params = vec![("CallSid", sid), ("CallStatus", "in-progress")];
    if let Some(d) = digits {
        params.push(("Digits", d));
    }
    post_signed(&app.http, &url, &params).await
}

fn says(answer: &Answer) -> String {
    answer.element_text("Say").unwrap_or_default()
}

/// The agent `dial` rang answers, and the call ends: the agent is free again
/// (and goes to the head of the line at once).
async fn answered_then_ended(app: &TestApp, sid: &str, dial: &Answer) {
    app.agent_leg(sid, dial, "answered").await;
    app.dial_action(sid, dial, "completed").await;
}

#[tokio::test]
async fn the_longest_waiting_caller_gets_the_agent_freed_by_a_webhook_and_nobody_overtakes() {
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"));

    let second = call_sid(2);
    let round2 = app.call(&second, SUPPORT).await;
    assert!(
        says(&round2).contains("number 1 in line"),
        "{}",
        round2.body
    );
    assert!(
        round2.body.contains("<Gather"),
        "exit keys gather: {}",
        round2.body
    );
    let third = call_sid(3);
    let round3 = app.call(&third, SUPPORT).await;
    assert!(
        says(&round3).contains("number 2 in line"),
        "{}",
        round3.body
    );

    // The first call ends: a is free at once (no wrap-up) and, in that same
    // webhook, reserved for the caller who waited longest.
    answered_then_ended(&app, &first, &dial).await;
    let a = app.agent("a").await;
    assert_eq!(a["state"], "reserved", "{a}");
    assert_eq!(a["call_sid"], second.as_str());

    // Its next wait fetch answers the <Dial>; the third moves up, never down.
    let connect = wait_fetch(&app, &second, &round2).await;
    assert_eq!(dialed(&connect).as_deref(), Some("a"), "{}", connect.body);
    let again = wait_fetch(&app, &third, &round3).await;
    assert!(says(&again).contains("number 1 in line"), "{}", again.body);

    // A new caller joins behind, even though it could have been first to ring.
    let fourth = call_sid(4);
    let round4 = app.call(&fourth, SUPPORT).await;
    assert!(
        says(&round4).contains("number 2 in line"),
        "{}",
        round4.body
    );

    // The second caller's wait, answered at once, is within the service level,
    // as is the first call's (answered without waiting in line).
    answered_then_ended(&app, &second, &connect).await;
    let doc = app
        .admin(reqwest::Method::GET, "/queues/desk", None)
        .await
        .json();
    let last_15m = &doc["service_level"]["last_15m"];
    assert_eq!(doc["service_level"]["target_secs"], 20, "{doc}");
    assert_eq!(
        (&last_15m["answered"], &last_15m["within"], &last_15m["pct"]),
        (
            &serde_json::json!(2),
            &serde_json::json!(2),
            &serde_json::json!(100.0)
        ),
        "{doc}"
    );
}

#[tokio::test]
async fn a_caller_whose_agent_does_not_answer_keeps_its_place_at_the_head() {
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let second = call_sid(2);
    let round2 = app.call(&second, SUPPORT).await;
    let third = call_sid(3);
    app.call(&third, SUPPORT).await;
    answered_then_ended(&app, &first, &dial).await;
    let connect = wait_fetch(&app, &second, &round2).await;
    assert_eq!(dialed(&connect).as_deref(), Some("a"));

    // a does not answer: the second caller goes back to the head of the line,
    // and a (no delay here) goes to the next caller, not the same one again.
    let back = app.dial_action(&second, &connect, "no-answer").await;
    assert!(
        back.body.contains("<Redirect"),
        "back to holding: {}",
        back.body
    );
    assert!(says(&back).contains("number 1 in line"), "{}", back.body);
    assert_eq!(app.agent("a").await["call_sid"], third.as_str());
    assert_eq!(app.agent("a").await["missed_in_row"], 1);
}

#[tokio::test]
async fn an_agent_freed_by_time_is_matched_within_a_sweep() {
    let app = spawn_app(&LINE.replace("wrap_up_secs = 0", "wrap_up_secs = 1")).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let second = call_sid(2);
    let round2 = app.call(&second, SUPPORT).await;
    answered_then_ended(&app, &first, &dial).await;
    assert_eq!(app.agent("a").await["state"], "wrap_up");
    // Wrap-up (1 s) ends by time; the worker (100 ms sweeps) matches.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(app.agent("a").await["call_sid"], second.as_str());
    let connect = wait_fetch(&app, &second, &round2).await;
    assert_eq!(dialed(&connect).as_deref(), Some("a"), "{}", connect.body);
}

#[tokio::test]
async fn callers_leave_the_line_when_it_is_full_by_key_by_hanging_up_and_by_time() {
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    let dial = app.call(&call_sid(1), SUPPORT).await;
    assert!(dialed(&dial).is_some());
    let rounds: Vec<Answer> = {
        let mut r = Vec::new();
        for n in 2..=4 {
            r.push(app.call(&call_sid(n), SUPPORT).await);
        }
        r
    };
    // max_waiting = 3: the fourth waiter gets the chain at once.
    let full = app.call(&call_sid(5), SUPPORT).await;
    assert!(full.body.contains("<Record"), "full: {}", full.body);

    // A key: the step it names.
    let exit = wait_fetch_with(&app, &call_sid(2), &rounds[0], Some("1")).await;
    assert!(exit.body.contains("<Record"), "exit: {}", exit.body);
    // A hang-up (the number's status callback).
    app.call_status(&call_sid(3), "completed").await;
    let moved = wait_fetch(&app, &call_sid(4), &rounds[2]).await;
    assert!(says(&moved).contains("number 1 in line"), "{}", moved.body);

    // Fetches that stop: the heartbeat (loop_secs + 15 s, brought forward in
    // Redis here) runs out and the worker takes the caller out.
    let mut conn = app.redis().await;
    let _: () = redis::cmd("ZADD")
        .arg("sb:{default}:deadlines")
        .arg(0)
        .arg(format!("wait|{}||", call_sid(4)))
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let left: u64 = redis::cmd("ZCARD")
        .arg("sb:{default}:line:desk")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "nobody left in line");
    // A fetch for a call that left answers without a hold round.
    let gone = wait_fetch(&app, &call_sid(4), &rounds[2]).await;
    assert!(!gone.body.contains("<Redirect"), "{}", gone.body);
}

#[tokio::test]
async fn max_wait_ends_the_wait_in_the_chain_and_nobody_waits_without_agents() {
    let app = spawn_app(&LINE.replace("max_wait_secs = 600", "max_wait_secs = 1")).await;
    app.add_available("a", &["desk"]).await;
    app.call(&call_sid(1), SUPPORT).await;
    let round = app.call(&call_sid(2), SUPPORT).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let timeout = wait_fetch(&app, &call_sid(2), &round).await;
    assert!(
        timeout.body.contains("<Record"),
        "timeout: {}",
        timeout.body
    );

    // Nobody of the queue signed in: no waiting (join_when_no_agents = false).
    let empty = spawn_app(LINE).await;
    empty.add_agent("off", &["desk"]).await;
    let refused = empty.call(&call_sid(1), SUPPORT).await;
    assert!(
        refused.body.contains("<Record"),
        "no agents: {}",
        refused.body
    );
}

#[tokio::test]
async fn with_redis_down_a_waiting_caller_gets_another_round_not_the_emergency_answer() {
    let mut app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    app.call(&call_sid(1), SUPPORT).await;
    let round = app.call(&call_sid(2), SUPPORT).await;
    app.redis.stop();
    let kept = wait_fetch(&app, &call_sid(2), &round).await;
    assert_eq!(kept.status, 200);
    assert!(kept.body.contains("<Redirect"), "{}", kept.body);
    let _ = app.redis.restart();
}

#[tokio::test]
async fn the_queue_document_shows_the_line_and_an_admin_can_take_a_caller_out() {
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    app.call(&call_sid(1), SUPPORT).await;
    let round2 = app.call_from(&call_sid(2), "+15005550042", SUPPORT).await;
    let round3 = app.call(&call_sid(3), SUPPORT).await;
    let doc = app
        .admin(reqwest::Method::GET, "/queues/desk", None)
        .await
        .json();
    let waiting = doc["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 2, "{doc}");
    assert_eq!(waiting[0]["call_sid"], call_sid(2).as_str());
    assert_eq!(waiting[0]["from"], "+15005550042");
    assert_eq!(waiting[0]["position"], 1);
    assert!(waiting[0]["since"].as_str().unwrap().ends_with('Z'));
    assert!(doc["longest_wait_secs"].as_u64().is_some(), "{doc}");

    let path = format!("/queues/desk/waiting/{}", call_sid(2));
    assert_eq!(
        app.admin(reqwest::Method::DELETE, &path, None).await.status,
        204
    );
    assert_eq!(
        app.admin(reqwest::Method::DELETE, &path, None).await.status,
        404
    );
    assert_eq!(
        app.admin(reqwest::Method::DELETE, "/queues/desk/waiting/CA12", None)
            .await
            .status,
        422
    );
    // Its next fetch answers the queue's chain; the other moves up.
    let removed = wait_fetch(&app, &call_sid(2), &round2).await;
    assert!(removed.body.contains("<Record"), "{}", removed.body);
    let moved = wait_fetch(&app, &call_sid(3), &round3).await;
    assert!(says(&moved).contains("number 1 in line"), "{}", moved.body);
}

#[tokio::test]
async fn every_ended_wait_is_counted_once_with_its_outcome() {
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let round2 = app.call(&call_sid(2), SUPPORT).await;
    app.call(&call_sid(3), SUPPORT).await;
    answered_then_ended(&app, &first, &dial).await;
    let connect = wait_fetch(&app, &call_sid(2), &round2).await;
    app.agent_leg(&call_sid(2), &connect, "answered").await;
    app.call_status(&call_sid(3), "completed").await;
    app.call_status(&call_sid(3), "completed").await; // twice: still one outcome
    tokio::time::sleep(Duration::from_millis(400)).await; // a worker drains the events
    let mut conn = app.redis().await;
    let outcomes: Vec<String> = futures_outcomes(&mut conn).await;
    assert_eq!(outcomes, ["abandoned", "answered"], "recorded once each");
    let left: u64 = redis::cmd("LLEN")
        .arg("sb:{default}:wait_events")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "drained into the metrics");
}

/// The recorded outcome of calls 2 and 3, sorted.
async fn futures_outcomes(conn: &mut switchboard::store::Conn) -> Vec<String> {
    let mut out = Vec::new();
    for n in [2, 3] {
        let o: Option<String> = redis::cmd("HGET")
            .arg(format!("sb:{{default}}:call:{}", call_sid(n)))
            .arg("wait_outcome")
            .query_async(conn)
            .await
            .unwrap();
        out.extend(o);
    }
    out.sort();
    out
}

/// A queue open all week except `closed_date` (UTC), whose closed step forwards.
fn hours_routing(closed_date: &str) -> String {
    format!(
        r#"
[defaults]
default_queue = "desk"

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
[queues.hours]
timezone = "UTC"
weekly = {{ mon = "00:00-24:00", tue = "00:00-24:00", wed = "00:00-24:00", thu = "00:00-24:00", fri = "00:00-24:00", sat = "00:00-24:00", sun = "00:00-24:00" }}
closed_dates = ["{closed_date}"]
closed = ["number:+15005550010"]
"#
    )
}

#[tokio::test]
async fn outside_its_hours_a_queue_answers_its_closed_step() {
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let closed = spawn_app(&hours_routing(&today.to_string())).await;
    closed.add_available("a", &["desk"]).await;
    let answer = closed.call(&call_sid(1), SUPPORT).await;
    assert_eq!(
        answer.element_text("Number").as_deref(),
        Some("+15005550010"),
        "{}",
        answer.body
    );
    assert_eq!(
        closed.agent("a").await["state"],
        "available",
        "nobody reserved"
    );

    let open = spawn_app(&hours_routing("2001-01-01")).await;
    open.add_available("a", &["desk"]).await;
    assert_eq!(
        dialed(&open.call(&call_sid(1), SUPPORT).await).as_deref(),
        Some("a")
    );
}

/// A server that connects waiting callers through a local stand-in of
/// Twilio's REST API.
async fn app_with_rest(stand_in: &TwilioApiStandIn) -> TestApp {
    spawn_app_with(LINE, true, connect_through(stand_in.auth_token_config())).await
}

async fn redirected(stand_in: &TwilioApiStandIn, sid: &str) -> Vec<RedirectRequest> {
    for _ in 0..50 {
        let seen = stand_in.requests_for(sid);
        if !seen.is_empty() {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn a_matched_caller_is_connected_at_once_through_twilios_rest_api() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let second = call_sid(2);
    let round2 = app.call(&second, SUPPORT).await;
    stand_in.answer(&second, CallAnswer::Succeed);
    answered_then_ended(&app, &first, &dial).await;

    let seen = redirected(&stand_in, &second).await;
    assert_eq!(seen.len(), 1, "one redirect: {seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].url,
        format!("{}/twilio/voice/wait?queue=desk&connect=1", app.base())
    );
    // The caller's own hold round ending meanwhile does not dial: the
    // redirect would cut that <Dial> off. It gets a second's pause.
    let meanwhile = wait_fetch(&app, &second, &round2).await;
    assert!(
        meanwhile.body.contains("<Pause length=\"1\"/>"),
        "{}",
        meanwhile.body
    );
    assert_eq!(dialed(&meanwhile), None);
    // Twilio fetches the redirect's URL: the <Dial> to the agent.
    let connect = post_signed(
        &app.http,
        &seen[0].url,
        &[("CallSid", second.as_str()), ("CallStatus", "in-progress")],
    )
    .await;
    assert_eq!(dialed(&connect).as_deref(), Some("a"), "{}", connect.body);
}

#[tokio::test]
async fn a_forced_agent_sends_its_not_yet_dialled_caller_back_to_its_place() {
    // No REST: the caller's wait fetch is what would dial.
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    app.add_available("b", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let b_dial = app.call(&call_sid(5), SUPPORT).await;
    assert_eq!(dialed(&b_dial).as_deref(), Some("b"));
    let second = call_sid(2);
    let round2 = app.call(&second, SUPPORT).await;
    let third = call_sid(3);
    let round3 = app.call(&third, SUPPORT).await;
    answered_then_ended(&app, &first, &dial).await;
    assert_eq!(app.agent("a").await["call_sid"], second.as_str());
    // An operator forces a free before the caller was dialled: its next fetch
    // does not ring a phone that is no longer reserved for it.
    app.force_state("a", "away").await;
    let back = wait_fetch(&app, &second, &round2).await;
    assert_eq!(dialed(&back), None, "{}", back.body);
    assert!(
        says(&back).contains("number 1 in line"),
        "still first: {}",
        back.body
    );
    let behind = wait_fetch(&app, &third, &round3).await;
    assert!(
        says(&behind).contains("number 2 in line"),
        "{}",
        behind.body
    );
}

#[tokio::test]
async fn a_redirect_claimed_by_a_replica_that_died_is_taken_over_by_the_callers_fetch() {
    // No REST here: the test claims the redirect itself, as a replica killed
    // right after its claim would have left it.
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let second = call_sid(2);
    let round2 = app.call(&second, SUPPORT).await;
    answered_then_ended(&app, &first, &dial).await;
    assert_eq!(app.agent("a").await["call_sid"], second.as_str());
    let store = app.server.state.engine.store();
    assert!(store.claim_connect(&second).await.unwrap().is_some());
    let claimed = std::time::Instant::now();

    // Within the REST budget (the client's total, and a second's slack) the
    // redirect may still come: the fetch pauses rather than dial a call about
    // to be cut off.
    let meanwhile = wait_fetch(&app, &second, &round2).await;
    assert_eq!(dialed(&meanwhile), None, "{}", meanwhile.body);
    // Then nobody is sending it: the caller's own fetch dials.
    let claim_lasts =
        switchboard::twilio::rest::RequestBudget::default().total + Duration::from_millis(1100);
    tokio::time::sleep(claim_lasts.saturating_sub(claimed.elapsed())).await;
    let taken_over = wait_fetch(&app, &second, &round2).await;
    assert_eq!(
        dialed(&taken_over).as_deref(),
        Some("a"),
        "{}",
        taken_over.body
    );
}

/// A waiting caller is given agent "a", and Twilio answers its REST redirect
/// with `answer`; returns the app, the caller's CallSid and its last round.
/// With `behind`, a third caller waits behind the second.
async fn redirect_answered(
    stand_in: &TwilioApiStandIn,
    answer: CallAnswer,
    behind: Option<&str>,
) -> (TestApp, String, Answer) {
    let app = app_with_rest(stand_in).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let second = call_sid(2);
    let round = app.call(&second, SUPPORT).await;
    if let Some(third) = behind {
        app.call(third, SUPPORT).await;
    }
    stand_in.answer(&second, answer);
    answered_then_ended(&app, &first, &dial).await;
    assert_eq!(redirected(stand_in, &second).await.len(), 1);
    (app, second, round)
}

/// Waits until agent "a" is available again, and checks it took no miss.
async fn released_without_a_miss(app: &TestApp) {
    let started = std::time::Instant::now();
    loop {
        let a = app.agent("a").await;
        if a["state"] == "available" {
            assert_eq!(a["missed_in_row"], 0, "{a}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never released: {a}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A number of a Twilio sub-account: its webhook's `AccountSid` is kept with
/// the call, and the redirect that connects the caller names that account in
/// its path (with the parent's credentials), not TWILIO_ACCOUNT_SID's.
#[tokio::test]
async fn a_waiting_caller_of_a_subaccount_is_redirected_in_that_subaccount() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app_with_rest(&stand_in).await;
    app.add_available("a", &["desk"]).await;
    let first = call_sid(1);
    let dial = app.call(&first, SUPPORT).await;
    let second = call_sid(2);
    let voice = format!("{}/twilio/voice", app.base());
    let round = post_signed(
        &app.http,
        &voice,
        &[
            ("CallSid", second.as_str()),
            ("AccountSid", SUBACCOUNT_SID),
            ("From", "+15005550002"),
            ("To", SUPPORT),
            ("CallStatus", "ringing"),
        ],
    )
    .await;
    assert_eq!(dialed(&round), None, "{}", round.body);
    stand_in.answer(&second, CallAnswer::Succeed);
    answered_then_ended(&app, &first, &dial).await;
    let sent = redirected(&stand_in, &second).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].account, SUBACCOUNT_SID, "{sent:?}");
    assert_eq!(sent[0].user, ACCOUNT_SID, "the parent's credentials");
}

#[tokio::test]
async fn a_rest_answer_that_the_call_is_over_frees_the_agent_without_a_miss() {
    let stand_in = TwilioApiStandIn::start().await;
    let (app, second, round) = redirect_answered(&stand_in, CallAnswer::NotInProgress, None).await;
    released_without_a_miss(&app).await;
    // Twilio said the call has ended: a fetch for it (a replay) ends politely.
    let after = wait_fetch(&app, &second, &round).await;
    assert_eq!(dialed(&after), None, "{}", after.body);
    assert!(after.body.contains("<Hangup/>"), "{}", after.body);
}

#[tokio::test]
async fn a_rest_404_frees_the_agent_and_the_caller_keeps_its_place_and_is_connected() {
    // 404: Twilio knows no such call in this account. The caller may well be
    // on the line (TWILIO_ACCOUNT_SID names another account), so it is not
    // taken for gone: it goes back to its place, ahead of the caller behind
    // it, and the agent freed without a miss is offered to the head of the
    // line again, that is to it, without another REST redirect.
    let stand_in = TwilioApiStandIn::start().await;
    let third = call_sid(3);
    let (app, second, round) =
        redirect_answered(&stand_in, CallAnswer::NotFound, Some(&third)).await;
    let started = std::time::Instant::now();
    while metric(
        &app.metrics().await,
        "switchboard_twilio_redirects_total{outcome=\"unknown_call\"}",
    ) < 1.0
    {
        assert!(started.elapsed() < Duration::from_secs(5), "no 404 seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a = app.agent("a").await;
    assert_eq!(a["call_sid"], second.as_str(), "{a}");
    assert_eq!(a["missed_in_row"], 0, "{a}");
    let connect = wait_fetch(&app, &second, &round).await;
    assert_eq!(dialed(&connect).as_deref(), Some("a"), "{}", connect.body);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stand_in.requests_for(&second).len(), 1, "redirected again");
    assert!(
        stand_in.requests_for(&third).is_empty(),
        "the third overtook"
    );
    let doc = app
        .admin(reqwest::Method::GET, "/queues/desk", None)
        .await
        .json();
    assert_eq!(doc["waiting"][0]["call_sid"], third.as_str(), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_plays_callers_who_wait_press_keys_and_hang_up_in_line() {
    let routing = LINE
        .replace("max_waiting = 3", "max_waiting = 100")
        .replace(
            "exit_digits = { \"1\" = \"voicemail\" }",
            "exit_digits = { \"1\" = \"voicemail\" }\njoin_when_no_agents = true",
        );
    let app = spawn_app(&routing).await;
    for id in ["a", "b", "c"] {
        app.add_available(id, &["desk"]).await;
    }
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.calls = 60;
    args.concurrency = 12;
    args.to = vec![SUPPORT.into()];
    args.answer_every_attempt();
    args.ring_ms = 5;
    args.talk_ms = 30;
    args.hold_ms = 10;
    args.wait_hangup = 0.05;
    args.wait_key = 0.05;
    let report = simulate_cleanly(&args).await;
    assert!(report.waited > 10, "callers waited: {report:?}");
    assert!(
        report.outcomes.get("answered").copied().unwrap_or(0) > 20,
        "{report:?}"
    );
    // Nobody is left in line, and no agent is held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = app.redis().await;
    let left: u64 = redis::cmd("ZCARD")
        .arg("sb:{default}:line:desk")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
    for id in ["a", "b", "c"] {
        let agent = app.agent(id).await;
        assert!(agent["call_sid"].is_null(), "{agent}");
    }
}

#[tokio::test]
async fn a_replica_starting_with_a_new_routing_file_replaces_the_published_hold_queues() {
    let app = spawn_app(LINE).await;
    let mut conn = app.redis().await;
    let fields = |c: &mut switchboard::store::Conn| {
        let mut c = c.clone();
        async move {
            let names: Vec<String> = redis::cmd("HKEYS")
                .arg("sb:{default}:hold_queues")
                .query_async(&mut c)
                .await
                .unwrap();
            names
        }
    };
    assert_eq!(fields(&mut conn).await, ["desk"]);
    let moved = LINE.replace("\"desk\"", "\"front\"");
    let _second = TestServer::start(settings(&app.redis.url(), &moved)).await;
    assert_eq!(
        fields(&mut conn).await,
        ["front"],
        "the old queue's entry is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_plays_twilios_rest_side_and_waiting_callers_connect_at_once() {
    let rest = SimulatedRest::new();
    let routing = LINE.replace("max_waiting = 3", "max_waiting = 100");
    let app = spawn_app_with(&routing, true, connect_through(rest.config.clone())).await;
    for id in ["a", "b"] {
        app.add_available(id, &["desk"]).await;
    }
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.calls = 12;
    args.concurrency = 6;
    args.to = vec![SUPPORT.into()];
    args.answer_every_attempt();
    args.ring_ms = 5;
    args.talk_ms = 20;
    // A long round: only a REST redirect connects a waiting caller quickly.
    args.hold_ms = 5_000;
    rest.play(&mut args);
    let report = simulate_cleanly(&args).await;
    assert_eq!(report.outcomes.get("answered"), Some(&12), "{report:?}");
    assert!(report.waited >= 4, "callers waited: {report:?}");
    assert_eq!(
        report.rest_redirects, report.waited,
        "every waiting caller was connected by a REST redirect, none by a wait fetch: {report:?}"
    );
}

/// Five holding queues; agents in one to three of them.
const MANY_LINES: &str = r#"
[defaults]
default_queue = "q0"
ring_timeout_secs = 5
reservation_grace_secs = 5
wrap_up_secs = 0
no_answer_delay_secs = 0
max_missed_in_row = 1000

[[queues]]
name = "q0"
numbers = ["+15005550100"]
priority = 5
[queues.hold]
loop_secs = 5
max_waiting = 1000
exit_digits = { "1" = "voicemail" }
join_when_no_agents = true

[[queues]]
name = "q1"
numbers = ["+15005550101"]
[queues.hold]
loop_secs = 5
max_waiting = 1000
join_when_no_agents = true

[[queues]]
name = "q2"
numbers = ["+15005550102"]
priority = 10
[queues.hold]
loop_secs = 5
max_waiting = 1000
join_when_no_agents = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_random_mix_of_waiting_callers_through_three_replicas_settles_clean() {
    let app = spawn_app(MANY_LINES).await;
    let second = TestServer::start(settings(&app.redis.url(), MANY_LINES)).await;
    let third = TestServer::start_with(settings(&app.redis.url(), MANY_LINES), false).await;
    for i in 0..9 {
        let queues: Vec<&str> = match i % 3 {
            0 => vec!["q0", "q1", "q2"],
            1 => vec!["q0", "q1"],
            _ => vec!["q2"],
        };
        app.add_available(&format!("agent{i}"), &queues).await;
    }
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.urls.push(second.base.clone());
    args.urls.push(third.base.clone());
    args.calls = 300;
    args.concurrency = 45;
    args.to = vec![
        "+15005550100".into(),
        "+15005550101".into(),
        "+15005550102".into(),
    ];
    args.answer = 0.7;
    args.no_answer = 0.15;
    args.busy = 0.05;
    args.hangup = 0.1;
    args.duplicate = 0.05;
    args.ring_ms = 5;
    args.talk_ms = 20;
    args.hold_ms = 20;
    args.wait_hangup = 0.03;
    args.wait_key = 0.03;
    args.seed = 20261126;
    let report = switchboard::simulate::run(&args)
        .await
        .expect("simulate runs");
    report.print(false);
    assert_eq!(
        report.violations, 0,
        "an agent on two calls: {:?}",
        report.examples
    );
    assert_eq!(report.errors, 0, "{:?}", report.examples);
    assert!(report.waited > 50, "{report:?}");

    // Settled: nobody in a line, nobody held, and the counts match the agents.
    let mut conn = app.redis().await;
    let started = std::time::Instant::now();
    loop {
        let mut waiting = 0u64;
        for q in ["q0", "q1", "q2"] {
            let n: u64 = redis::cmd("ZCARD")
                .arg(format!("sb:{{default}}:line:{q}"))
                .query_async(&mut conn)
                .await
                .unwrap();
            waiting += n;
        }
        let deadlines: u64 = redis::cmd("ZCARD")
            .arg("sb:{default}:deadlines")
            .query_async(&mut conn)
            .await
            .unwrap();
        if waiting == 0 && deadlines == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{waiting} still waiting, {deadlines} deadlines never swept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = app
        .admin(reqwest::Method::GET, "/agents", None)
        .await
        .json();
    for agent in list["agents"].as_array().unwrap() {
        assert!(agent["call_sid"].is_null(), "still held: {agent}");
        assert!(
            matches!(agent["state"].as_str(), Some("available" | "wrap_up")),
            "{agent}"
        );
    }
    second.shutdown().await;
    third.shutdown().await;
}

/// The line watch itself can fail (1): with no worker, an agent freed by time
/// (its wrap-up over) is never matched, so it sits free beside the callers in
/// line, and `simulate --watch-redis` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_line_watch_reports_an_agent_idle_beside_waiting_callers() {
    let routing = LINE
        .replace("wrap_up_secs = 0", "wrap_up_secs = 1")
        .replace("max_waiting = 3", "max_waiting = 100");
    let app = spawn_app_with(&routing, false, |_| {}).await;
    app.add_available("a", &["desk"]).await;
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.calls = 6;
    args.concurrency = 6;
    args.to = vec![SUPPORT.into()];
    args.answer_every_attempt();
    args.talk_ms = 50;
    args.hold_ms = 200;
    // Waiting callers give up after 5 s on average, long past the wrap-up.
    args.wait_hangup = 0.04;
    args.watch_redis = Some(app.redis.url());
    args.sweep_ms = 100;
    let report = switchboard::simulate::run(&args)
        .await
        .expect("simulate runs");
    report.print(false);
    assert_eq!(report.idle_beside_waiters, 1, "{report:?}");
    assert!(report.examples[0].starts_with("a was free beside desk's waiting callers"));
    assert!(report.failed());
}

/// The line watch itself can fail (2): with no worker, callers whose hang-up
/// was never reported stay in line (nobody sweeps their heartbeats), and
/// `simulate --watch-redis` says so once `loop_secs` + 15 s have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_line_watch_reports_callers_left_in_line_after_hanging_up() {
    let routing = LINE.replace(
        "exit_digits = { \"1\" = \"voicemail\" }",
        "join_when_no_agents = true",
    );
    let app = spawn_app_with(&routing, false, |_| {}).await;
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.calls = 3;
    args.concurrency = 3;
    args.to = vec![SUPPORT.into()];
    args.hold_ms = 50;
    args.wait_hangup = 0.5;
    args.lost = 1.0;
    args.watch_redis = Some(app.redis.url());
    args.sweep_ms = 100;
    let report = switchboard::simulate::run(&args)
        .await
        .expect("simulate runs");
    report.print(false);
    assert_eq!(report.left_in_line, 3, "{report:?}");
    assert!(report.failed());
}

/// Any TwiML in the Twilio account can send a call to the wait URL or name a
/// Dial action, and Twilio signs those requests: a call that never came in
/// through `/twilio/voice` gets `<Hangup/>`, no agent and no place in line.
#[tokio::test]
async fn a_wait_fetch_or_dial_action_for_a_call_that_never_came_in_hangs_up_and_touches_nothing() {
    let app = spawn_app(LINE).await;
    app.add_available("a", &["desk"]).await;
    let before = app.snapshot().await;
    let stranger = call_sid(404);
    let base = app.base();
    let token = "0123456789abcdef0123456789abcdef";
    let fetches = [
        (format!("{base}/twilio/voice/wait?queue=desk"), None),
        (
            format!("{base}/twilio/voice/wait?queue=desk&connect=1"),
            None,
        ),
        (format!("{base}/twilio/voice/wait?queue=desk"), Some("1")),
        (
            format!("{base}/twilio/voice/dial?agent=a&token={token}&home=desk"),
            Some("no-answer"),
        ),
    ];
    for (url, extra) in fetches {
        let mut params = vec![
            ("CallSid", stranger.as_str()),
            ("CallStatus", "in-progress"),
            ("From", "+15005550001"),
            ("To", SUPPORT),
        ];
        match extra {
            Some(status) if url.contains("/dial") => params.push(("DialCallStatus", status)),
            Some(digits) => params.push(("Digits", digits)),
            None => {}
        }
        let answer = post_signed(&app.http, &url, &params).await;
        assert_eq!(answer.status, 200, "{url}: {answer:?}");
        assert!(answer.body.contains("<Hangup/>"), "{url}: {}", answer.body);
        assert_eq!(dialed(&answer), None, "{url}: {}", answer.body);
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "an unknown call changed Redis"
    );
    assert_eq!(app.agent("a").await["state"], "available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_exit_key_reaches_the_wait_url_as_twilio_delivers_it() {
    let routing = LINE
        .replace(
            "exit_digits = { \"1\" = \"voicemail\" }",
            "exit_digits = { \"#\" = \"voicemail\" }\njoin_when_no_agents = true",
        )
        .replace("max_waiting = 3", "max_waiting = 100");
    let app = spawn_app(&routing).await;
    // Twilio's default finishOnKey is `#`: only an empty one lets `#` through.
    let round = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(
        round.attribute("Gather", "finishOnKey").as_deref(),
        Some(""),
        "{}",
        round.body
    );
    // Nobody can answer, so every caller waits and presses `#` in its first
    // round; simulate delivers it only as Twilio would.
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.calls = 3;
    args.to = vec![SUPPORT.into()];
    args.hold_ms = 10;
    args.wait_key = 1.0;
    args.wait_digit = '#';
    let report = switchboard::simulate::run(&args)
        .await
        .expect("simulate runs");
    report.print(false);
    assert_eq!(report.errors, 0, "{:?}", report.examples);
    assert_eq!(
        report.outcomes.get("voicemail").copied(),
        Some(3),
        "the exit step: {report:?}"
    );
}

/// A round of music longer than `loop_secs` + 15 s (today's heartbeat).
const LONG_MUSIC: &str = r#"
[defaults]
default_queue = "desk"

[[queues]]
name = "desk"
fallback = ["voicemail"]
[queues.hold]
loop_secs = 5
music_url = "https://example.com/hold.mp3"
music_secs = 21
join_when_no_agents = true
"#;

async fn in_line(conn: &mut switchboard::store::Conn, sid: &str) -> bool {
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg("sb:{default}:line:desk")
        .arg(sid)
        .query_async(conn)
        .await
        .unwrap();
    score.is_some()
}

#[tokio::test]
async fn a_caller_hearing_long_music_stays_in_line_and_leaves_when_its_fetches_stop() {
    let app = spawn_app(LONG_MUSIC).await;
    let mut conn = app.redis().await;
    let (listening, gone) = (call_sid(1), call_sid(2));
    let round = app.call(&listening, SUPPORT).await;
    assert!(round.body.contains("<Play>"), "{}", round.body);
    app.call(&gone, SUPPORT).await;
    // The music plays 21 s: past loop_secs + 15 s, both are still in line.
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert!(in_line(&mut conn, &listening).await, "abandoned mid-music");
    assert!(in_line(&mut conn, &gone).await, "abandoned mid-music");
    let next = wait_fetch(&app, &listening, &round).await;
    assert!(says(&next).contains("number 1 in line"), "{}", next.body);
    // The other never fetches again: gone once a round and 15 s have passed
    // (21 + 15 s after it joined), while the listening one stays.
    tokio::time::sleep(Duration::from_millis(16_500)).await;
    assert!(
        !in_line(&mut conn, &gone).await,
        "left after its fetches stopped"
    );
    let outcome: Option<String> = redis::cmd("HGET")
        .arg(format!("sb:{{default}}:call:{gone}"))
        .arg("wait_outcome")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(outcome.as_deref(), Some("abandoned"));
    assert!(in_line(&mut conn, &listening).await);
}

const SPOKEN: &str = r#"
[defaults]
default_queue = "desk"
say_voice = "Polly.Joanna"
say_language = "en-US"

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
say_voice = "Polly.Lupe"
say_language = "es-US"
[queues.hold]
loop_secs = 5
max_waiting = 1
join_when_no_agents = true

[[queues]]
name = "plain"
numbers = ["+15005550008"]
"#;

#[tokio::test]
async fn every_say_speaks_in_its_queues_voice_and_language() {
    let app = spawn_app(SPOKEN).await;
    let queue_voice = "<Say voice=\"Polly.Lupe\" language=\"es-US\">";
    let round = app.call(&call_sid(1), SUPPORT).await;
    assert!(round.body.contains(queue_voice), "position: {}", round.body);
    // max_waiting = 1: the next caller gets the voicemail greeting.
    let full = app.call(&call_sid(2), SUPPORT).await;
    assert!(full.body.contains("<Record"), "{}", full.body);
    assert!(full.body.contains(queue_voice), "greeting: {}", full.body);
    // A queue without its own takes [defaults]'.
    let plain = app.call(&call_sid(3), "+15005550008").await;
    assert!(
        plain
            .body
            .contains("<Say voice=\"Polly.Joanna\" language=\"en-US\">"),
        "{}",
        plain.body
    );
}

/// Two queues of equal priority that hold callers, served by one agent.
const TWO_LINES: &str = r#"
[defaults]
default_queue = "north"
wrap_up_secs = 0

[[queues]]
name = "north"
numbers = ["+15005550021"]
[queues.hold]
loop_secs = 5
join_when_no_agents = true

[[queues]]
name = "south"
numbers = ["+15005550022"]
[queues.hold]
loop_secs = 5
join_when_no_agents = true
"#;

#[tokio::test]
async fn across_queues_of_equal_priority_the_longest_waiting_caller_goes_first() {
    let app = spawn_app(TWO_LINES).await;
    // South's caller came first; the agent lists north first.
    let south = call_sid(1);
    app.call(&south, "+15005550022").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let north = call_sid(2);
    app.call(&north, "+15005550021").await;
    app.add_available("a", &["north", "south"]).await;
    assert_eq!(app.agent("a").await["call_sid"], south.as_str());
    app.add_available("b", &["north", "south"]).await;
    assert_eq!(app.agent("b").await["call_sid"], north.as_str());
}
