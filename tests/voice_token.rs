//! `POST /v1/me/voice-token`: the softphone's Twilio Access Token, checked by
//! twilio-python itself (`AccessToken.from_jwt` with the API key's secret:
//! signature, `exp` and `nbf` verified by the PyJWT it uses), claim for claim
//! against the token twilio-python builds for the same agent; and the
//! refusals: an agent whose calls ring a number or a SIP address (409), a
//! server without the API key (503), no token or the admin token (401).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard::twilio::access_token::VoiceTokens;

const KEY_SID: &str = "SK00000000000000000000000000000abc";
const SECRET: &str = "voice-key-secret-for-tests";
const APP_SID: &str = "AP00000000000000000000000000000def";
const PIP: &str = "python3 -m pip install 'twilio>=9,<10'";

/// twilio-python decodes `token` with `secret`, and builds its own token for
/// the same identity, grant and times; both as JSON.
const CHECK: &str = r#"
import json, sys
try:
    from twilio.jwt import JwtDecodeError
    from twilio.jwt.access_token import AccessToken
    from twilio.jwt.access_token.grants import VoiceGrant
except ImportError as e:
    print(e, file=sys.stderr)
    sys.exit(3)
args = json.load(sys.stdin)
decoded = AccessToken.from_jwt(args["token"], args["secret"])
payload = decoded.payload
theirs = AccessToken(args["account_sid"], args["key_sid"], args["secret"],
                     identity=args["identity"], nbf=payload["nbf"],
                     valid_until=payload["exp"])
theirs.add_grant(VoiceGrant(incoming_allow=True,
                            outgoing_application_sid=args["app_sid"]))
twilio = AccessToken.from_jwt(theirs.to_jwt(), args["secret"])
try:
    AccessToken.from_jwt(args["token"], args["secret"] + "x")
    wrong_secret = "accepted"
except JwtDecodeError:
    wrong_secret = "refused"
print(json.dumps({
    "headers": decoded.headers, "payload": payload,
    "twilio_headers": twilio.headers, "twilio_payload": twilio.payload,
    "wrong_secret": wrong_secret,
}))
"#;

fn twilio_python(token: &str, identity: &str, app_sid: Option<&str>) -> Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed ({e}), with twilio-python: {PIP}"));
    let input = json!({
        "token": token, "secret": SECRET, "key_sid": KEY_SID, "account_sid": ACCOUNT_SID,
        "identity": identity, "app_sid": app_sid,
    });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3 ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(3),
        "twilio-python is needed ({stderr}): {PIP}"
    );
    assert!(
        out.status.success(),
        "twilio-python refused the token: {stderr}"
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python3")
}

fn voice(app_sid: Option<&str>) -> VoiceTokens {
    VoiceTokens {
        account_sid: ACCOUNT_SID.into(),
        key_sid: KEY_SID.into(),
        secret: SECRET.into(),
        twiml_app_sid: app_sid.map(str::to_owned),
        ttl: Duration::from_secs(600),
    }
}

async fn put(app: &TestApp, id: &str, contact: &str) {
    let put = app
        .admin(
            Method::PUT,
            &format!("/agents/{id}"),
            Some(json!({"name": id, "contact": contact, "queues": ["support"]})),
        )
        .await;
    assert_eq!(put.status, 201, "{put:?}");
}

async fn redis_secs(app: &TestApp) -> i64 {
    let mut conn = app.redis().await;
    let (secs, _): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut conn)
        .await
        .expect("TIME");
    secs
}

