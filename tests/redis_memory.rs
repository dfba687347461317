//! The worker exports the namespace's Redis memory and its `maxmemory`, read
//! from that Redis, for the alert that warns before a full Redis refuses
//! writes. A binary of its own: the gauges are process-wide, and no other
//! test's worker may set them meanwhile.

mod common;

use common::*;

/// The value of an unlabelled gauge on a `/metrics` page.
fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn the_worker_exports_what_redis_says_of_its_memory() {
    let app = spawn_app_with(ROUTING, false, |_| {}).await;
    let mut redis = app.redis().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("123456789")
        .query_async(&mut redis)
        .await
        .unwrap();
    let page = app.metrics().await;
    assert_eq!(
        gauge(&page, "switchboard_redis_maxmemory_bytes"),
        None,
        "not read yet: absent, not a false 0 (no limit)"
    );

    switchboard::worker::refresh_redis_memory(&app.server.state.engine)
        .await
        .unwrap();
    let page = app.metrics().await;
    assert_eq!(
        gauge(&page, "switchboard_redis_maxmemory_bytes"),
        Some(123_456_789.0),
        "{page}"
    );
    let used = gauge(&page, "switchboard_redis_used_memory_bytes").expect("used memory");
    let info: redis::InfoDict = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut redis)
        .await
        .unwrap();
    let reported: f64 = info.get("used_memory").unwrap();
    // Redis's own figure moves a little between the two reads.
    assert!(
        (used - reported).abs() < reported * 0.5,
        "exported {used}, Redis says {reported}"
    );
}
