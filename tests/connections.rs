//! Hostile and slow clients, over raw TCP sockets against a real server: an
//! unsigned request is refused before its body arrives, a slow body is 408 (never
//! the emergency TwiML, never a routing failure), partial headers and idle
//! keep-alive connections are closed on their own timeouts, past the
//! connection cap new connections wait until one closes, a client that never
//! reads its answers is let go after the stall timeout, h2c is not spoken,
//! request heads and webhook bodies in flight are bounded, and a complete
//! signed body is served even once shutdown has begun. Slots are shared out:
//! one peer address past its cap is reset at once while others are served, and
//! a stranger's empty connections cannot keep a signed webhook out. A client
//! that never reads is reset (RST, so the kernel frees its buffers) and gets no
//! further pipelined request handled meanwhile. The timeouts are shortened
//! here; the defaults (10 s, 60 s, 10 s) are SPEC's, the stall timeout's 30 s is
//! switchboard's. Other peers are other loopback addresses (127.0.0.2).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use switchboard::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

async fn app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(ROUTING, true, configure).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr()).await.expect("connect")
}

/// What a socket gave back within a wait.
#[derive(Debug, PartialEq)]
enum Outcome {
    Answered(u16, String),
    Closed,
    Silent,
}

/// Reads one HTTP/1.1 response (Content-Length bodies, as switchboard sends).
async fn next_response(stream: &mut TcpStream, wait: Duration) -> Outcome {
    let deadline = Instant::now() + wait;
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("a status line");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("content-length"));
            if buf.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                return Outcome::Answered(status, body);
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Outcome::Silent,
            Ok(Ok(0)) | Ok(Err(_)) => return Outcome::Closed,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: switchboard\r\n\r\n";

/// The head of a webhook announcing a 100-byte body, with `extra` header lines.
fn webhook_head(extra: &str) -> Vec<u8> {
    format!(
        "POST /twilio/voice HTTP/1.1\r\nHost: switchboard\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n{extra}\r\n"
    )
    .into_bytes()
}

const TIMEOUT_FAILURES: &str = "switchboard_routing_failures_total{reason=\"request_timeout\"}";

