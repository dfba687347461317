//! An event stream whose client never reads is dropped, and what it held goes
//! with it: the stream falls behind the bounded feed, or its connection
//! stalls past `stall_timeout`; `switchboard_event_streams` counts it gone
//! while the client still holds its socket open. (Its own binary: the gauge is
//! process-wide.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_client_that_never_reads_is_dropped() {
    let app = spawn_app_with(ROUTING, false, |s| {
        s.connections.stall_timeout = Duration::from_secs(2);
    })
    .await;
    let streams = |page: &str| metric(page, "switchboard_event_streams ");

    // A reader that keeps up, to show the feed goes on for it.
    let mut reader = SseClient::open(&app, ADMIN_TOKEN, None).await;
    // A client with a tiny receive window that sends its request and never
    // reads a byte.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut silent = socket.connect(app.addr()).await.unwrap();
    silent
        .write_all(
            format!(
                "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    while streams(&app.metrics().await) < 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "streams never opened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Far more than buffers hold: 6,000 events of 1 KiB, appended as the
    // scripts append them.
    let mut conn = app.redis().await;
    let filler = "x".repeat(1024);
    for n in 0..6000 {
        let data = serde_json::json!({"agent": "nobody", "n": n, "filler": filler}).to_string();
        let _: String = redis::cmd("XADD")
            .arg(app.key("events"))
            .arg("*")
            .arg("event")
            .arg("agent_state")
            .arg("data")
            .arg(data)
            .query_async(&mut conn)
            .await
            .unwrap();
        if n % 500 == 0 {
            // The reader keeps up; the silent client does not.
            while reader.next(Duration::from_millis(200)).await.is_some() {}
        }
    }
    let dropped_at = Instant::now();
    loop {
        while reader.next(Duration::from_millis(10)).await.is_some() {}
        let open = streams(&app.metrics().await);
        if open <= 1.0 {
            break;
        }
        assert!(
            dropped_at.elapsed() < Duration::from_secs(10),
            "the silent stream is still open ({open} streams)"
        );
    }
    eprintln!(
        "silent client dropped {:?} after the last event",
        dropped_at.elapsed()
    );
    // The socket is still ours, unread: it was the server that let go.
    drop(silent);
    // The reader that kept up is still served.
    app.add_available("ana", &["sales"]).await;
    assert!(reader.next(Duration::from_secs(5)).await.is_some());
}
