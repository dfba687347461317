//! Agents' skills (issue 21, item 1) through the admin API against a real
//! Redis: given as levels or as names, shown in the agent document, refused
//! with the rule they break, and kept in the per-queue, per-skill lines of free
//! agents that routing by needs walks: in them while free, out of them while
//! not, moved at once when the skills change, at the agent's place in line.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const ROUTING: &str = r#"
[defaults]
default_queue = "support"

[[queues]]
name = "support"
numbers = ["+15005550007"]

[[queues]]
name = "sales"
numbers = ["+15005550006"]
"#;

async fn put(app: &TestApp, id: &str, skills: serde_json::Value) -> Answer {
    app.admin(
        Method::PUT,
        &format!("/agents/{id}"),
        Some(json!({"name": id, "contact": format!("client:{id}"),
            "queues": ["support", "sales"], "skills": skills})),
    )
    .await
}

/// The members of the sorted set `suffix` (after the namespace's prefix)
/// with their scores.
async fn members(app: &TestApp, suffix: &str) -> Vec<(String, f64)> {
    let mut conn = app.redis().await;
    redis::cmd("ZRANGE")
        .arg(app.key(suffix))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The members of `skill_avail:<queue>:<skill>` with their scores.
async fn skill_line(app: &TestApp, queue: &str, skill: &str) -> Vec<(String, f64)> {
    members(app, &format!("skill_avail:{queue}:{skill}")).await
}

/// What `command` (SMEMBERS, HKEYS, …) answers for the key `suffix`.
async fn strings(app: &TestApp, command: &str, suffix: &str) -> Vec<String> {
    let mut conn = app.redis().await;
    redis::cmd(command)
        .arg(app.key(suffix))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Agent `id`'s skills as its hash keeps them ("name:level,…").
async fn stored_skills(app: &TestApp, id: &str) -> String {
    let mut conn = app.redis().await;
    let stored: Option<String> = redis::cmd("HGET")
        .arg(app.key(&format!("agent:{id}")))
        .arg("skills")
        .query_async(&mut conn)
        .await
        .unwrap();
    stored.unwrap_or_default()
}

async fn avail_score(app: &TestApp, queue: &str, id: &str) -> Option<f64> {
    let mut conn = app.redis().await;
    redis::cmd("ZSCORE")
        .arg(app.key(&format!("avail:{queue}")))
        .arg(id)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn skills_are_given_as_levels_or_names_and_shown() {
    let app = spawn_app(ROUTING).await;
    let created = put(&app, "ana", json!({"es": 3, "billing": 5})).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json()["skills"], json!({"billing": 5, "es": 3}));
    assert_eq!(
        app.agent("ana").await["skills"],
        json!({"billing": 5, "es": 3})
    );
    let names = put(&app, "bo", json!(["vip", "es"])).await;
    assert_eq!(names.json()["skills"], json!({"es": 1, "vip": 1}));
    // Without skills: none, and a PUT without them takes them away.
    let plain = app
        .admin(
            Method::PUT,
            "/agents/ana",
            Some(json!({"name": "ana", "contact": "client:ana", "queues": ["support"]})),
        )
        .await;
    assert_eq!(plain.status, 200, "{plain:?}");
    assert_eq!(plain.json()["skills"], json!({}));
    let listed = app.admin(Method::GET, "/agents", None).await.json();
    let bo = listed["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "bo")
        .cloned()
        .unwrap();
    assert_eq!(bo["skills"], json!({"es": 1, "vip": 1}));
}

#[tokio::test]
async fn a_skill_that_breaks_its_rule_is_refused_and_changes_nothing() {
    let app = spawn_app(ROUTING).await;
    put(&app, "ana", json!({"es": 3})).await;
    let before = app.snapshot().await;
    let many: serde_json::Map<String, serde_json::Value> =
        (0..65).map(|i| (format!("s{i}"), json!(1))).collect();
    for (skills, why) in [
        (
            json!({"es": 0}),
            "level 0 must be a whole number from 1 to 100",
        ),
        (json!({"es": 2.5}), "level 2.5 must be a whole number"),
        (
            json!({"es": 101}),
            "level 101 must be a whole number from 1 to 100",
        ),
        (json!({"Es": 1}), "skill \"Es\" must be"),
        (json!({"any": 1}), "skill \"any\" must be"),
        (json!(["es", "es"]), "skill \"es\" is given twice"),
        (json!(many), "at most 64 skills"),
    ] {
        let refused = put(&app, "ana", skills.clone()).await;
        assert_eq!(refused.status, 422, "{skills}: {refused:?}");
        let error = refused.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.contains(why), "{skills}: {error}");
    }
    for skills in [json!("es"), json!({"es": "high"}), json!({"es": 2.5})] {
        let refused = put(&app, "ana", skills.clone()).await;
        assert!(
            refused.status == 400 || refused.status == 422,
            "{skills}: {refused:?}"
        );
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_free_agent_is_in_the_line_of_each_of_its_skills_in_each_queue() {
    let app = spawn_app(ROUTING).await;
    put(&app, "ana", json!({"es": 3, "billing": 5})).await;
    // Offline: in no line.
    assert!(skill_line(&app, "support", "es").await.is_empty());
    app.set_state("ana", "available").await;
    let score = avail_score(&app, "support", "ana").await.unwrap();
    for queue in ["support", "sales"] {
        for skill in ["es", "billing"] {
            assert_eq!(
                skill_line(&app, queue, skill).await,
                vec![("ana".to_owned(), score)],
                "{queue} {skill}"
            );
        }
    }

    // New skills while free: out of the old skills' lines, into the new
    // ones', at the place it had.
    put(&app, "ana", json!({"billing": 2, "vip": 1})).await;
    assert!(skill_line(&app, "support", "es").await.is_empty());
    assert_eq!(avail_score(&app, "support", "ana").await, Some(score));
    for skill in ["billing", "vip"] {
        assert_eq!(
            skill_line(&app, "sales", skill).await,
            vec![("ana".to_owned(), score)],
            "{skill}"
        );
    }

    // Not free (away), then offered a call: in no line.
    app.set_state("ana", "away").await;
    for skill in ["billing", "vip"] {
        assert!(skill_line(&app, "sales", skill).await.is_empty(), "{skill}");
    }
    app.set_state("ana", "available").await;
    let dial = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    for queue in ["support", "sales"] {
        assert!(skill_line(&app, queue, "vip").await.is_empty(), "{queue}");
    }

    // Deleted: gone from every line.
    put(&app, "bo", json!(["vip"])).await;
    app.set_state("bo", "available").await;
    assert_eq!(skill_line(&app, "support", "vip").await.len(), 1);
    let deleted = app.admin(Method::DELETE, "/agents/bo", None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert!(skill_line(&app, "support", "vip").await.is_empty());
}

/// Steps and needs that name four alternatives with lines of their own:
/// support's `!trainee>=1`, `billing>=3&es>=1&!trainee>=1` and
/// `billing>=3&es>=1`, sales' `billing>=2` (`vip` alone is its skill line).
const NAMED: &str = r#"
[defaults]
default_queue = "support"
wrap_up_secs = 0

[[queues]]
name = "support"
numbers = [{ number = "+15005550007", needs = "es and billing>=3" }, "+15005550008"]
steps = [{ needs = "not trainee", for_secs = 60 }, { needs = "any" }]

[[queues]]
name = "sales"
numbers = ["+15005550006"]
steps = [{ needs = "billing>=2 or vip", for_secs = 60 }, { needs = "any" }]
"#;

/// Agent `i`'s skills: a mix, so each alternative holds for some.
fn mixed_skills(i: usize) -> serde_json::Value {
    let mut skills = serde_json::Map::new();
    if i.is_multiple_of(2) {
        skills.insert("es".into(), json!(1));
    }
    if !i.is_multiple_of(6) {
        skills.insert("billing".into(), json!(i % 6));
    }
    if i.is_multiple_of(5) {
        skills.insert("trainee".into(), json!(1));
    }
    if i.is_multiple_of(7) {
        skills.insert("vip".into(), json!(2));
    }
    serde_json::Value::Object(skills)
}

/// Whether skills stored as "name:level,…" satisfy a signature
/// ("billing>=3&es>=1&!trainee>=1").
fn satisfies_sig(stored: &str, sig: &str) -> bool {
    let level = |name: &str| {
        stored
            .split(',')
            .filter_map(|s| s.split_once(':'))
            .find(|(n, _)| *n == name)
            .and_then(|(_, l)| l.parse::<u8>().ok())
            .unwrap_or(0)
    };
    sig.split('&').all(|test| {
        let (negated, test) = match test.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, test),
        };
        let (skill, min) = test.split_once(">=").expect("skill>=min");
        (level(skill) >= min.parse::<u8>().expect("a level")) != negated
    })
}

/// Checks every published alternative's line against what it must hold:
/// the free agents of its queue who satisfy it, at their places in
/// `avail:<queue>`; exactly once ready, and nobody else while it is built.
/// Returns how many lines were ready.
async fn check_alt_lines(app: &TestApp) -> usize {
    let mut conn = app.redis().await;
    let mut ready_lines = 0;
    for queue in strings(app, "SMEMBERS", "alt_queues").await {
        let sigs = strings(app, "HKEYS", &format!("alts:{queue}")).await;
        let ready = strings(app, "SMEMBERS", &format!("alts_ready:{queue}")).await;
        let avail = members(app, &format!("avail:{queue}")).await;
        for sig in sigs {
            let mut expected = Vec::new();
            for (id, score) in &avail {
                if satisfies_sig(&stored_skills(app, id).await, &sig) {
                    expected.push((id.clone(), *score));
                }
            }
            let sha: String = redis::cmd("EVAL")
                .arg("return redis.sha1hex(ARGV[1])")
                .arg(0)
                .arg(&sig)
                .query_async(&mut conn)
                .await
                .unwrap();
            let line = members(app, &format!("alt_avail:{queue}:{sha}")).await;
            if ready.contains(&sig) {
                assert_eq!(line, expected, "{queue} {sig}: the line is not exact");
                ready_lines += 1;
            } else {
                let extra: Vec<_> = line.iter().filter(|m| !expected.contains(m)).collect();
                assert!(
                    extra.is_empty(),
                    "{queue} {sig} while built holds {extra:?}"
                );
            }
        }
    }
    ready_lines
}

/// The agent a call to `to` should ring if it needs `sig` at its first
/// step: the longest idle free agent of `queue` who satisfies it, read
/// from Redis' own lines of free agents, not the alternative's.
async fn longest_idle_satisfying(app: &TestApp, queue: &str, sig: &str) -> Option<String> {
    for (id, _) in members(app, &format!("avail:{queue}")).await {
        if satisfies_sig(&stored_skills(app, &id).await, sig) {
            return Some(id);
        }
    }
    None
}

/// Sets an agent's state, unless it holds a call (409).
async fn try_state(app: &TestApp, id: &str, state: &str) {
    let status = put_state(&app.http, app.base(), ADMIN_TOKEN, id, state).await;
    assert!(status == 200 || status == 409, "set {id} {state}: {status}");
}

#[tokio::test]
async fn each_named_alternative_keeps_an_exact_line_of_free_agents_as_agents_move() {
    // No worker: the test publishes and builds, a few agents a run, and
    // moves agents between runs.
    let app = spawn_app_with(NAMED, false, |_| {}).await;
    let both = ["support", "sales"];
    for i in 1..=24 {
        app.add_skilled(&format!("a{i}"), &both, mixed_skills(i))
            .await;
    }
    // Before anything is published, calls are routed by walking skill lines.
    let step_one = "billing>=3&es>=1&!trainee>=1";
    let expected = longest_idle_satisfying(&app, "support", step_one).await;
    let first = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(dialed(&first), expected);

    let engine = &app.server.state.engine;
    let store = engine.store();
    let published = engine
        .publish_alternatives(std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!((published.added, published.dropped), (4, 0));
    let again = engine
        .publish_alternatives(std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!((again.added, again.dropped), (0, 0));

    // Built 4 agents a run while agents move between runs: never a member
    // that should not be there, and exact once ready.
    let mut runs = 0;
    loop {
        let built = store.build_alt_lines(4).await.unwrap();
        runs += 1;
        check_alt_lines(&app).await;
        if built.pending == 0 {
            break;
        }
        let i = runs % 24 + 1;
        match runs % 4 {
            0 => try_state(&app, &format!("a{i}"), "away").await,
            1 => try_state(&app, &format!("a{i}"), "available").await,
            2 => {
                let put = put(&app, &format!("a{i}"), mixed_skills(i + 3)).await;
                assert_eq!(put.status, 200, "{put:?}");
            }
            _ => {
                app.call(&call_sid(100 + runs as u64), SUPPORT).await;
            }
        }
        assert!(runs < 100, "the build never ends");
    }
    assert!(runs > 5, "built in {runs} runs: the batches were not small");
    assert_eq!(check_alt_lines(&app).await, 4);

    // Ready: moves keep the lines exact, and routing reads them.
    for n in 0..6u64 {
        let expected = longest_idle_satisfying(&app, "support", step_one).await;
        let sid = call_sid(200 + n);
        let answer = app.call(&sid, SUPPORT).await;
        assert_eq!(dialed(&answer), expected, "call {n}");
        check_alt_lines(&app).await;
        if n % 2 == 0 {
            // The caller hangs up while it rings: the agent is free again.
            app.call_status(&sid, "completed").await;
        }
        let i = (n * 5 % 24 + 1) as usize;
        let put = put(&app, &format!("a{i}"), mixed_skills(i + 1)).await;
        assert_eq!(put.status, 200, "{put:?}");
        try_state(&app, &format!("a{}", i + 1), "available").await;
        assert_eq!(check_alt_lines(&app).await, 4);
    }
    // Out of a queue, and deleted.
    let moved = app
        .admin(
            Method::PUT,
            "/agents/a2",
            Some(
                json!({"name": "a2", "contact": "client:a2", "queues": ["sales"],
                "skills": mixed_skills(2)}),
            ),
        )
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let deleted = app.admin(Method::DELETE, "/agents/a4", None).await;
    assert!(deleted.status < 300, "{deleted:?}");
    assert_eq!(check_alt_lines(&app).await, 4);

    // Nobody publishes them any more: dropped, lines and all.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let dropped = store
        .publish_alts(Vec::new(), std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((dropped.added, dropped.dropped), (0, 4));
    let left = strings(&app, "KEYS", "alt*").await;
    assert!(left.is_empty(), "left behind: {left:?}");
}
