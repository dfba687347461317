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
    app.add_skilled("cy", &["desk"], json!({})).await;
    app.add_skilled("bo", &["desk"], json!({"billing": 1}))
        .await;
    app.add_skilled("ana", &["desk"], json!({"billing": 5}))
        .await;

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
    app.add_skilled("bo", &["desk"], json!({"billing": 1}))
        .await;
    assert_eq!(
        holds(&app, "bo").await,
        plain,
        "bo went to the plain caller"
    );
    // One with Spanish serves the Spanish caller.
    app.add_skilled("eva", &["desk"], json!({"es": 2})).await;
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
    app.add_skilled("ana", &["desk"], json!({"billing": 5}))
        .await;
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
    app.add_skilled("eva", &["desk"], json!({"es": 1, "billing": 3}))
        .await;
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
    app.add_skilled("cy", &["desk"], json!({})).await;
    app.add_skilled("bo", &["desk"], json!({"billing": 1}))
        .await;
    app.add_skilled("ana", &["desk"], json!({"billing": 5}))
        .await;
    app.add_skilled("eva", &["desk"], json!({"es": 2, "billing": 4}))
        .await;
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
    let spanish = explain(&app, json!({"to": SPANISH})).await;
    assert_eq!(spanish.status, 200, "{spanish:?}");
    let spanish = spanish.json();
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
        (json!([null, null]), "a JSON object"),
        (json!({"needs": {"es": 2.5}}), "level 2.5"),
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

#[tokio::test]
async fn simulate_plays_menus_and_lookups_and_measures_how_late_steps_relax() {
    let lookup_port = switchboard::redis_server::free_port().expect("free port");
    let routing = format!(
        r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0
no_answer_delay_secs = 0
max_missed_in_row = 100

[[queues]]
name = "desk"
numbers = ["+15005550007", {{ number = "+15005550011", menu = "main" }}]
fallback = ["voicemail"]
steps = [{{ needs = "billing>=2", for_secs = 1 }}, {{ needs = "any" }}]
[queues.hold]
loop_secs = 5
max_waiting = 100
max_wait_secs = 600
join_when_no_agents = true

[menus.main]
prompt = "Press 1 for Spanish, 2 for anyone."
default = "2"
options = {{ "1" = {{ queue = "desk", needs = "es" }}, "2" = {{ queue = "desk" }} }}

[lookup]
url = "http://127.0.0.1:{lookup_port}/lookup"
timeout_ms = 500
"#
    );
    let app = spawn_app_with(&routing, true, |s| {
        s.lookup_secret = Some("simulate-lookup-secret".into());
    })
    .await;
    let mut args = switchboard::simulate::SimulateArgs::new(app.base(), AUTH_TOKEN);
    args.calls = 24;
    args.concurrency = 8;
    args.to = vec!["+15005550011".into(), PLAIN.into()];
    args.menu_digits = "12".into();
    args.lookup_listen = Some(([127, 0, 0, 1], lookup_port).into());
    args.lookup_secret = "simulate-lookup-secret".into();
    args.needs = vec!["any".into(), "billing".into()];
    // Four agents, each with es or billing at level 1: nobody meets step 1,
    // so every caller waits and relaxes to step 2 a second in.
    args.agents = 4;
    args.agent_queues = vec!["desk".into()];
    args.agent_skills = vec!["es".into(), "billing".into()];
    args.admin_token = ADMIN_TOKEN.into();
    args.answer_every_attempt();
    args.ring_ms = 10;
    args.talk_ms = 200;
    args.hold_ms = 100;
    args.sweep_ms = 100;
    let report = switchboard::simulate::run(&args).await.expect("simulate");
    report.print(false);
    assert!(!report.failed(), "{report:#?}");
    assert_eq!(report.errors, 0, "{:?}", report.examples);
    assert_eq!(
        report.lookups, 24,
        "every call was looked up once: {report:#?}"
    );
    assert_eq!(report.lookups_forged, 0);
    assert!(report.steps_relaxed >= 12, "{report:#?}");
    assert_eq!(report.histories_unread, 0);
    assert_eq!(
        report.outcomes.get("answered").copied().unwrap_or(0),
        24,
        "{report:#?}"
    );
}

