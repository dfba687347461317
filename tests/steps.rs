//! Routing by what the call needs (issue 21, items 2 and 3) against a real
//! Redis: a queue's steps relax as the caller waits, a number adds its needs
//! to every step, each call goes to the agent free the longest among those its
//! current step accepts, a freed agent goes to the longest-waiting caller whose
//! step accepts it (skipping the ones it cannot serve, never overtaking within
//! a step's eligible set), and every decision says why in the call's history.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const PLAIN: &str = "+15005550007";
const SPANISH: &str = "+15005550008";

/// Step 1 wants billing at level 3 or more for a second, then anyone; calls
/// to SPANISH also need `es` at every step. Sweeps run every 100 ms.
const ROUTING: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0
no_answer_delay_secs = 0
max_missed_in_row = 100

[[queues]]
name = "desk"
numbers = ["+15005550007", { number = "+15005550008", needs = "es" }]
fallback = ["voicemail"]
steps = [{ needs = "billing>=3", for_secs = 1 }, { needs = "any" }]
[queues.hold]
loop_secs = 5
max_waiting = 10
max_wait_secs = 600
join_when_no_agents = true
"#;

/// Creates agent `id` of `desk` with `skills` and sets it available; a pause
/// after, so agents created one after another are free in that order.
async fn add(app: &TestApp, id: &str, skills: Value) {
    let put = app
        .admin(
            Method::PUT,
            &format!("/agents/{id}"),
            Some(json!({"name": id, "contact": format!("client:{id}"),
                "queues": ["desk"], "skills": skills})),
        )
        .await;
    assert_eq!(put.status, 201, "{put:?}");
    app.set_state(id, "available").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The `data` of each of the call's events of `kind`, oldest first.
async fn events(app: &TestApp, sid: &str, kind: &str) -> Vec<Value> {
    let history = app.admin(Method::GET, &format!("/calls/{sid}"), None).await;
    assert_eq!(history.status, 200, "{history:?}");
    history.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == kind)
        .map(|e| e["data"].clone())
        .collect()
}

