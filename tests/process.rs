//! The `switchboard serve` process itself: JSON logs that carry the CallSid and
//! never a token, and a graceful exit on SIGTERM that waits for requests in
//! flight but not for idle or half-sent connections.
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::Process as Serve;
use common::*;
use switchboard::redis_server::{RedisServer, free_port};

const TWILIO_TOKEN: &str = "tok-SECRET-twilio-123";
const ADMIN: &str = "tok-SECRET-admin-456";

/// `serve` with this file's tokens.
async fn serve(redis: &RedisServer, name: &str) -> Serve {
    serve_with(&redis.url(), name, &[]).await
}

/// `serve` against `redis_url`, with `env` set on top of the usual tokens.
/// `GET /readyz` of the server at `base`.
async fn readyz(http: &reqwest::Client, base: &str) -> reqwest::Response {
    http.get(format!("{base}/readyz")).send().await.unwrap()
}

async fn serve_with(redis_url: &str, name: &str, env: &[(&str, &str)]) -> Serve {
    let mut all = vec![
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN),
    ];
    all.extend_from_slice(env);
    Serve::start(&["serve"], redis_url, name, &all).await
}

/// A signed call from +15005550001 to +15005550006 at `base`.
async fn call(http: &reqwest::Client, base: &str, sid: &str) -> Answer {
    let params = [
        ("CallSid", sid),
        ("From", "+15005550001"),
        ("To", "+15005550006"),
    ];
    post_signed_with(http, TWILIO_TOKEN, &format!("{base}/twilio/voice"), &params).await
}

#[tokio::test]
async fn logs_are_json_lines_with_the_call_sid_and_never_a_token() {
    let redis = start_redis();
    let mut serve = serve(&redis, "logs").await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    assert_eq!(
        put_agent(&http, &serve.base, ADMIN, "a", &["default"]).await,
        201
    );
    put_state(&http, &serve.base, ADMIN, "a", "available").await;
    let wrong = http
        .get(format!("{}/v1/agents", serve.base))
        .bearer_auth("wrong-token-789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let url = format!("{}/twilio/voice", serve.base);
    let routed = call_sid(1);
    let fallback = call_sid(2);
    for sid in [&routed, &fallback] {
        assert_eq!(call(&http, &serve.base, sid).await.status, 200);
    }
    let forged = http
        .post(&url)
        .header("X-Twilio-Signature", "forged")
        .body("CallSid=CA1")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let voicemail = post_signed_with(
        &http,
        TWILIO_TOKEN,
        &format!("{}/twilio/voice/voicemail", serve.base),
        &[
            ("CallSid", fallback.as_str()),
            ("RecordingUrl", "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123456789abcdef0123456789abcdef"),
            ("RecordingDuration", "4"),
        ],
    )
    .await;
    assert_eq!(voicemail.status, 200);

    serve.sigterm();
    assert_eq!(serve.wait(Duration::from_secs(10)), Some(0));
    let log = std::fs::read_to_string(&serve.log).unwrap();
    assert!(!log.is_empty());
    for secret in [TWILIO_TOKEN, ADMIN, "wrong-token-789", "forged"] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
    for line in log.lines() {
        // serde_json keeps the last of two equal keys: count them in the text.
        assert!(
            line.matches("\"message\":").count() <= 1,
            "a key twice in one log line: {line}"
        );
    }
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let about = |message: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    };
    let offered = about("call offered to agent");
    assert_eq!(offered.len(), 1, "{log}");
    assert_eq!(offered[0]["span"]["call_sid"], routed.as_str());
    let fell_back = about("no agent for the call: fallback");
    assert_eq!(fell_back.len(), 1, "{log}");
    assert_eq!(fell_back[0]["span"]["call_sid"], fallback.as_str());
    assert_eq!(about("voicemail recorded").len(), 1, "{log}");
}