#[tokio::test]
async fn steps_run_from_the_calls_arrival_even_after_it_rang_an_agent_first() {
    // An agent who misses is skipped 30 s: ana will not ring again.
    let app =
        spawn_app(&ROUTING.replace("no_answer_delay_secs = 0", "no_answer_delay_secs = 30")).await;
    app.add_skilled("ana", &["desk"], json!({"billing": 5}))
        .await;
    app.add_skilled("cy", &["desk"], json!({})).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, PLAIN).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    // ana rings most of step 1's second, then misses: the caller joins the
    // line with step 2 (any) due a second after it came, not after it joined.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let round = app.dial_action(&sid, &dial, "no-answer").await;
    assert!(round.body.contains("<Redirect"), "waits: {}", round.body);
    let joined = std::time::Instant::now();
    while holds(&app, "cy").await != sid {
        if joined.elapsed() > Duration::from_millis(900) {
            tokio::time::sleep(Duration::from_millis(2000)).await;
            let history = app
                .admin(Method::GET, &format!("/calls/{sid}"), None)
                .await
                .json();
            panic!(
                "cy was not given the call a second after it came: {history:#} {:#}",
                app.agent("cy").await
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn an_agent_a_new_call_finds_free_goes_at_once_to_the_waiting_caller_who_may_take_it() {
    // No worker: nothing is matched by a sweep here.
    let app = spawn_app_with(
        &ROUTING.replace("wrap_up_secs = 0", "wrap_up_secs = 1"),
        false,
        |_| {},
    )
    .await;
    app.add_skilled("eva", &["desk"], json!({"es": 1, "billing": 5}))
        .await;
    let first = call_sid(1);
    let dial = app.call(&first, PLAIN).await;
    assert_eq!(dialed(&dial).as_deref(), Some("eva"));
    // A Spanish caller waits while eva talks, then eva's wrap-up (1 s) ends
    // by time: she is free, and nobody offered her yet.
    let spanish = call_sid(2);
    app.call(&spanish, SPANISH).await;
    app.agent_leg(&first, &dial, "answered").await;
    app.dial_action(&first, &dial, "completed").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(holds(&app, "eva").await, "");
    // A new call finds eva free, but the Spanish caller came first and may
    // take her: she is the Spanish caller's at once, and the new call waits.
    let plain = call_sid(3);
    let round = app.call(&plain, PLAIN).await;
    assert!(round.body.contains("<Redirect"), "waits: {}", round.body);
    assert_eq!(holds(&app, "eva").await, spanish);
}

#[tokio::test]
async fn a_call_needing_two_common_skills_reaches_the_one_agent_with_both() {
    let app = spawn_app(
        r#"
[[queues]]
name = "default"
numbers = [{ number = "+15005550007", needs = "es and billing" }]
fallback = ["voicemail"]
"#,
    )
    .await;
    // 70 free agents with es alone and 70 with billing alone, free longer than
    // the one with both: more than a walk reads before the lines are
    // intersected.
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..140 {
        let (http, base) = (app.http.clone(), app.base().to_owned());
        puts.spawn(async move {
            let id = format!("a{i}");
            let skill = if i % 2 == 0 { "es" } else { "billing" };
            let url = format!("{base}/v1/agents/{id}");
            let body = json!({"name": id, "contact": format!("client:{id}"), "queues": ["default"], "skills": [skill]});
            let put = http.put(&url).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap();
            assert!(put.status().is_success());
            let state = http
                .put(format!("{url}/state"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"state": "available"}))
                .send()
                .await
                .unwrap();
            assert!(state.status().is_success());
        });
    }
    while puts.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.admin(
        Method::PUT,
        "/agents/both",
        Some(json!({"name": "both", "contact": "client:both", "queues": ["default"], "skills": ["es", "billing"]})),
    )
    .await;
    app.set_state("both", "available").await;
    let explained = explain(&app, json!({"to": "+15005550007"})).await.json();
    let step = &explained["plan"][0]["steps"][0];
    assert_eq!(step["matching"], 1, "{explained:#}");
    assert_eq!(step["agents"], json!(["both"]), "{explained:#}");
    let dial = app.call(&call_sid(1), "+15005550007").await;
    assert_eq!(dialed(&dial).as_deref(), Some("both"), "{}", dial.body);
}

/// Steps that never reach `any` without a number's needs: calls to the
/// first number need `es`, to the second `billing>=2 and vip`.
const LISTED: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0

[[queues]]
name = "desk"
numbers = [{ number = "+15005550021", needs = "es" }, { number = "+15005550022", needs = "billing>=2 and vip" }]
steps = [{ needs = "not trainee", for_secs = 600 }, { needs = "any" }]
[queues.hold]
loop_secs = 5
max_waiting = 10
max_wait_secs = 600
join_when_no_agents = true
"#;

/// `line_skills:desk`, field by field.
async fn line_skills(app: &TestApp) -> std::collections::BTreeMap<String, i64> {
    let mut conn = app.redis().await;
    redis::cmd("HGETALL")
        .arg(app.key("line_skills:desk"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn waiting_callers_are_counted_by_the_skills_they_need_and_an_agent_with_none_is_passed_by() {
    let app = spawn_app(LISTED).await;
    let spanish: Vec<String> = (1..=3).map(call_sid).collect();
    let billing: Vec<String> = (4..=5).map(call_sid).collect();
    for sid in &spanish {
        assert!(
            app.call(sid, "+15005550021")
                .await
                .body
                .contains("<Redirect")
        );
    }
    for sid in &billing {
        assert!(
            app.call(sid, "+15005550022")
                .await
                .body
                .contains("<Redirect")
        );
    }
    // Each caller under its alternatives' first required skill (both steps
    // of a call list the same one here), and '#' counts them all.
    let counted = |pairs: &[(&str, i64)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        line_skills(&app).await,
        counted(&[("#", 5), ("es", 3), ("billing", 2)])
    );
    // A caller hangs up while waiting: out of the counts.
    app.call_status(&spanish[1], "completed").await;
    assert_eq!(
        line_skills(&app).await,
        counted(&[("#", 4), ("es", 2), ("billing", 2)])
    );
    // An agent with none of those skills stays free beside them...
    app.add_skilled("pt", &["desk"], json!({"pt": 1})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(holds(&app, "pt").await, "");
    // ...and one with `es` takes the longest-waiting caller who needs it.
    app.add_skilled("es", &["desk"], json!({"es": 1})).await;
    assert_eq!(holds(&app, "es").await, spanish[0]);
    assert_eq!(
        line_skills(&app).await,
        counted(&[("#", 3), ("es", 1), ("billing", 2)])
    );
}
