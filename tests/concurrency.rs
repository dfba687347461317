//! Many concurrent calls through two servers sharing one Redis: no agent is ever
//! handed two calls, and the calls beyond the free agents get the fallback.

mod common;

use std::collections::HashMap;

use common::*;
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_through_two_replicas_never_share_an_agent() {
    let app = spawn_app(ROUTING).await;
    let second = TestServer::start(settings(&app.redis.url(), ROUTING)).await;
    const AGENTS: u64 = 40;
    const CALLS: u64 = 150;
    for i in 0..AGENTS {
        // Half in both queues, so sales and support calls compete for them.
        let queues: &[&str] = if i % 2 == 0 {
            &["sales", "support"]
        } else {
            &["support"]
        };
        app.add_available(&format!("agent{i}"), queues).await;
    }

    let bases = [app.base().to_owned(), second.base.clone()];
    let mut calls = JoinSet::new();
    for n in 0..CALLS {
        let http = app.http.clone();
        let url = format!("{}/twilio/voice", bases[(n % 2) as usize]);
        let to = if n % 3 == 0 { SALES } else { SUPPORT };
        calls.spawn(async move {
            let sid = call_sid(1000 + n);
            let a = post_signed(
                &http,
                &url,
                &[
                    ("CallSid", sid.as_str()),
                    ("From", "+15005550001"),
                    ("To", to),
                ],
            )
            .await;
            (sid, a)
        });
    }
    let mut holders: HashMap<String, String> = HashMap::new();
    let mut fallbacks = 0;
    while let Some(joined) = calls.join_next().await {
        let (sid, a) = joined.expect("task");
        assert_eq!(a.status, 200, "{a:?}");
        match dialed(&a) {
            Some(agent) => {
                if let Some(other) = holders.insert(agent.clone(), sid.clone()) {
                    panic!("{agent} was given to {other} and {sid}");
                }
            }
            None => {
                assert!(
                    a.body.contains("<Record") || a.body.contains("+15005550010"),
                    "{}",
                    a.body
                );
                fallbacks += 1;
            }
        }
    }
    assert_eq!(
        holders.len() as u64,
        AGENTS,
        "every free agent got exactly one call"
    );
    assert_eq!(fallbacks, CALLS - AGENTS);

    // Redis agrees: each agent is reserved by the call that was told its name.
    let agents = app
        .admin(reqwest::Method::GET, "/agents", None)
        .await
        .json();
    for agent in agents["agents"].as_array().unwrap() {
        let id = agent["id"].as_str().unwrap();
        assert_eq!(agent["state"], "reserved", "{id}");
        assert_eq!(
            agent["call_sid"].as_str(),
            holders.get(id).map(String::as_str),
            "{id}"
        );
    }
}
