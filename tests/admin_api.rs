//! The admin API: agents and queues as SPEC 1 describes them, with validation
//! errors that change nothing.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_agent_is_created_offline_updated_listed_and_deleted() {
    let app = spawn_app(ROUTING).await;
    let body = json!({ "name": "Ana", "contact": "+15551230001", "queues": ["sales"] });
    let created = app.admin(Method::PUT, "/agents/ana", Some(body)).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert!(created.content_type.starts_with("application/json"));
    let doc = created.json();
    assert_eq!(doc["id"], "ana");
    assert_eq!(doc["state"], "offline");
    assert_eq!(doc["call_sid"], serde_json::Value::Null);
    assert_eq!(doc["available_at"], serde_json::Value::Null);
    assert_eq!(doc["missed_in_row"], 0);
    assert!(
        time::OffsetDateTime::parse(
            doc["state_since"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );

    let body = json!({ "name": "Ana B", "contact": "client:ana", "queues": ["sales", "support"] });
    let updated = app.admin(Method::PUT, "/agents/ana", Some(body)).await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json()["queues"], json!(["sales", "support"]));

    let list = app.admin(Method::GET, "/agents", None).await.json();
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);
    assert_eq!(list["agents"][0]["contact"], "client:ana");

    assert_eq!(
        app.admin(Method::DELETE, "/agents/ana", None).await.status,
        204
    );
    assert_eq!(
        app.admin(Method::GET, "/agents/ana", None).await.status,
        404
    );
    assert_eq!(
        app.admin(Method::DELETE, "/agents/ana", None).await.status,
        404
    );
}

#[tokio::test]
async fn an_available_agent_who_changes_queues_keeps_its_place_in_line() {
    let app = spawn_app(ROUTING).await;
    app.add_available("first", &["support"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.add_available("second", &["support", "sales"]).await;
    let body =
        json!({ "name": "first", "contact": "client:first", "queues": ["sales", "support"] });
    app.admin(Method::PUT, "/agents/first", Some(body)).await;
    let sales = app.admin(Method::GET, "/queues/sales", None).await.json();
    assert_eq!(sales["available"], json!(["first", "second"]));
    let body = json!({ "name": "second", "contact": "client:second", "queues": ["support"] });
    app.admin(Method::PUT, "/agents/second", Some(body)).await;
    let sales = app.admin(Method::GET, "/queues/sales", None).await.json();
    assert_eq!(sales["available"], json!(["first"]));
}

#[tokio::test]
async fn bad_values_are_422_and_change_nothing() {
    let app = spawn_app(ROUTING).await;
    let before = app.snapshot().await;
    let cases = [
        (
            "/agents/bad%20id",
            json!({ "name": "x", "contact": "+15551230001", "queues": [] }),
        ),
        (
            "/agents/ok",
            json!({ "name": "x", "contact": "5551230001", "queues": [] }),
        ),
        (
            "/agents/ok",
            json!({ "name": "x", "contact": "client:a b", "queues": [] }),
        ),
        (
            "/agents/ok",
            json!({ "name": "x", "contact": "+15551230001", "queues": ["nope"] }),
        ),
        (
            "/agents/ok",
            json!({ "name": "", "contact": "+15551230001", "queues": [] }),
        ),
        (
            "/agents/ok",
            json!({ "name": " \u{3000}\t", "contact": "+15551230001", "queues": [] }),
        ),
        (
            "/agents/ok",
            json!({ "name": "x", "contact": format!("sip:{}@example.com", "a".repeat(65)), "queues": [] }),
        ),
    ];
    for (path, body) in cases {
        let a = app.admin(Method::PUT, path, Some(body.clone())).await;
        assert_eq!(a.status, 422, "{path} {body}: {a:?}");
        assert!(a.json()["error"].is_string());
    }
    assert_eq!(
        app.admin(
            Method::PUT,
            "/agents/x/state",
            Some(json!({"state": "available"}))
        )
        .await
        .status,
        404
    );
    app.add_agent("a", &["sales"]).await;
    let before_state = app.snapshot().await;
    let a = app
        .admin(
            Method::PUT,
            "/agents/a/state",
            Some(json!({"state": "on_call"})),
        )
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(app.snapshot().await, before_state);
    app.admin(Method::DELETE, "/agents/a", None).await;
    // All gone but the history: the events stream and the audit trail keep
    // a's creation and deletion.
    let mut after = app.snapshot().await;
    assert!(after.remove(&app.key("events")).is_some());
    assert!(after.remove(&app.key("audit")).is_some());
    assert_eq!(after, before);
}

#[tokio::test]
async fn bodies_that_are_not_the_expected_json_are_400() {
    let app = spawn_app(ROUTING).await;
    let url = format!("{}/v1/agents/a", app.base());
    let not_json = app
        .http
        .put(&url)
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let wrong_shape = app
        .admin(Method::PUT, "/agents/a", Some(json!({ "name": 5 })))
        .await;
    assert_eq!(wrong_shape.status, 400);
    assert!(wrong_shape.json()["error"].is_string());
}

#[tokio::test]
async fn without_the_bearer_token_the_api_answers_401() {
    let app = spawn_app(ROUTING).await;
    let url = format!("{}/v1/agents", app.base());
    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = app.http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert!(body["error"].is_string());
    // The scheme name is case-insensitive.
    let lower = app
        .http
        .get(&url)
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);
}

#[tokio::test]
async fn every_error_under_v1_is_json() {
    let app = spawn_app(ROUTING).await;
    let base = format!("{}/v1", app.base());
    let cases = [
        (
            "unknown path",
            app.http
                .get(format!("{base}/nope"))
                .bearer_auth(ADMIN_TOKEN),
            404,
        ),
        (
            "wrong method",
            app.http
                .post(format!("{base}/agents"))
                .bearer_auth(ADMIN_TOKEN),
            405,
        ),
        (
            "bad query",
            app.http
                .get(format!("{base}/voicemails?limit=abc"))
                .bearer_auth(ADMIN_TOKEN),
            400,
        ),
        (
            "body over 64 KiB",
            app.http
                .put(format!("{base}/agents/a"))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body(format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024))),
            413,
        ),
    ];
    for (what, request, status) in cases {
        let a = answer(request.send().await.unwrap()).await;
        assert_eq!(a.status, status, "{what}: {a:?}");
        assert!(
            a.content_type.starts_with("application/json"),
            "{what}: {a:?}"
        );
        assert!(a.json()["error"].is_string(), "{what}: {a:?}");
    }
}

