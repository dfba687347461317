//! The estimated wait a caller in line hears (docs/waiting-line.md,
//! "Estimated wait"): from the agents signed in now and the queue's recent
//! agent cycles or, once its line was backlogged, the pace its callers were
//! taken at, never before enough is known, never rising from one round to
//! the next beyond the queue's step unless an agent signed out; shown in the
//! queue document, the call's history and the metrics.

mod common;

use std::time::Duration;

use common::*;

/// A minute of wrap-up after each call: every answered call is a cycle of
/// about 60 s. No rise at all is allowed without a reason.
const ESTIMATES: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 60
no_answer_delay_secs = 0
max_missed_in_row = 100

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]
[queues.hold]
loop_secs = 5
max_waiting = 10
announce = "both"
estimate_max_rise_secs = 0
"#;

async fn wait_fetch(app: &TestApp, sid: &str, round: &Answer) -> Answer {
    let url = round
        .element_text("Redirect")
        .unwrap_or_else(|| panic!("a hold round ends in <Redirect>: {}", round.body))
        .replace("&amp;", "&");
    post_signed(
        &app.http,
        &url,
        &[("CallSid", sid), ("CallStatus", "in-progress")],
    )
    .await
}

fn says(answer: &Answer) -> String {
    answer.element_text("Say").unwrap_or_default()
}

/// The line of the queue document: (CallSid, estimated_wait_secs).
async fn estimates(app: &TestApp) -> Vec<(String, serde_json::Value)> {
    let doc = app
        .admin(reqwest::Method::GET, "/queues/desk", None)
        .await
        .json();
    doc["waiting"]
        .as_array()
        .unwrap_or_else(|| panic!("a line: {doc}"))
        .iter()
        .map(|w| {
            (
                w["call_sid"].as_str().unwrap_or_default().to_owned(),
                w["estimated_wait_secs"].clone(),
            )
        })
        .collect()
}

/// Call `n` rings agent `id`, who answers; returns the <Dial>.
async fn answered(app: &TestApp, n: u64, id: &str) -> Answer {
    let dial = app.call(&call_sid(n), SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some(id), "{}", dial.body);
    app.agent_leg(&call_sid(n), &dial, "answered").await;
    dial
}

/// The estimate in ms the caller's history says it first heard.
async fn first_estimate(app: &TestApp, sid: &str) -> Option<u64> {
    let history = app
        .admin(reqwest::Method::GET, &format!("/calls/{sid}"), None)
        .await
        .json();
    history["events"]
        .as_array()?
        .iter()
        .find(|e| e["event"] == "wait_estimated")?["data"]["estimated_wait_ms"]
        .as_u64()
}

/// The estimate (ms) the caller heard last, as its call hash keeps it.
async fn last_estimate(app: &TestApp, sid: &str) -> Option<u64> {
    app.hget(&format!("call:{sid}"), "estimate_ms").await
}

fn within(secs: &serde_json::Value, from: u64, to: u64) -> bool {
    secs.as_u64().is_some_and(|s| (from..=to).contains(&s))
}

