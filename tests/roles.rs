//! Supervisor and wallboard tokens and the audit trail (issue 20, item 8): each
//! role reaches what `api::roles::ACCESS` gives it (403 for the rest, 401 for
//! an unknown, expired or revoked token), and every change made through the
//! API is an event saying who made it (`by`), in the stream, in the call's
//! history and in `GET /v1/audit`.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const DESK: &str = r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0
no_answer_delay_secs = 0
max_missed_in_row = 100

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["queue:spare", "number:+15005550010"]
[queues.hold]
loop_secs = 5
max_wait_secs = 600

[[queues]]
name = "spare"
"#;

/// A supervisor or wallboard token issued to `name` by the admin.
async fn staff_token(app: &TestApp, name: &str, role: &str) -> String {
    let issued = app
        .admin(
            Method::POST,
            &format!("/supervisors/{name}/tokens"),
            Some(json!({"role": role, "ttl_secs": 3600})),
        )
        .await;
    assert_eq!(issued.status, 201, "{issued:?}");
    let doc = issued.json();
    assert_eq!(doc["name"], name);
    assert_eq!(doc["role"], role);
    doc["token"].as_str().expect("a token").to_owned()
}

/// Fetches the wait URL of a hold round, as Twilio does at the round's end.
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

#[tokio::test]
async fn each_role_reaches_what_the_roles_table_gives_it_and_is_refused_the_rest() {
    let app = spawn_app(ROUTING).await;
    app.add_agent("ana", &["support"]).await;
    let supervisor = staff_token(&app, "carla", "supervisor").await;
    let wallboard = staff_token(&app, "lobby", "wallboard").await;
    assert!(supervisor.starts_with("sbst_"), "{supervisor}");
    assert!(wallboard.starts_with("sbwt_"), "{wallboard}");
    let agent = app.issue_token("ana").await;
    let waiting = format!("/queues/support/waiting/{}", call_sid(9));
    let calls = format!("/calls/{}", call_sid(9));
    let agent_body = json!({"name": "Bo", "contact": "client:bo", "queues": ["support"]});
    // (method, path, body, supervisor's status, wallboard's status)
    let table: Vec<(Method, &str, Option<serde_json::Value>, u16, u16)> = vec![
        (Method::GET, "/agents", None, 200, 200),
        (Method::GET, "/agents/ana", None, 200, 200),
        (Method::PUT, "/agents/bo", Some(agent_body), 403, 403),
        (
            Method::PUT,
            "/agents/ana/state",
            Some(json!({"state": "away"})),
            200,
            403,
        ),
        (
            Method::POST,
            "/agents/ana/tokens",
            Some(json!({})),
            403,
            403,
        ),
        (Method::DELETE, "/agents/ana/tokens", None, 403, 403),
        (
            Method::POST,
            "/supervisors/eve/tokens",
            Some(json!({"role": "supervisor"})),
            403,
            403,
        ),
        (Method::DELETE, "/supervisors/lobby/tokens", None, 403, 403),
        (Method::GET, "/queues", None, 200, 200),
        (Method::GET, "/queues/support", None, 200, 200),
        (Method::DELETE, &waiting, None, 404, 403),
        (Method::GET, "/voicemails", None, 200, 403),
        (Method::GET, &calls, None, 404, 404),
        (Method::GET, "/audit", None, 200, 403),
        (Method::GET, "/me", None, 403, 403),
        (
            Method::PUT,
            "/me/state",
            Some(json!({"state": "away"})),
            403,
            403,
        ),
        (Method::POST, "/me/heartbeat", None, 403, 403),
        (Method::DELETE, "/agents/ana", None, 403, 403),
    ];
    for (method, path, body, for_supervisor, _) in &table {
        let got = app
            .with_token(&supervisor, method.clone(), path, body.clone())
            .await;
        assert_eq!(
            got.status, *for_supervisor,
            "supervisor {method} {path}: {got:?}"
        );
    }
    // A wallboard only reads: whatever it is refused changes nothing.
    let before = app.snapshot().await;
    for (method, path, body, _, for_wallboard) in &table {
        let got = app
            .with_token(&wallboard, method.clone(), path, body.clone())
            .await;
        assert_eq!(
            got.status, *for_wallboard,
            "wallboard {method} {path}: {got:?}"
        );
        if got.status == 403 {
            assert!(got.json()["error"].is_string(), "{got:?}");
        }
    }
    assert_eq!(app.snapshot().await, before, "a wallboard changed Redis");

    // `force` is the admin's repair, not a supervisor's move.
    let forced = app
        .with_token(
            &supervisor,
            Method::PUT,
            "/agents/ana/state",
            Some(json!({"state": "available", "force": true})),
        )
        .await;
    assert_eq!(forced.status, 403, "{forced:?}");
    // An agent token stays 401 off its own routes, the audit trail included;
    // a made-up staff token is 401 everywhere.
    for path in ["/audit", "/agents", "/queues"] {
        let got = app.with_token(&agent, Method::GET, path, None).await;
        assert_eq!(got.status, 401, "agent {path}");
    }
    let forged = format!("sbst_0123456789abcdef_{}", "A".repeat(43));
    for path in ["/agents", "/audit", "/queues"] {
        let got = app.with_token(&forged, Method::GET, path, None).await;
        assert_eq!(got.status, 401, "forged {path}");
    }
    // A wallboard token rewritten as a supervisor's is not one.
    let rewritten = wallboard.replacen("sbwt_", "sbst_", 1);
    let got = app
        .with_token(&rewritten, Method::GET, "/audit", None)
        .await;
    assert_eq!(got.status, 401, "{got:?}");
    // Staff tokens in a URL are refused like agent tokens.
    let got = app
        .with_token(
            &supervisor,
            Method::GET,
            &format!("/agents?t={wallboard}"),
            None,
        )
        .await;
    assert_eq!(got.status, 401, "{got:?}");

    // Both staff roles may follow the event stream.
    for token in [&supervisor, &wallboard] {
        let response = app
            .http
            .get(format!("{}/v1/events", app.base()))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
    }
}