async fn holds(app: &TestApp, id: &str) -> String {
    app.agent(id).await["call_sid"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_call_goes_to_the_longest_idle_agent_its_step_accepts_and_relaxes_on_time() {
    let app = spawn_app(ROUTING).await;
    add(&app, "cy", json!({})).await;
    add(&app, "bo", json!({"billing": 1})).await;
    add(&app, "ana", json!({"billing": 5})).await;

    // cy and bo have been free longer, but step 1 accepts only ana.
    let first = call_sid(1);
    let dial = app.call(&first, PLAIN).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    let routed = events(&app, &first, "call_routed").await;
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert_eq!(routed[0]["step"], 1, "{routed:?}");
    assert_eq!(routed[0]["needs"], "billing>=3", "{routed:?}");
    assert_eq!(routed[0]["chosen"], "longest_idle", "{routed:?}");
    assert_eq!(
        routed[0]["matched"], 1,
        "ana alone meets step 1: {routed:?}"
    );

    // Nobody free meets step 1 now: the next caller waits, beside two free
    // agents its first step does not accept...
    let second = call_sid(2);
    let round = app.call(&second, PLAIN).await;
    assert!(round.body.contains("<Redirect"), "waits: {}", round.body);
    let waiting = events(&app, &second, "call_waiting").await;
    assert_eq!(waiting[0]["step"], 1, "{waiting:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(holds(&app, "cy").await, "", "step 1 still holds");
    assert_eq!(holds(&app, "bo").await, "");
    // ...until step 2 (any) holds, a second after it came: then the sweep
    // gives it the one free the longest.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        holds(&app, "cy").await,
        second,
        "step 2 took the longest idle"
    );
    assert_eq!(holds(&app, "bo").await, "");
    let routed = events(&app, &second, "call_routed").await;
    assert_eq!(routed[0]["step"], 2, "{routed:?}");
    assert_eq!(routed[0]["needs"], "any", "{routed:?}");
    assert!(
        routed[0]["waited_ms"].as_i64().unwrap_or(0) >= 1000,
        "{routed:?}"
    );
    // The history says when it moved on, and the metrics count both.
    let relaxed = events(&app, &second, "step_relaxed").await;
    assert_eq!(relaxed.len(), 1, "{relaxed:?}");
    assert_eq!(relaxed[0]["step"], 2, "{relaxed:?}");
    assert_eq!(relaxed[0]["previous"], 1, "{relaxed:?}");
    assert_eq!(relaxed[0]["needs"], "any", "{relaxed:?}");
    let moved_at = relaxed[0]["waited_ms"].as_i64().unwrap_or(0);
    // Never early; how soon after its time is measured by `simulate`, not
    // here (a loaded machine delays a sweep).
    assert!(
        (1000..10_000).contains(&moved_at),
        "moved on {moved_at} ms after it came"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = app.metrics().await;
    for (name, step) in [
        ("switchboard_step_matches_total", "1"),
        ("switchboard_step_matches_total", "2"),
        ("switchboard_steps_relaxed_total", "2"),
    ] {
        let series = format!("{name}{{queue=\"desk\",step=\"{step}\"}}");
        assert!(metric(&page, &series) >= 1.0, "{series} in {page}");
    }
}

#[tokio::test]
async fn a_freed_agent_goes_to_the_longest_waiting_caller_whose_step_accepts_it() {
    let app = spawn_app(ROUTING).await;
    // Nobody free: a Spanish caller, then a plain one, wait; after a second
    // both are at step 2 ("es", and "any").
    let spanish = call_sid(1);
    app.call(&spanish, SPANISH).await;
    let plain = call_sid(2);
    app.call(&plain, PLAIN).await;
    let waiting = events(&app, &spanish, "call_waiting").await;
    assert_eq!(waiting[0]["needs"], "(billing>=3) and (es)", "{waiting:?}");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // An agent without Spanish skips the Spanish caller ahead of it.
    add(&app, "bo", json!({"billing": 1})).await;
    assert_eq!(
        holds(&app, "bo").await,
        plain,
        "bo went to the plain caller"
    );
    // One with Spanish serves the Spanish caller.
    add(&app, "eva", json!({"es": 2})).await;
    assert_eq!(
        holds(&app, "eva").await,
        spanish,
        "eva went to the Spanish caller"
    );
    let routed = events(&app, &spanish, "call_routed").await;
    assert_eq!(routed[0]["step"], 2, "{routed:?}");
    assert_eq!(routed[0]["needs"], "es", "{routed:?}");
}

#[tokio::test]
async fn a_new_call_takes_a_free_agent_no_waiting_caller_can_take() {
    let app = spawn_app(ROUTING).await;
    // A Spanish caller waits: nobody speaks Spanish.
    let spanish = call_sid(1);
    let round = app.call(&spanish, SPANISH).await;
    assert!(round.body.contains("<Redirect"), "waits: {}", round.body);
    add(&app, "ana", json!({"billing": 5})).await;
    assert_eq!(
        holds(&app, "ana").await,
        "",
        "ana cannot take the Spanish caller"
    );

    // A plain caller after it does not queue behind it for an agent it could
    // never have.
    let plain = call_sid(2);
    let dial = app.call(&plain, PLAIN).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);

    // A second Spanish caller does not overtake the first: it joins the line,
    // and the Spanish agent freed next goes to the first.
    let later = call_sid(3);
    let round = app.call(&later, SPANISH).await;
    assert!(round.body.contains("<Redirect"), "waits: {}", round.body);
    add(&app, "eva", json!({"es": 1, "billing": 3})).await;
    assert_eq!(
        holds(&app, "eva").await,
        spanish,
        "the first Spanish caller first"
    );
}

async fn explain(app: &TestApp, body: Value) -> Answer {
    app.admin(Method::POST, "/routing/explain", Some(body))
        .await
}

/// The keys routing reads, with their values.
async fn routing_keys(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    app.snapshot()
        .await
        .into_iter()
        .filter(|(k, _)| {
            ["agent:", "avail:", "skill_avail:", "line:", "call:"]
                .iter()
                .any(|p| k.contains(p))
        })
        .collect()
}

#[tokio::test]
async fn explain_says_which_agents_a_call_would_reach_at_which_step_and_changes_nothing() {
    let app = spawn_app(ROUTING).await;
    add(&app, "cy", json!({})).await;
    add(&app, "bo", json!({"billing": 1})).await;
    add(&app, "ana", json!({"billing": 5})).await;
    add(&app, "eva", json!({"es": 2, "billing": 4})).await;
    let before = routing_keys(&app).await;

    let plain = explain(&app, json!({"to": PLAIN})).await;
    assert_eq!(plain.status, 200, "{plain:?}");
    let plain = plain.json();
    assert_eq!(plain["queue"], "desk");
    assert_eq!(plain["number_needs"], Value::Null);
    let desk = &plain["plan"][0];
    assert_eq!(desk["via"], "queue");
    assert_eq!(desk["free"], 4);
    assert_eq!(desk["current_step"], 1);
    assert_eq!(desk["steps"][0]["needs"], "billing>=3");
    assert_eq!(desk["steps"][0]["matching"], 2);
    assert_eq!(desk["steps"][0]["agents"], json!(["ana", "eva"]));
    assert_eq!(desk["steps"][0]["for_secs"], 1);
    assert_eq!(desk["steps"][1]["needs"], "any");
    assert_eq!(desk["steps"][1]["starts_after_secs"], 1);
    assert_eq!(desk["steps"][1]["for_secs"], Value::Null);
    assert_eq!(
        desk["steps"][1]["agents"],
        json!(["cy", "bo", "ana", "eva"])
    );
    assert_eq!(plain["decision"]["kind"], "dial");
    assert_eq!(plain["decision"]["agent"], "ana");
    assert_eq!(plain["decision"]["step"], 1);
    assert!(
        plain["decision"]["why"]
            .as_str()
            .unwrap_or("")
            .contains("longest idle of the 2 free agents of desk that step 1 (billing>=3) accepts"),
        "{plain:#}"
    );

    // The Spanish number adds its needs to every step.
    let spanish = explain(&app, json!({"to": SPANISH})).await.json();
    assert_eq!(spanish["number_needs"], "es");
    assert_eq!(
        spanish["plan"][0]["steps"][0]["needs"],
        "(billing>=3) and (es)"
    );
    assert_eq!(spanish["plan"][0]["steps"][0]["agents"], json!(["eva"]));
    assert_eq!(spanish["decision"]["agent"], "eva");

    // Later in the wait, and with needs of its own.
    let later = explain(&app, json!({"to": PLAIN, "waited_secs": 5}))
        .await
        .json();
    assert_eq!(later["plan"][0]["current_step"], 2);
    assert_eq!(later["decision"]["agent"], "cy");
    let vip = explain(
        &app,
        json!({"to": PLAIN, "needs": {"vip": 1}, "waited_secs": 5}),
    )
    .await
    .json();
    assert_eq!(vip["needs"], "vip");
    assert_eq!(vip["plan"][0]["steps"][1]["needs"], "vip");
    assert_eq!(vip["plan"][0]["steps"][1]["matching"], 0);
    assert_eq!(vip["decision"]["kind"], "wait", "{vip:#}");

    // Asking reserved nobody and changed nothing.
    assert_eq!(routing_keys(&app).await, before);
    for id in ["cy", "bo", "ana", "eva"] {
        assert_eq!(app.agent(id).await["state"], "available");
    }

    // What cannot be asked.
    for (body, says) in [
        (json!({"to": "555"}), "not E.164"),
        (json!({"needs": {"Es": 1}}), "skill \"Es\""),
        (json!({"waited_secs": 2_592_001u64}), "waited_secs"),
        (
            json!({"needs": {"es": 1}, "queue": "desk"}),
            "unknown field",
        ),
    ] {
        let refused = explain(&app, body.clone()).await;
        assert!(
            refused.status == 422 || refused.status == 400,
            "{body}: {refused:?}"
        );
        let error = refused.json()["error"].as_str().unwrap_or("").to_owned();
        assert!(error.contains(says), "{body}: {error}");
    }
}
