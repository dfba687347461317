//! Cluster mode: against a real 3-master, 3-replica Redis Cluster, servers of
//! several namespaces (tenants) route and settle calls, each namespace in its
//! one slot; then the master of one namespace's slot is killed and its replica
//! promoted: routing of that namespace resumes, nobody is booked twice, and
//! only that namespace is unready meanwhile. (`routing_on_cluster` and
//! `lifecycle_on_cluster` run the routing and lifecycle suites on a Cluster.)

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;
use switchboard::store::Replicated;

async fn tenant(cluster: &Cluster, namespace: &str) -> TestApp {
    let mut s = cluster_settings(&cluster.urls(), namespace, WITH_EMERGENCY);
    s.redis_timeout = Duration::from_millis(500);
    TestApp::elsewhere(TestServer::start(s).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_route_on_a_cluster_and_one_survives_its_masters_failover() {
    let mut cluster = Cluster::start();
    let namespaces = ["acme", "globex", "initech", "umbrella"];
    let mut tenants = Vec::new();
    for ns in namespaces {
        let app = tenant(&cluster, ns).await;
        for id in ["a", "b", "c"] {
            app.add_available(id, &["sales"]).await;
        }
        tenants.push(app);
    }
    // Each tenant's lifecycle: ring, answer, end, wrap-up (0 s): free again.
    for (app, ns) in tenants.iter().zip(namespaces) {
        let sid = call_sid(1);
        let dial = app.call(&sid, SALES).await;
        let agent = dialed(&dial).unwrap_or_else(|| panic!("{ns}: {}", dial.body));
        app.agent_leg(&sid, &dial, "in-progress").await;
        assert_eq!(app.agent(&agent).await["state"], "on_call", "{ns}");
        app.agent_leg(&sid, &dial, "completed").await;
        app.dial_action(&sid, &dial, "completed").await;
        assert!(app.agent(&agent).await["call_sid"].is_null(), "{ns}");
    }
    // Reservations are confirmed by the master's replica (WAIT 1), as in
    // Sentinel mode: a Cluster failover promotes a replica too.
    for app in &tenants {
        let confirmed = app.server.state.engine.store().wait_for_replica().await;
        assert!(
            matches!(confirmed, Ok(Replicated::Confirmed)),
            "{confirmed:?}"
        );
    }
    let masters: Vec<Option<usize>> = namespaces
        .iter()
        .map(|ns| cluster.master_of(&format!("sb:{{{ns}}}:agents")))
        .collect();
    eprintln!("the namespaces' slots are served by nodes {masters:?}");
    assert!(masters.iter().all(Option::is_some));

    // The master of acme's slot dies; its replica takes over.
    let acme = &tenants[0];
    let held = dialed(&acme.call(&call_sid(2), SALES).await).expect("routed");
    let master = masters[0].unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.nodes[master].stop();
    let killed = Instant::now();
    // Readiness is per namespace: tenants whose slot another master serves
    // stay ready and route while acme's is not (the cluster runs with
    // cluster-require-full-coverage no, as README advises).
    let elsewhere: Vec<&TestApp> = tenants
        .iter()
        .zip(&masters)
        .filter(|(_, m)| **m != Some(master))
        .map(|(app, _)| app)
        .collect();
    assert!(!elsewhere.is_empty(), "every namespace on one master");
    let mut acme_unready = false;
    let mut n = 3;
    let (took, agent) = loop {
        let answer = acme.call(&call_sid(n), SALES).await;
        n += 1;
        assert_eq!(answer.status, 200, "{answer:?}");
        if let Some(agent) = dialed(&answer) {
            break (killed.elapsed(), agent);
        }
        assert!(is_emergency(&answer), "{}", answer.body);
        acme_unready |= acme.readyz().await == 503;
        for app in &elsewhere {
            assert_eq!(app.readyz().await, 200, "a tenant on a live master");
            let sid = call_sid(100 + n);
            assert!(dialed(&app.call(&sid, SALES).await).is_some());
            app.call_status(&sid, "completed").await;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "never resumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("acme's routing resumed {took:?} after its master was killed");
    assert!(
        acme_unready,
        "acme was never unready while its slot had no master"
    );
    for app in &elsewhere {
        assert!(
            app.metrics().await.contains("switchboard_redis_up 1"),
            "switchboard_redis_up of a tenant on a live master"
        );
    }
    assert_ne!(agent, held, "{held} was handed a second call");
    cluster.wait_until_ok();
    assert_ne!(
        cluster.master_of("sb:{acme}:agents"),
        Some(master),
        "no failover"
    );
    // Ready again (every slot it needs is served), and the other tenants
    // route as before.
    let started = Instant::now();
    loop {
        let ready = acme.readyz().await;
        if ready == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "/readyz stays {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Those whose slots the killed master also served reconnect too: each
    // is waited for as acme was (a CI run called one before it had).
    for app in &tenants[1..] {
        while app.readyz().await != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "a tenant stays unready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(dialed(&app.call(&call_sid(50), SALES).await).is_some());
    }
}

#[test]
fn cluster_and_sentinel_modes_are_not_set_together() {
    let error = settings_from_args(&[
        "--redis-cluster",
        "redis://127.0.0.1:7000,redis://127.0.0.1:7001",
        "--redis-sentinels",
        "redis://127.0.0.1:26379",
        "--redis-sentinel-master",
        "m",
    ])
    .map(|_| ())
    .unwrap_err();
    assert!(error.to_string().contains("two modes"), "{error}");
}