#[tokio::test]
async fn staff_tokens_stop_working_when_expired_or_revoked() {
    let app = spawn_app(ROUTING).await;
    let token = staff_token(&app, "carla", "supervisor").await;
    let other = staff_token(&app, "carla", "wallboard").await;
    let kept = staff_token(&app, "dan", "supervisor").await;
    assert_eq!(
        app.with_token(&token, Method::GET, "/agents", None)
            .await
            .status,
        200
    );
    // Expired: its record still there, the expiry in the past.
    let token_id = token.split('_').nth(1).unwrap();
    let mut conn = app.redis().await;
    let _: () = redis::cmd("HSET")
        .arg(app.key(&format!("staff_token:{token_id}")))
        .arg("expires_at")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        app.with_token(&token, Method::GET, "/agents", None)
            .await
            .status,
        401
    );
    // Redis keeps no secret.
    let secret = other.rsplit('_').next().unwrap();
    let dump = format!("{:?}", app.snapshot().await);
    assert!(!dump.contains(secret), "a secret is in Redis");

    assert_eq!(
        app.admin(Method::DELETE, "/supervisors/carla/tokens", None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.with_token(&other, Method::GET, "/queues", None)
            .await
            .status,
        401
    );
    assert_eq!(
        app.with_token(&kept, Method::GET, "/queues", None)
            .await
            .status,
        200,
        "another name's token is not revoked"
    );
    assert_eq!(
        app.admin(Method::DELETE, "/supervisors/carla/tokens", None)
            .await
            .status,
        404
    );
    for body in [
        json!({"role": "root"}),
        json!({"role": "supervisor", "ttl_secs": 10}),
    ] {
        let got = app
            .admin(Method::POST, "/supervisors/carla/tokens", Some(body))
            .await;
        assert_eq!(got.status, 422, "{got:?}");
    }
    let got = app
        .admin(
            Method::POST,
            "/supervisors/carla/tokens",
            Some(json!({"ttl_secs": 60})),
        )
        .await;
    assert_eq!(got.status, 400, "no role: {got:?}");
}