#[tokio::test]
async fn a_client_agent_gets_a_token_twilio_python_accepts_with_the_same_claims() {
    for app_sid in [None, Some(APP_SID)] {
        let app = spawn_app_with(ROUTING, true, |s| s.voice_tokens = Some(voice(app_sid))).await;
        put(&app, "ana", "client:ana.lima").await;
        let token = app.issue_token("ana").await;

        let before = redis_secs(&app).await;
        let got = app
            .with_token(&token, Method::POST, "/me/voice-token", None)
            .await;
        let after = redis_secs(&app).await;
        assert_eq!(got.status, 200, "{got:?}");
        let doc = got.json();
        assert_eq!(doc["identity"], "ana.lima");
        let jwt = doc["token"].as_str().expect("a token");

        let checked = twilio_python(jwt, "ana.lima", app_sid);
        assert_eq!(checked["wrong_secret"], "refused");
        assert_eq!(checked["headers"], checked["twilio_headers"]);
        assert_eq!(checked["headers"]["cty"], "twilio-fpa;v=1");
        assert_eq!(checked["headers"]["alg"], "HS256");
        let (ours, theirs) = (&checked["payload"], &checked["twilio_payload"]);
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().expect("claims").keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(ours), keys(theirs));
        for claim in ["iss", "sub", "nbf", "exp", "grants"] {
            assert_eq!(ours[claim], theirs[claim], "{claim}");
        }
        assert_eq!(ours["iss"], KEY_SID);
        assert_eq!(ours["sub"], ACCOUNT_SID);
        assert_eq!(ours["grants"]["identity"], "ana.lima");
        assert_eq!(ours["grants"]["voice"]["incoming"]["allow"], true);
        match app_sid {
            Some(sid) => assert_eq!(ours["grants"]["voice"]["outgoing"]["application_sid"], sid),
            None => assert!(ours["grants"]["voice"].get("outgoing").is_none()),
        }
        // Redis's clock: issued between the two TIME reads, for the setting's 600 s.
        let nbf = ours["nbf"].as_i64().expect("nbf");
        assert!(
            (before..=after).contains(&nbf),
            "{before} <= {nbf} <= {after}"
        );
        assert_eq!(ours["exp"].as_i64(), Some(nbf + 600));
        assert_eq!(ours["jti"], format!("{KEY_SID}-{nbf}"));
        let expires = time::OffsetDateTime::parse(
            doc["expires_at"].as_str().expect("expires_at"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339");
        assert_eq!(expires.unix_timestamp(), nbf + 600);
    }
}

#[tokio::test]
async fn agents_whose_calls_ring_elsewhere_and_servers_without_the_key_are_refused() {
    let app = spawn_app_with(ROUTING, true, |s| s.voice_tokens = Some(voice(None))).await;
    put(&app, "bo", "+15005550100").await;
    put(&app, "cy", "sip:cy@pbx.example.com").await;
    for id in ["bo", "cy"] {
        let token = app.issue_token(id).await;
        let got = app
            .with_token(&token, Method::POST, "/me/voice-token", None)
            .await;
        assert_eq!(got.status, 409, "{got:?}");
        assert!(
            got.json()["error"]
                .as_str()
                .expect("an error")
                .contains("client:")
        );
    }
    let none = app
        .http
        .post(format!("{}/v1/me/voice-token", app.base()))
        .send()
        .await
        .expect("request");
    assert_eq!(none.status(), 401);
    let admin = app.admin(Method::POST, "/me/voice-token", None).await;
    assert_eq!(admin.status, 401, "{admin:?}");

    let bare = spawn_app(ROUTING).await;
    put(&bare, "ana", "client:ana").await;
    let token = bare.issue_token("ana").await;
    let got = bare
        .with_token(&token, Method::POST, "/me/voice-token", None)
        .await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(
        got.json()["error"]
            .as_str()
            .expect("an error")
            .contains("TWILIO_API_KEY_SID")
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_route() {
    let app = spawn_app(ROUTING).await;
    let doc = get_admin(&app.http, app.base(), "/openapi.json").await;
    let op = &doc["paths"]["/v1/me/voice-token"]["post"];
    assert_eq!(op["operationId"], "voice_token");
    for status in ["200", "401", "404", "409", "503"] {
        assert!(op["responses"].get(status).is_some(), "{status}");
    }
}
