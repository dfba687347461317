//! `switchboard simulate`: a Twilio stand-in. It places signed calls against one
//! or more running servers (round-robin, like a load balancer), follows the TwiML
//! as Twilio does (Dial actions, agent-leg status callbacks, the number's status
//! callback, voicemail), plays an outcome mix, and reports throughput, webhook
//! latency, outcomes and invariant violations (an agent handed to a call while
//! another still holds it). It is the demo's "place a call" and the load bench.

mod call;
mod callback_check;
mod day;
mod estimates;
mod history;
mod line_check;
mod lookup;
mod progress;
mod report;
mod rest;
mod steps;
pub mod twiml;
mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

pub use report::Report;

/// The flags of `switchboard simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Base URL of a switchboard server; repeat for several (requests rotate).
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    pub urls: Vec<String>,
    /// Calls to place.
    #[arg(long, default_value_t = 1)]
    pub calls: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Calls started per second (a steady load; with enough --concurrency to
    /// keep up). Unset: each call starts as soon as one ends.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The Twilio auth token the servers check signatures with.
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        default_value = "demo-auth-token",
        hide_env_values = true
    )]
    pub auth_token: String,
    /// Called numbers (To), used in turn.
    #[arg(long = "to", default_value = "+15005550006", value_delimiter = ',')]
    pub to: Vec<String>,
    /// Share of agent attempts answered.
    #[arg(long, default_value_t = 0.8)]
    pub answer: f64,
    /// Share of agent attempts not answered (`no-answer`).
    #[arg(long, default_value_t = 0.1)]
    pub no_answer: f64,
    /// Share of agent attempts `busy`.
    #[arg(long, default_value_t = 0.05)]
    pub busy: f64,
    /// Share of agent attempts where the caller hangs up while the agent rings.
    #[arg(long, default_value_t = 0.05)]
    pub hangup: f64,
    /// Share of agent attempts picked up by the agent's voicemail (a real phone
    /// left unattended): a miss in a `confirm` queue, else the caller's call.
    #[arg(long, default_value_t = 0.0)]
    pub agent_voicemail: f64,
    /// How long one hold round plays before the next wait fetch, in ms (Twilio
    /// plays the queue's loop_secs; a simulation need not wait that long).
    #[arg(long, default_value_t = 50)]
    pub hold_ms: u64,
    /// Play Twilio's REST side too: serve a stand-in of the Calls update
    /// endpoint here (e.g. 127.0.0.1:8090); start the server with
    /// SWITCHBOARD_TWILIO_API_URL=http://<this address>, TWILIO_ACCOUNT_SID =
    /// --account-sid and the same auth token, and a waiting caller the server
    /// redirects fetches its new URL at once.
    #[arg(long)]
    pub rest_listen: Option<std::net::SocketAddr>,
    /// The account the simulated calls belong to (their webhooks' AccountSid),
    /// which the REST stand-in expects.
    #[arg(long, default_value = "AC00000000000000000000000000000000")]
    pub account_sid: String,
    /// Chance that a waiting caller hangs up during a hold round.
    #[arg(long, default_value_t = 0.0)]
    pub wait_hangup: f64,
    /// Chance that a waiting caller presses a key (--wait-digit) during a round
    /// that gathers keys.
    #[arg(long, default_value_t = 0.0)]
    pub wait_key: f64,
    /// The key a waiting caller presses: 0-9, * or #. Delivered as Twilio
    /// would: a `<Gather>`'s finish key (`#` unless `finishOnKey` says
    /// otherwise) is not sent, and the round goes on to its `<Redirect>`.
    #[arg(long, default_value_t = '1', value_parser = keypad_key)]
    pub wait_digit: char,
    /// Chance that a waiting caller asks to be called back the first time a
    /// round offers it (`callback_key`), halfway through that round, confirming
    /// its own number.
    #[arg(long, default_value_t = 0.0)]
    pub callback: f64,
    /// The key that asks for a callback (the queue's `callback_key`).
    #[arg(long, default_value_t = '2', value_parser = keypad_key)]
    pub callback_key: char,
    /// Weights of a callback try's outcome: the customer answers and presses
    /// 1, does not answer, or its voicemail picks up (told apart by answering
    /// machine detection where the queue asks for it; else it presses
    /// nothing).
    #[arg(long, default_value_t = 0.8)]
    pub callback_answer: f64,
    #[arg(long, default_value_t = 0.15)]
    pub callback_no_answer: f64,
    #[arg(long, default_value_t = 0.05)]
    pub callback_voicemail: f64,
    /// How long the customer's phone rings before it answers or gives up, in ms.
    #[arg(long, default_value_t = 2000)]
    pub callback_ring_ms: u64,
    /// A caller waiting to be called back gives up after this long without a
    /// try (after its request, or its last try), in ms.
    #[arg(long, default_value_t = 600_000)]
    pub callback_wait_ms: u64,
    /// The servers' TWILIO_CPS: no more calls than this may be placed within
    /// any second (checked at the REST stand-in, with 50 ms for the network).
    #[arg(long)]
    pub cps: Option<f64>,
    /// Chance that any one callback is lost (never sent).
    #[arg(long, default_value_t = 0.0)]
    pub lost: f64,
    /// Chance that any one callback is sent twice (the copy a little later).
    #[arg(long, default_value_t = 0.0)]
    pub duplicate: f64,
    /// How long an agent rings before its outcome, in ms.
    #[arg(long, default_value_t = 20)]
    pub ring_ms: u64,
    /// How long an answered call lasts, in ms (the median, with --talk-sigma).
    #[arg(long, default_value_t = 50)]
    pub talk_ms: u64,
    /// Spread of answered calls' lengths: log-normal with this sigma around
    /// --talk-ms (0: every call lasts --talk-ms).
    #[arg(long, default_value_t = 0.0)]
    pub talk_sigma: f64,
    /// Play a working day in this many seconds: callers arrive at random at a
    /// rate that peaks at --rate at lunch (40 % of it in the morning and
    /// evening), the --agents sign in and out on a plan, and the estimated
    /// waits are judged (docs/simulate.md). --calls is not used.
    #[arg(long, requires = "rate")]
    pub day: Option<f64>,
    /// Judge the estimates of the callers who waited this many seconds or
    /// more (issue 22's goal is about waits over a minute).
    #[arg(long, default_value_t = 60.0)]
    pub judge_waits_from: f64,
    /// Seed of the outcome choices (each call draws from seed + its number).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print every request of every call (default: only for a single call).
    #[arg(long)]
    pub trace: bool,
    /// Print only the JSON summary line.
    #[arg(long)]
    pub json: bool,
    /// Create this many agents (`sim-0`…) through the admin API first, available.
    #[arg(long, default_value_t = 0)]
    pub agents: usize,
    /// Queues the created agents join.
    #[arg(long, default_value = "sales,support", value_delimiter = ',')]
    pub agent_queues: Vec<String>,
    /// Each created agent joins this many of --agent-queues, drawn from the
    /// seed (0: all of them).
    #[arg(long, default_value_t = 0)]
    pub agent_queues_each: usize,
    /// Also check invariant 7 from outside: look at the lines in this Redis
    /// (the servers' SWITCHBOARD_REDIS_URL) every 100 ms for agents idle beside
    /// waiting callers and callers left in line after hanging up.
    #[arg(long)]
    pub watch_redis: Option<String>,
    /// The servers' namespace, for --watch-redis.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The servers' sweep interval in ms (SWITCHBOARD_SWEEP_INTERVAL_MS), for
    /// --watch-redis: an agent freed by time is matched within it.
    #[arg(long, default_value_t = 1000)]
    pub sweep_ms: u64,
    /// Keys a caller presses at a keypad menu (`[menus.NAME]`), one per
    /// call in turn: call n presses the (n mod len)th. Empty: no key (the
    /// menu is heard twice, then its default is taken).
    #[arg(long, default_value = "")]
    pub menu_digits: String,
    /// Play the customer's lookup service (`[lookup]`) here, e.g.
    /// 127.0.0.1:8091: start the server with `url =
    /// "http://<this address>/lookup"` and the same --lookup-secret.
    #[arg(long)]
    pub lookup_listen: Option<std::net::SocketAddr>,
    /// The key the server signs lookups with (SWITCHBOARD_LOOKUP_SECRET).
    #[arg(
        long,
        env = "SWITCHBOARD_LOOKUP_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub lookup_secret: String,
    /// What the lookup stand-in answers each call needs, in turn by the
    /// call's number (semicolon separated, e.g. `es;billing>=3;any`).
    #[arg(long, value_delimiter = ';')]
    pub needs: Vec<String>,
    /// Skills of the agents `--agents` creates: agent i gets the (i mod n)th
    /// and the ((i / n) mod n)th (level 1).
    #[arg(long, value_delimiter = ',')]
    pub agent_skills: Vec<String>,
    /// Admin token, for `--agents` and, after a run where callers waited,
    /// reading their histories: how late each step relaxed.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_TOKEN",
        default_value = "demo-admin-token",
        hide_env_values = true
    )]
    pub admin_token: String,
}

