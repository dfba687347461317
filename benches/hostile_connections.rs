//! `cargo bench --bench hostile_connections`: issue 18's two connection attacks
//! against a release `switchboard serve` on loopback, with default settings.
//!
//! 1. Slot holding: one peer (source address 127.0.0.2) keeps
//!    `ATTACK_CONNECTIONS` (default 11,000) empty connections open, reopening
//!    each one the server closes or refuses (after `ATTACK_REOPEN_MS`, default
//!    1,000), while signed `POST /twilio/voice` webhooks arrive from 127.0.0.1
//!    on fresh connections, 10 a second for `WEBHOOK_SECS` (default 30). It
//!    prints the webhooks' p50/p99/max (connect to whole answer) before and
//!    during the attack, and how many took longer than Twilio's 15 s.
//! 2. Never reading: `READERS` (default 200) connections from 127.0.0.2 each
//!    pipeline 1,000 `GET /v1/openapi.json` (13 KiB answers) and never read,
//!    for `HOLD_SECS` (default 45, past the 30 s stall timeout). It prints the
//!    kernel's TCP memory (`/proc/net/sockstat` "mem" pages, machine-wide) and
//!    the part on the server's own sockets, orphans included (`ss -tm` of the
//!    sockets on the server's port), before, at the peak and at the end.
//!
//! `BENCH_SERVER_BIN` runs another build of the server (the bench's own
//! release binary by default), e.g. the commit before the fixes, for a
//! before-and-after in one session.
//!
//! The attacker runs on this machine too; its sockets take a 4 KiB receive
//! buffer, so the machine-wide figure is mostly the server's. The fd limit is
//! raised to 65,536 (root), else to the hard limit, for the 11,000 sockets; the
//! server child inherits it (and holds fewer refused connections when it is
//! short: `listener::held_room`). Asserts nothing about time: machines are
//! shared and noisy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard::redis_server::RedisServer;
use switchboard::twilio::signature;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[path = "support/mod.rs"]
#[allow(dead_code)] // the CPU and RSS readings are other benches'
mod support;

use support::{AUTH, Server, env_or, machine};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::main]
async fn main() {
    let files = raise_fd_limit();
    let redis = RedisServer::start().expect("redis-server");
    let routing =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/load-routing.toml");
    let server = Server::start(&redis, &routing);
    let addr: SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address");
    println!("{}", machine());
    println!(
        "fd limit {files}; somaxconn {}; tcp_wmem {}",
        read_trimmed("/proc/sys/net/core/somaxconn"),
        read_trimmed("/proc/sys/net/ipv4/tcp_wmem")
    );

    let held: usize = env_or("ATTACK_CONNECTIONS", 11_000);
    let reopen = Duration::from_millis(env_or("ATTACK_REOPEN_MS", 1_000));
    let secs: u64 = env_or("WEBHOOK_SECS", 30);
    let mut sent = 0;
    let quiet = webhooks(addr, Duration::from_secs(10), &mut sent).await;
    report("signed webhooks, no attack", &quiet);

    let attack = SlotAttack::start(addr, held, reopen);
    let ramp = Instant::now();
    while attack.open.load(Ordering::Relaxed) < held as u64
        && ramp.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "attack 11: {held} connections wanted from {ATTACKER}, {} open after {:.1} s (reopen after {reopen:?})",
        attack.open.load(Ordering::Relaxed),
        ramp.elapsed().as_secs_f64()
    );
    let during = webhooks(addr, Duration::from_secs(secs), &mut sent).await;
    report("signed webhooks during attack 11", &during);
    println!(
        "attack 11: {} connections opened in all, {} ended by the server, {} connects failed; {} open at the end",
        attack.opened.load(Ordering::Relaxed),
        attack.ended.load(Ordering::Relaxed),
        attack.failed.load(Ordering::Relaxed),
        attack.open.load(Ordering::Relaxed),
    );
    attack.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let readers: usize = env_or("READERS", 200);
    let hold = Duration::from_secs(env_or("HOLD_SECS", 45));
    never_reading(addr, readers, hold).await;
    drop(server);
    drop(redis);
}

