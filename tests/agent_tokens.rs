//! Agent tokens: issued by admins (shown once, kept only hashed), good for the
//! agent's own `/v1/me` routes and nothing else; expired, revoked, malformed,
//! foreign and misplaced tokens are refused (401) and change nothing.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// The secret half of `sbat_<id>_<secret>` (a secret may hold `_` itself).
fn secret_of(token: &str) -> &str {
    token
        .strip_prefix("sbat_")
        .and_then(|t| t.split_once('_'))
        .map(|(_, secret)| secret)
        .expect("a token")
}

async fn app_with_ana() -> TestApp {
    let app = spawn_app(ROUTING).await;
    app.add_agent("ana", &["support"]).await;
    app.add_agent("bob", &["support"]).await;
    app
}

#[tokio::test]
async fn an_agent_token_reads_and_sets_its_own_agent() {
    let app = app_with_ana().await;
    let issued = app
        .admin(
            Method::POST,
            "/agents/ana/tokens",
            Some(json!({"ttl_secs": 3600})),
        )
        .await;
    assert_eq!(issued.status, 201, "{issued:?}");
    let doc = issued.json();
    let token = doc["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("sbat_"), "{token}");
    let expires = time::OffsetDateTime::parse(
        doc["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(59) && left <= time::Duration::minutes(61),
        "{left}"
    );

    let me = app.with_token(&token, Method::GET, "/me", None).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.json()["id"], "ana");
    assert_eq!(me.json()["state"], "offline");
    assert!(me.json()["call"].is_null());
    let set = app.set_my_state(&token, "available").await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(app.agent("ana").await["state"], "available");
    let beat = app
        .with_token(&token, Method::POST, "/me/heartbeat", None)
        .await;
    assert_eq!(beat.status, 204, "{beat:?}");
    assert!(app.agent("ana").await["last_heartbeat"].is_string());
    // The token is not asked for again: an empty body means the defaults.
    let response = app
        .http
        .post(format!("{}/v1/agents/ana/tokens", app.base()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "a secret must not be cached"
    );
    // An empty body under a JSON Content-Type (before: 400, EOF while
    // parsing), and JSON under curl's default form type (before: ignored).
    let post = |content_type: &'static str, body: &'static str| {
        app.http
            .post(format!("{}/v1/agents/ana/tokens", app.base()))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (content_type, body) in [("application/json", ""), ("application/json", " \n")] {
        let response = post(content_type, body).await.unwrap();
        assert_eq!(response.status(), 201, "{content_type} {body:?}");
    }
    let short = post("application/x-www-form-urlencoded", r#"{"ttl_secs": 60}"#)
        .await
        .unwrap();
    assert_eq!(short.status(), 201);
    let expires: String = short.json::<serde_json::Value>().await.unwrap()["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_secs =
        time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
            .unwrap()
            - time::OffsetDateTime::now_utc();
    assert!(
        in_secs.whole_seconds() <= 61,
        "ttl_secs 60 was honoured: {expires}"
    );
    let garbage = post("application/json", "{").await.unwrap();
    assert_eq!(garbage.status(), 400);
}

#[tokio::test]
async fn the_console_sees_the_call_its_agent_holds() {
    let app = app_with_ana().await;
    let token = app.issue_token("ana").await;
    app.set_my_state(&token, "available").await;
    let sid = call_sid(1);
    let dial = app.call_from(&sid, "+15005550123", SUPPORT).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"));
    let me = app
        .with_token(&token, Method::GET, "/me", None)
        .await
        .json();
    assert_eq!(me["state"], "reserved");
    assert_eq!(me["call"]["call_sid"], sid);
    assert_eq!(me["call"]["from"], "+15005550123");
    assert_eq!(me["call"]["queue"], "support");
    assert!(me["call"]["since"].is_string());
    // Holding a call, the agent cannot set itself away (as admins without force).
    let away = app.set_my_state(&token, "away").await;
    assert_eq!(away.status, 409, "{away:?}");
    assert_eq!(app.agent("ana").await["state"], "reserved");
}

#[tokio::test]
async fn an_agent_token_reaches_nothing_but_its_own_agent() {
    let app = app_with_ana().await;
    let token = app.issue_token("ana").await;
    let before = app.snapshot().await;
    for (method, path, body) in [
        (Method::GET, "/agents", None),
        (Method::GET, "/agents/ana", None),
        (Method::GET, "/agents/bob", None),
        (
            Method::PUT,
            "/agents/bob/state",
            Some(json!({"state": "available"})),
        ),
        (
            Method::PUT,
            "/agents/ana/state",
            Some(json!({"state": "available"})),
        ),
        (Method::POST, "/agents/ana/tokens", Some(json!({}))),
        (Method::DELETE, "/agents/bob/tokens", None),
        (Method::DELETE, "/agents/bob", None),
        (Method::GET, "/queues", None),
        (Method::GET, "/voicemails", None),
    ] {
        let refused = app.with_token(&token, method.clone(), path, body).await;
        assert_eq!(refused.status, 401, "{method} {path}: {refused:?}");
    }
    // The admin token is not an agent token.
    let admin = app.with_token(ADMIN_TOKEN, Method::GET, "/me", None).await;
    assert_eq!(admin.status, 401, "{admin:?}");
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused request changed Redis"
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_and_change_nothing() {
    let app = app_with_ana().await;
    let token = app.issue_token("ana").await;
    let secret = secret_of(&token);
    let head = &token[..token.len() - secret.len() - 1];
    let mut flipped = secret.to_owned();
    flipped.replace_range(0..1, if secret.starts_with('A') { "B" } else { "A" });
    let long = "x".repeat(8000);
    let malformed = [
        String::new(),
        "sbat_".into(),
        "sbat_0123456789abcdef".into(),
        format!("{head}_{flipped}"),
        format!("{head}_{secret}x"),
        token.to_uppercase(),
        format!("sbat_0000000000000000_{secret}"),
        long,
    ];
    let before = app.snapshot().await;
    for bad in &malformed {
        let refused = app.set_my_state(bad, "available").await;
        assert_eq!(refused.status, 401, "{bad:.40}: {refused:?}");
        assert_eq!(
            app.with_token(bad, Method::POST, "/me/heartbeat", None)
                .await
                .status,
            401
        );
    }
    // No Authorization header at all, or another scheme.
    let none = app
        .http
        .get(format!("{}/v1/me", app.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let basic = app
        .http
        .get(format!("{}/v1/me", app.base()))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    // A token in the URL is refused even with a good header: URLs are logged.
    for query in [format!("?token={token}"), format!("?access_token={token}")] {
        let in_url = app
            .http
            .post(format!("{}/v1/me/heartbeat{query}", app.base()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(in_url.status(), 401, "{query:.20}");
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused request changed Redis"
    );
    // The good token still works.
    assert_eq!(
        app.with_token(&token, Method::GET, "/me", None)
            .await
            .status,
        200
    );
}

/// A token in any query parameter, under any name and in any encoding, is
/// refused on every `/v1` route, even with a good `Authorization` header,
/// and changes nothing; queries without one still work.
#[tokio::test]
async fn a_token_in_any_query_parameter_and_encoding_is_refused_everywhere_under_v1() {
    let app = app_with_ana().await;
    let token = app.issue_token("ana").await;
    let escaped = token.replacen("sbat_", "%73bat%5F", 1);
    let queries = [
        format!("?t={token}"),
        format!("?limit=10&t=1&t={token}"),
        format!("?{token}"),
        format!("?t={escaped}"),
        format!("?t={}", escaped.replace('%', "%25")),
        format!("?t={}", token.to_uppercase()),
        format!("?auth=Bearer+{token}"),
        format!("?key={ADMIN_TOKEN}"),
        format!(
            "?key=%{:02X}{}",
            ADMIN_TOKEN.as_bytes()[0],
            &ADMIN_TOKEN[1..]
        ),
        format!("?key=bearer%20{ADMIN_TOKEN}"),
    ];
    let before = app.snapshot().await;
    for query in &queries {
        for (token, method, path) in [
            (ADMIN_TOKEN, Method::GET, "/agents"),
            (ADMIN_TOKEN, Method::PUT, "/agents/bob/state"),
            (token.as_str(), Method::GET, "/me"),
            (token.as_str(), Method::POST, "/me/heartbeat"),
            (token.as_str(), Method::PUT, "/me/state"),
        ] {
            let body = matches!(method, Method::PUT).then(|| json!({"state": "available"}));
            let refused = app
                .with_token(token, method, &format!("{path}{query}"), body)
                .await;
            assert_eq!(refused.status, 401, "{path}{query:.30}: {refused:?}");
            assert_eq!(
                refused.json()["error"],
                "a token goes in the Authorization header, never in the URL"
            );
        }
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused request changed Redis"
    );
    // Queries without a token still work.
    let page = app
        .with_token(ADMIN_TOKEN, Method::GET, "/agents?limit=10&cursor=0", None)
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(
        app.with_token(&token, Method::GET, "/me?x=1", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn revoked_expired_and_foreign_tokens_are_refused() {
    let app = app_with_ana().await;
    let first = app.issue_token("ana").await;
    let second = app.issue_token("ana").await;
    let bobs = app.issue_token("bob").await;
    assert_eq!(
        app.with_token(&first, Method::GET, "/me", None)
            .await
            .status,
        200
    );

    // Revoking ana's tokens ends both of them, not bob's.
    let revoked = app.admin(Method::DELETE, "/agents/ana/tokens", None).await;
    assert_eq!(revoked.status, 204);
    for token in [&first, &second] {
        assert_eq!(
            app.with_token(token, Method::GET, "/me", None).await.status,
            401
        );
    }
    assert_eq!(
        app.with_token(&bobs, Method::GET, "/me", None).await.status,
        200
    );

    // Expired: its record still there (as between its expiry and Redis
    // removing the key), the expiry in the past.
    let third = app.issue_token("ana").await;
    let token_id = third.split('_').nth(1).unwrap();
    let mut conn = app.redis().await;
    let _: () = redis::cmd("HSET")
        .arg(app.key(&format!("token:{token_id}")))
        .arg("expires_at")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        app.with_token(&third, Method::GET, "/me", None)
            .await
            .status,
        401
    );

    // Another namespace on the same Redis knows nothing of this one's tokens.
    let mut other = settings(&app.redis.url(), ROUTING);
    other.namespace = "other".into();
    let other = TestApp::elsewhere(TestServer::start(other).await);
    other.add_agent("bob", &["support"]).await;
    assert_eq!(
        other
            .with_token(&bobs, Method::GET, "/me", None)
            .await
            .status,
        401
    );

    // A deleted agent's tokens end with it.
    assert_eq!(
        app.admin(Method::DELETE, "/agents/bob", None).await.status,
        204
    );
    assert_eq!(
        app.with_token(&bobs, Method::GET, "/me", None).await.status,
        401
    );
}

#[tokio::test]
async fn redis_keeps_no_secret_and_an_agent_only_its_newest_tokens() {
    let app = app_with_ana().await;
    let mut tokens = Vec::new();
    for _ in 0..21 {
        tokens.push(app.issue_token("ana").await);
    }
    // Nothing in Redis holds a secret.
    for (key, dump) in app.snapshot().await {
        for token in &tokens {
            let secret = secret_of(token);
            assert!(
                !String::from_utf8_lossy(&dump).contains(secret) && !key.contains(secret),
                "{key} holds a secret"
            );
        }
    }
    // At most 20 live tokens an agent: the oldest went.
    assert_eq!(
        app.with_token(&tokens[0], Method::GET, "/me", None)
            .await
            .status,
        401
    );
    for token in &tokens[1..] {
        assert_eq!(
            app.with_token(token, Method::GET, "/me", None).await.status,
            200
        );
    }
}

#[tokio::test]
async fn token_requests_out_of_range_are_refused() {
    let app = app_with_ana().await;
    for (path, body, status) in [
        // A whole number written with a fraction is a whole number.
        ("/agents/ana/tokens", json!({"ttl_secs": 3600.0}), 201),
        ("/agents/ana/tokens", json!({"ttl_secs": 3600.5}), 400),
        ("/agents/nobody/tokens", json!({}), 404),
        ("/agents/ana/tokens", json!({"ttl_secs": 59}), 422),
        ("/agents/ana/tokens", json!({"ttl_secs": 31_622_401}), 422),
        ("/agents/ana/tokens", json!({"ttl": 100}), 400),
        ("/agents/bad%20id/tokens", json!({}), 422),
    ] {
        let answer = app.admin(Method::POST, path, Some(body)).await;
        assert_eq!(answer.status, status, "{path}: {answer:?}");
    }
    assert_eq!(
        app.admin(Method::DELETE, "/agents/nobody/tokens", None)
            .await
            .status,
        404
    );
}
