//! The accept loop and each connection's limits (SPEC 1, "Connections"), which
//! `axum::serve` cannot enforce: a request's headers must arrive within 10 s, a
//! keep-alive connection with no request is closed after 60 s, past
//! `SWITCHBOARD_MAX_CONNECTIONS` new connections wait in the kernel's backlog
//! (an owned semaphore permit per connection: at the cap the loop stops
//! accepting instead of failing at the fd limit), and on shutdown idle and
//! half-received connections close at once while requests in flight get the
//! drain time, after which the rest are dropped so the process exits.
//!
//! Slots are shared so that one stranger cannot take them all (issue 18: one
//! client holding 11,000 empty connections kept signed webhooks waiting up to
//! 19.6 s in the backlog, past Twilio's 15 s):
//! - One peer address (an IPv4 address, an IPv6 /64) may hold at most
//!   `SWITCHBOARD_MAX_CONNECTIONS_PER_PEER` connections; past that a new one
//!   takes no slot and is never read: it is held until the header timeout,
//!   then reset (`hold_refused`). Reset at once, it came straight back: one
//!   address reopening 11,000 connections the moment each ended made 61,000
//!   connections a second, and the webhooks queued behind them in the
//!   backlog (p99 546-670 ms). Held, it ends as an empty connection would, at the
//!   pace the old attack had. At most `max_held` are held (`max_connections`,
//!   or what the open-file limit leaves: an fd each, and a receive buffer
//!   shrunk to the kernel's least); past that the next is reset at once. Behind a load balancer or ingress
//!   every connection has the proxy's address, so there it must be 0 (off) or
//!   above what the proxy opens, and the per-client limit belongs in the proxy
//!   (the PROXY protocol is not spoken).
//! - A connection is *proven* once one of its requests passes authentication
//!   (a valid Twilio signature or the admin token; `prove`). An agent token
//!   does not prove one: it is a credential that leaks, and a leaked one
//!   could otherwise keep thousands of connections out of reach.
//!   Unproven connections may fill only `max_unproven` (three quarters) of the
//!   cap; when a new connection would exceed that, the oldest unproven one is
//!   reset to make room. So a new connection is always accepted while proven
//!   ones leave room, and a fresh Twilio connection, whose request proves it
//!   within milliseconds, is the last in line to be evicted: an attacker would
//!   have to open `max_unproven` connections in that time.
//! - `bind` asks for a listen backlog of 4096 (the kernel clamps it to
//!   net.core.somaxconn) instead of 1024, for bursts while the loop is busy.
//!
//! What a client that never reads can make the kernel hold (issue 18: 200
//! pipelining connections pinned 753 MB) is bounded too: each accepted socket's
//! send and receive buffers are capped (`ConnectionLimits::socket_buffer`; the
//! kernel otherwise grows them to MBs), no further request bytes are read while
//! the socket refuses output (pipelined requests stay with the client, and no
//! handler runs for them), and a connection given up on (header or stall
//! timeout, eviction, per-peer refusal) is closed with SO_LINGER 0, a reset,
//! so the kernel frees its buffers at once instead of keeping an orphan that
//! retries the unread data for minutes. Only an idle keep-alive connection,
//! with nothing unsent, is closed politely.
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

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use futures_util::task::AtomicWaker;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
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

/// The listen backlog `bind` asks for; Linux clamps it to net.core.somaxconn
/// (4096 by default since 5.4; `backlog` tells what it will be).
pub const BACKLOG: u32 = 4096;

/// Binds `addr` for `serve` with a listen backlog of `BACKLOG` (tokio's
/// `TcpListener::bind` asks for 1024).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As tokio's own bind does: a restarted server can bind its port while the
    // old process's connections are still in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises this process's open-file limit to its hard limit, as far as
/// `limits` may need: each connection is a descriptor, and so is each one
/// held past its peer's share (`hold_refused`), up to `max_connections` of
/// each on every listener; plus room for Redis and the rest. Returns the
/// limit now in force and what was wanted, for the caller to warn when the
/// first is short (raising the hard limit takes privileges the process
/// should not have).
pub fn raise_open_files(limits: &ConnectionLimits, listeners: u64) -> std::io::Result<(u64, u64)> {
    let wanted = (limits.max_connections as u64)
        .saturating_mul(2 * listeners)
        .saturating_add(1024);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = raised.rlim_cur;
    }
    Ok((limit.rlim_cur, wanted))
}

/// How many connections past their peer's share `listeners` listeners may
/// hold (`ConnectionLimits::max_held`) under an open-file limit of `limit`:
/// what is left after every listener's `max_connections` and 1,024 for Redis
/// and the rest, up to `max_connections`. Holding more would end at EMFILE,
/// where accepting stalls for everyone.
pub fn held_room(limits: &ConnectionLimits, listeners: u64, limit: u64) -> usize {
    let max = limits.max_connections as u64;
    let left = limit.saturating_sub(max.saturating_mul(listeners).saturating_add(1024));
    left.min(max) as usize
}