#[tokio::test]
async fn an_unsigned_request_is_refused_before_its_body_arrives() {
    let signed = app(|_| {}).await;
    let no_token = app(|s| s.twilio_auth_token = None).await;
    for (app, extra) in [
        (&signed, ""),
        (
            &no_token,
            "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
        ),
    ] {
        let mut stream = connect(app).await;
        stream.write_all(&webhook_head(extra)).await.unwrap();
        stream.write_all(b"C").await.unwrap();
        // 99 bytes of the body never come: the answer cannot depend on them.
        match next_response(&mut stream, Duration::from_secs(5)).await {
            Outcome::Answered(status, _) => assert_eq!(status, 403, "{extra:?}"),
            other => panic!("{extra:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_slow_signed_body_is_408_never_the_emergency_twiml_nor_a_routing_failure() {
    let app = app(|s| {
        // Shorter than the body read timeout: before the fix the emergency
        // timeout fired while the body was still being read.
        s.request_timeout = Duration::from_millis(1500);
        s.connections.body_read_timeout = Duration::from_secs(3);
    })
    .await;
    let before = metric(&app.metrics().await, TIMEOUT_FAILURES);
    let stream = connect(&app).await;
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(&webhook_head(
            "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
        ))
        .await
        .unwrap();
    // One byte every 200 ms: the 100 bytes would take 20 s.
    let drip = tokio::spawn(async move {
        for _ in 0..100 {
            if write.write_all(b"C").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let got = tokio::time::timeout(Duration::from_secs(15), read.read_to_end(&mut answer)).await;
    drip.abort();
    assert!(got.is_ok(), "no answer to a slow body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(!answer.contains("<Response"), "emergency TwiML: {answer}");
    assert_eq!(metric(&app.metrics().await, TIMEOUT_FAILURES), before);
}

#[tokio::test]
async fn partial_headers_are_closed_after_the_header_timeout() {
    let app = app(|s| {
        s.connections.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"POST /twilio/voice HTTP/1.1\r\nHost: sw")
        .await
        .unwrap();
    assert_eq!(
        next_response(&mut stream, Duration::from_secs(5)).await,
        Outcome::Closed
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_then_is_closed() {
    let app = app(|s| {
        s.connections.header_read_timeout = Duration::from_millis(300);
        s.connections.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(HEALTHZ).await.unwrap();
    let first = next_response(&mut stream, Duration::from_secs(5)).await;
    assert!(matches!(first, Outcome::Answered(200, _)), "{first:?}");
    // Idle for longer than the header timeout, shorter than the idle timeout.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stream.write_all(HEALTHZ).await.unwrap();
    let second = next_response(&mut stream, Duration::from_secs(5)).await;
    assert!(matches!(second, Outcome::Answered(200, _)), "{second:?}");
    assert_eq!(
        next_response(&mut stream, Duration::from_secs(10)).await,
        Outcome::Closed
    );
}

#[tokio::test]
async fn a_later_request_head_on_a_keep_alive_connection_has_the_header_timeout() {
    let app = app(|s| {
        s.connections.header_read_timeout = Duration::from_millis(300);
        s.connections.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(HEALTHZ).await.unwrap();
    let first = next_response(&mut stream, Duration::from_secs(5)).await;
    assert!(matches!(first, Outcome::Answered(200, _)), "{first:?}");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    // Closed by the header timeout, long before the 60 s idle timeout.
    assert_eq!(
        next_response(&mut stream, Duration::from_secs(10)).await,
        Outcome::Closed
    );
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_waits_until_one_closes() {
    let app = app(|s| s.connections.max_connections = 1).await;
    let mut first = connect(&app).await;
    first.write_all(HEALTHZ).await.unwrap();
    let answer = next_response(&mut first, Duration::from_secs(5)).await;
    assert!(matches!(answer, Outcome::Answered(200, _)), "{answer:?}");

    // The kernel completes the handshake; switchboard does not accept it yet.
    let mut second = connect(&app).await;
    second.write_all(HEALTHZ).await.unwrap();
    assert_eq!(
        next_response(&mut second, Duration::from_millis(700)).await,
        Outcome::Silent
    );
    drop(first);
    let answer = next_response(&mut second, Duration::from_secs(5)).await;
    assert!(matches!(answer, Outcome::Answered(200, _)), "{answer:?}");
}

/// A socket whose receive window stays small, so the server's writes block
/// as soon as a few KiB are unread (loopback would otherwise buffer MBs).
async fn connect_small_window(app: &TestApp) -> TcpStream {
    let addr = app.addr();
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("connect")
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_disconnected_after_the_stall_limit() {
    let app = app(|s| {
        s.connections.stall_timeout = Duration::from_secs(1);
    })
    .await;
    // The document is ~13 KiB; 512 of them pipelined (6.8 MB) outgrow every
    // buffer on the way (the server's send buffer may grow to 4 MiB), so the
    // server is left with output the client does not take.
    const REQUESTS: usize = 512;
    let request = b"GET /v1/openapi.json HTTP/1.1\r\nHost: switchboard\r\n\r\n";
    let mut stream = connect_small_window(&app).await;
    stream.write_all(&request.repeat(REQUESTS)).await.unwrap();
    // Never read for well past the stall limit (and the drain of buffers).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await;
    let answered = got.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    // Before the fix every answer came (the client was waited on forever),
    // then the connection sat open: no end within the 10 s.
    assert!(
        read.is_ok(),
        "still open after the stall limit ({answered} answers, {} bytes read)",
        got.len()
    );
    assert!(answered < REQUESTS, "all {answered} answers were written");
}

#[tokio::test]
async fn an_h2c_preface_is_refused_not_spoken() {
    let app = app(|_| {}).await;
    let mut stream = connect(&app).await;
    // The HTTP/2 connection preface, then an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection stayed open: {got:?}");
    // Nothing, or an HTTP/1.1 error: never an HTTP/2 SETTINGS frame.
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 4") || got.starts_with(b"HTTP/1.1 5"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn a_request_head_over_the_read_buffer_limit_is_431() {
    let app = app(|_| {}).await;
    let mut stream = connect(&app).await;
    // 20 KiB of header: more than any Twilio request, less than hyper's default.
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: switchboard\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    match next_response(&mut stream, Duration::from_secs(5)).await {
        Outcome::Answered(status, _) => assert_eq!(status, 431),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn past_the_body_budget_a_webhook_waits_briefly_then_is_503() {
    let app = app(|s| {
        // Room for exactly one 100-byte body.
        s.connections.body_budget = 100;
        s.connections.body_budget_wait = Duration::from_millis(300);
        s.connections.body_read_timeout = Duration::from_secs(8);
    })
    .await;
    let signed = "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n";
    // The first holds the whole budget: any signature value gets this far.
    let mut holder = connect(&app).await;
    holder.write_all(&webhook_head(signed)).await.unwrap();
    holder.write_all(b"C").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = connect(&app).await;
    second.write_all(&webhook_head(signed)).await.unwrap();
    second.write_all(b"C").await.unwrap();
    // Before the fix the second body was waited on like the first (Silent).
    match next_response(&mut second, Duration::from_secs(3)).await {
        Outcome::Answered(status, _) => assert_eq!(status, 503),
        other => panic!("{other:?}"),
    }
    // Once the first is done, the budget is back.
    drop(holder);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect(&app).await;
    third.write_all(&webhook_head(signed)).await.unwrap();
    third.write_all(&[b'C'; 100]).await.unwrap();
    match next_response(&mut third, Duration::from_secs(3)).await {
        Outcome::Answered(status, _) => assert_eq!(status, 403),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_complete_signed_body_is_served_even_when_shutdown_has_begun() {
    use axum::body::Body;
    use axum::extract::FromRequest;
    use switchboard::http::listener::Draining;
    use switchboard::http::webhooks::Webhook;
    use switchboard::twilio::signature;
    use tokio_util::sync::CancellationToken;

    // The extractor alone: no Redis is contacted before a handler runs.
    let state =
        switchboard::server::build_state(settings("redis://127.0.0.1:1", ROUTING)).expect("state");
    let params = vec![
        ("CallSid".to_owned(), call_sid(1)),
        ("To".to_owned(), SALES.to_owned()),
    ];
    let body = serde_urlencoded::to_string(&params).unwrap();
    let given = signature::compute(AUTH_TOKEN, "http://switchboard/twilio/voice", &params);
    let draining = CancellationToken::new();
    draining.cancel();
    // Both branches are ready at the first poll; an unbiased select picks the
    // shutdown one about half the time, so 64 tries all but surely catch it.
    for attempt in 0..64 {
        let mut request = axum::http::Request::post("/twilio/voice")
            .header("host", "switchboard")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", &given)
            .body(Body::from(body.clone()))
            .unwrap();
        request.extensions_mut().insert(Draining(draining.clone()));
        let hook = Webhook::from_request(request, &state).await;
        assert!(
            hook.is_ok(),
            "attempt {attempt}: {:?}",
            hook.err().map(|r| r.status())
        );
    }
}

/// A peer other than 127.0.0.1, where the tests' own requests come from.
const STRANGER: [u8; 4] = [127, 0, 0, 2];

/// A connection from the loopback address `source`.
async fn connect_from(app: &TestApp, source: [u8; 4]) -> TcpStream {
    let addr = app.addr();
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    socket.connect(addr).await.expect("connect")
}

/// A signed `POST /twilio/voice` for call `n` to the sales number, keep-alive.
fn signed_call(n: u64) -> Vec<u8> {
    let params = vec![
        ("CallSid".to_owned(), call_sid(n)),
        ("From".to_owned(), "+15005550001".to_owned()),
        ("To".to_owned(), SALES.to_owned()),
    ];
    let given = switchboard::twilio::signature::compute(
        AUTH_TOKEN,
        "http://switchboard/twilio/voice",
        &params,
    );
    let body = serde_urlencoded::to_string(&params).expect("form");
    format!(
        "POST /twilio/voice HTTP/1.1\r\nHost: switchboard\r\nX-Twilio-Signature: {given}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn assert_answered(stream: &mut TcpStream, what: &str) {
    match next_response(stream, Duration::from_secs(5)).await {
        Outcome::Answered(200, _) => {}
        other => panic!("{what}: {other:?}"),
    }
}

#[tokio::test]
async fn past_the_per_peer_cap_a_new_connection_is_held_unread_then_reset_while_other_peers_are_served()
 {
    let app = app(|s| {
        s.connections.max_connections = 4;
        s.connections.max_held = 4;
        s.connections.max_connections_per_peer = 2;
        s.connections.header_read_timeout = Duration::from_millis(2500);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from(&app, STRANGER).await;
        stream.write_all(HEALTHZ).await.unwrap();
        assert_answered(&mut stream, "within the cap").await;
        held.push(stream);
    }
    // Past the cap: accepted by the kernel, never read nor answered, and
    // reset at the header timeout, so a client that reopens what ends comes
    // back at that pace. Before: reset at once (and reopened at once, a
    // connection flood), and before that, answered like the first two.
    let started = Instant::now();
    let mut third = connect_from(&app, STRANGER).await;
    let _ = third.write_all(HEALTHZ).await;
    assert_eq!(
        next_response(&mut third, Duration::from_millis(1000)).await,
        Outcome::Silent,
        "held, not answered nor reset"
    );
    assert_eq!(
        next_response(&mut third, Duration::from_secs(8)).await,
        Outcome::Closed
    );
    // At the header timeout (2.5 s): not at once, and not never.
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(2000),
        "reset after {after:?}"
    );
    // At most `max_held` (4) are held; the next is reset at once.
    let mut pen = Vec::new();
    for _ in 0..4 {
        pen.push(connect_from(&app, STRANGER).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut past = connect_from(&app, STRANGER).await;
    assert_eq!(
        next_response(&mut past, Duration::from_millis(900)).await,
        Outcome::Closed,
        "the pen is full: reset at once"
    );
    let mut other = connect(&app).await;
    other.write_all(HEALTHZ).await.unwrap();
    assert_answered(&mut other, "another address").await;
    // A slot given back is the peer's again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from(&app, STRANGER).await;
    again.write_all(HEALTHZ).await.unwrap();
    assert_answered(&mut again, "after one closed").await;
}

#[tokio::test]
async fn a_signed_webhook_is_answered_while_a_stranger_holds_the_whole_unproven_share() {
    let app = app(|s| {
        s.connections.max_connections = 4;
        s.connections.max_unproven = 2;
        s.connections.max_connections_per_peer = 0;
    })
    .await;
    // Proven: a signed webhook passed on it.
    let mut proven = connect(&app).await;
    proven.write_all(&signed_call(1)).await.unwrap();
    assert_answered(&mut proven, "first webhook").await;
    // More empty connections than the whole cap, from one stranger.
    let mut strangers = Vec::new();
    for _ in 0..6 {
        strangers.push(connect_from(&app, STRANGER).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proven.write_all(&signed_call(2)).await.unwrap();
    assert_answered(&mut proven, "the proven connection").await;
    // Before: the stranger held the other three slots, and this one waited in
    // the backlog until a header timeout (10 s) let one go.
    let mut fresh = connect(&app).await;
    fresh.write_all(&signed_call(3)).await.unwrap();
    assert_answered(&mut fresh, "a new connection").await;
    // The stranger's oldest were reset to make room; its newest is still open.
    let mut closed = 0;
    for stream in &mut strangers {
        if next_response(stream, Duration::from_millis(100)).await == Outcome::Closed {
            closed += 1;
        }
    }
    assert!(closed >= 4, "only {closed} of the stranger's 6 were closed");
}

#[tokio::test]
async fn a_stalled_never_reading_connection_is_reset_not_closed() {
    let app = app(|s| {
        s.connections.stall_timeout = Duration::from_secs(1);
    })
    .await;
    // 40 answers of ~13 KiB outgrow the capped socket buffers, not the ones
    // the kernel gives a loopback socket by default (over 1 MB): before, all
    // were buffered and the connection sat idle.
    let request = b"GET /v1/openapi.json HTTP/1.1\r\nHost: switchboard\r\n\r\n";
    let mut stream = connect_small_window(&app).await;
    stream.write_all(&request.repeat(40)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await;
    match read {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!(
            "not reset: {:?} after {} bytes",
            other.map(|r| r.map_err(|e| e.kind())),
            got.len()
        ),
    }
}

#[tokio::test]
async fn a_connection_with_an_unsent_answer_gets_no_further_pipelined_request_handled() {
    let app = app(|s| {
        s.connections.stall_timeout = Duration::from_secs(30);
    })
    .await;
    // 40 large answers nobody reads, then 20 signed calls.
    let mut pipeline = b"GET /v1/openapi.json HTTP/1.1\r\nHost: switchboard\r\n\r\n".repeat(40);
    let calls: Vec<u64> = (100..120).collect();
    for &n in &calls {
        pipeline.extend(signed_call(n));
    }
    let mut stream = connect_small_window(&app).await;
    stream.write_all(&pipeline).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut redis = app.redis().await;
    let mut handled = 0;
    for &n in &calls {
        let exists: bool = redis::cmd("EXISTS")
            .arg(app.key(&format!("call:{}", call_sid(n))))
            .query_async(&mut redis)
            .await
            .expect("EXISTS");
        handled += usize::from(exists);
    }
    // Before: every call was handled, its answer buffered behind the others.
    assert_eq!(handled, 0, "calls handled behind unsent answers");
    drop(stream);
}