#[tokio::test]
async fn without_an_admin_token_configured_the_api_answers_503() {
    let redis = start_redis();
    let mut s = settings(&redis.url(), ROUTING);
    s.admin_token = None;
    let server = TestServer::start(s).await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    for path in ["/v1/agents", "/v1/openapi.json", "/v1/nope"] {
        let r = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
    }
}

#[tokio::test]
async fn a_reserved_agent_answers_409_unless_forced() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["support"]).await;
    app.call(&call_sid(1), SUPPORT).await;
    let a = app
        .admin(
            Method::PUT,
            "/agents/a/state",
            Some(json!({"state": "offline"})),
        )
        .await;
    assert_eq!(a.status, 409, "{a:?}");
    assert_eq!(app.agent("a").await["state"], "reserved");
    let forced = app.force_state("a", "available").await;
    assert_eq!(forced.json()["state"], "available");
    assert_eq!(forced.json()["call_sid"], serde_json::Value::Null);
}

#[tokio::test]
async fn queues_list_counts_by_state_in_offer_order() {
    let app = spawn_app(ROUTING).await;
    app.add_available("x", &["sales"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.add_available("y", &["sales"]).await;
    app.add_agent("z", &["sales"]).await;
    let mut q = app.admin(Method::GET, "/queues/sales", None).await.json();
    // The figures (tests/queue_stats.rs): an idle queue has none yet.
    let figures = q.as_object_mut().unwrap();
    for key in ["today", "trend", "targets"] {
        assert!(figures.remove(key).is_some(), "{key}");
    }
    let service_level = figures.remove("service_level").unwrap();
    assert_eq!(service_level["last_15m"]["pct"], serde_json::Value::Null);
    assert_eq!(
        q,
        json!({
            "name": "sales",
            "agents": {"offline": 1, "available": 2, "reserved": 0, "on_call": 0, "wrap_up": 0, "away": 0},
            "available": ["x", "y"],
            "waiting": [],
            "longest_wait_secs": 0
        })
    );
    let all = app.admin(Method::GET, "/queues", None).await.json();
    let names: Vec<&str> = all["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sales", "support", "vip", "night"]);
    assert_eq!(
        app.admin(Method::GET, "/queues/nope", None).await.status,
        404
    );
}

#[tokio::test]
async fn a_deleted_agent_gets_no_new_call() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["support"]).await;
    app.admin(Method::DELETE, "/agents/a", None).await;
    let a = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(a.element_text("Number").as_deref(), Some("+15005550010"));
}

