//! X-Twilio-Signature is checked exactly as Twilio's helper libraries do: the
//! vectors in tests/fixtures/signatures.json were signed by twilio-python's
//! RequestValidator (tests/fixtures/gen_signatures.py). Anything else is 403 and
//! changes nothing in Redis.

mod common;

use common::*;
use switchboard::config::Settings;
use switchboard::twilio::signature;

const FIXTURES: &str = include_str!("fixtures/signatures.json");
const PUBLIC_URL: &str = "https://switchboard.example.com";

/// One request signed by twilio-python, and that library's verdict on it.
struct Vector {
    name: String,
    /// `received_url` split into SWITCHBOARD_PUBLIC_URL and the request's path.
    base: String,
    path_and_query: String,
    params: Vec<(String, String)>,
    signature: String,
    settings_header: Option<String>,
    valid: bool,
}

impl Vector {
    fn received_url(&self) -> String {
        format!("{}{}", self.base, self.path_and_query)
    }
}

fn vectors() -> (String, Vec<Vector>) {
    let doc: serde_json::Value = serde_json::from_str(FIXTURES).expect("fixture JSON");
    let token = doc["auth_token"].as_str().expect("auth_token").to_owned();
    let text = |v: &serde_json::Value, field: &str| -> String {
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("fixture field {field}"))
            .to_owned()
    };
    let vectors = doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            let url = text(v, "received_url");
            let authority = url.find("://").expect("absolute URL") + 3;
            let path = authority + url[authority..].find('/').expect("a path");
            Vector {
                name: text(v, "name"),
                base: url[..path].to_owned(),
                path_and_query: url[path..].to_owned(),
                params: v["params"]
                    .as_array()
                    .expect("params")
                    .iter()
                    .map(|p| {
                        let part = |i: usize| p[i].as_str().expect("param").to_owned();
                        (part(0), part(1))
                    })
                    .collect(),
                signature: text(v, "signature"),
                settings_header: v["settings_header"].as_str().map(str::to_owned),
                valid: v["valid"].as_bool().expect("valid"),
            }
        })
        .collect();
    (token, vectors)
}

async fn app_with(token: &str, public_url: Option<&str>) -> TestApp {
    spawn_app_with(ROUTING, true, |s: &mut Settings| {
        s.twilio_auth_token = Some(token.into());
        s.public_url = public_url.map(str::to_owned);
    })
    .await
}

/// The first vector, signed for https://switchboard.example.com, sent with
/// the forwarding headers `headers`.
async fn send_forwarded(app: &TestApp, v: &Vector, headers: &[(&str, &str)]) -> Answer {
    send(
        &app.http,
        app.base(),
        v,
        &v.params,
        Some(&v.signature),
        headers,
    )
    .await
}

const FORWARDED: [(&str, &str); 2] = [
    ("X-Forwarded-Proto", "https"),
    ("Host", "switchboard.example.com"),
];

async fn send(
    http: &reqwest::Client,
    base: &str,
    v: &Vector,
    params: &[(String, String)],
    signature: Option<&str>,
    extra: &[(&str, &str)],
) -> Answer {
    let mut request = http
        .post(format!("{base}{}", v.path_and_query))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(params).unwrap());
    if let Some(sig) = signature {
        request = request.header("X-Twilio-Signature", sig);
    }
    if let Some(h) = &v.settings_header {
        request = request.header("X-Twilio-Webhooks-Signature-Settings", h);
    }
    for (k, val) in extra {
        request = request.header(*k, *val);
    }
    answer(request.send().await.unwrap()).await
}

/// The whole table, without a server: same inputs, same verdict as twilio-python,
/// including its port rules (any port removed, the default one added).
#[test]
fn the_check_agrees_with_twilio_python_on_every_vector() {
    let (token, vectors) = vectors();
    for v in &vectors {
        assert_eq!(
            signature::is_valid(&token, &v.received_url(), &v.params, &v.signature),
            v.valid,
            "{}: {}",
            v.name,
            v.received_url()
        );
    }
}

/// Every vector sent to a server whose SWITCHBOARD_PUBLIC_URL is the vector's base
/// (with a settings header when the vector has one): 200 when twilio-python
/// accepts the request, 403 when it refuses it.
#[tokio::test]
async fn requests_get_the_verdict_of_twilios_own_library() {
    let (token, vectors) = vectors();
    let redis = start_redis();
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let mut servers: Vec<(String, TestServer)> = Vec::new();
    for v in &vectors {
        if !servers.iter().any(|(base, _)| *base == v.base) {
            let mut s: Settings = settings(&redis.url(), ROUTING);
            s.twilio_auth_token = Some(token.as_str().into());
            s.public_url = Some(v.base.clone());
            servers.push((v.base.clone(), TestServer::start(s).await));
        }
        let server = &servers.iter().find(|(base, _)| *base == v.base).unwrap().1;
        let a = send(&http, &server.base, v, &v.params, Some(&v.signature), &[]).await;
        let expected = if v.valid { 200 } else { 403 };
        assert_eq!(a.status, expected, "{}: {a:?}", v.name);
        if v.valid {
            assert!(a.body.starts_with("<?xml"), "{}: {}", v.name, a.body);
        }
    }
}