/// Raises the soft fd limit to the hard one; returns the soft limit.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            // What a server in a container gets (1,048,576 is common); only
            // root may raise the hard limit, so else the hard limit as it is.
            let wanted = libc::rlimit {
                rlim_cur: 65_536,
                rlim_max: limit.rlim_max.max(65_536),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                limit = wanted;
            } else {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
    limit.rlim_cur
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().replace('\t', " "))
        .unwrap_or_else(|_| "?".into())
}

/// Signed `POST /twilio/voice`, 10 a second for `length`, each on a fresh
/// connection from 127.0.0.1: the time from connect to the whole answer, or
/// `None` when no 200 came within 20 s.
async fn webhooks(addr: SocketAddr, length: Duration, sent: &mut u64) -> Vec<Option<Duration>> {
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let started = Instant::now();
    while started.elapsed() < length {
        tick.tick().await;
        *sent += 1;
        let n = *sent;
        tasks.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(20), signed_webhook(addr, n))
                .await
                .ok()
                .flatten()
        }));
    }
    let mut took = Vec::new();
    for task in tasks {
        took.push(task.await.ok().flatten());
    }
    took
}

async fn signed_webhook(addr: SocketAddr, n: u64) -> Option<Duration> {
    let url = format!("http://{addr}/twilio/voice");
    let params = vec![
        (
            "CallSid".to_owned(),
            format!("CA{:032x}", 0x5107_0000_0000 + n),
        ),
        ("From".to_owned(), "+15005550001".to_owned()),
        ("To".to_owned(), "+15005550006".to_owned()),
    ];
    let sig = signature::compute(AUTH, &url, &params);
    let body = serde_urlencoded::to_string(&params).ok()?;
    let request = format!(
        "POST /twilio/voice HTTP/1.1\r\nHost: {addr}\r\nX-Twilio-Signature: {sig}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    // `Connection: close`: the answer ends with the connection.
    stream.read_to_end(&mut answer).await.ok()?;
    answer
        .starts_with(b"HTTP/1.1 200")
        .then(|| started.elapsed())
}

fn report(name: &str, took: &[Option<Duration>]) {
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("precision 3 is valid");
    for t in took.iter().flatten() {
        let _ = histogram.record(u64::try_from(t.as_micros()).unwrap_or(u64::MAX));
    }
    let missing = took.iter().filter(|t| t.is_none()).count();
    let late = took
        .iter()
        .flatten()
        .filter(|t| **t > Duration::from_secs(15))
        .count();
    let at = |q: f64| Duration::from_micros(histogram.value_at_quantile(q));
    println!(
        "{name}: n={} p50={:.1?} p99={:.1?} max={:.1?}; over 15 s: {late}; no 200 within 20 s: {missing}",
        histogram.len(),
        at(0.50),
        at(0.99),
        Duration::from_micros(histogram.max()),
    );
}

/// A connection from the attacker's address, with a small receive buffer.
async fn attacker_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    socket.bind(SocketAddr::new(ATTACKER, 0))?;
    socket.connect(addr).await
}