#[tokio::test]
async fn deleting_a_reserved_agent_keeps_its_call_but_hides_it() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["support"]).await;
    let first = app.call(&call_sid(1), SUPPORT).await;
    assert_eq!(
        app.admin(Method::DELETE, "/agents/a", None).await.status,
        204
    );
    assert_eq!(app.admin(Method::GET, "/agents/a", None).await.status, 404);
    // The call in progress still gets its answer.
    assert_eq!(app.call(&call_sid(1), SUPPORT).await.body, first.body);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_the_real_documents() {
    let app = spawn_app(ROUTING).await;
    let response = app
        .http
        .get(format!("{}/v1/openapi.json", app.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "public, no token needed");
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let expected = [
        ("/v1/agents", "get"),
        ("/v1/agents/{id}", "get"),
        ("/v1/agents/{id}", "put"),
        ("/v1/agents/{id}", "delete"),
        ("/v1/agents/{id}/state", "put"),
        ("/v1/queues", "get"),
        ("/v1/queues/{name}", "get"),
        ("/v1/voicemails", "get"),
    ];
    for (path, method) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The schemas name exactly the fields the API answers with.
    app.add_available("a", &["sales"]).await;
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        keys(&schemas["AgentDoc"]["properties"]),
        keys(&app.agent("a").await)
    );
    let queue = app.admin(Method::GET, "/queues/sales", None).await.json();
    assert_eq!(keys(&schemas["QueueDoc"]["properties"]), keys(&queue));
    assert_eq!(
        keys(&schemas["StateCounts"]["properties"]),
        keys(&queue["agents"])
    );
    let error = app.admin(Method::GET, "/agents/nobody", None).await.json();
    assert_eq!(keys(&schemas["ErrorBody"]["properties"]), keys(&error));
}

#[tokio::test]
async fn dot_and_dot_dot_are_refused_as_agent_ids() {
    use tower::ServiceExt;
    let app = spawn_app(ROUTING).await;
    let before = app.snapshot().await;
    // HTTP clients resolve `.` and `..` segments away, so the request is built
    // by hand and sent straight to the router.
    for id in [".", ".."] {
        let body = json!({ "name": "x", "contact": "+15551230001", "queues": [] });
        let request = axum::http::Request::put(format!("/v1/agents/{id}"))
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let response = switchboard::http::router(app.server.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "PUT /v1/agents/{id}");
    }
    assert_eq!(app.snapshot().await, before);
    // Dots inside an id are fine.
    app.add_agent("...", &["sales"]).await;
    app.add_agent("a.b", &["sales"]).await;
}

#[tokio::test]
async fn a_voicemail_limit_outside_its_documented_range_is_422() {
    let app = spawn_app(ROUTING).await;
    for limit in ["0", "1001"] {
        let a = app
            .admin(Method::GET, &format!("/voicemails?limit={limit}"), None)
            .await;
        assert_eq!(a.status, 422, "limit={limit}: {a:?}");
        assert!(a.json()["error"].is_string());
    }
    for limit in ["1", "1000"] {
        let a = app
            .admin(Method::GET, &format!("/voicemails?limit={limit}"), None)
            .await;
        assert_eq!(a.status, 200, "limit={limit}: {a:?}");
    }
    let negative = app.admin(Method::GET, "/voicemails?limit=-1", None).await;
    assert_eq!(negative.status, 400, "not a whole number: {negative:?}");
}

#[tokio::test]
async fn the_served_document_lists_the_configured_queues_and_the_rules() {
    let app = spawn_app(ROUTING).await;
    let doc = app
        .http
        .get(format!("{}/v1/openapi.json", app.base()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let queues = app.admin(Method::GET, "/queues", None).await.json();
    let names: Vec<&serde_json::Value> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| &q["name"])
        .collect();
    let body = &doc["components"]["schemas"]["AgentBody"]["properties"];
    assert_eq!(body["queues"]["items"]["enum"], json!(names));
    assert_eq!(
        doc["paths"]["/v1/queues/{name}"]["get"]["parameters"][0]["schema"]["enum"],
        json!(names)
    );
    for rule in [
        &body["name"],
        &body["contact"],
        &doc["components"]["schemas"]["AgentId"],
    ] {
        assert!(rule["pattern"].is_string(), "{rule}");
    }
    assert_eq!(
        doc["components"]["schemas"]["SettableState"]["enum"],
        json!(["available", "away", "offline"])
    );
}

#[tokio::test]
async fn the_document_names_no_queue_without_the_admin_token() {
    let app = spawn_app(ROUTING).await;
    for token in [None, Some("not-the-admin-token")] {
        let mut request = app.http.get(format!("{}/v1/openapi.json", app.base()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{token:?}");
        let text = response.text().await.unwrap();
        // "vip" and "night" appear nowhere but in the routing file.
        for name in ["vip", "night"] {
            assert!(!text.contains(name), "{token:?}: {name} in {text}");
        }
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let items = &doc["components"]["schemas"]["AgentBody"]["properties"]["queues"]["items"];
        assert!(items.get("enum").is_none(), "{token:?}: {items}");
    }
}