#[tokio::test]
async fn a_waiting_caller_hears_the_wait_its_position_the_agents_signed_in_and_their_cycles_make() {
    let app = spawn_app(ESTIMATES).await;
    app.add_available("a", &["desk"]).await;

    // Nothing is known yet: a caller behind a busy agent hears its position
    // and no wait, and the queue document shows none.
    let first = answered(&app, 1, "a").await;
    let early = app.call(&call_sid(2), SUPPORT).await;
    assert!(says(&early).contains("number 1 in line"), "{}", early.body);
    assert!(!says(&early).contains("wait"), "{}", early.body);
    assert_eq!(estimates(&app).await[0].1, serde_json::Value::Null);

    // Five cycles of about a minute each: the call, then 60 s of wrap-up,
    // which an admin cuts short so the agent can take the next (the first
    // goes to the caller waiting).
    app.dial_action(&call_sid(1), &first, "completed").await;
    app.set_state("a", "available").await;
    let dial = wait_fetch(&app, &call_sid(2), &early).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"), "{}", dial.body);
    app.agent_leg(&call_sid(2), &dial, "answered").await;
    app.dial_action(&call_sid(2), &dial, "completed").await;
    app.set_state("a", "available").await;
    for n in 3..=5 {
        let dial = answered(&app, n, "a").await;
        app.dial_action(&call_sid(n), &dial, "completed").await;
        app.set_state("a", "available").await;
    }

    // Two agents busy: the callers behind them are served one every 30 s.
    app.add_available("b", &["desk"]).await;
    let first_on_call = answered(&app, 6, "a").await;
    answered(&app, 7, "b").await;
    let mut rounds = Vec::new();
    for n in 9..=11 {
        rounds.push(app.call(&call_sid(n), SUPPORT).await);
    }
    assert!(
        says(&rounds[0]).contains("Your wait is less than a minute"),
        "30 s: {}",
        rounds[0].body
    );
    assert!(
        says(&rounds[1]).contains("Your wait is about 1 minute."),
        "60 s: {}",
        rounds[1].body
    );
    assert!(
        says(&rounds[2]).contains("Your wait is about 2 minutes"),
        "90 s: {}",
        rounds[2].body
    );
    let line = estimates(&app).await;
    for (i, secs) in [30, 60, 90].into_iter().enumerate() {
        assert_eq!(line[i].0, call_sid(9 + i as u64));
        assert!(within(&line[i].1, secs - 1, secs + 2), "{secs} s: {line:?}");
    }
    let heard = first_estimate(&app, &call_sid(11)).await;
    assert!(
        heard.is_some_and(|ms| (89_000..=92_000).contains(&ms)),
        "{heard:?}"
    );

    // A longer cycle (a call that talked 2 s) makes the figures say a little
    // more; nobody signed out, so what the callers hear does not rise.
    let last = wait_fetch(&app, &call_sid(11), &rounds[2]).await;
    let said = last_estimate(&app, &call_sid(11)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.dial_action(&call_sid(6), &first_on_call, "completed")
        .await;
    assert_eq!(app.agent("a").await["state"], "wrap_up");
    let steady = wait_fetch(&app, &call_sid(11), &last).await;
    assert!(said.is_some());
    assert_eq!(
        last_estimate(&app, &call_sid(11)).await,
        said,
        "not above the last estimate: {}",
        steady.body
    );

    // An agent signs out (b, forced off its call): the wait doubles, and the
    // caller hears it.
    app.force_state("b", "offline").await;
    let longer = wait_fetch(&app, &call_sid(11), &steady).await;
    assert!(
        says(&longer).contains("Your wait is about 3 minutes"),
        "about 180 s: {}",
        longer.body
    );
    let line = estimates(&app).await;
    assert!(within(&line[2].1, 178, 185), "{line:?}");
}

/// ESTIMATES without wrap-up, and a queue sales: agent b, in both, is on a
/// sales call all along, so desk has two agents signed in and one who takes
/// its callers.
fn shared_routing() -> String {
    let desk = ESTIMATES
        .replace("wrap_up_secs = 60", "wrap_up_secs = 0")
        .replace("max_waiting = 10", "max_waiting = 20");
    format!(
        "{desk}\n[[queues]]\nname = \"sales\"\nnumbers = [\"{SALES}\"]\nfallback = [\"voicemail\"]\n"
    )
}

/// A field of `forecast:desk` (a count, or ms).
async fn forecast_field(app: &TestApp, field: &str) -> f64 {
    app.hget("forecast:desk", field)
        .await
        .unwrap_or_else(|| panic!("forecast:desk has {field}"))
}

#[tokio::test]
async fn a_line_whose_agents_are_busy_elsewhere_is_told_the_pace_its_callers_are_taken_at() {
    let app = spawn_app(&shared_routing()).await;
    app.add_available("b", &["sales", "desk"]).await;
    let sales = app.call(&call_sid(100), SALES).await;
    assert_eq!(dialed(&sales).as_deref(), Some("b"), "{}", sales.body);
    app.agent_leg(&call_sid(100), &sales, "answered").await;
    app.add_available("a", &["desk"]).await;

    // a talks to one caller while eleven wait; then, every 500 ms, its call
    // ends and it takes the next.
    let mut dial = answered(&app, 1, "a").await;
    let mut on_call = 1;
    let mut rounds = std::collections::HashMap::new();
    for n in 2..=12 {
        rounds.insert(n, app.call(&call_sid(n), SUPPORT).await);
    }
    let started = std::time::Instant::now();
    let takes = 7;
    for _ in 0..takes {
        tokio::time::sleep(Duration::from_millis(500)).await;
        on_call = next_take(&app, on_call, &mut dial, &rounds).await;
    }
    let per_take_ms = started.elapsed().as_millis() as f64 / takes as f64;

    // Each of a's cycles took about a take's time, and two agents are signed
    // in: from the cycles alone, a caller would be told half the wait.
    let cycle_ms = forecast_field(&app, "cycle_ms").await;
    let take_agent_ms = forecast_field(&app, "take_agent_ms").await;
    assert!(
        (1.6..2.4).contains(&(take_agent_ms / cycle_ms)),
        "two agents' time per take against one agent's cycle: {take_agent_ms} / {cycle_ms}"
    );

    // Four callers wait: the fifth is told about five takes' time.
    app.call(&call_sid(13), SUPPORT).await;
    let heard = first_estimate(&app, &call_sid(13))
        .await
        .expect("an estimate") as f64;
    let truth = 5.0 * per_take_ms;
    assert!(
        (0.8 * truth..1.25 * truth).contains(&heard),
        "{heard} ms told, {truth} ms at the pace callers were taken"
    );
}

/// Agent a, on call `on_call` (answered through `dial`), ends it and takes
/// the next caller in line, who answers: the number of that caller.
async fn next_take(
    app: &TestApp,
    on_call: u64,
    dial: &mut Answer,
    rounds: &std::collections::HashMap<u64, Answer>,
) -> u64 {
    app.dial_action(&call_sid(on_call), dial, "completed").await;
    let next = on_call + 1;
    *dial = wait_fetch(app, &call_sid(next), &rounds[&next]).await;
    assert_eq!(dialed(dial).as_deref(), Some("a"), "{}", dial.body);
    app.agent_leg(&call_sid(next), dial, "answered").await;
    next
}

#[tokio::test]
async fn the_pace_of_takes_is_not_timed_across_an_empty_line_or_a_line_nobody_was_signed_in_for() {
    let app = spawn_app(&shared_routing()).await;
    app.add_available("a", &["desk"]).await;
    let mut dial = answered(&app, 1, "a").await;
    let mut rounds = std::collections::HashMap::new();
    for n in 2..=4 {
        rounds.insert(n, app.call(&call_sid(n), SUPPORT).await);
    }
    // Three takes 200 ms apart: the second and third are timed, the third
    // empties the line.
    let mut on_call = 1;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        on_call = next_take(&app, on_call, &mut dial, &rounds).await;
    }
    assert_eq!(forecast_field(&app, "takes").await, 2.0);

    // The line stays empty for 1.5 s, then two callers wait: the first take
    // after that is not timed from the last before, the next is.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in 5..=7 {
        rounds.insert(n, app.call(&call_sid(n), SUPPORT).await);
    }
    on_call = next_take(&app, on_call, &mut dial, &rounds).await;
    assert_eq!(forecast_field(&app, "takes").await, 2.0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(next_take(&app, on_call, &mut dial, &rounds).await, 6);
    assert_eq!(forecast_field(&app, "takes").await, 3.0);

    // Nobody of desk signed in for 1.5 s while a caller waits (the only agent
    // forced away off its call): not timed either.
    app.force_state("a", "away").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.set_state("a", "available").await;
    let dial = wait_fetch(&app, &call_sid(7), &rounds[&7]).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"), "{}", dial.body);
    assert_eq!(forecast_field(&app, "takes").await, 3.0);
    let take_agent_ms = forecast_field(&app, "take_agent_ms").await;
    assert!(
        (200.0..1000.0).contains(&take_agent_ms),
        "timed from the takes 200 ms apart only: {take_agent_ms}"
    );
}

