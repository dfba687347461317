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

/// The members of `skill_avail:<queue>:<skill>` with their scores.
async fn skill_line(app: &TestApp, queue: &str, skill: &str) -> Vec<(String, f64)> {
    let mut conn = app.redis().await;
    redis::cmd("ZRANGE")
        .arg(app.key(&format!("skill_avail:{queue}:{skill}")))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap()
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
