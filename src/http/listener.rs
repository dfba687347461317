//! The accept loop and each connection's limits (SPEC 1, "Connections"), which
//! `axum::serve` cannot enforce: a request's headers must arrive within 10 s, a
//! keep-alive connection with no request is closed after 60 s, past
//! `SWITCHBOARD_MAX_CONNECTIONS` new connections wait in the kernel's backlog
//! (an owned semaphore permit per connection: at the cap the loop stops
//! accepting instead of failing at the fd limit), and on shutdown idle and
//! half-received connections close at once while requests in flight get the
//! drain time, after which the rest are dropped so the process exits.
//!
//! Connections are served by hyper's HTTP/1.1 builder only, with the axum
//! `Router` behind `TowerToHyperService`. Twilio speaks HTTP/1.1, and h2c gave a
//! client without credentials per-stream flow control to stall responses with
//! (SETTINGS_INITIAL_WINDOW_SIZE=0); an h2 preface is now a parse error. The
//! read buffer is capped (`ConnectionLimits::max_buf_size`) so 10,000 idle
//! connections cannot pin hyper's ~400 KiB default each. hyper's own
//! `header_read_timeout` is not used: in hyper 1.x its timer starts whenever the
//! connection waits for a request head, including between keep-alive requests, so
//! one value would be both the header and the idle timeout. Instead each
//! connection keeps an `Activity` phase — reading a head (since the connection
//! opened or a later request's first byte), busy with requests, or idle since
//! the last response ended — and a watchdog closes it when the phase's deadline
//! passes. A busy connection's deadline is its last progress (any byte read or
//! written) plus the stall timeout: a client that stops reading its answer, or
//! pipelines requests it never reads, is let go instead of held forever.
//!
//! Each request also carries the process-wide `BodyBudget`, which the webhook
//! extractor draws on before reading a body, so the bytes strangers can make
//! the server hold at once are bounded however many connections they open.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ConnectionLimits;

/// In every request's extensions: cancelled when the server begins shutting
/// down, so a request still reading its body (half-received) can give up at
/// once instead of holding the process until its body timeout.
#[derive(Clone, Debug)]
pub struct Draining(pub CancellationToken);

/// In every request's extensions: the webhook body bytes all connections may
/// hold at once (`ConnectionLimits::body_budget`), one permit a byte.
#[derive(Clone, Debug)]
pub struct BodyBudget(pub Arc<Semaphore>);

/// Serves `app` on `listener` until `shutdown` completes, then gives requests in
/// flight up to `drain` to finish and closes whatever is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let budget = BodyBudget(Arc::new(Semaphore::new(limits.body_budget)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_buf_size);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // Finished connections' results are not needed; reaping keeps the set small.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: the listener stays
                    // good, so wait a moment for connections to close and retry.
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Webhook answers are small; waiting to fill a segment only adds latency.
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            app.clone(),
            builder.clone(),
            limits.clone(),
            stop.clone(),
            budget.clone(),
            permit,
        ));
    }
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            ?drain,
            "requests still in flight past the drain time: closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// One connection, served until it ends, a deadline of its phase passes, or
/// shutdown finds it without a request in flight.
async fn connection(
    stream: TcpStream,
    app: Router,
    builder: Arc<http1::Builder>,
    limits: ConnectionLimits,
    stop: CancellationToken,
    budget: BodyBudget,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        let draining = Draining(stop.clone());
        tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            let in_flight = activity.request_started();
            request.extensions_mut().insert(draining.clone());
            request.extensions_mut().insert(budget.clone());
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    inner: body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    let mut conn = pin!(conn);
    let mut draining = false;
    loop {
        // While draining, a connection whose requests are answered is done: hyper
        // gets a moment to flush the last answer, but would otherwise wait to read
        // the rest of a body nobody will use.
        if draining && activity.in_flight() == 0 {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await;
            return;
        }
        let deadline = activity.deadline(&limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!("closing a connection past its header, idle or stall timeout");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            () = stop.cancelled(), if !draining => {
                if activity.in_flight() == 0 {
                    return;
                }
                // Finish the requests in flight, then close: no keep-alive.
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Reading a request head since this instant.
    Head(Instant),
    /// This many requests in flight (more than one only while hyper finishes
    /// writing one answer and has read the next pipelined request).
    Busy(usize),
    /// No request since the last response ended at this instant.
    Idle(Instant),
}

struct Activity {
    phase: Mutex<Phase>,
    /// Wakes the watchdog when a phase change moves the deadline.
    changed: Notify,
    /// When the connection opened; `progress` counts from it.
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written. An atomic,
    /// not the mutex: every socket read and write stores it, and a later
    /// progress only moves the deadline out, so the watchdog need not be woken
    /// (it re-reads the deadline when its sleep ends).
    progress: AtomicU64,
    /// The socket's last write or flush returned `Pending`: hyper holds output
    /// the peer is not taking. hyper lets go of a response body (and so the
    /// request's `InFlight`) once it is buffered, not once it is sent, so an
    /// unread answer can sit in an `Idle` phase; this keeps the stall deadline
    /// on it there too.
    write_blocked: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        let now = Instant::now();
        Activity {
            phase: Mutex::new(Phase::Head(now)),
            changed: Notify::new(),
            opened: now,
            progress: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
        }
    }

    /// Bytes moved either way: the peer is alive.
    fn progressed(&self) {
        let since = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress.store(since, Ordering::Relaxed);
    }

    fn last_progress(&self) -> Instant {
        self.opened + Duration::from_millis(self.progress.load(Ordering::Relaxed))
    }

    fn set(&self, change: impl FnOnce(Phase) -> Phase) {
        // A poisoned lock still holds a valid phase: nothing panics while holding it.
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = change(*phase);
        drop(phase);
        self.changed.notify_one();
    }

    fn get(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: on an idle connection they begin the next request's head.
    fn bytes_read(&self) {
        self.progressed();
        if matches!(self.get(), Phase::Idle(_)) {
            self.set(|phase| match phase {
                Phase::Idle(_) => Phase::Head(Instant::now()),
                other => other,
            });
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        // The stall clock of a request starts with it, not at the last byte of
        // an earlier one.
        self.progressed();
        self.set(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
        });
        InFlight(self.clone())
    }

    fn in_flight(&self) -> usize {
        match self.get() {
            Phase::Busy(n) => n,
            Phase::Head(_) | Phase::Idle(_) => 0,
        }
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let stalled = self.last_progress() + limits.stall_timeout;
        let phase = match self.get() {
            Phase::Head(since) => since + limits.header_read_timeout,
            Phase::Idle(since) => since + limits.idle_timeout,
            Phase::Busy(_) => return Some(stalled),
        };
        if self.write_blocked.load(Ordering::Relaxed) {
            Some(phase.min(stalled))
        } else {
            Some(phase)
        }
    }

    /// What a write or flush of the socket returned.
    fn wrote<T>(&self, polled: &Poll<std::io::Result<T>>, moved: impl FnOnce(&T) -> bool) {
        match polled {
            Poll::Pending => self.write_blocked.store(true, Ordering::Relaxed),
            Poll::Ready(Ok(done)) => {
                if moved(done) {
                    self.progressed();
                }
                self.write_blocked.store(false, Ordering::Relaxed);
            }
            Poll::Ready(Err(_)) => {}
        }
    }
}

/// A request in flight, from its head being read until hyper drops its
/// response body (written, or the connection gone).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A response body that holds its request's `InFlight` until it is dropped.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling `Activity` when bytes arrive or leave.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(&polled, |&n| n > 0);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(&polled, |&n| n > 0);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.wrote(&polled, |()| false);
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