#[tokio::test]
async fn a_take_by_an_agent_who_stood_free_beside_the_line_is_not_timed() {
    // Callers want Spanish for their first 6 s: the agent without it stands
    // free beside them until then.
    let shared = shared_routing();
    let routing = shared.replace(
        "numbers = [\"+15005550007\"]",
        "numbers = [\"+15005550007\"]\nsteps = [{ needs = \"es\", for_secs = 6 }, { needs = \"any\" }]",
    );
    assert_ne!(routing, shared);
    let app = spawn_app(&routing).await;
    app.add_skilled("b", &["desk"], serde_json::json!(["es"]))
        .await;
    let first = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(dialed(&first).as_deref(), Some("b"), "{}", first.body);
    app.agent_leg(&call_sid(1), &first, "answered").await;
    app.add_skilled("a", &["desk"], serde_json::json!([])).await;
    let mut rounds = std::collections::HashMap::new();
    for n in 2..=3 {
        rounds.insert(n, app.call(&call_sid(n), SUPPORT).await);
    }
    // b's call ends: it takes caller 2, and caller 3 still waits.
    app.dial_action(&call_sid(1), &first, "completed").await;
    let dial = wait_fetch(&app, &call_sid(2), &rounds[&2]).await;
    assert_eq!(dialed(&dial).as_deref(), Some("b"), "{}", dial.body);

    // Once its step accepts anyone, caller 3 gets a, free all along: the
    // line waited on its step, not on agents, and the take is not timed.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let dial = wait_fetch(&app, &call_sid(3), &rounds[&3]).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"), "{}", dial.body);
    let takes: Option<u64> = app.hget("forecast:desk", "takes").await;
    assert_eq!(takes, None);
}