#[tokio::test]
async fn every_change_through_the_api_says_who_made_it_in_the_events_history_and_audit() {
    let app = spawn_app(DESK).await;
    app.add_available("a", &["desk"]).await;
    app.add_agent("ana", &["desk"]).await;
    let supervisor = staff_token(&app, "carla", "supervisor").await;
    let agent = app.issue_token("ana").await;
    let set = app
        .with_token(
            &supervisor,
            Method::PUT,
            "/agents/ana/state",
            Some(json!({"state": "away"})),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(app.set_my_state(&agent, "offline").await.status, 200);

    // A caller waits; the supervisor takes it out of the line.
    app.call(&call_sid(1), SUPPORT).await;
    let round = app.call(&call_sid(2), SUPPORT).await;
    assert!(round.body.contains("<Redirect"), "{}", round.body);
    let removed = app
        .with_token(
            &supervisor,
            Method::DELETE,
            &format!("/queues/desk/waiting/{}", call_sid(2)),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    // Its next fetch gets the queue's fallback: past the overflow queue (no
    // agent there either), the forwarding number.
    let next = wait_fetch(&app, &call_sid(2), &round).await;
    assert_eq!(
        next.element_text("Number").as_deref(),
        Some(EMERGENCY_NUMBER),
        "{}",
        next.body
    );
    let history = app
        .admin(Method::GET, &format!("/calls/{}", call_sid(2)), None)
        .await
        .json();
    let fallback = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "fallback")
        .unwrap_or_else(|| panic!("no fallback event: {history}"));
    assert_eq!(fallback["data"]["reason"], "removed", "{fallback}");
    assert_eq!(fallback["data"]["by"], "supervisor:carla", "{fallback}");
    assert_eq!(
        fallback["data"]["step"], "number:+15005550010",
        "{fallback}"
    );

    assert_eq!(
        app.admin(Method::DELETE, "/agents/ana/tokens", None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.admin(Method::DELETE, "/agents/ana", None).await.status,
        204
    );

    let audit = app
        .with_token(&supervisor, Method::GET, "/audit?limit=1000", None)
        .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    assert!(
        !audit.body.contains("sbst_") && !audit.body.contains("sbat_"),
        "a token in the audit trail: {}",
        audit.body
    );
    let entries: Vec<(String, String, serde_json::Value)> = audit.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["data"]["by"].as_str().unwrap().to_owned(),
                e["data"].clone(),
            )
        })
        .collect();
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|(kind, by, _)| (kind.as_str(), by.as_str()))
        .collect();
    // Newest first.
    assert_eq!(
        seen,
        vec![
            ("agent_state", "admin"),
            ("tokens_revoked", "admin"),
            ("fallback", "supervisor:carla"),
            ("agent_state", "agent:ana"),
            ("agent_state", "supervisor:carla"),
            ("token_issued", "admin"),
            ("token_issued", "admin"),
            ("agent_state", "admin"),
            ("agent_state", "admin"),
            ("agent_state", "admin"),
        ],
        "{entries:#?}"
    );
    let data = |i: usize| &entries[i].2;
    assert_eq!(data(0)["state"], "deleted");
    assert_eq!(data(1)["holder"], "agent:ana");
    assert_eq!(data(3)["state"], "offline");
    assert_eq!(data(4)["state"], "away");
    assert_eq!(data(5)["holder"], "agent:ana");
    assert_eq!(data(5)["role"], "agent");
    assert_eq!(data(6)["holder"], "supervisor:carla");
    assert_eq!(data(6)["role"], "supervisor");
    assert_eq!(data(7)["previous"], "", "ana created: {}", data(7));

    // The limit is honoured and checked.
    let two = app.admin(Method::GET, "/audit?limit=2", None).await.json();
    assert_eq!(two["events"].as_array().unwrap().len(), 2);
    for bad in ["0", "1001"] {
        assert_eq!(
            app.admin(Method::GET, &format!("/audit?limit={bad}"), None)
                .await
                .status,
            422
        );
    }
}

#[tokio::test]
async fn setting_an_agent_to_the_state_it_is_in_is_still_recorded() {
    let app = spawn_app(ROUTING).await;
    app.add_agent("ana", &["support"]).await;
    let supervisor = staff_token(&app, "carla", "supervisor").await;
    for _ in 0..2 {
        let set = app
            .with_token(
                &supervisor,
                Method::PUT,
                "/agents/ana/state",
                Some(json!({"state": "offline"})),
            )
            .await;
        assert_eq!(set.status, 200);
    }
    let audit = app.admin(Method::GET, "/audit?limit=2", None).await.json();
    for entry in audit["events"].as_array().unwrap() {
        assert_eq!(entry["event"], "agent_state");
        assert_eq!(entry["data"]["by"], "supervisor:carla");
        assert_eq!(entry["data"]["state"], "offline");
        assert_eq!(entry["data"]["previous"], "offline");
    }
}

#[tokio::test]
async fn a_wallboard_token_holds_no_more_event_streams_than_an_agent() {
    let app = spawn_app(ROUTING).await;
    let wallboard = staff_token(&app, "lobby", "wallboard").await;
    let other = staff_token(&app, "hall", "wallboard").await;
    let open = |token: String| {
        let request = app
            .http
            .get(format!("{}/v1/events", app.base()))
            .bearer_auth(token)
            .send();
        async move { request.await.expect("request") }
    };
    let mut held = Vec::new();
    for _ in 0..5 {
        let response = open(wallboard.clone()).await;
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    assert_eq!(open(wallboard.clone()).await.status(), 429);
    // Another token, and the admin, are not counted against it.
    assert_eq!(open(other.clone()).await.status(), 200);
    assert_eq!(open(ADMIN_TOKEN.to_owned()).await.status(), 200);
    drop(held);
}