/// Attack 11: connections that never send a byte, each reopened when it ends.
struct SlotAttack {
    stop: Arc<AtomicBool>,
    open: Arc<AtomicU64>,
    opened: Arc<AtomicU64>,
    ended: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SlotAttack {
    fn start(addr: SocketAddr, connections: usize, reopen: Duration) -> SlotAttack {
        let stop = Arc::new(AtomicBool::new(false));
        let [open, opened, ended, failed] = [(); 4].map(|()| Arc::new(AtomicU64::new(0)));
        let tasks = (0..connections)
            .map(|_| {
                let stop = stop.clone();
                let counters = [&open, &opened, &ended, &failed].map(Arc::clone);
                tokio::spawn(async move {
                    let [open, opened, ended, failed] = counters;
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut stream) = attacker_connect(addr).await else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(reopen).await;
                            continue;
                        };
                        opened.fetch_add(1, Ordering::Relaxed);
                        open.fetch_add(1, Ordering::Relaxed);
                        let mut byte = [0u8; 1];
                        // Until the server closes it, or the attack ends.
                        while !stop.load(Ordering::Relaxed) {
                            let read = stream.read(&mut byte);
                            if tokio::time::timeout(Duration::from_millis(500), read)
                                .await
                                .is_ok()
                            {
                                ended.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                        open.fetch_sub(1, Ordering::Relaxed);
                        drop(stream);
                        tokio::time::sleep(reopen).await;
                    }
                })
            })
            .collect();
        SlotAttack {
            stop,
            open,
            opened,
            ended,
            failed,
            tasks,
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // A connect still waiting on a full backlog is cut short too.
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Attack 12: pipelined requests whose answers are never read.
async fn never_reading(addr: SocketAddr, readers: usize, hold: Duration) {
    let port = addr.port();
    let before = Memory::now(port);
    let request = b"GET /v1/openapi.json HTTP/1.1\r\nHost: switchboard\r\n\r\n".repeat(1000);
    let (mut writers, mut streams) = (Vec::new(), Vec::new());
    for _ in 0..readers {
        let stream = match attacker_connect(addr).await {
            Ok(stream) => stream,
            Err(e) => {
                println!("attack 12: connect failed: {e}");
                continue;
            }
        };
        let (read, mut write) = stream.into_split();
        let request = request.clone();
        // The write waits once the server stops taking requests.
        writers.push(tokio::spawn(async move {
            let _ = write.write_all(&request).await;
            write
        }));
        streams.push(read);
    }
    let started = Instant::now();
    let mut peak = before;
    while started.elapsed() < hold {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = Memory::now(port);
        if now.machine > peak.machine {
            peak = now;
        }
    }
    let end = Memory::now(port);
    println!(
        "attack 12: {} never-reading connections from {ATTACKER}, 1,000 pipelined GET /v1/openapi.json each, held {hold:?}",
        streams.len()
    );
    println!("attack 12: kernel TCP memory before: {before}");
    println!("attack 12: kernel TCP memory at the peak: {peak}");
    println!("attack 12: kernel TCP memory after {hold:?}: {end}");
    for writer in writers {
        writer.abort();
    }
    drop(streams);
}

/// Kernel TCP memory: machine-wide, and on the server's sockets.
#[derive(Clone, Copy)]
struct Memory {
    machine: u64,
    server: u64,
    server_sockets: u64,
}

impl Memory {
    fn now(port: u16) -> Memory {
        let pages = std::fs::read_to_string("/proc/net/sockstat")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("TCP:"))
            .and_then(|l| l.split(" mem ").nth(1)?.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let (server, server_sockets) = server_sockets(port);
        Memory {
            machine: pages * 4096,
            server,
            server_sockets,
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} MB machine-wide, {:.1} MB on {} server sockets",
            self.machine as f64 / 1e6,
            self.server as f64 / 1e6,
            self.server_sockets
        )
    }
}

/// Bytes received, queued to send and allocated ahead (`skmem` r, w, f) on
/// the sockets whose local port is the server's, orphans included; and how many
/// sockets (less the listener).
fn server_sockets(port: u16) -> (u64, u64) {
    let out = Command::new("ss")
        .args(["-tmnaH", "sport", "=", &format!(":{port}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let (mut bytes, mut sockets) = (0u64, 0u64);
    for skmem in out.split("skmem:(").skip(1) {
        sockets += 1;
        let fields = skmem.split(')').next().unwrap_or("");
        for field in fields.split(',') {
            // "r123", "w456", "f789": not "rb…", "tb…" (the buffer sizes).
            let (name, value) =
                field.split_at(field.find(|c: char| c.is_ascii_digit()).unwrap_or(0));
            if matches!(name, "r" | "w" | "f") {
                bytes += value.parse::<u64>().unwrap_or(0);
            }
        }
    }
    (bytes, sockets.saturating_sub(1))
}