/// A key of a phone's keypad.
fn keypad_key(raw: &str) -> Result<char, String> {
    match raw.chars().collect::<Vec<_>>()[..] {
        [c] if c.is_ascii_digit() || c == '*' || c == '#' => Ok(c),
        _ => Err(format!("{raw:?} is not a keypad key (0-9, * or #)")),
    }
}

impl SimulateArgs {
    /// Every agent attempt answered: no misses, no caller hanging up while
    /// an agent rings, no voicemail picking up.
    pub fn answer_every_attempt(&mut self) {
        self.answer = 1.0;
        self.no_answer = 0.0;
        self.busy = 0.0;
        self.hangup = 0.0;
        self.agent_voicemail = 0.0;
    }

    /// The command line's defaults, for embedding (tests): one call to `url`.
    pub fn new(url: impl Into<String>, auth_token: impl Into<String>) -> SimulateArgs {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: SimulateArgs,
        }
        // The defaults live in one place, the clap attributes above.
        let mut args = <Command as clap::Parser>::parse_from(["simulate"]).args;
        args.urls = vec![url.into()];
        args.auth_token = auth_token.into();
        args.admin_token = String::new();
        args
    }
}

/// Which call holds each agent right now, as the caller side sees it: an agent
/// is held from the `<Dial>` naming it until its leg ends.
#[derive(Default)]
pub(crate) struct Holders {
    held: Mutex<HashMap<String, String>>,
}

