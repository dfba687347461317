//! `cargo bench --bench signature_cost`: what an unauthenticated sender can make the
//! signature check cost. For each worst-case 64 KiB webhook body it prints the time
//! a wrong signature takes to be refused, over HTTP (request sent → 403 read) and in
//! process (form parse + signature check, what `verify` does), so SPEC's "any body up
//! to 64 KiB is accepted or refused in under 5 ms" can be checked on a given machine.
//! Asserts nothing about time (shared, noisy machines); BENCH_ROUNDS sets the rounds.

use std::time::{Duration, Instant};

use switchboard::config::Settings;
use switchboard::server;
use switchboard::twilio::params::Params;
use switchboard::twilio::signature;

const TOKEN: &str = "bench-token";
const LIMIT: usize = 64 * 1024;

/// Bodies just under the 64 KiB limit, each built to stress one part of the check.
fn worst_cases() -> Vec<(&'static str, String)> {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let name3 = |i: usize| -> String {
        [i / 3844, (i / 62) % 62, i % 62]
            .iter()
            .map(|&d| ALNUM[d] as char)
            .collect()
    };
    let fill = |part: &dyn Fn(usize) -> String| {
        let mut body = String::new();
        for i in 0.. {
            let next = part(i);
            if body.len() + next.len() + 1 > LIMIT {
                break;
            }
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str(&next);
        }
        body
    };
    vec![
        ("distinct 3-char names, no values", fill(&|i| name3(i))),
        (
            "one name, distinct values",
            fill(&|i| format!("a={}", name3(i))),
        ),
        ("one name, one value repeated", fill(&|_| "a=b".to_owned())),
        ("one 64 KiB value", format!("a={}", "x".repeat(LIMIT - 2))),
        (
            "long names sharing a prefix",
            fill(&|i| format!("{}{}=1", "p".repeat(1000), name3(i))),
        ),
        ("percent-encoded value", {
            let mut body = String::from("a=");
            while body.len() + 3 <= LIMIT {
                body.push_str("%41");
            }
            body
        }),
    ]
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    // A refused webhook never reaches Redis, so none is started.
    let mut settings = Settings::new("redis://127.0.0.1:1");
    settings.twilio_auth_token = Some(TOKEN.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/twilio/voice", listener.local_addr().unwrap());
    let state = server::build_state(settings).unwrap();
    tokio::spawn(server::serve(listener, state, std::future::pending()));

    println!(
        "machine: {} ({} cores); {rounds} rounds a body",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for (name, body) in worst_cases() {
        let pairs = Params::parse(body.as_bytes()).unwrap().pairs().len();
        let mut over_http = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let response = http
                .post(&url)
                .header("X-Twilio-Signature", wrong)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let _ = response.bytes().await.unwrap();
            over_http.push(t.elapsed());
            assert_eq!(status, 403, "{name}: a wrong signature must be refused");
        }
        let mut in_process = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let params = Params::parse(body.as_bytes()).unwrap();
            let valid = signature::is_valid(TOKEN, &url, params.pairs(), wrong);
            in_process.push(t.elapsed());
            assert!(!valid);
        }
        println!(
            "{name} ({} bytes, {pairs} pairs): HTTP {}; in process {}",
            body.len(),
            summary(&mut over_http),
            summary(&mut in_process)
        );
    }
}

fn summary(took: &mut [Duration]) -> String {
    took.sort();
    let pct = |p: f64| took[((took.len() as f64 * p) as usize).min(took.len() - 1)];
    format!(
        "p50={:.2?} p99={:.2?} max={:.2?}",
        pct(0.50),
        pct(0.99),
        took[took.len() - 1]
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}