#[tokio::test]
async fn a_queue_without_agents_signed_in_announces_no_wait() {
    let app = spawn_app(ESTIMATES).await;
    app.add_available("a", &["desk"]).await;
    for n in 1..=5 {
        let dial = answered(&app, n, "a").await;
        app.dial_action(&call_sid(n), &dial, "completed").await;
        app.set_state("a", "available").await;
    }
    answered(&app, 6, "a").await;
    let round = app.call(&call_sid(7), SUPPORT).await;
    assert!(says(&round).contains("about 1 minute."), "{}", round.body);
    // The only agent signs out: nothing to estimate from.
    app.force_state("a", "away").await;
    let next = wait_fetch(&app, &call_sid(7), &round).await;
    assert!(says(&next).contains("number 1 in line"), "{}", next.body);
    assert!(!says(&next).contains("wait"), "{}", next.body);
}

#[tokio::test]
async fn an_answered_callers_first_estimate_is_judged_in_the_metrics() {
    let app = spawn_app(ESTIMATES).await;
    app.add_available("a", &["desk"]).await;
    for n in 1..=5 {
        let dial = answered(&app, n, "a").await;
        app.dial_action(&call_sid(n), &dial, "completed").await;
        app.set_state("a", "available").await;
    }
    answered(&app, 6, "a").await;
    let round = app.call(&call_sid(7), SUPPORT).await;
    assert!(first_estimate(&app, &call_sid(7)).await.is_some());
    // The agent is forced free and given to the caller, who is answered
    // within a second of an estimate of about a minute: an error of ~100 %.
    app.force_state("a", "available").await;
    let dial = wait_fetch(&app, &call_sid(7), &round).await;
    assert_eq!(dialed(&dial).as_deref(), Some("a"), "{}", dial.body);
    app.agent_leg(&call_sid(7), &dial, "answered").await;
    let mut page = String::new();
    for _ in 0..100 {
        page = app.metrics().await;
        if metric(
            &page,
            "switchboard_wait_estimate_error_ratio_count{queue=\"desk\"}",
        ) >= 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(
            &page,
            "switchboard_wait_estimate_error_ratio_count{queue=\"desk\"}"
        ),
        1.0,
        "{page}"
    );
    assert_eq!(
        metric(
            &page,
            "switchboard_wait_estimate_error_ratio_bucket{queue=\"desk\",le=\"0.5\"}"
        ),
        0.0,
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_plays_a_short_day_moves_its_agents_and_reads_the_estimates() {
    let rest = SimulatedRest::new();
    let routing = ESTIMATES
        .replace("wrap_up_secs = 60", "wrap_up_secs = 0")
        .replace("max_waiting = 10", "max_waiting = 100");
    let app = spawn_app_with(&routing, true, connect_through(rest.config.clone())).await;
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.admin_token = ADMIN_TOKEN.into();
    // Three agents for a peak of 6 calls a second of ~1.5 s: callers wait.
    args.agents = 3;
    args.agent_queues = vec!["desk".into()];
    args.day = Some(8.0);
    args.rate = Some(6.0);
    args.concurrency = 200;
    args.to = vec![SUPPORT.into()];
    args.answer_every_attempt();
    args.ring_ms = 5;
    args.talk_ms = 1500;
    args.talk_sigma = 0.5;
    args.hold_ms = 200;
    args.judge_waits_from = 1.0;
    args.seed = 3;
    rest.play(&mut args);
    let report = simulate_cleanly(&args).await;
    assert!(report.calls >= 20, "a day of arrivals: {report:?}");
    assert_eq!(report.agent_moves_failed, 0, "{report:?}");
    // The plan's late agent (the 30 % of three) signed in after the start
    // and out before the end.
    assert_eq!(app.agent("sim-2").await["state"], "offline");
    let estimates = report.estimates.as_ref().expect("histories read");
    // The callers who waited a second were told a wait and judged (but for
    // the first few, before the queue had seen 5 cycles).
    assert!(estimates.judged > 0, "{report:?}");
    assert!(
        estimates.without_estimate <= estimates.judged / 4,
        "{report:?}"
    );
    assert!(estimates.mean_abs_error_secs > 0.0, "{report:?}");
}
