//! `cargo bench --bench voice_latency`: the time `POST /twilio/voice` takes against
//! a local Redis, over N sequential signed calls (default 10,000; BENCH_CALLS sets
//! it). Prints percentiles; asserts nothing about time (shared, noisy machines).

use std::time::{Duration, Instant};

use switchboard::agent::{AgentSpec, SettableState};
use switchboard::config::{RoutingTable, Settings};
use switchboard::redis_server::RedisServer;
use switchboard::server;
use switchboard::store::Actor;
use switchboard::twilio::signature;

const TOKEN: &str = "bench-token";

#[tokio::main]
async fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let redis = RedisServer::start().expect("redis-server");
    let mut settings = Settings::new(redis.url());
    settings.routing = RoutingTable::parse(
        "[[queues]]\nname = \"default\"\nfallback = [\"voicemail\"]\n",
        "bench",
    )
    .unwrap();
    settings.twilio_auth_token = Some(TOKEN.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = server::build_state(settings).unwrap();
    server::warm_up(&state).await;
    let store = state.engine.store().clone();
    tokio::spawn(server::serve(listener, state, std::future::pending()));

    // One agent per call, so every measured call takes the reserve-an-agent path.
    for i in 0..calls {
        let id = format!("agent{i}");
        let spec = AgentSpec {
            id: id.clone(),
            name: id.clone(),
            contact: format!("client:{id}"),
            queues: vec!["default".into()],
            heartbeat_secs: 0,
            skills: Default::default(),
        };
        store.put_agent(&spec, &Actor::Admin).await.unwrap();
        store
            .set_agent_state(&id, SettableState::Available, false, &Actor::Admin)
            .await
            .unwrap();
    }

    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let url = format!("{base}/twilio/voice");
    let mut dial = run(&http, &url, calls, 0).await;
    // With every agent reserved, the same number of calls measures the fallback path.
    let mut fallback = run(&http, &url, calls.min(2000), calls).await;
    report("dial an agent", &mut dial);
    report("fallback (no agent free)", &mut fallback);
    drop(redis);
}

async fn run(http: &reqwest::Client, url: &str, calls: usize, offset: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(calls);
    let started = Instant::now();
    for n in 0..calls {
        let params = vec![
            ("CallSid".to_owned(), format!("CA{:032x}", offset + n)),
            ("From".to_owned(), "+15005550001".to_owned()),
            ("To".to_owned(), "+15005550006".to_owned()),
        ];
        let sig = signature::compute(TOKEN, url, &params);
        let t = Instant::now();
        let response = http
            .post(url)
            .header("X-Twilio-Signature", sig)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&params).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await.unwrap();
        took.push(t.elapsed());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{calls} sequential calls in {secs:.2} s ({:.0} calls/s)",
        calls as f64 / secs
    );
    took
}

fn report(name: &str, took: &mut [Duration]) {
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("precision 3 is valid");
    for t in took.iter() {
        let _ = histogram.record(u64::try_from(t.as_micros()).unwrap_or(u64::MAX));
    }
    let at = |q: f64| Duration::from_micros(histogram.value_at_quantile(q));
    println!(
        "{name}: n={} p50={:?} p90={:?} p99={:?} max={:?}",
        histogram.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        Duration::from_micros(histogram.max())
    );
}
