//! `switchboard demo`: Redis (a throwaway `redis-server` unless a URL is given),
//! the example routing file and agents of `examples/`, a server, and the exact
//! commands to place a signed test call against it.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::routing::Queue;
use crate::config::{LogFormat, RoutingTable, Settings};
use crate::redis_server::RedisServer;
use crate::roster::Roster;
use crate::twilio::signature;
use crate::{server, telemetry};
use anyhow::Context;

const EXAMPLE_ROUTING: &str = include_str!("../examples/routing.toml");
const EXAMPLE_AGENTS: &str = include_str!("../examples/agents.toml");

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// HTTP listen address.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Use this Redis instead of starting a throwaway one.
    // The URL carries the Redis password: clap would print it in `--help`.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Routing file; default: examples/routing.toml (built in).
    #[arg(long, env = "SWITCHBOARD_ROUTING")]
    pub routing: Option<PathBuf>,
    /// Agents file; default: examples/agents.toml (built in).
    #[arg(long)]
    pub agents: Option<PathBuf>,
    /// Redis key namespace.
    #[arg(long, env = "SWITCHBOARD_NAMESPACE", default_value = "demo")]
    pub namespace: String,
    /// Twilio auth token the demo signs with.
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        default_value = "demo-auth-token",
        hide_env_values = true
    )]
    pub twilio_auth_token: String,
    /// Admin API bearer token.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_TOKEN",
        default_value = "demo-admin-token",
        hide_env_values = true
    )]
    pub admin_token: String,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Started from the main thread on purpose: the child is tied to the thread
    // that spawned it (PR_SET_PDEATHSIG), and this one lives as long as the demo.
    let (redis_url, _redis) = match &args.redis_url {
        Some(url) => (url.clone(), None),
        None => {
            let redis = RedisServer::start()?;
            println!("started a throwaway redis-server on port {}", redis.port());
            (redis.url(), Some(redis))
        }
    };
    let routing = match &args.routing {
        Some(path) => RoutingTable::load(path)?,
        None => RoutingTable::parse(EXAMPLE_ROUTING, "examples/routing.toml")?,
    };
    // Checked as `agents import` checks a file, before anything starts.
    let roster = match &args.agents {
        Some(path) => Roster::load(path, &routing)?,
        None => Roster::parse(EXAMPLE_AGENTS, "examples/agents.toml", &routing)?,
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (set SWITCHBOARD_LISTEN)", args.listen))?;
    let bound = listener.local_addr()?;
    let public_url = format!("http://{bound}");

    let mut settings = Settings::new(redis_url);
    settings.listen = bound;
    settings.routing = routing;
    settings.public_url = Some(public_url.clone());
    settings.twilio_auth_token = Some(args.twilio_auth_token.as_str().into());
    settings.admin_token = Some(args.admin_token.as_str().into());
    settings.namespace = args.namespace.clone();
    settings.log_format = LogFormat::Pretty;
    let state = server::build_state(settings)?;
    server::warm_up(&state).await;

    // As `switchboard agents import` applies it: agents already in a Redis
    // given with --redis-url keep their state.
    let store = state.engine.store();
    roster.plan(store, false).await?.apply(store).await?;

    let table = state.engine.table();
    print_instructions(&public_url, &args, &table.queues()[0], &program());
    // Logs start after the instructions, so the two never interleave.
    let _log = telemetry::init(LogFormat::Pretty);
    server::run(listener, state, true, server::shutdown_on_signal()).await?;
    Ok(())
}

/// How to run this binary again, for the commands the demo prints: `cargo run
/// --release --` when cargo started it, `switchboard` when that is the one on
/// PATH, else its path.
fn program() -> String {
    if std::env::var_os("CARGO").is_some() {
        return "cargo run --release --".into();
    }
    let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "switchboard".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::canonicalize(dir.join("switchboard")).is_ok_and(|found| found == exe)
        })
    });
    if on_path {
        "switchboard".into()
    } else {
        exe.display().to_string()
    }
}

fn print_instructions(base: &str, args: &DemoArgs, queue: &Queue, program: &str) {
    let to = queue.numbers.first().map_or("+15005550006", String::as_str);
    let expires_secs = u64::from(queue.settings.ring_timeout_secs)
        + u64::from(queue.settings.reservation_grace_secs);
    let defaults = &queue.settings;
    let call_sid = format!("CA{:032x}", rand::random::<u128>());
    let url = format!("{base}/twilio/voice");
    let params: Vec<(String, String)> = [
        ("CallSid", call_sid.as_str()),
        ("From", "+15005550001"),
        ("To", to),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = signature::compute(&args.twilio_auth_token, &url, &params);
    let form: String = params
        .iter()
        .map(|(k, v)| format!(" \\\n    --data-urlencode '{k}={v}'"))
        .collect();
    println!(
        "\nswitchboard demo is serving on {base}\n\
         \nPlace a signed test call (Twilio's webhook for a call to {to}):\n\
         \n  curl -s -X POST {url} \\\n    -H 'X-Twilio-Signature: {sig}'{form}\n\
         \nIt answers a <Dial> to the longest-idle agent and reserves them. Nothing answers that\
         \nDial, so {expires_secs} s later the reservation expires and counts as that agent's miss:\
         \nthey get no call for {no_answer} s. (The simulations below answer, and cost nobody a miss.)\n\
         \nOr let switchboard play Twilio: one call with its trace, then 200 calls at once (three\
         \nagents take a few; waiting callers press 1 for voicemail, the others are forwarded):\n\
         \n  {program} simulate --url {base} --auth-token {token}\n  {program} simulate --url {base} --auth-token {token} --calls 200 --concurrency 20 --to +15005550006,+15005550007 --wait-key 1\n\
         \nCallers to sales (+15005550006) wait in line when every agent is busy; watch one line form\
         \nand drain over about three minutes (the agents' wrap-up paces it):\n\
         \n  {program} simulate --url {base} --auth-token {token} --calls 30 --concurrency 15 --to +15005550006 --hold-ms 1000\n\
         \nSee the queues and agents:\n\
         \n  curl -s -H 'Authorization: Bearer {admin}' {base}/v1/queues\n  curl -s -H 'Authorization: Bearer {admin}' {base}/v1/agents\n\
         \nWatch it live in the console, {base}/console/ : sign in with {admin} (the\
         \nsupervisor view), or with an agent's own token (the agent view) from:\n\
         \n  curl -s -X POST -H 'Authorization: Bearer {admin}' {base}/v1/agents/ana/tokens\n\
         \nCtrl-C stops the demo and its Redis. Its logs follow.\n",
        admin = args.admin_token,
        token = args.twilio_auth_token,
        no_answer = defaults.no_answer_delay_secs,
    );
}