/// The backlog the kernel grants `bind`: `BACKLOG`, or net.core.somaxconn
/// when that is lower (Linux; elsewhere `BACKLOG` as asked).
pub fn backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(BACKLOG, |max| max.min(BACKLOG))
}

/// In every request's extensions: the connection's slot, which `prove` marks.
#[derive(Clone)]
pub struct Trust(Arc<Slot>);

/// The request passed authentication (a Twilio signature or the admin
/// token): its connection is proven, and no longer counts against,
/// nor can be evicted for, the unproven share. A no-op outside the listener.
pub fn prove(extensions: &axum::http::Extensions) {
    if let Some(Trust(slot)) = extensions.get::<Trust>() {
        slot.prove();
    }
}

/// Whom the per-peer cap counts: an IPv4 address, or an IPv6 /64, what one
/// host is usually given (counting single IPv6 addresses would let one host
/// hold 2^64 shares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Peer {
    V4(Ipv4Addr),
    V6Net(u64),
}

impl From<IpAddr> for Peer {
    fn from(addr: IpAddr) -> Peer {
        match addr {
            IpAddr::V4(v4) => Peer::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Peer::V4(v4),
                None => Peer::V6Net((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

/// Who holds the connection slots: per peer, and which are unproven.
struct Slots {
    /// 0: no per-peer cap.
    per_peer: usize,
    max_unproven: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    peers: HashMap<Peer, usize>,
    /// Unproven connections by age (ids only grow), each with the token that
    /// evicts it.
    unproven: BTreeMap<u64, CancellationToken>,
    next_id: u64,
}

impl Slots {
    fn new(limits: &ConnectionLimits) -> Slots {
        Slots {
            per_peer: limits.max_connections_per_peer,
            // At least one, so a new connection never evicts itself.
            max_unproven: limits.max_unproven.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A poisoned lock still holds valid counts: nothing panics holding it.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection from `addr`, or `None` when that peer holds
    /// its share. Makes room in the unproven share by evicting its oldest.
    fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<Arc<Slot>> {
        let peer = Peer::from(addr);
        let evicted = CancellationToken::new();
        let mut table = self.table();
        let held = table.peers.entry(peer).or_insert(0);
        if self.per_peer > 0 && *held >= self.per_peer {
            return None;
        }
        *held += 1;
        let id = table.next_id;
        table.next_id += 1;
        table.unproven.insert(id, evicted.clone());
        if table.unproven.len() > self.max_unproven
            && let Some((_, oldest)) = table.unproven.pop_first()
        {
            oldest.cancel();
        }
        drop(table);
        Some(Arc::new(Slot {
            slots: self.clone(),
            peer,
            id,
            evicted,
            proven: AtomicBool::new(false),
        }))
    }
}

/// One connection's place in `Slots`, given back when dropped.
struct Slot {
    slots: Arc<Slots>,
    peer: Peer,
    id: u64,
    /// Cancelled when the connection is evicted to make room.
    evicted: CancellationToken,
    proven: AtomicBool,
}

impl Slot {
    fn prove(&self) {
        if !self.proven.swap(true, Ordering::Relaxed) {
            self.slots.table().unproven.remove(&self.id);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.slots.table();
        table.unproven.remove(&self.id);
        if let Some(held) = table.peers.get_mut(&self.peer) {
            *held -= 1;
            if *held == 0 {
                table.peers.remove(&self.peer);
            }
        }
    }
}

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
    let slots = Arc::new(Slots::new(&limits));
    let held_refused = Arc::new(Semaphore::new(limits.max_held));
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
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: the listener stays
                    // good, so wait a moment for connections to close and retry.
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.admit(peer.ip()) else {
            match held_refused.clone().try_acquire_owned() {
                Ok(place) => {
                    tracing::debug!(peer = %peer.ip(), "the peer holds its share of connections: held unread, then reset");
                    connections.spawn(hold_refused(
                        stream,
                        limits.header_read_timeout,
                        stop.clone(),
                        place,
                    ));
                }
                Err(_) => {
                    tracing::debug!(peer = %peer.ip(), "the peer holds its share of connections: reset");
                    let _ = stream.set_zero_linger();
                }
            }
            continue;
        };
        // Webhook answers are small; waiting to fill a segment only adds latency.
        let _ = stream.set_nodelay(true);
        let socket = socket2::SockRef::from(&stream);
        let _ = socket.set_send_buffer_size(limits.socket_buffer);
        let _ = socket.set_recv_buffer_size(limits.socket_buffer);
        connections.spawn(connection(
            stream,
            slot,
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

/// A connection past its peer's share: never read, reset after `timeout` (as
/// an empty connection would be) or at shutdown, so a client that reopens
/// whatever ends does so at that pace rather than as fast as it can.
async fn hold_refused(
    stream: TcpStream,
    timeout: Duration,
    stop: CancellationToken,
    _place: OwnedSemaphorePermit,
) {
    // The kernel's least (it rounds 0 up): what it sends is not read.
    let _ = socket2::SockRef::from(&stream).set_recv_buffer_size(0);
    tokio::select! {
        () = tokio::time::sleep(timeout) => {}
        () = stop.cancelled() => {}
    }
    let _ = stream.set_zero_linger();
}

/// One connection, served until it ends, a deadline of its phase passes, or
/// shutdown finds it without a request in flight.
// Each is a separate thing the connection's task owns or shares; a struct
// holding them would only be unpacked again here.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    slot: Arc<Slot>,
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
        let trust = Trust(slot.clone());
        tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            let in_flight = activity.request_started();
            request.extensions_mut().insert(draining.clone());
            request.extensions_mut().insert(budget.clone());
            request.extensions_mut().insert(trust.clone());
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
            () = tokio::time::sleep_until(deadline.at) => {
                let deadline = activity.deadline(&limits);
                if deadline.at <= Instant::now() {
                    tracing::debug!(reset = deadline.reset, "closing a connection past its header, idle or stall timeout");
                    if deadline.reset {
                        activity.reset.store(true, Ordering::Relaxed);
                    }
                    return;
                }
            }
            () = slot.evicted.cancelled() => {
                tracing::debug!("resetting the oldest unproven connection to make room");
                activity.reset.store(true, Ordering::Relaxed);
                return;
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

/// When a connection's current phase runs out, and how it is then closed.
struct Deadline {
    at: Instant,
    /// Reset (SO_LINGER 0) rather than closed politely: the peer is stuck or
    /// hostile, and whatever the kernel still holds for it is freed at once.
    reset: bool,
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
    /// on it there too. While it is set no request bytes are read
    /// (`Watched::poll_read`).
    write_blocked: AtomicBool,
    /// The read that waits for the output to move on.
    read_waker: AtomicWaker,
    /// Close with SO_LINGER 0 (`Watched`'s drop).
    reset: AtomicBool,
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
            read_waker: AtomicWaker::new(),
            reset: AtomicBool::new(false),
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

    fn deadline(&self, limits: &ConnectionLimits) -> Deadline {
        let stalled = self.last_progress() + limits.stall_timeout;
        let (phase, quiet) = match self.get() {
            Phase::Head(since) => (since + limits.header_read_timeout, false),
            Phase::Idle(since) => (since + limits.idle_timeout, true),
            Phase::Busy(_) => {
                return Deadline {
                    at: stalled,
                    reset: true,
                };
            }
        };
        if self.write_blocked.load(Ordering::Acquire) {
            Deadline {
                at: phase.min(stalled),
                reset: true,
            }
        } else {
            Deadline {
                at: phase,
                reset: !quiet,
            }
        }
    }

    /// What a write or flush of the socket returned.
    fn wrote<T>(&self, polled: &Poll<std::io::Result<T>>, moved: impl FnOnce(&T) -> bool) {
        match polled {
            Poll::Pending => self.write_blocked.store(true, Ordering::Release),
            Poll::Ready(result) => {
                if result.as_ref().is_ok_and(moved) {
                    self.progressed();
                }
                if self.write_blocked.swap(false, Ordering::AcqRel) {
                    self.read_waker.wake();
                }
            }
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

impl Drop for Watched {
    fn drop(&mut self) {
        if self.activity.reset.load(Ordering::Relaxed) {
            // Closing now sends RST and frees the socket's buffers; a failure
            // leaves the ordinary close.
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        // Output the peer does not take: its next pipelined request waits in
        // the socket (and, once the window closes, with the peer) instead of
        // starting more work whose answers would pile up too.
        if self.activity.write_blocked.load(Ordering::Acquire) {
            self.activity.read_waker.register(cx.waker());
            // The write may have moved on between the load and the register.
            if self.activity.write_blocked.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_peer_is_its_64_and_a_mapped_ipv4_address_its_ipv4_address() {
        let peer = |a: &str| Peer::from(a.parse::<IpAddr>().expect("an address"));
        assert_eq!(peer("2001:db8:1:2::1"), peer("2001:db8:1:2:ffff::9"));
        assert_ne!(peer("2001:db8:1:2::1"), peer("2001:db8:1:3::1"));
        assert_eq!(peer("::ffff:192.0.2.7"), peer("192.0.2.7"));
        assert_ne!(peer("192.0.2.7"), peer("192.0.2.8"));
    }

    #[test]
    fn held_connections_get_what_the_open_file_limit_leaves() {
        let limits = ConnectionLimits::default(); // 10,000 connections
        assert_eq!(held_room(&limits, 1, 1_048_576), 10_000);
        assert_eq!(held_room(&limits, 1, 21_024), 10_000);
        assert_eq!(held_room(&limits, 1, 20_000), 8_976);
        assert_eq!(held_room(&limits, 2, 20_000), 0);
        assert_eq!(held_room(&limits, 1, 1_024), 0);
    }
}