#[tokio::test]
async fn without_a_public_url_the_forwarded_proto_and_host_are_used() {
    let (token, vectors) = vectors();
    let app = app_with(&token, None).await;
    let a = send_forwarded(&app, &vectors[0], &FORWARDED).await;
    assert_eq!(a.status, 200, "{a:?}");
    // Only the Host, without the forwarded scheme: the URL is http:// and fails.
    let a = send_forwarded(&app, &vectors[0], &FORWARDED[1..]).await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn forwarded_headers_are_ignored_when_a_public_url_is_set() {
    let (token, vectors) = vectors();
    let app = app_with(&token, Some("https://other.example.com")).await;
    let a = send_forwarded(&app, &vectors[0], &FORWARDED).await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn tampered_wrong_url_or_missing_signatures_are_refused_and_change_nothing() {
    let (token, vectors) = vectors();
    let app = app_with(&token, Some(PUBLIC_URL)).await;
    let (http, base) = (&app.http, app.base());
    assert_eq!(
        put_agent(http, base, ADMIN_TOKEN, "a", &["sales"]).await,
        201
    );
    assert_eq!(
        put_state(http, base, ADMIN_TOKEN, "a", "available").await,
        200
    );
    let before = app.snapshot().await;

    let v = &vectors[0];
    let mut tampered = v.params.clone();
    tampered[2].1 = "+15005550007".into(); // To
    let mut added = v.params.clone();
    added.push(("Extra".into(), "1".into()));
    let other_path = Vector {
        path_and_query: "/twilio/voice?x=1".into(),
        ..vectors_first(&vectors)
    };
    let shared_key = vectors
        .iter()
        .find(|v| v.settings_header.is_some() && !v.valid)
        .expect("a SharedKey vector");
    let cases: Vec<(&str, Answer)> = vec![
        (
            "tampered param",
            send(http, base, v, &tampered, Some(&v.signature), &[]).await,
        ),
        (
            "added param",
            send(http, base, v, &added, Some(&v.signature), &[]).await,
        ),
        (
            "wrong URL",
            send(http, base, &other_path, &v.params, Some(&v.signature), &[]).await,
        ),
        (
            "missing header",
            send(http, base, v, &v.params, None, &[]).await,
        ),
        (
            "empty signature",
            send(http, base, v, &v.params, Some(""), &[]).await,
        ),
        ("wrong token", {
            let pairs = v.params.clone();
            let sig = signature::compute(
                "not-the-token",
                &format!("{PUBLIC_URL}/twilio/voice"),
                &pairs,
            );
            send(http, base, v, &pairs, Some(&sig), &[]).await
        }),
        (
            "SharedKey signature",
            send(
                http,
                base,
                shared_key,
                &shared_key.params,
                Some(&shared_key.signature),
                &[],
            )
            .await,
        ),
    ];
    for (name, a) in cases {
        assert_eq!(a.status, 403, "{name}: {a:?}");
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused webhook changed Redis"
    );
}

fn vectors_first(vectors: &[Vector]) -> Vector {
    let v = &vectors[0];
    Vector {
        name: v.name.clone(),
        base: v.base.clone(),
        path_and_query: v.path_and_query.clone(),
        params: v.params.clone(),
        signature: v.signature.clone(),
        settings_header: None,
        valid: v.valid,
    }
}

#[tokio::test]
async fn bad_bodies_get_4xx_and_change_nothing() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["sales"]).await;
    let before = app.snapshot().await;
    let url = format!("{}/twilio/voice", app.base());
    let missing_sid = post_signed(&app.http, &url, &[("To", SALES)]).await;
    assert_eq!(missing_sid.status, 400, "{missing_sid:?}");
    let bad_sid = post_signed(&app.http, &url, &[("CallSid", "CA123"), ("To", SALES)]).await;
    assert_eq!(bad_sid.status, 400);
    let sid = call_sid(1);
    let missing_to = post_signed(&app.http, &url, &[("CallSid", sid.as_str())]).await;
    assert_eq!(missing_to.status, 400);
    let huge = "x".repeat(70 * 1024);
    let too_big = post_signed(
        &app.http,
        &url,
        &[
            ("CallSid", sid.as_str()),
            ("To", SALES),
            ("Pad", huge.as_str()),
        ],
    )
    .await;
    assert_eq!(too_big.status, 413);
    assert_eq!(app.snapshot().await, before);
}