impl Holders {
    /// Takes `agent` for `call`; `Some(other)` is a violation: `other` holds it.
    fn take(&self, agent: &str, call: &str) -> Option<String> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.get(agent) {
            Some(other) if other != call => Some(other.clone()),
            _ => {
                held.insert(agent.to_owned(), call.to_owned());
                None
            }
        }
    }

    fn release(&self, agent: &str, call: &str) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(agent).is_some_and(|c| c == call) {
            held.remove(agent);
        }
    }
}

/// Places the calls and gathers the report.
pub async fn run(args: &SimulateArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(!args.urls.is_empty(), "give at least one --url");
    anyhow::ensure!(!args.to.is_empty(), "give at least one --to number");
    let http = crate::tls::http_client_builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(args.concurrency.max(1))
        .build()
        .context("HTTP client")?;
    if args.agents > 0 {
        create_agents(&http, args).await?;
    }
    let redirects = Arc::new(rest::Redirects::default());
    let placements = Arc::new(rest::Placements::default());
    if let Some(addr) = args.rest_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("the REST stand-in cannot listen on {addr}"))?;
        if !args.json {
            println!("Twilio REST stand-in on http://{}", listener.local_addr()?);
        }
        tokio::spawn(rest::serve(
            listener,
            redirects.clone(),
            placements.clone(),
            args.account_sid.clone(),
            args.auth_token.clone(),
        ));
    }
    let asked = Arc::new(lookup::Asked::default());
    if let Some(addr) = args.lookup_listen {
        anyhow::ensure!(
            !args.lookup_secret.is_empty(),
            "--lookup-listen needs --lookup-secret (SWITCHBOARD_LOOKUP_SECRET)"
        );
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("the lookup stand-in cannot listen on {addr}"))?;
        if !args.json {
            println!(
                "lookup stand-in on http://{}/lookup",
                listener.local_addr()?
            );
        }
        tokio::spawn(lookup::serve(
            listener,
            crate::config::Secret::from(args.lookup_secret.as_str()),
            args.needs.clone(),
            asked.clone(),
        ));
    }
    let started = Instant::now();
    let watching = match &args.watch_redis {
        Some(url) => {
            let watch = watch::Watch::new(
                url,
                &args.namespace,
                Duration::from_millis(args.sweep_ms),
                started,
            )?;
            let stop = tokio_util::sync::CancellationToken::new();
            Some((tokio::spawn(watch.run(stop.clone())), stop))
        }
        None => None,
    };
    // With --day, when each call comes; else --calls, at --rate if given.
    let schedule: Option<Arc<Vec<Duration>>> = args.day.map(|secs| {
        Arc::new(day::arrivals(
            args.seed,
            Duration::from_secs_f64(secs.max(0.0)),
            args.rate.unwrap_or(0.0),
        ))
    });
    let calls = schedule.as_ref().map_or(args.calls, |s| s.len());
    let shared = Arc::new(call::Shared {
        redirects,
        placements: placements.clone(),
        http,
        args: args.clone(),
        holders: Holders::default(),
        next_url: AtomicUsize::new(0),
        trace: args.trace || calls == 1,
        started,
        run_id: rand::random(),
    });
    let progress = Arc::new(progress::Progress::default());
    // One call's trace says it all; --json asks for the report alone.
    let ticker = (calls > 1 && !shared.trace && !args.json)
        .then(|| progress::Ticker::start(progress.clone(), calls, started));
    let shifts = (args.day.is_some() && args.agents > 0)
        .then(|| tokio::spawn(day::play_shifts(shared.http.clone(), args.clone(), started)));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.clamp(1, calls.max(1)) {
        let shared = shared.clone();
        let progress = progress.clone();
        let schedule = schedule.clone();
        workers.spawn(async move {
            let mut report = Report::default();
            loop {
                let n = progress.begun.fetch_add(1, Ordering::Relaxed);
                if n >= calls {
                    break;
                }
                if let Some(at) = schedule.as_ref().and_then(|s| s.get(n)) {
                    tokio::time::sleep_until((shared.started + *at).into()).await;
                } else if let Some(rate) = shared.args.rate.filter(|r| *r > 0.0) {
                    // A steady rate: call n starts n / rate seconds after the
                    // first, however fast the others finished.
                    let due = shared.started + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                report.add_call(call::place(&shared, n).await);
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
            report
        });
    }
    let mut report = Report::default();
    while let Some(done) = workers.join_next().await {
        report.merge(done.context("a simulated call panicked")?);
    }
    drop(ticker);
    let took = shared.started.elapsed();
    if let Some((watching, stop)) = watching {
        stop.cancel();
        let watch = watching.await.context("the line watch panicked")?;
        report.add_findings(watch.settle(&report.ended_calls()).await);
    }
    if let Some(shifts) = shifts {
        report.add_agent_moves(shifts.await.context("the day's agent moves panicked")??);
    }
    if report.callbacks_requested > 0 && !args.admin_token.is_empty() {
        // A callback between two tries, or whose last try nobody reported,
        // ends on the servers' clock: its history is read once none is live.
        callbacks_settled(&shared.http, args, Duration::from_secs(180)).await;
    }
    let waited = report.waited_calls();
    if !args.admin_token.is_empty() && !waited.is_empty() {
        let base = args.urls[0].trim_end_matches('/');
        let sweep = Duration::from_millis(args.sweep_ms);
        let (histories, unread) =
            history::read(&shared.http, base, &args.admin_token, waited).await;
        report.add_steps(steps::judge(&histories, unread, sweep), sweep);
        let first: HashMap<String, u64> = histories
            .iter()
            .filter_map(|(sid, h)| Some((sid.clone(), estimates::first_estimate(h)?)))
            .collect();
        let from = Duration::try_from_secs_f64(args.judge_waits_from).unwrap_or_default();
        report.add_estimates(estimates::judge(&report.answered_calls(), &first, from));
        let callbacks = callback_check::judge(&histories);
        if callbacks.requested > 0 {
            let outbound: Vec<String> = callbacks
                .reserved
                .iter()
                .map(|(sid, _)| sid.clone())
                .collect();
            let (answered, _) =
                history::read(&shared.http, base, &args.admin_token, outbound).await;
            let answered: HashMap<String, i64> = answered
                .iter()
                .filter_map(|(sid, h)| Some((sid.clone(), callback_check::agent_answered(h)?)))
                .collect();
            let connect_ms = callbacks
                .reserved
                .iter()
                .filter_map(|(sid, at)| Some(u64::try_from(answered.get(sid)? - at).unwrap_or(0)))
                .collect();
            report.add_callback_outcomes(callbacks, connect_ms);
        }
    }
    if args.rest_listen.is_some() {
        let (placed, most) = placements.pace(Duration::from_millis(950));
        report.add_placements(placed, most, placements.violations(), args.cps);
    }
    if args.agents > 0 {
        report.add_agents_held(agents_held(&shared.http, args).await?);
    }
    report.add_lookups(
        asked.answered.load(Ordering::Relaxed),
        asked.forged.load(Ordering::Relaxed),
    );
    report.finish(args, took);
    Ok(report)
}

/// Waits (`within` at most) until no queue of `--agent-queues` has a live
/// callback.
async fn callbacks_settled(http: &reqwest::Client, args: &SimulateArgs, within: Duration) {
    let base = args.urls[0].trim_end_matches('/');
    let until = Instant::now() + within;
    while Instant::now() < until {
        let mut live = 0;
        for queue in &args.agent_queues {
            let url = format!("{base}/v1/queues/{queue}/callbacks");
            let list: Option<serde_json::Value> =
                match http.get(&url).bearer_auth(&args.admin_token).send().await {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
            live += list
                .and_then(|l| l["callbacks"].as_array().map(Vec::len))
                .unwrap_or(0);
        }
        if live == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The agents `--agents` created that are still reserved or on a call.
async fn agents_held(http: &reqwest::Client, args: &SimulateArgs) -> anyhow::Result<Vec<String>> {
    let base = args.urls[0].trim_end_matches('/');
    let url = format!("{base}/v1/agents?limit=10000");
    let list: serde_json::Value = http
        .get(&url)
        .bearer_auth(&args.admin_token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))?;
    Ok(list["agents"]
        .as_array()
        .map(|agents| {
            agents
                .iter()
                .filter(|a| {
                    a["id"].as_str().is_some_and(|id| id.starts_with("sim-"))
                        && (a["state"] == "reserved" || a["state"] == "on_call")
                })
                .filter_map(|a| a["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

async fn create_agents(http: &reqwest::Client, args: &SimulateArgs) -> anyhow::Result<()> {
    let base = args.urls[0].trim_end_matches('/');
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(args.seed);
    for i in 0..args.agents {
        let id = format!("sim-{i}");
        let queues: Vec<&String> = match args.agent_queues_each {
            0 => args.agent_queues.iter().collect(),
            each => rand::seq::IndexedRandom::sample(args.agent_queues.as_slice(), &mut rng, each)
                .collect(),
        };
        let skills: Vec<&String> = match args.agent_skills.len() {
            0 => Vec::new(),
            n => {
                let mut mine = vec![&args.agent_skills[i % n], &args.agent_skills[(i / n) % n]];
                mine.dedup();
                mine
            }
        };
        let body = serde_json::json!({ "name": id, "contact": format!("client:{id}"),
            "queues": queues, "skills": skills });
        for (path, body) in [
            (format!("{base}/v1/agents/{id}"), body),
            (
                format!("{base}/v1/agents/{id}/state"),
                serde_json::json!({ "state": "available", "force": true }),
            ),
        ] {
            let response = http
                .put(&path)
                .bearer_auth(&args.admin_token)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("PUT {path}"))?;
            anyhow::ensure!(
                response.status().is_success(),
                "PUT {path}: {}",
                response.status()
            );
        }
    }
    Ok(())
}
