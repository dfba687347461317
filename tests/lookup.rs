//! The customer's lookup (issue 21, item 2) against a real Redis and a local
//! stand-in of the customer's service: each new call is POSTed there, signed,
//! before it is routed; an answer's needs and priority go with the call; a
//! lookup that is late, fails or answers nonsense adds nothing and is counted,
//! and the caller is routed all the same.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "lookup-secret-for-tests";

/// What the stand-in received: the body and whether its signature held.
type Seen = Arc<Mutex<Vec<(Value, bool)>>>;

/// True when `header` is `t=<recent>,v1=<HMAC-SHA256 of "t.body">`, checked
/// here with the HMAC crate, not switchboard's code.
fn signed(header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let recent = t.parse::<u64>().is_ok_and(|t| now.abs_diff(t) < 60);
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    recent && expected == v1
}

/// The customer's service: answers by the caller's number.
async fn stand_in(seen: Seen) -> String {
    let handler = move |headers: HeaderMap, body: Bytes| {
        let seen = seen.clone();
        async move {
            let signature = headers
                .get("x-switchboard-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock()
                .unwrap()
                .push((request.clone(), signed(signature, &body)));
            match request["from"].as_str().unwrap_or("") {
                "+15005550101" => {
                    axum::Json(json!({"needs": "vip", "priority": 7})).into_response()
                }
                "+15005550102" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    axum::Json(json!({"needs": "vip"})).into_response()
                }
                "+15005550103" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                "+15005550104" => "<html>not json</html>".into_response(),
                _ => axum::Json(json!({})).into_response(),
            }
        }
    };
    let app = axum::Router::new().route("/lookup", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/lookup")
}

fn routing(url: &str) -> String {
    format!(
        r#"
[defaults]
default_queue = "desk"
wrap_up_secs = 0

[[queues]]
name = "desk"
numbers = ["+15005550007"]
fallback = ["voicemail"]

[lookup]
url = "{url}"
timeout_ms = 300
"#
    )
}

#[tokio::test]
async fn a_lookups_needs_and_priority_go_with_the_call_and_a_failed_one_adds_nothing() {
    let seen = Seen::default();
    let url = stand_in(seen.clone()).await;
    let app = spawn_app_with(&routing(&url), true, |s| {
        s.lookup_secret = Some(SECRET.into());
    })
    .await;
    app.add_skilled("cy", &["desk"], json!({})).await;
    app.add_skilled("vi", &["desk"], json!(["vip"])).await;

    // The lookup says vip: cy has been free longer, but vi takes it.
    let sid = call_sid(1);
    let dial = app.call_from(&sid, "+15005550101", "+15005550007").await;
    assert_eq!(dialed(&dial).as_deref(), Some("vi"), "{}", dial.body);
    {
        let seen = seen.lock().unwrap();
        let (request, signed) = &seen[0];
        assert!(signed, "a valid, recent signature");
        assert_eq!(
            request,
            &json!({"call_sid": sid, "from": "+15005550101", "to": "+15005550007", "queue": "desk"})
        );
    }
    let mut conn = app.redis().await;
    let priority: Option<String> = redis::cmd("HGET")
        .arg(app.key(&format!("call:{sid}")))
        .arg("priority")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(priority.as_deref(), Some("7"));
    let history = app
        .admin(Method::GET, &format!("/calls/{sid}"), None)
        .await
        .json();
    let routed = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "call_routed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(routed["data"]["needs"], "vip", "{history:#}");

    // Late (past timeout_ms), failing and nonsense lookups add nothing: the
    // call is routed all the same, within the lookup's timeout.
    for (n, from, to) in [
        (2, "+15005550102", "dee"),
        (3, "+15005550103", "bo"),
        (4, "+15005550104", "al"),
    ] {
        app.add_skilled(to, &["desk"], json!({})).await;
        let started = Instant::now();
        let dial = app.call_from(&call_sid(n), from, "+15005550007").await;
        // Not held for the late service's 5 s.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{from}: {:?}",
            started.elapsed()
        );
        assert!(dialed(&dial).is_some(), "{from}: {}", dial.body);
        assert_ne!(dialed(&dial).as_deref(), Some("vi"), "{from}: no vip need");
    }
    let page = app.metrics().await;
    for outcome in ["answered", "timeout", "error", "refused"] {
        let series = format!("switchboard_lookups_total{{outcome=\"{outcome}\"}}");
        assert!(metric(&page, &series) >= 1.0, "{series}: {page}");
    }
}

#[tokio::test]
async fn a_lookup_without_its_secret_is_refused_at_start() {
    let error = settings_from_args(&["--routing", &{
        let dir = std::env::temp_dir().join(format!("sb-lookup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("routing.toml");
        std::fs::write(&path, routing("https://crm.example.com/lookup")).unwrap();
        path.display().to_string()
    }])
    .expect_err("refused");
    assert!(error.contains("SWITCHBOARD_LOOKUP_SECRET"), "{error}");
}
