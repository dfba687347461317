//! X-Twilio-Signature is checked exactly as Twilio's helper libraries do: the
//! vectors in tests/fixtures/signatures.json were signed by twilio-python's
//! RequestValidator (tests/fixtures/gen_signatures.py). Anything else is 403 and
//! changes nothing in Redis.

mod common;

use common::*;
use switchboard::config::Settings;

const FIXTURES: &str = include_str!("fixtures/signatures.json");
const PUBLIC_URL: &str = "https://switchboard.example.com";

struct Vector {
    name: String,
    path_and_query: String,
    params: Vec<(String, String)>,
    signature: String,
    settings_header: Option<String>,
}

fn vectors() -> (String, Vec<Vector>) {
    let doc: serde_json::Value = serde_json::from_str(FIXTURES).expect("fixture JSON");
    let token = doc["auth_token"].as_str().expect("auth_token").to_owned();
    let vectors = doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            let url = v["url"].as_str().unwrap();
            let after_host = &url[url.find("://").unwrap() + 3..];
            Vector {
                name: v["name"].as_str().unwrap().to_owned(),
                path_and_query: after_host[after_host.find('/').unwrap()..].to_owned(),
                params: v["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap().to_owned(),
                            p[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect(),
                signature: v["signature"].as_str().unwrap().to_owned(),
                settings_header: v["settings_header"].as_str().map(str::to_owned),
            }
        })
        .collect();
    (token, vectors)
}

async fn app_with(token: &str, public_url: Option<&str>) -> TestApp {
    let redis = start_redis();
    let mut s: Settings = settings(&redis.url(), ROUTING);
    s.twilio_auth_token = Some(token.into());
    s.public_url = public_url.map(str::to_owned);
    let server = TestServer::start(s).await;
    TestApp {
        redis,
        server,
        http: reqwest::Client::new(),
    }
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

#[tokio::test]
async fn requests_signed_by_twilios_own_library_are_accepted() {
    let (token, vectors) = vectors();
    let app = app_with(&token, Some(PUBLIC_URL)).await;
    for v in &vectors {
        let a = send(&app.http, app.base(), v, &v.params, Some(&v.signature), &[]).await;
        assert_eq!(a.status, 200, "{}: {a:?}", v.name);
        assert!(a.body.starts_with("<?xml"), "{}: {}", v.name, a.body);
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
    let mut conn = app.redis().await;
    let before = snapshot(&mut conn).await;

    let v = &vectors[0];
    let mut tampered = v.params.clone();
    tampered[2].1 = "+15005550007".into(); // To
    let mut added = v.params.clone();
    added.push(("Extra".into(), "1".into()));
    let other_path = Vector {
        path_and_query: "/twilio/voice?x=1".into(),
        ..vectors_first(&vectors)
    };
    let sha256_as_sha1 = vectors
        .iter()
        .find(|v| v.settings_header.is_some())
        .unwrap();

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
            let sig = switchboard::twilio::signature::compute(
                "not-the-token",
                &format!("{PUBLIC_URL}/twilio/voice"),
                &pairs,
                switchboard::twilio::signature::Algorithm::HmacSha1,
            );
            send(http, base, v, &pairs, Some(&sig), &[]).await
        }),
        ("algorithm header dropped", {
            let mut plain = vectors_first(&vectors);
            plain.path_and_query = sha256_as_sha1.path_and_query.clone();
            send(
                http,
                base,
                &plain,
                &sha256_as_sha1.params,
                Some(&sha256_as_sha1.signature),
                &[],
            )
            .await
        }),
    ];
    for (name, a) in cases {
        assert_eq!(a.status, 403, "{name}: {a:?}");
    }
    assert_eq!(
        snapshot(&mut conn).await,
        before,
        "a refused webhook changed Redis"
    );
}

fn vectors_first(vectors: &[Vector]) -> Vector {
    let v = &vectors[0];
    Vector {
        name: v.name.clone(),
        path_and_query: v.path_and_query.clone(),
        params: v.params.clone(),
        signature: v.signature.clone(),
        settings_header: None,
    }
}

#[tokio::test]
async fn bad_bodies_get_4xx_and_change_nothing() {
    let app = spawn_app(ROUTING).await;
    app.add_available("a", &["sales"]).await;
    let mut conn = app.redis().await;
    let before = snapshot(&mut conn).await;
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
    assert_eq!(snapshot(&mut conn).await, before);
}