#[tokio::test]
async fn sigterm_finishes_the_requests_in_flight_then_exits_0() {
    let redis = start_redis();
    let mut serve = serve(&redis, "sigterm").await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    // Paused, Redis holds the call's webhook for the whole 1.5 s budget.
    let pid = redis.pid().unwrap() as libc::pid_t;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let url = format!("{}/twilio/voice", serve.base);
    let sid = call_sid(1);
    let in_flight = {
        let http = http.clone();
        let url = url.clone();
        tokio::spawn(async move {
            post_signed_with(
                &http,
                TWILIO_TOKEN,
                &url,
                &[("CallSid", sid.as_str()), ("To", "+15005550006")],
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    serve.sigterm();
    let response = in_flight.await.unwrap();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(response.status, 200, "the request in flight was finished");
    let body = response.body;
    assert!(
        body.contains("<Record"),
        "the emergency TwiML (voicemail by default): {body}"
    );
    let code = tokio::task::spawn_blocking(move || {
        let code = serve.wait(Duration::from_secs(10));
        (code, serve)
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0));
    assert!(
        reqwest::get(format!("{}/healthz", code.1.base))
            .await
            .is_err(),
        "still accepting after exit"
    );
}

/// With `SWITCHBOARD_OPS_LISTEN`, `/metrics` (which names the queues) is
/// served only there, beside `/healthz` and `/readyz`; the public listener
/// keeps the webhooks, the API, and the probes, and answers `/metrics` 404.
#[tokio::test]
async fn with_an_ops_listen_address_metrics_leave_the_public_listener() {
    let redis = start_redis();
    let ops_port = free_port().unwrap();
    let ops = format!("http://127.0.0.1:{ops_port}");
    let ops_listen = format!("127.0.0.1:{ops_port}");
    let serve = serve_with(
        &redis.url(),
        "ops-listen",
        &[("SWITCHBOARD_OPS_LISTEN", ops_listen.as_str())],
    )
    .await;
    let status = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    assert_eq!(status(format!("{}/metrics", serve.base)).await, 404);
    let page = reqwest::get(format!("{ops}/metrics")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("switchboard_calls_total{queue=\"default\"}")
    );
    for base in [&serve.base, &ops] {
        assert_eq!(status(format!("{base}/healthz")).await, 200, "{base}");
        assert_eq!(status(format!("{base}/readyz")).await, 200, "{base}");
    }
    // The ops listener serves nothing else.
    assert_eq!(status(format!("{ops}/v1/openapi.json")).await, 404);
    assert_eq!(status(format!("{ops}/console/")).await, 404);
    assert_eq!(status(format!("{}/v1/openapi.json", serve.base)).await, 200);
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    assert_eq!(call(&http, &ops, &call_sid(1)).await.status, 404);
}

/// `serve 2>&1 | head -4`: once `head` has its lines, every log write fails.
/// The server still routes calls, counts the lines it lost, and stops on
/// SIGTERM (it used to die task by task: tracing reported the failed write
/// with `eprintln!`, which panics on the closed stderr).
#[tokio::test]
async fn with_its_log_pipe_closed_serve_still_routes_counts_lost_lines_and_exits_on_sigterm() {
    let redis = start_redis();
    let tokens = [
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN),
    ];
    let mut serve = Serve::start_with_closed_output(&["serve"], &redis.url(), &tokens).await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    assert_eq!(
        put_agent(&http, &serve.base, ADMIN, "a", &["default"]).await,
        201
    );
    assert_eq!(
        put_state(&http, &serve.base, ADMIN, "a", "available").await,
        200
    );
    let routed = call(&http, &serve.base, &call_sid(1)).await;
    assert_eq!(routed.status, 200);
    assert!(
        routed.body.contains(">a</Client>"),
        "the call is offered to the agent, not the emergency answer: {}",
        routed.body
    );
    // The log thread writes (and fails) on its own time: wait for its count.
    let lost = "switchboard_log_lines_dropped_total{reason=\"write_failed\"}";
    let started = std::time::Instant::now();
    loop {
        let page = http
            .get(format!("{}/metrics", serve.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&page, lost) > 0.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no lost line counted:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    serve.sigterm();
    let code = tokio::task::spawn_blocking(move || serve.wait(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "SIGTERM ends it, with exit code 0");
}

/// `switchboard serve` with `env` (on top of this file's tokens) run until it
/// exits (10 s at most): its exit code, stdout (the log) and stderr.
fn serve_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    use std::io::Read as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env_remove("SWITCHBOARD_LOG_FORMAT")
        .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start switchboard");
    let status = common::process::wait_exit(&mut child, Duration::from_secs(10));
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let _ = child.stdout.take().unwrap().read_to_string(&mut stdout);
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (status.and_then(|s| s.code()), stdout, stderr)
}

/// A port in use: the error names the address and the setting to change.
#[test]
fn a_port_in_use_is_named_with_its_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = serve_to_exit(&[("SWITCHBOARD_LISTEN", addr.as_str())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}"))
            && stderr.contains("SWITCHBOARD_LISTEN / --listen")
            && stderr.contains("another process listens there"),
        "{stderr}"
    );
    let ops = free_port().unwrap();
    let ops = format!("127.0.0.1:{ops}");
    let (code, _, stderr) = serve_to_exit(&[
        ("SWITCHBOARD_LISTEN", ops.as_str()),
        ("SWITCHBOARD_OPS_LISTEN", addr.as_str()),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr} (SWITCHBOARD_OPS_LISTEN / --ops-listen)"
        )),
        "{stderr}"
    );
}

/// A Redis URL that does not parse stops the start, before anything listens,
/// saying the form expected (and never the password in it).
#[test]
fn a_malformed_redis_url_names_the_expected_form_before_serving() {
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    for url in [
        "127.0.0.1:6379".to_owned(),
        format!("redis://:{REDIS_PASSWORD}@127.0.0.1:port"),
        format!("http://127.0.0.1:{port}"),
    ] {
        let (code, stdout, stderr) = serve_to_exit(&[
            ("SWITCHBOARD_REDIS_URL", url.as_str()),
            ("SWITCHBOARD_LISTEN", listen.as_str()),
        ]);
        assert_eq!(code, Some(1), "{url}: {stderr}");
        assert!(
            stderr.contains("SWITCHBOARD_REDIS_URL")
                && stderr.contains("expected redis://host:port"),
            "{url}: {stderr}"
        );
        assert!(!stderr.contains(REDIS_PASSWORD), "{stderr}");
        assert!(!stdout.contains("serving"), "it listened first: {stdout}");
    }
}

/// A routing file that is not there is "not found", with its path; no `:0:`.
#[test]
fn a_missing_routing_file_is_not_found_with_its_path() {
    let path = std::env::temp_dir().join(format!("sb-no-such-routing-{}.toml", std::process::id()));
    let shown = path.display().to_string();
    let (code, _, stderr) = serve_to_exit(&[("SWITCHBOARD_ROUTING", shown.as_str())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{shown}: routing file not found (SWITCHBOARD_ROUTING"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(":0:"), "{stderr}");
}

/// Redis down: the worker (every 100 ms here) and `/readyz` find it so on every
/// check, but "Redis unreachable" is logged once, naming the URL without its
/// password, then again only after its back-off (5 s), not every check.
#[tokio::test]
async fn redis_unreachable_is_logged_with_the_redacted_url_and_back_off() {
    let port = free_port().unwrap();
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{port}");
    let mut serve = serve_with(
        &url,
        "redis-backoff",
        &[("SWITCHBOARD_SWEEP_INTERVAL_MS", "100")],
    )
    .await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    for _ in 0..5 {
        let ready = readyz(&http, &serve.base).await;
        assert_eq!(ready.status(), 503);
    }
    // About 20 worker rounds, each finding Redis down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = log_of(&mut serve);
    assert!(!log.contains(REDIS_PASSWORD), "{log}");
    let reported: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Redis unreachable"))
        .collect();
    assert_eq!(reported.len(), 1, "{log}");
    assert!(
        reported[0].contains(&format!("redis://:***@127.0.0.1:{port}")),
        "{}",
        reported[0]
    );
    assert!(
        !log.contains("retries next interval") && !log.contains("\"not ready\""),
        "a line a check:\n{log}"
    );
}

/// What a process wrote to its log file, read after it exited.
fn log_of(serve: &mut Serve) -> String {
    serve.sigterm();
    assert_eq!(serve.wait(Duration::from_secs(10)), Some(0));
    std::fs::read_to_string(&serve.log).unwrap()
}

const REDIS_PASSWORD: &str = "s3cret-redis-pw";

#[test]
fn help_never_prints_the_redis_password_or_a_token() {
    let public = "https://twilio:s3cret-basic-pw@example.com";
    for command in ["serve", "worker", "demo", "simulate"] {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([command, "--help"])
            .env(
                "SWITCHBOARD_REDIS_URL",
                format!("redis://:{REDIS_PASSWORD}@127.0.0.1:1"),
            )
            .env("SWITCHBOARD_PUBLIC_URL", public)
            .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
            .env("TWILIO_ACCOUNT_SID", "AC0s3cretaccount")
            .env("TWILIO_API_KEY", "SK0s3cretkey")
            .env("TWILIO_API_SECRET", "s3cret-api-secret")
            .output()
            .expect("run switchboard --help");
        assert!(out.status.success(), "{command} --help: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("SWITCHBOARD_ADMIN_TOKEN"), "{help}");
        for secret in [
            REDIS_PASSWORD,
            "s3cret-basic-pw",
            TWILIO_TOKEN,
            ADMIN,
            "AC0s3cretaccount",
            "SK0s3cretkey",
            "s3cret-api-secret",
        ] {
            assert!(
                !help.contains(secret),
                "{command} --help prints {secret:?}:\n{help}"
            );
        }
    }
}

#[tokio::test]
async fn with_redis_down_readyz_and_the_api_answer_fixed_text_and_no_password_is_logged() {
    // Nothing listens there: every connection attempt fails.
    let port = free_port().unwrap();
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{port}");
    let mut serve = serve_with(&url, "redis-down", &[]).await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let ready = readyz(&http, &serve.base).await;
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "redis unavailable\n");
    let api = answer(
        http.get(format!("{}/v1/agents", serve.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(api.status, 503);
    assert_eq!(api.json()["error"], "Redis is unavailable", "{api:?}");

    let log = log_of(&mut serve);
    assert!(
        !log.contains(REDIS_PASSWORD),
        "the log holds the password:\n{log}"
    );
    // The detail an operator needs is in the log instead.
    assert!(
        log.lines()
            .any(|l| l.contains("not ready") && l.contains("error")),
        "{log}"
    );
}

#[tokio::test]
async fn tokens_read_with_a_trailing_newline_are_trimmed_with_a_warning() {
    let redis = start_redis();
    let twilio = format!("{TWILIO_TOKEN}\n");
    let admin = format!(" {ADMIN}\r\n");
    let mut serve = serve_with(
        &redis.url(),
        "trimmed",
        &[
            ("TWILIO_AUTH_TOKEN", &twilio),
            ("SWITCHBOARD_ADMIN_TOKEN", &admin),
        ],
    )
    .await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    assert_eq!(
        put_agent(&http, &serve.base, ADMIN, "a", &["default"]).await,
        201,
        "the admin token without its newline is the token"
    );
    let signed = post_signed_with(
        &http,
        TWILIO_TOKEN,
        &format!("{}/twilio/voice", serve.base),
        &[
            ("CallSid", &call_sid(1)),
            ("From", "+15005550001"),
            ("To", "+15005550006"),
        ],
    )
    .await;
    assert_eq!(
        signed.status, 200,
        "signed with the trimmed token: {signed:?}"
    );

    let log = log_of(&mut serve);
    for name in ["TWILIO_AUTH_TOKEN", "SWITCHBOARD_ADMIN_TOKEN"] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(name) && l.contains("trimmed")),
            "no warning about {name}:\n{log}"
        );
    }
    for secret in [TWILIO_TOKEN, ADMIN] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

#[tokio::test]
async fn a_short_admin_token_gets_a_start_up_warning() {
    let redis = start_redis();
    let mut serve = serve_with(
        &redis.url(),
        "short",
        &[("SWITCHBOARD_ADMIN_TOKEN", "short-tok")],
    )
    .await;
    let log = log_of(&mut serve);
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("SWITCHBOARD_ADMIN_TOKEN")
            && l.contains("16")),
        "{log}"
    );
    assert!(!log.contains("short-tok"), "{log}");
}

#[tokio::test]
async fn sigterm_closes_idle_and_half_sent_connections_at_once_and_exits_0() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = start_redis();
    // A drain time far longer than the wait below: only closing at once passes.
    let mut serve = serve_with(
        &redis.url(),
        "half-sent",
        &[("SWITCHBOARD_REQUEST_TIMEOUT_MS", "30000")],
    )
    .await;
    let addr = serve.base.trim_start_matches("http://").to_owned();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let mut half_sent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_sent
        .write_all(b"POST /twilio/voice HTTP/1.1\r\nHost: s\r\nContent-Le")
        .await
        .unwrap();
    // Headers complete, 1 byte of a 100-byte body: half-received, not in flight.
    let mut half_body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_body
        .write_all(
            b"POST /twilio/voice HTTP/1.1\r\nHost: s\r\nX-Twilio-Signature: AAAA\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nC",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    serve.sigterm();
    let code = tokio::task::spawn_blocking(move || {
        // Shorter than the 10 s body read timeout and the 31 s drain time.
        let code = serve.wait(Duration::from_secs(5));
        (code, serve)
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0), "still running 5 s after SIGTERM");
    drop((idle, half_sent, half_body));
}
