//! `/metrics` is valid Prometheus text (checked by `promtool check metrics`) and
//! carries the catalogue of SPEC 1 once traffic has flowed.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

const SHORT: &str = r#"
[defaults]
ring_timeout_secs = 5
reservation_grace_secs = 5

[[queues]]
name = "default"
fallback = ["voicemail"]

[[queues]]
name = "held"
numbers = ["+15005550009"]
fallback = ["voicemail"]
wrap_up_secs = 0
[queues.hold]
loop_secs = 5
max_waiting = 1
callback_key = "2"

[[queues]]
name = "skilled"
numbers = ["+15005550010"]
fallback = ["voicemail"]
steps = [{ needs = "es", for_secs = 30 }, { needs = "any" }]

# Nobody listens there: each lookup fails at once (switchboard_lookups_total).
[lookup]
url = "http://127.0.0.1:9/lookup"
timeout_ms = 200
"#;

#[tokio::test]
async fn the_metrics_page_passes_promtool_and_has_the_whole_catalogue() {
    // REST through a local stand-in of Twilio's API, so a waiting caller is
    // connected (switchboard_connect_seconds).
    let stand_in = TwilioApiStandIn::start().await;
    let connect = connect_through(stand_in.auth_token_config());
    let mut app = spawn_app_with(SHORT, true, |s| {
        connect(s);
        s.lookup_secret = Some("metrics-test-lookup-secret".into());
    })
    .await;
    app.add_available("a", &["default"]).await;
    // Traffic touching every series: a routed call that expires unanswered, a
    // fallback with a voicemail, and a failure while Redis is down.
    let dial = app.call(&call_sid(1), "+15005550006").await;
    assert!(dialed(&dial).is_some());
    let vm = app.call(&call_sid(2), "+15005550006").await;
    assert!(vm.body.contains("<Record"));
    // A queue with steps: its call is matched at step 1 (the step metrics).
    let put = app
        .admin(
            reqwest::Method::PUT,
            "/agents/es",
            Some(serde_json::json!({"name": "es", "contact": "client:es",
                "queues": ["skilled"], "skills": ["es"]})),
        )
        .await;
    assert_eq!(put.status, 201, "{put:?}");
    app.set_state("es", "available").await;
    let skilled = app.call(&call_sid(4), "+15005550010").await;
    assert_eq!(dialed(&skilled).as_deref(), Some("es"), "{}", skilled.body);
    // A queue that holds callers: one talks to h, one waits, a third finds the
    // line full (an ended wait, which the worker turns into the wait metrics);
    // then h is free and the waiting caller is connected through REST.
    app.add_available("h", &["held"]).await;
    let talking = app.call(&call_sid(10), "+15005550009").await;
    assert!(dialed(&talking).is_some(), "{}", talking.body);
    let waiting = app.call(&call_sid(11), "+15005550009").await;
    assert!(waiting.body.contains("<Redirect"), "{}", waiting.body);
    stand_in.answer(&call_sid(11), CallAnswer::Succeed);
    let full = app.call(&call_sid(12), "+15005550009").await;
    assert!(full.body.contains("<Record"), "{}", full.body);
    app.agent_leg(&call_sid(10), &talking, "answered").await;
    app.dial_action(&call_sid(10), &talking, "completed").await;
    for _ in 0..100 {
        if !stand_in.requests_for(&call_sid(11)).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        stand_in.requests_for(&call_sid(11)).len(),
        1,
        "connected by REST"
    );
    let rec = format!("RE{:032x}", 1);
    post_signed(
        &app.http,
        &format!("{}/twilio/voice/voicemail", app.base()),
        &[
            ("CallSid", call_sid(2).as_str()),
            ("RecordingSid", rec.as_str()),
        ],
    )
    .await;
    // Its deadline (ring timeout + grace, 10 s) brought forward: the sweep
    // releases it at once instead of the test waiting.
    let mut redis = app.redis().await;
    let _: () = redis::cmd("EVAL")
        .arg("for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do redis.call('ZADD', KEYS[1], 0, m) end")
        .arg(1)
        .arg("sb:{default}:deadlines")
        .query_async(&mut redis)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while app.agent("a").await["state"] != "available" {
        assert!(
            started.elapsed().as_secs() < 10,
            "reservation never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.http
        .get(format!("{}/readyz", app.base()))
        .send()
        .await
        .unwrap();
    app.redis.stop();
    app.call(&call_sid(3), "+15005550006").await;
    app.redis.restart().unwrap();

    let page = app.metrics().await;
    for name in switchboard::metrics::CATALOGUE {
        assert!(
            page.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{page}"
        );
        assert!(
            page.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}:\n{page}"
        );
    }
    assert!(page.contains(
        "switchboard_webhook_duration_seconds_bucket{route=\"/twilio/voice\",le=\"0.005\"}"
    ));
    assert!(page.contains(
        "switchboard_redis_script_duration_seconds_bucket{script=\"route_call\",le=\"0.001\"}"
    ));

    let mut promtool = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool is needed to check /metrics ({e}): install it with `sudo apt-get install prometheus` (Debian/Ubuntu)"
        ),
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
