//! Sentinel mode: the master is found through three Sentinels, and when it is
//! killed (SIGKILL) while calls come in, switchboard follows the failover to
//! the promoted replica without a restart. Callers get the emergency answer
//! only during the gap, routing resumes on the new master, and no agent is on
//! two calls afterwards.

mod common;

use std::time::{Duration, Instant};

use common::sentinel::{MASTER_NAME, SentinelSet};
use common::*;
use switchboard::config::Sentinels;

const WITH_EMERGENCY: &str = r#"
[defaults]
wrap_up_secs = 0

[[queues]]
name = "sales"
numbers = ["+15005550006"]
fallback = ["voicemail"]

[emergency]
fallback = "number:+15005550010"
"#;

fn is_emergency(a: &Answer) -> bool {
    a.status == 200 && a.element_text("Number").as_deref() == Some("+15005550010")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_followed_to_the_promoted_replica() {
    let mut set = SentinelSet::start();
    // Only the master's credentials come from the URL (none here).
    let mut s = settings("redis://127.0.0.1", WITH_EMERGENCY);
    s.redis_sentinels = Some(Sentinels {
        urls: set.urls.clone(),
        master: MASTER_NAME.into(),
    });
    s.redis_timeout = Duration::from_millis(500);
    let server = TestServer::start(s).await;
    let app = TestApp {
        // The app's own Redis is not used: everything goes through Sentinels.
        redis: start_redis(),
        server,
        http: reqwest::Client::new(),
    };
    for id in ["a", "b", "c", "d"] {
        app.add_available(id, &["sales"]).await;
    }
    let first = app.call(&call_sid(1), SALES).await;
    let held = dialed(&first).expect("routed through the master the Sentinels name");
    let old_master = set.master.port();
    assert_eq!(set.master_port(), Some(old_master));
    // The reservation reached the replica before the master dies.
    tokio::time::sleep(Duration::from_millis(200)).await;

    set.master.stop();
    let killed = Instant::now();
    let mut n = 2;
    let mut emergencies = 0;
    let resumed = loop {
        let answer = app.call(&call_sid(n), SALES).await;
        n += 1;
        assert_eq!(answer.status, 200, "{answer:?}");
        if let Some(agent) = dialed(&answer) {
            break (killed.elapsed(), agent);
        }
        assert!(is_emergency(&answer), "{}", answer.body);
        emergencies += 1;
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "routing never resumed after the failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "routing resumed {:?} after the master was killed ({emergencies} calls got the emergency answer meanwhile)",
        resumed.0
    );
    assert_ne!(set.master_port(), Some(old_master), "no failover happened");
    assert_eq!(set.master_port(), Some(set.replica.port()));
    assert_ne!(resumed.1, held, "{held} was handed a second call");
    assert!(
        resumed.0 < Duration::from_secs(15),
        "routing resumed only after {:?}",
        resumed.0
    );
    // Afterwards every agent holds one call at most.
    let mut holders = std::collections::HashMap::new();
    for id in ["a", "b", "c", "d"] {
        let agent = app.agent(id).await;
        if let Some(call) = agent["call_sid"].as_str() {
            assert!(
                holders.insert(call.to_owned(), id).is_none(),
                "{call} held twice"
            );
        }
    }
    assert_eq!(holders.len(), 2, "{holders:?}");
}
