//! switchboard as a real process of the built binary (`serve`, `worker`), on a
//! free port, logging to a file, and stopped by its PID when dropped.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use switchboard::redis_server::free_port;

pub struct Process {
    child: Child,
    /// `http://127.0.0.1:<port>`: the webhooks (serve), or /healthz and
    /// /metrics (worker).
    pub base: String,
    pub log: std::path::PathBuf,
}

impl Process {
    /// `switchboard <args>` against `redis_url`, with `env` on top of the
    /// listen address and a 1.5 s Redis timeout; returns once /healthz answers.
    pub async fn start(
        args: &[&str],
        redis_url: &str,
        name: &str,
        env: &[(&str, &str)],
    ) -> Process {
        Process::start_on(free_port().unwrap(), args, redis_url, name, env).await
    }

    /// As [`Process::start`], on a port the caller chose (to name it in `env`).
    pub async fn start_on(
        port: u16,
        args: &[&str],
        redis_url: &str,
        name: &str,
        env: &[(&str, &str)],
    ) -> Process {
        let log = std::env::temp_dir().join(format!("sb-{name}-{}.log", std::process::id()));
        let mut command = command(port, args, redis_url, env);
        command
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit());
        Process::launch(command, port, args, log).await
    }

    /// As [`Process::start`], with stdout and stderr on a pipe whose reading
    /// end is closed once the process runs, as `switchboard serve | head`
    /// leaves it: every log line it writes after that fails.
    pub async fn start_with_closed_output(
        args: &[&str],
        redis_url: &str,
        env: &[(&str, &str)],
    ) -> Process {
        let port = free_port().unwrap();
        let mut command = command(port, args, redis_url, env);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut process = Process::launch(command, port, args, std::path::PathBuf::new()).await;
        drop(process.child.stdout.take());
        drop(process.child.stderr.take());
        process
    }

    /// Spawns `command` and returns once /healthz answers on `port`.
    async fn launch(
        mut command: Command,
        port: u16,
        args: &[&str],
        log: std::path::PathBuf,
    ) -> Process {
        let child = command.spawn().expect("start switchboard");
        let process = Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let started = Instant::now();
        let http = switchboard::tls::http_client_builder()
            .build()
            .expect("HTTP client");
        while http
            .get(format!("{}/healthz", process.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "switchboard {args:?} did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process
    }

    pub fn sigterm(&self) {
        sigterm(&self.child);
    }

    /// SIGKILL, as a node dying or `kill -9`: nothing is finished or said.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the exit; its code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        wait_exit(&mut self.child, limit).and_then(|status| status.code())
    }
}

/// SIGTERM to a child of ours: the graceful stop.
pub fn sigterm(child: &Child) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
}

/// Waits up to `limit` for `child` to exit: its status, or `None` once
/// the limit passed and it was killed.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `switchboard <args>` on `127.0.0.1:<port>` against `redis_url`, with `env`
/// on top of a 1.5 s Redis timeout and debug logs.
fn command(port: u16, args: &[&str], redis_url: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(args)
        .env("SWITCHBOARD_REDIS_URL", redis_url)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_REDIS_TIMEOUT_MS", "1500")
        .env_remove("SWITCHBOARD_LOG_FORMAT")
        .env("RUST_LOG", "debug")
        .envs(env.iter().copied());
    command
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
