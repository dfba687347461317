//! `switchboard demo`, the README's first command, does what it prints: the
//! signed test call is answered with a Dial, the two `simulate` commands of
//! "let switchboard play Twilio" finish within seconds with every call
//! accounted for, and the console's token command issues a token.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::process::{sigterm, wait_exit};

/// The demo process, stopped when dropped: SIGTERM first, so it stops its
/// Redis itself (only Linux also kills that child with its parent).
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        // Already reaped: its PID may be another process's by now.
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        sigterm(&self.0);
        // Killed if it has not stopped by then.
        let _ = wait_exit(&mut self.0, Duration::from_secs(10));
    }
}

/// Starts `demo` on a port the kernel picks (it prints the one it bound) and
/// returns it with what it printed up to its last line ("Ctrl-C stops the
/// demo and its Redis.").
fn start_demo() -> (Demo, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("demo")
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env_remove("SWITCHBOARD_REDIS_URL")
        .env_remove("SWITCHBOARD_ROUTING")
        .env_remove("SWITCHBOARD_ADMIN_TOKEN")
        .env_remove("TWILIO_AUTH_TOKEN")
        // Not started by cargo: the commands it prints name this binary.
        .env_remove("CARGO")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start switchboard demo");
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let (lines, printed) = mpsc::channel();
    // Reads to the end, after this test stops listening too: a closed pipe
    // would make the demo's next write to stdout fail.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = printed
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("demo did not finish printing:\n{out}"));
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("Ctrl-C stops the demo") {
            return (demo, out);
        }
    }
}

/// The arguments of each printed `<this binary> simulate …` line: the demo
/// names the binary it is (cargo did not start it here).
fn simulate_commands(printed: &str) -> Vec<Vec<String>> {
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_switchboard")).unwrap();
    let program = format!("{} ", exe.display());
    printed
        .lines()
        .filter_map(|l| l.trim().strip_prefix(program.as_str()))
        .filter(|rest| rest.starts_with("simulate "))
        .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Runs `switchboard <args>`; its report (the last stdout line, JSON), or a
/// panic if it fails or takes longer than `limit`. Its output goes to a file:
/// a trace longer than a pipe holds would stall it.
fn run_simulate(args: &[String], limit: Duration) -> serde_json::Value {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let out_path = std::env::temp_dir().join(format!(
        "sb-demo-simulate-{}-{}.out",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard simulate");
    let status = wait_exit(&mut child, limit)
        .unwrap_or_else(|| panic!("{args:?} took longer than {limit:?}"));
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    assert!(status.success(), "{args:?}: {status}\n{stdout}");
    let report = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(report).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The quoted value after `flag` in the printed curl command (`-H '…'`).
fn quoted_after<'a>(printed: &'a str, flag: &str) -> Vec<&'a str> {
    printed
        .split(flag)
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('\'')?.split('\'').next())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_does_what_it_prints() {
    let (mut demo, printed) = start_demo();
    let base = printed
        .lines()
        .find_map(|l| l.strip_prefix("switchboard demo is serving on "))
        .expect("the demo says where it serves")
        .trim()
        .to_owned();
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");

    // The signed test call.
    let url = format!("{base}/twilio/voice");
    assert!(
        printed.contains(&format!("curl -s -X POST {url}")),
        "{printed}"
    );
    let signature = quoted_after(&printed, "-H")
        .into_iter()
        .find_map(|h| h.strip_prefix("X-Twilio-Signature: "))
        .expect("a signature header");
    let form: Vec<(String, String)> = quoted_after(&printed, "--data-urlencode")
        .into_iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(form.len(), 3, "CallSid, From, To: {form:?}");
    let answer = http
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let twiml = answer.text().await.unwrap();
    assert!(twiml.contains("<Dial"), "{twiml}");
    // What that call costs the agent it reserved is said.
    assert!(printed.contains("counts as that agent's miss"), "{printed}");
    // Logs follow the instructions, not among them.
    assert!(
        !printed.contains(" INFO "),
        "logs among the instructions:\n{printed}"
    );

    // One call with its trace, then 200 at once: each within seconds, none
    // lost, no invariant broken.
    let commands = simulate_commands(&printed);
    assert!(commands.len() >= 2, "{printed}");
    for (args, calls) in commands[..2].iter().zip([1, 200]) {
        let report = tokio::task::block_in_place(|| run_simulate(args, Duration::from_secs(60)));
        assert_eq!(report["calls"], calls, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["violations"], 0, "{report}");
        let outcomes: u64 = report["outcomes"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(outcomes, calls, "every call ends somewhere: {report}");
    }

    // The console's sign-in: the admin token it names, and an agent's token.
    let admin = printed
        .split("sign in with ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the admin token to sign in with");
    let issued = http
        .post(format!("{base}/v1/agents/ana/tokens"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let token: serde_json::Value = issued.json().await.unwrap();
    let me = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let console = http.get(format!("{base}/console/")).send().await.unwrap();
    assert_eq!(console.status(), 200);

    // Ctrl-C while a console follows the events: the demo ends at once (the
    // stream gets its shutdown notice), its Redis with it.
    let stream = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let started = Instant::now();
    // SAFETY: a signal to our own child, which has not been reaped.
    unsafe { libc::kill(demo.0.id() as libc::pid_t, libc::SIGINT) };
    let stopped = tokio::task::block_in_place(|| wait_exit(&mut demo.0, Duration::from_secs(5)));
    assert!(
        stopped.is_some_and(|s| s.success()),
        "the demo did not stop within 5 s of Ctrl-C: {stopped:?}"
    );
    println!("the demo stopped {:?} after Ctrl-C", started.elapsed());
    drop(stream);
}
