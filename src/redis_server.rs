//! A throwaway `redis-server` child on a free loopback port: what `demo` runs when
//! no Redis URL is given, and what every integration test starts for itself. It
//! keeps nothing on disk and dies with its owner (dropped, or the owner killed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    #[error(
        "redis-server is not installed (not found on PATH): install the Debian/Ubuntu package with \
         `sudo apt-get install redis-server` (macOS: `brew install redis`), or point \
         SWITCHBOARD_REDIS_URL at a running Redis"
    )]
    NotInstalled,
    #[error("cannot start redis-server: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("redis-server on port {0} did not answer PING within 10 s")]
    NotReady(u16),
}

/// A running `redis-server`; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    /// With TLS: the TLS port.
    tls_port: Option<u16>,
    /// Arguments on top of the port and the throwaway settings.
    extra: Vec<String>,
    /// Its own working directory: nothing is saved there unless a client
    /// sends `SAVE`, and then a restart loads it (a Redis that comes back
    /// with its data, as after a failover to an up-to-date replica).
    data_dir: std::path::PathBuf,
    child: Option<Child>,
}

/// The files of a TLS `redis-server`: its certificate and key (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> Result<RedisServer, RedisServerError> {
        let port = free_port()?;
        RedisServer::start_with(port, None, Vec::new())
    }

    /// Starts one on a free port with `extra` arguments (e.g. `--replicaof`).
    pub fn start_with_args(extra: Vec<String>) -> Result<RedisServer, RedisServerError> {
        RedisServer::start_with(free_port()?, None, extra)
    }

    fn start_with(
        port: u16,
        tls_port: Option<u16>,
        extra: Vec<String>,
    ) -> Result<RedisServer, RedisServerError> {
        let mut server = RedisServer {
            port,
            tls_port,
            extra,
            data_dir: data_dir(port)?,
            child: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// Starts one that also serves TLS, on a second free port (see
    /// [`RedisServer::tls_url`]); the plain port is for readiness only.
    pub fn start_tls(files: &TlsFiles) -> Result<RedisServer, RedisServerError> {
        RedisServer::start_tls_with_args(files, Vec::new())
    }

    /// As [`RedisServer::start_tls`], with `extra` arguments (e.g. a Cluster
    /// node's).
    pub fn start_tls_with_args(
        files: &TlsFiles,
        extra: Vec<String>,
    ) -> Result<RedisServer, RedisServerError> {
        let port = free_port()?;
        let tls_port = free_port()?;
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let args: Vec<String> = [
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            path(&files.cert),
            "--tls-key-file".into(),
            path(&files.key),
            // Clients are not asked for a certificate: managed Redis services
            // authenticate with a password over TLS.
            "--tls-auth-clients".into(),
            "no".into(),
        ]
        .into_iter()
        .chain(extra)
        .collect();
        RedisServer::start_with(port, Some(tls_port), args)
    }

    /// `rediss://localhost:<tls port>` (the name its certificate must carry),
    /// for a server started with [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("rediss://localhost:{port}"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, for a server started with [`RedisServer::start_tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would: nothing is saved).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (after `stop`, a restart as in a Redis
    /// outage; while running, a no-op): empty, unless a client sent `SAVE`.
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        if self.child.is_some() {
            return Ok(());
        }
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .arg("--dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RedisServerError::NotInstalled,
            _ => RedisServerError::Spawn(e),
        })?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// The process id, to pause it (SIGSTOP) in fault tests.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn wait_ready(&mut self) -> Result<(), RedisServerError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while Instant::now() < deadline {
            if ping(addr) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_exited)) = child.try_wait()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(RedisServerError::NotReady(self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A fresh working directory for the server on `port`.
fn data_dir(port: u16) -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("switchboard-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Waits until something accepts connections on loopback `port` (a child
/// just started); false if nothing did within `within`.
pub fn wait_listening(port: u16, within: Duration) -> bool {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// On Linux the child gets SIGKILL when its parent dies, however it dies, so a
/// killed `demo` or test run leaves no Redis behind.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling process.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}