/// 64 KiB bodies built to make the check expensive (many distinct names, one name
/// with thousands of values, one long value): a wrong signature is 403 and the
/// right one is accepted, so the one-sort, one-pass check is exact on them too.
/// Their cost is measured, not asserted, by benches/signature_cost.rs.
#[tokio::test]
async fn worst_case_64_kib_bodies_get_the_right_verdict() {
    let app = spawn_app(ROUTING).await;
    let url = format!("{}/twilio/voice", app.base());
    let sid = call_sid(1);
    let required = [("CallSid", sid.as_str()), ("To", SUPPORT)];
    let room = 64 * 1024 - 200;
    let three = |i: usize| format!("{:03x}", i % 4096) + &format!("{}", i / 4096);
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "distinct names",
            (0..room / 6).map(|i| (three(i), String::new())).collect(),
        ),
        (
            "one name, many values",
            (0..room / 10)
                .map(|i| ("Tag".to_owned(), three(i)))
                .collect(),
        ),
        ("one long value", vec![("Pad".to_owned(), "x".repeat(room))]),
    ];
    for (name, mut pairs) in cases {
        pairs.extend(required.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        assert!(body.len() <= 64 * 1024, "{name}: {} bytes", body.len());
        let post = |sig: String| {
            app.http
                .post(&url)
                .header("X-Twilio-Signature", sig)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
        };
        let wrong = post("AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()).await.unwrap();
        assert_eq!(wrong.status(), 403, "{name}");
        let right = post(signature::compute(AUTH_TOKEN, &url, &pairs))
            .await
            .unwrap();
        assert_eq!(right.status(), 200, "{name}");
    }
}

/// The number's status callback carries the operator's connection overrides
/// (`SWITCHBOARD_STATUS_CALLBACK_OVERRIDES`, here with `tt`); its fragment
/// never reaches the server, so a signature over the URL with it, with
/// switchboard's own fragment, or with none passes, and one over a fragment
/// nobody configured does not.
#[tokio::test]
async fn a_status_callback_signed_with_the_configured_overrides_passes() {
    let app = spawn_app_with(ROUTING, true, |s: &mut Settings| {
        s.status_callback_overrides = Some("#rc=3&rp=5xx,ct&tt=12000".parse().unwrap());
    })
    .await;
    let url = format!("{}/twilio/voice/status", app.base());
    let sid = call_sid(41);
    let params = [("CallSid", sid.as_str()), ("CallStatus", "ringing")];
    for fragment in ["", "#rc=3&rp=5xx,ct&tt=12000", "#rc=5&rp=5xx,ct,rt"] {
        let signed = format!("{url}{fragment}");
        let a = post_signed(&app.http, &signed, &params).await;
        assert_eq!(a.status, 200, "signed over {signed}: {a:?}");
    }
    for fragment in ["#rc=3&tt=12000&rp=5xx,ct", "#rc=4"] {
        let signed = format!("{url}{fragment}");
        let a = post_signed(&app.http, &signed, &params).await;
        assert_eq!(a.status, 403, "signed over {signed}: {a:?}");
    }
}

/// Rotating the auth token without downtime: with Twilio's secondary auth
/// token set as `TWILIO_AUTH_TOKEN_SECONDARY`, a request signed with it passes
/// (Twilio signs with it once it is promoted), as does one signed with the
/// primary; one signed with neither is refused, and without the setting the
/// secondary token's signature is refused too.
#[tokio::test]
async fn a_request_signed_with_the_secondary_auth_token_passes_and_with_neither_fails() {
    const SECONDARY: &str = "secondary-auth-token-0123456789ab";
    let app = spawn_app_with(ROUTING, true, |s: &mut Settings| {
        s.twilio_auth_token_secondary = Some(SECONDARY.into());
    })
    .await;
    let url = format!("{}/twilio/voice/status", app.base());
    let sid = call_sid(42);
    let params = [("CallSid", sid.as_str()), ("CallStatus", "ringing")];
    for token in [AUTH_TOKEN, SECONDARY] {
        let a = post_signed_with(&app.http, token, &url, &params).await;
        assert_eq!(a.status, 200, "signed with {token}: {a:?}");
    }
    let a = post_signed_with(&app.http, "neither-token", &url, &params).await;
    assert_eq!(a.status, 403, "{a:?}");

    let without = spawn_app(ROUTING).await;
    let url = format!("{}/twilio/voice/status", without.base());
    let a = post_signed_with(&without.http, SECONDARY, &url, &params).await;
    assert_eq!(a.status, 403, "{a:?}");
}
