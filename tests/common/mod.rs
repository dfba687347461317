//! Test harness: a real `redis-server` per test on a free port, switchboard
//! servers on port 0 against it, and helpers that sign requests like Twilio.
#![allow(dead_code)] // each test binary uses its own subset

pub mod browser;
pub mod cluster;
pub mod commandstats;
pub mod process;
pub mod sentinel;

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard::app::AppState;
use switchboard::config::{RoutingTable, Settings};
use switchboard::redis_server::RedisServer;
use switchboard::server;
use switchboard::twilio::signature;
use tokio_util::sync::CancellationToken;

pub const AUTH_TOKEN: &str = "test-auth-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// One queue, `support` (+15005550007), no wrap-up: an agent whose call ends
/// is free again at once.
pub const NO_WRAP_UP: &str = r#"
[defaults]
default_queue = "support"
wrap_up_secs = 0

[[queues]]
name = "support"
numbers = ["+15005550007"]
fallback = ["voicemail"]
"#;

/// Starts a throwaway Redis; a missing `redis-server` fails the test with the
/// install command, never skips it.
pub fn start_redis() -> RedisServer {
    match RedisServer::start() {
        Ok(redis) => redis,
        Err(e) => panic!("these tests need a real Redis: {e}"),
    }
}

/// Logs to stderr when TEST_LOG is set.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        // Kept for the whole test binary: dropping it would end logging.
        std::mem::forget(switchboard::telemetry::init(
            switchboard::config::LogFormat::Pretty,
        ));
    }
}

/// One switchboard server on 127.0.0.1:0, stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with its worker, as `switchboard serve` runs.
    pub async fn start(settings: Settings) -> TestServer {
        TestServer::start_with(settings, true).await
    }

    pub async fn start_with(settings: Settings, worker: bool) -> TestServer {
        init_logs();
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = server::build_state(settings).expect("state");
        server::warm_up(&state).await;
        let stop = CancellationToken::new();
        let task = tokio::spawn(server::run(listener, state.clone(), worker, stop.clone()));
        TestServer {
            base,
            state,
            stop,
            task: Some(task),
        }
    }

    /// Stops accepting, finishes requests in flight, and waits for that.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Settings for a test server: the given routing file, tokens set, small Redis deadline.
pub fn settings(redis_url: &str, routing: &str) -> Settings {
    let mut s = Settings::new(redis_url);
    s.routing =
        RoutingTable::parse(routing, "test-routing.toml").expect("test routing file is valid");
    s.twilio_auth_token = Some(AUTH_TOKEN.into());
    s.admin_token = Some(ADMIN_TOKEN.into());
    s.redis_timeout = Duration::from_millis(1000);
    s.sweep_interval = Duration::from_millis(100);
    s
}

/// A test's Redis, one server on it, and an HTTP client.
pub struct TestApp {
    pub redis: TestRedis,
    pub server: TestServer,
    pub http: reqwest::Client,
}

/// Test binaries named `*_on_cluster` (`tests/routing_on_cluster.rs`) run a
/// suite again with every server on one Redis Cluster the binary shares, each
/// `spawn_app` in a namespace of its own: many namespaces, spread over the
/// Cluster's masters.
pub fn on_cluster() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("_on_cluster")
}

/// Where a test's server keeps its state: a Redis of the test's own, or
/// Redis processes it reaches otherwise (through Sentinels, on a Cluster).
pub enum TestRedis {
    Own(RedisServer),
    Elsewhere,
}

const NOT_OWN: &str = "this test stops or inspects its own redis-server: it cannot run through Sentinels or on a Cluster";

impl std::ops::Deref for TestRedis {
    type Target = RedisServer;

    fn deref(&self) -> &RedisServer {
        match self {
            TestRedis::Own(redis) => redis,
            TestRedis::Elsewhere => panic!("{NOT_OWN}"),
        }
    }
}

impl std::ops::DerefMut for TestRedis {
    fn deref_mut(&mut self) -> &mut RedisServer {
        match self {
            TestRedis::Own(redis) => redis,
            TestRedis::Elsewhere => panic!("{NOT_OWN}"),
        }
    }
}

impl TestApp {
    /// A server whose Redis the test reaches otherwise (Sentinels, a Cluster).
    pub fn elsewhere(server: TestServer) -> TestApp {
        TestApp {
            redis: TestRedis::Elsewhere,
            server,
            http: switchboard::tls::http_client_builder()
                .build()
                .expect("HTTP client"),
        }
    }
}

/// Settings for a server in `namespace` on the Cluster of `seeds`.
pub fn cluster_settings(seeds: &[String], namespace: &str, routing: &str) -> Settings {
    let mut s = settings("redis://127.0.0.1", routing);
    s.redis_cluster = Some(seeds.iter().cloned().map(Into::into).collect());
    s.namespace = namespace.into();
    s
}

/// The seed URLs of the Cluster this test binary shares, started on first use.
/// Its nodes are started from a thread that lives as long as the binary, so
/// they get SIGKILL (PR_SET_PDEATHSIG) when the binary exits, and are stopped
/// by PID at a normal exit.
fn shared_cluster() -> &'static [String] {
    static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    static NODES: std::sync::Mutex<Option<cluster::Cluster>> = std::sync::Mutex::new(None);
    extern "C" fn stop_nodes() {
        let nodes = NODES.lock().map(|mut n| n.take()).unwrap_or(None);
        drop(nodes);
    }
    SEEDS.get_or_init(|| {
        let (started, seeds) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let cluster = cluster::Cluster::start();
            let urls = cluster.urls();
            *NODES.lock().expect("first and only start") = Some(cluster);
            // SAFETY: registers a plain function with no arguments.
            unsafe { libc::atexit(stop_nodes) };
            let _ = started.send(urls);
            loop {
                std::thread::park();
            }
        });
        seeds
            .recv()
            .expect("the shared Cluster did not start (its panic is above)")
    })
}

/// A namespace no other test of this binary uses.
fn fresh_namespace() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t{n}")
}

/// The routing file most tests use: sales overflows to support, then voicemail.
pub const ROUTING: &str = r#"
[defaults]
default_queue = "support"

[[queues]]
name = "sales"
numbers = ["+15005550006"]
fallback = ["queue:support", "voicemail"]

[[queues]]
name = "support"
numbers = ["+15005550007"]
fallback = ["number:+15005550010"]

[[queues]]
name = "vip"
numbers = ["+15005550008"]
fallback = ["client:concierge"]

[[queues]]
name = "night"
numbers = ["+15005550009"]
"#;

pub const SALES: &str = "+15005550006";
pub const SUPPORT: &str = "+15005550007";
pub const VIP: &str = "+15005550008";
pub const NIGHT: &str = "+15005550009";

pub async fn spawn_app(routing: &str) -> TestApp {
    spawn_app_with(routing, true, |_| {}).await
}

/// A test's Redis and one server on it, with or without its worker, its
/// settings changed by `configure` first.
pub async fn spawn_app_with(
    routing: &str,
    worker: bool,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let (redis, mut s) = if on_cluster() {
        let s = cluster_settings(shared_cluster(), &fresh_namespace(), routing);
        (TestRedis::Elsewhere, s)
    } else {
        let redis = start_redis();
        let s = settings(&redis.url(), routing);
        (TestRedis::Own(redis), s)
    };
    configure(&mut s);
    let server = TestServer::start_with(s, worker).await;
    TestApp {
        redis,
        server,
        http: switchboard::tls::http_client_builder()
            .build()
            .expect("HTTP client"),
    }
}

/// Settings that connect waiting callers through Twilio's REST API at `rest`:
/// the server gets a port known in advance, so its public URL (what a redirect
/// names) is its own address.
pub fn connect_through(rest: switchboard::twilio::rest::RestConfig) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        let port = switchboard::redis_server::free_port().expect("free port");
        s.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        s.public_url = Some(format!("http://127.0.0.1:{port}"));
        s.twilio_rest = Some(rest);
    }
}

/// Runs `simulate` with `args` and prints its report, which must show no
/// failed webhook and no violation.
pub async fn simulate_cleanly(
    args: &switchboard::simulate::SimulateArgs,
) -> switchboard::simulate::Report {
    let report = switchboard::simulate::run(args)
        .await
        .expect("simulate runs");
    report.print(false);
    assert_eq!(report.errors, 0, "{:?}", report.examples);
    assert_eq!(report.violations, 0, "{:?}", report.examples);
    report
}

/// `simulate` playing Twilio's REST side on a free port: the servers' REST
/// settings point at it (`config`, for `connect_through`), and `play` names it
/// in simulate's arguments.
pub struct SimulatedRest {
    pub config: switchboard::twilio::rest::RestConfig,
    listen: std::net::SocketAddr,
}

impl SimulatedRest {
    const ACCOUNT: &str = "AC00000000000000000000000000000000";

    pub fn new() -> SimulatedRest {
        use switchboard::twilio::rest::{Credentials, RestConfig};
        let port = switchboard::redis_server::free_port().expect("free port");
        SimulatedRest {
            config: RestConfig::new(
                format!("http://127.0.0.1:{port}"),
                Credentials::AuthToken {
                    account_sid: Self::ACCOUNT.into(),
                    token: AUTH_TOKEN.into(),
                },
            ),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// simulate's `--rest-listen` and `--account-sid`.
    pub fn play(&self, args: &mut switchboard::simulate::SimulateArgs) {
        args.rest_listen = Some(self.listen);
        args.account_sid = Self::ACCOUNT.into();
    }
}

/// Where the `[emergency]` answer of `WITH_EMERGENCY` forwards callers.
pub const EMERGENCY_NUMBER: &str = "+15005550010";

/// One queue (sales) and an emergency forward: for tests where Redis fails.
pub const WITH_EMERGENCY: &str = r#"
[defaults]
wrap_up_secs = 0

[[queues]]
name = "sales"
numbers = ["+15005550006"]
fallback = ["voicemail"]

[emergency]
fallback = "number:+15005550010"
"#;

/// The `[emergency]` answer: 200, TwiML, a plain forward to `EMERGENCY_NUMBER`
/// (no Dial action: switchboard has nothing to settle).
pub fn is_emergency(a: &Answer) -> bool {
    a.status == 200
        && a.content_type.starts_with("text/xml")
        && a.element_text("Number").as_deref() == Some(EMERGENCY_NUMBER)
        && a.attribute("Dial", "action").is_none()
}

/// `GET /v1<path>` on the server at `base` with the admin token, as JSON.
pub async fn get_admin(http: &reqwest::Client, base: &str, path: &str) -> serde_json::Value {
    http.get(format!("{base}/v1{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Withheld caller ids as Twilio has delivered them spelled on a keypad
/// (ANONYMOUS, RESTRICTED, UNAVAILABLE, UNKNOWN, BLOCKED): each comes with and
/// without `+`.
pub const KEYPAD_WITHHELD: [&str; 5] = [
    "266696687",
    "7378742833",
    "86282452253",
    "8656696",
    "2562533",
];

/// `KEYPAD_WITHHELD`, each with and without `+`.
pub fn keypad_withheld() -> Vec<String> {
    KEYPAD_WITHHELD
        .iter()
        .flat_map(|d| [format!("+{d}"), (*d).to_owned()])
        .collect()
}

/// A Twilio-style CallSid from a number, so tests read well.
pub fn call_sid(n: u64) -> String {
    format!("CA{n:032x}")
}

/// A TwiML or JSON answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// The text of the first `<tag ...>text</tag>`, if any.
    pub fn element_text(&self, tag: &str) -> Option<String> {
        let open = self.body.find(&format!("<{tag}"))?;
        let start = open + self.body[open..].find('>')? + 1;
        let end = start + self.body[start..].find(&format!("</{tag}>"))?;
        Some(self.body[start..end].to_owned())
    }

    /// The value of `attr` on the first `<tag>`.
    pub fn attribute(&self, tag: &str, attr: &str) -> Option<String> {
        let open = self.body.find(&format!("<{tag}"))?;
        let element = &self.body[open..open + self.body[open..].find('>')?];
        let start = element.find(&format!(" {attr}=\""))? + attr.len() + 3;
        let end = start + element[start..].find('"')?;
        Some(element[start..end].replace("&amp;", "&"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.text().await.expect("body");
    Answer {
        status,
        content_type,
        body,
    }
}

/// Signs and posts a webhook as Twilio would (`url` is absolute).
pub async fn post_signed(http: &reqwest::Client, url: &str, params: &[(&str, &str)]) -> Answer {
    post_signed_with(http, AUTH_TOKEN, url, params).await
}

/// Signs with `token` and posts a webhook as Twilio would (`url` is absolute).
pub async fn post_signed_with(
    http: &reqwest::Client,
    token: &str,
    url: &str,
    params: &[(&str, &str)],
) -> Answer {
    post_signed_through(http, token, url, url, params).await
}

/// Posts a webhook to `url` signed for `public_url`, the URL Twilio used: as a
/// proxy forwards it to a server behind `SWITCHBOARD_PUBLIC_URL`.
pub async fn post_signed_through(
    http: &reqwest::Client,
    token: &str,
    public_url: &str,
    url: &str,
    params: &[(&str, &str)],
) -> Answer {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = signature::compute(token, public_url, &pairs);
    let response = http
        .post(url)
        .header("X-Twilio-Signature", sig)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&pairs).expect("form"))
        .send()
        .await
        .expect("request");
    answer(response).await
}

impl TestApp {
    pub fn base(&self) -> &str {
        &self.server.base
    }

    /// The server's socket address, for tests that open raw connections.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base()
            .trim_start_matches("http://")
            .parse()
            .expect("a socket address")
    }

    /// `POST /twilio/voice` for a call from +15005550001 to `to`.
    pub async fn call(&self, sid: &str, to: &str) -> Answer {
        self.call_from(sid, "+15005550001", to).await
    }

    pub async fn call_from(&self, sid: &str, from: &str, to: &str) -> Answer {
        let url = format!("{}/twilio/voice", self.base());
        post_signed(
            &self.http,
            &url,
            &[
                ("CallSid", sid),
                ("From", from),
                ("To", to),
                ("CallStatus", "ringing"),
            ],
        )
        .await
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        self.with_token(ADMIN_TOKEN, method, path, body).await
    }

    /// Creates an agent (contact `client:<id>`, so a `<Dial>` names it) and sets it available.
    pub async fn add_available(&self, id: &str, queues: &[&str]) {
        self.add_agent(id, queues).await;
        self.set_state(id, "available").await;
    }

    /// Creates agent `id` with its display name and contact (`PUT
    /// /v1/agents/{id}`, 201).
    pub async fn create_agent(&self, id: &str, name: &str, contact: &str, queues: &[&str]) {
        let put = self
            .admin(
                reqwest::Method::PUT,
                &format!("/agents/{id}"),
                Some(serde_json::json!({"name": name, "contact": contact, "queues": queues})),
            )
            .await;
        assert_eq!(put.status, 201, "PUT agent {id}: {put:?}");
    }

    /// Creates agent `id` (contact `client:<id>`) in `queues` with `skills`
    /// and sets it available; then a pause, so agents created one after
    /// another are free in that order.
    pub async fn add_skilled(&self, id: &str, queues: &[&str], skills: serde_json::Value) {
        let put = self
            .admin(
                reqwest::Method::PUT,
                &format!("/agents/{id}"),
                Some(
                    serde_json::json!({"name": id, "contact": format!("client:{id}"),
                    "queues": queues, "skills": skills}),
                ),
            )
            .await;
        assert_eq!(put.status, 201, "PUT agent {id}: {put:?}");
        self.set_state(id, "available").await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    pub async fn add_agent(&self, id: &str, queues: &[&str]) {
        let status = put_agent(&self.http, self.base(), ADMIN_TOKEN, id, queues).await;
        assert!(status == 201 || status == 200, "PUT agent {id}: {status}");
    }

    pub async fn set_state(&self, id: &str, state: &str) {
        let status = put_state(&self.http, self.base(), ADMIN_TOKEN, id, state).await;
        assert_eq!(status, 200, "set {id} {state}");
    }

    pub async fn agent(&self, id: &str) -> serde_json::Value {
        let a = self
            .admin(reqwest::Method::GET, &format!("/agents/{id}"), None)
            .await;
        assert_eq!(a.status, 200, "GET agent {id}: {a:?}");
        a.json()
    }

    /// An admin forces agent `id` to `state` (`PUT /v1/agents/{id}/state`
    /// with `force`), whatever it holds; the answer, once it is 200.
    pub async fn force_state(&self, id: &str, state: &str) -> Answer {
        let forced = self
            .admin(
                reqwest::Method::PUT,
                &format!("/agents/{id}/state"),
                Some(serde_json::json!({"state": state, "force": true})),
            )
            .await;
        assert_eq!(forced.status, 200, "force {id} {state}: {forced:?}");
        forced
    }

    /// The status `/readyz` answers.
    pub async fn readyz(&self) -> u16 {
        self.http
            .get(format!("{}/readyz", self.base()))
            .send()
            .await
            .expect("GET /readyz")
            .status()
            .as_u16()
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base()))
            .send()
            .await
            .expect("GET /metrics");
        response.text().await.expect("metrics body")
    }

    /// The server's own connection to its Redis (or Cluster), to read keys.
    pub async fn redis(&self) -> switchboard::store::Conn {
        self.server
            .state
            .engine
            .store()
            .connection()
            .await
            .expect("redis connection")
    }

    /// The full name of the key `suffix` in the server's namespace.
    pub fn key(&self, suffix: &str) -> String {
        format!(
            "{}{suffix}",
            self.server.state.engine.store().keys().prefix()
        )
    }

    /// The field `field` of the hash `suffix` in the server's namespace.
    pub async fn hget<T: redis::FromRedisValue>(&self, suffix: &str, field: &str) -> Option<T> {
        redis::cmd("HGET")
            .arg(self.key(suffix))
            .arg(field)
            .query_async(&mut self.redis().await)
            .await
            .expect("HGET")
    }

    /// Every key of the server's namespace with its serialized value: equal
    /// snapshots mean nothing changed.
    pub async fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut conn = self.redis().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(self.key("*"))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        let mut out = BTreeMap::new();
        for key in keys {
            let dump: Vec<u8> = redis::cmd("DUMP")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("DUMP");
            out.insert(key, dump);
        }
        out
    }
}

/// `cmdstat_<name>:calls=N` of `INFO commandstats`, without INFO and CONFIG.
pub async fn command_counts(redis: &mut switchboard::store::Conn) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await
        .unwrap();
    commandstats::calls(&info)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("info") && !name.starts_with("config"))
        .collect()
}

pub async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// Which agent a `<Dial>` answer rings (`add_agent` gives each `client:<id>`).
pub fn dialed(answer: &Answer) -> Option<String> {
    answer.element_text("Client")
}

impl TestApp {
    /// Posts the Dial action of a `<Dial>` answer with `DialCallStatus`, the
    /// caller still on the line (`CallStatus=in-progress`).
    pub async fn dial_action(&self, sid: &str, dial: &Answer, dial_status: &str) -> Answer {
        self.dial_action_with(sid, dial, dial_status, "in-progress")
            .await
    }

    /// Posts the Dial action with the caller's leg in `call_status`.
    pub async fn dial_action_with(
        &self,
        sid: &str,
        dial: &Answer,
        dial_status: &str,
        call_status: &str,
    ) -> Answer {
        let url = dial
            .attribute("Dial", "action")
            .expect("a Dial with an action");
        post_signed(
            &self.http,
            &url,
            &[
                ("CallSid", sid),
                ("CallStatus", call_status),
                ("DialCallStatus", dial_status),
                ("From", "+15005550001"),
                ("To", SUPPORT),
            ],
        )
        .await
    }

    /// Posts the agent leg's statusCallback of a `<Dial>` answer with `CallStatus`.
    pub async fn agent_leg(&self, sid: &str, dial: &Answer, call_status: &str) -> Answer {
        let noun = ["Client", "Number", "Sip"]
            .into_iter()
            .find(|n| dial.attribute(n, "statusCallback").is_some())
            .expect("a Dial noun with a statusCallback");
        let url = dial.attribute(noun, "statusCallback").unwrap();
        let leg = format!("CA{:032x}", 0xa9e47u64);
        post_signed(
            &self.http,
            &url,
            &[
                ("CallSid", leg.as_str()),
                ("ParentCallSid", sid),
                ("CallStatus", call_status),
            ],
        )
        .await
    }

    /// Posts the number's status callback (`/twilio/voice/status`).
    pub async fn call_status(&self, sid: &str, call_status: &str) -> Answer {
        let url = format!("{}/twilio/voice/status", self.base());
        post_signed(
            &self.http,
            &url,
            &[("CallSid", sid), ("CallStatus", call_status)],
        )
        .await
    }
}

/// The value of the first series of a metrics page starting with `prefix`.
pub fn metric(page: &str, prefix: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `PUT /v1/agents/{id}` on the server at `base` (contact `client:<id>`); the status.
pub async fn put_agent(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    queues: &[&str],
) -> u16 {
    let body =
        serde_json::json!({ "name": id, "contact": format!("client:{id}"), "queues": queues });
    put_json(http, &format!("{base}/v1/agents/{id}"), token, body).await
}

/// `PUT /v1/agents/{id}/state` on the server at `base`; the status.
pub async fn put_state(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    state: &str,
) -> u16 {
    let body = serde_json::json!({ "state": state });
    put_json(http, &format!("{base}/v1/agents/{id}/state"), token, body).await
}

impl TestApp {
    /// `POST /v1/agents/{id}/tokens` with the admin token: the new token.
    pub async fn issue_token(&self, id: &str) -> String {
        let issued = self
            .admin(
                reqwest::Method::POST,
                &format!("/agents/{id}/tokens"),
                Some(serde_json::json!({})),
            )
            .await;
        assert_eq!(issued.status, 201, "{issued:?}");
        issued.json()["token"].as_str().expect("a token").to_owned()
    }

    /// `PUT /v1/me/state` with an agent's `token`.
    pub async fn set_my_state(&self, token: &str, state: &str) -> Answer {
        self.with_token(
            token,
            reqwest::Method::PUT,
            "/me/state",
            Some(serde_json::json!({ "state": state })),
        )
        .await
    }

    /// A request to `/v1<path>` with `token` as the bearer token.
    pub async fn with_token(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}/v1{path}", self.base()))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("request")).await
    }
}

/// The settings `switchboard` would start with, given `args` (flags only; the
/// environment as it is), or the error it would stop with.
pub fn settings_from_args(args: &[&str]) -> Result<Settings, String> {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: switchboard::config::SettingsArgs,
    }
    Cli::try_parse_from(std::iter::once("switchboard").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?
        .settings
        .into_settings()
        .map_err(|e| e.to_string())
}

/// One Server-Sent Event as a client reads it.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: serde_json::Value,
}

/// A client of `GET /v1/events`, reading the stream as it comes.
pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    /// Opens `/v1/events` with `token` (and `Last-Event-ID` if given); panics
    /// unless it answers 200 `text/event-stream`.
    pub async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> SseClient {
        let response = SseClient::request(app, token, last_event_id).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseClient {
            response,
            buffer: String::new(),
        }
    }

    /// `GET /v1/events` with `token` (and `Last-Event-ID` if given), whatever
    /// it answers.
    pub async fn request(
        app: &TestApp,
        token: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut request = app
            .http
            .get(format!("{}/v1/events", app.base()))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        request.send().await.expect("GET /v1/events")
    }

    /// The next event, or `None` if none comes within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str(v.trim()).expect("JSON data"));
                    }
                }
                // A comment (keep-alive) has none of them.
                if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                    return Some(SseEvent { id, event, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// The rest of the stream as text, read until it ends or `wait` passes
    /// (every line, comments and fields of events without an id included),
    /// and whether it ended.
    pub async fn rest(&mut self, wait: std::time::Duration) -> (String, bool) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut text = std::mem::take(&mut self.buffer);
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) => return (text, true),
                Ok(Err(_)) | Err(_) => return (text, false),
            }
        }
    }

    /// Events until one of kind `event` matches `pred` (panics after `wait`).
    pub async fn until(
        &mut self,
        event: &str,
        wait: std::time::Duration,
        pred: impl Fn(&SseEvent) -> bool,
    ) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(next) = self.next(left).await else {
                panic!("no {event} came within {wait:?}; saw {seen:#?}");
            };
            let done = next.event == event && pred(&next);
            seen.push(next);
            if done {
                return seen;
            }
        }
    }
}

async fn put_json(http: &reqwest::Client, url: &str, token: &str, body: serde_json::Value) -> u16 {
    let response = http
        .put(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    response.status().as_u16()
}

// ---------------------------------------------------------------------------
// A stand-in of Twilio's REST API: the Calls update endpoint that connects held
// callers, `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`. It
// checks what real Twilio checks (HTTP basic auth by account SID + auth token or
// API key + secret, a form with an absolute `Url`) and answers refusals in
// Twilio's JSON error shape, so a client that passes here sends what Twilio
// takes. Each call's answer is programmable; unknown calls are 404 as at Twilio.
// ---------------------------------------------------------------------------

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// A sub-account of `ACCOUNT_SID`: its calls are reached with the parent's
/// credentials, in its own path, as at Twilio.
pub const SUBACCOUNT_SID: &str = "AC00000000000000000000000000000002";
pub const API_KEY_SID: &str = "SK00000000000000000000000000000001";
pub const API_KEY_SECRET: &str = "test-api-key-secret";

/// How the stand-in answers redirects of one call.
#[derive(Debug, Clone)]
pub enum CallAnswer {
    /// 200 with the call resource: redirected.
    Succeed,
    /// 404, code 20404: no such call.
    NotFound,
    /// 400, code 21220: "Call is not in-progress. Cannot redirect."
    NotInProgress,
    /// 429, code 20429, for the first `times` requests (with `Retry-After:
    /// retry_after_secs` when given), then 200.
    RateLimitedThenSucceed {
        times: u32,
        retry_after_secs: Option<u64>,
    },
    /// 500, code 20500, every time.
    ServerErrorForever,
    /// 200, after this long.
    Slow(Duration),
    /// 500, code 20500, after this long, every time.
    SlowServerError(Duration),
}

/// A well-formed, authenticated request the stand-in took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRequest {
    /// The `{AccountSid}` of the path.
    pub account: String,
    pub call_sid: String,
    /// The basic-auth user: the account SID or the API key SID.
    pub user: String,
    pub url: String,
    pub method: String,
}

#[derive(Default)]
struct StandInState {
    answers: std::sync::Mutex<std::collections::HashMap<String, CallAnswer>>,
    accepted: std::sync::Mutex<Vec<RedirectRequest>>,
    /// Requests answered 401 or 400 before reaching a call's answer.
    refused: std::sync::atomic::AtomicU32,
    /// Call statuses a fetch (GET) answers, by CallSid; others are 404.
    statuses: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// (AccountSid of the path, CallSid) fetched, in order.
    fetched: std::sync::Mutex<Vec<(String, String)>>,
    /// Calls placed (`POST …/Calls.json`), in order.
    placed: std::sync::Mutex<Vec<PlacedCall>>,
    /// How the next requests to place a call are answered (then: 201).
    place_answers: std::sync::Mutex<std::collections::VecDeque<PlaceAnswer>>,
}

/// A call the stand-in placed: the form Twilio would take, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedCall {
    pub account: String,
    /// The CallSid it answered.
    pub call_sid: String,
    pub to: String,
    pub from: String,
    pub url: String,
    pub status_callback: String,
    pub events: Vec<String>,
    pub timeout: u32,
    pub machine_detection: Option<String>,
}

/// How one request to place a call is answered.
#[derive(Debug, Clone)]
pub enum PlaceAnswer {
    /// 429, code 20429: too many requests, not placed.
    TooManyRequests,
    /// 400 with this code (21211: an invalid 'To' number), not placed.
    Refuse(u32),
    /// 401, code 20003: the credentials are wrong, not placed.
    Unauthorized,
}

/// Twilio's REST API on 127.0.0.1:0, stopped when dropped.
pub struct TwilioApiStandIn {
    /// `SWITCHBOARD_TWILIO_API_URL` for it.
    pub base: String,
    state: std::sync::Arc<StandInState>,
    task: tokio::task::JoinHandle<()>,
}

impl TwilioApiStandIn {
    pub async fn start() -> TwilioApiStandIn {
        let state = std::sync::Arc::new(StandInState::default());
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{call_file}",
                axum::routing::post(stand_in_update_call).get(stand_in_fetch_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                axum::routing::post(stand_in_place_call),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TwilioApiStandIn { base, state, task }
    }

    /// Programs how redirects of `call_sid` are answered.
    pub fn answer(&self, call_sid: &str, answer: CallAnswer) {
        self.state
            .answers
            .lock()
            .expect("stand-in lock")
            .insert(call_sid.to_owned(), answer);
    }

    /// The status a fetch of `call_sid` answers (`in-progress`, `completed`, …).
    pub fn call_status(&self, call_sid: &str, status: &str) {
        self.state
            .statuses
            .lock()
            .expect("stand-in lock")
            .insert(call_sid.to_owned(), status.to_owned());
    }

    /// CallSids fetched (authenticated), in order.
    pub fn fetched(&self) -> Vec<String> {
        self.fetched_in().into_iter().map(|(_, sid)| sid).collect()
    }

    /// (AccountSid of the path, CallSid) of each authenticated fetch, in order.
    pub fn fetched_in(&self) -> Vec<(String, String)> {
        self.state.fetched.lock().expect("stand-in lock").clone()
    }

    /// Every accepted request, in arrival order.
    pub fn requests(&self) -> Vec<RedirectRequest> {
        self.state.accepted.lock().expect("stand-in lock").clone()
    }

    /// Accepted requests for one call (each try of a retried redirect counts).
    pub fn requests_for(&self, call_sid: &str) -> Vec<RedirectRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.call_sid == call_sid)
            .collect()
    }

    /// The calls placed, in order.
    pub fn placed(&self) -> Vec<PlacedCall> {
        self.state.placed.lock().expect("stand-in lock").clone()
    }

    /// Answers the next request to place a call with `answer`.
    pub fn next_place_answer(&self, answer: PlaceAnswer) {
        self.state
            .place_answers
            .lock()
            .expect("stand-in lock")
            .push_back(answer);
    }

    /// Requests refused for bad credentials or a bad form.
    pub fn refused(&self) -> u32 {
        self.state.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Client settings for it with the account's auth token (`AUTH_TOKEN`).
    pub fn auth_token_config(&self) -> switchboard::twilio::rest::RestConfig {
        switchboard::twilio::rest::RestConfig::new(
            &self.base,
            switchboard::twilio::rest::Credentials::AuthToken {
                account_sid: ACCOUNT_SID.into(),
                token: AUTH_TOKEN.into(),
            },
        )
    }

    /// Client settings for it with the API key.
    pub fn api_key_config(&self) -> switchboard::twilio::rest::RestConfig {
        switchboard::twilio::rest::RestConfig::new(
            &self.base,
            switchboard::twilio::rest::Credentials::ApiKey {
                account_sid: ACCOUNT_SID.into(),
                key_sid: API_KEY_SID.into(),
                secret: API_KEY_SECRET.into(),
            },
        )
    }
}

impl Drop for TwilioApiStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
fn twilio_error(status: u16, code: u32, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::from_u16(status).expect("a valid status");
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

/// The user of a valid basic-auth header for `account`, if any.
fn stand_in_login(headers: &axum::http::HeaderMap, account: &str) -> Option<String> {
    use base64::Engine as _;
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    let valid = (account == ACCOUNT_SID || account == SUBACCOUNT_SID)
        && ((user == ACCOUNT_SID && password == AUTH_TOKEN)
            || (user == API_KEY_SID && password == API_KEY_SECRET));
    valid.then(|| user.to_owned())
}

/// `POST …/Calls.json`: places a call, checking the form as Twilio does (`To`
/// and `From` numbers, an absolute `Url` and `StatusCallback`, the events
/// Twilio knows, each its own parameter, a `Timeout` of 1 to 600 s); 201 with
/// the call resource (status `queued`).
async fn stand_in_place_call(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<StandInState>>,
    axum::extract::Path(account): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    if stand_in_login(&headers, &account).is_none() {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return twilio_error(401, 20003, "Authenticate");
    }
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(form) => form,
        Err(_) => {
            state.refused.fetch_add(1, Ordering::SeqCst);
            return twilio_error(400, 20001, "Invalid form body");
        }
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let number = |v: &Option<String>| {
        v.as_deref().is_some_and(|n| {
            n.strip_prefix('+')
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let absolute = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
    };
    let events: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .map(|(_, v)| v.clone())
        .collect();
    let timeout: Option<u32> = field("Timeout").and_then(|t| t.parse().ok());
    let machine = field("MachineDetection");
    let (to, from, url, status_callback) = (
        field("To"),
        field("From"),
        field("Url"),
        field("StatusCallback"),
    );
    // `To` may also be a client or a SIP address (an agent-first callback
    // calls the agent).
    let reachable = |v: &Option<String>| {
        number(v)
            || v.as_deref().is_some_and(|t| {
                t.strip_prefix("client:").is_some_and(|c| !c.is_empty()) || t.starts_with("sip:")
            })
    };
    let valid = reachable(&to)
        && number(&from)
        && absolute(&url)
        && absolute(&status_callback)
        && field("Method").as_deref() == Some("POST")
        && events
            .iter()
            .all(|e| ["initiated", "ringing", "answered", "completed"].contains(&e.as_str()))
        && timeout.is_some_and(|t| (1..=600).contains(&t))
        && machine
            .as_deref()
            .is_none_or(|m| m == "Enable" || m == "DetectMessageEnd");
    if !valid {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return twilio_error(400, 21205, "Invalid call parameters");
    }
    let programmed = state
        .place_answers
        .lock()
        .expect("stand-in lock")
        .pop_front();
    match programmed {
        Some(PlaceAnswer::TooManyRequests) => {
            return twilio_error(429, 20429, "Too Many Requests");
        }
        Some(PlaceAnswer::Refuse(code)) => {
            return twilio_error(400, code, "Refused");
        }
        Some(PlaceAnswer::Unauthorized) => {
            return twilio_error(401, 20003, "Authenticate");
        }
        None => {}
    }
    let mut placed = state.placed.lock().expect("stand-in lock");
    let call_sid = format!("CA{:032x}", 0xcb00_0000_u128 + placed.len() as u128);
    placed.push(PlacedCall {
        account: account.clone(),
        call_sid: call_sid.clone(),
        to: to.unwrap_or_default(),
        from: from.unwrap_or_default(),
        url: url.unwrap_or_default(),
        status_callback: status_callback.unwrap_or_default(),
        events,
        timeout: timeout.unwrap_or(0),
        machine_detection: machine,
    });
    (
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "sid": call_sid,
            "account_sid": account,
            "status": "queued",
            "api_version": "2010-04-01",
        })),
    )
        .into_response()
}

/// `GET …/Calls/{CallSid}.json`: the call resource, with the status programmed
/// by `call_status`.
async fn stand_in_fetch_call(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<StandInState>>,
    axum::extract::Path((account, call_file)): axum::extract::Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(call_sid) = call_file.strip_suffix(".json") else {
        return twilio_error(404, 20404, "The requested resource was not found");
    };
    if stand_in_login(&headers, &account).is_none() {
        state
            .refused
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return twilio_error(401, 20003, "Authenticate");
    }
    state
        .fetched
        .lock()
        .expect("stand-in lock")
        .push((account.clone(), call_sid.to_owned()));
    let status = state
        .statuses
        .lock()
        .expect("stand-in lock")
        .get(call_sid)
        .cloned();
    match status {
        Some(status) => axum::Json(serde_json::json!({
            "sid": call_sid,
            "account_sid": ACCOUNT_SID,
            "status": status,
            "api_version": "2010-04-01",
        }))
        .into_response(),
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

async fn stand_in_update_call(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<StandInState>>,
    axum::extract::Path((account, call_file)): axum::extract::Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;

    let Some(call_sid) = call_file.strip_suffix(".json") else {
        return twilio_error(404, 20404, "The requested resource was not found");
    };
    let Some(user) = stand_in_login(&headers, &account) else {
        state.refused.fetch_add(1, Ordering::SeqCst);
        let mut response = twilio_error(401, 20003, "Authenticate");
        response.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
        return response;
    };
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(form) if form_type => form,
        _ => {
            state.refused.fetch_add(1, Ordering::SeqCst);
            return twilio_error(400, 20001, "Invalid form body");
        }
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let url = field("Url").unwrap_or_default();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return twilio_error(
            400,
            21205,
            "Url parameter is required and must be a valid URL",
        );
    }
    // Twilio would take GET too, but switchboard's connect URL answers POST only:
    // anything else would reach Twilio and fail there, so it fails here first.
    let method = field("Method").unwrap_or_default();
    if method != "POST" {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return twilio_error(
            400,
            21200,
            "Method must be POST for switchboard's connect URL",
        );
    }
    let tries_before = {
        let mut accepted = state.accepted.lock().expect("stand-in lock");
        let before = accepted.iter().filter(|r| r.call_sid == call_sid).count();
        accepted.push(RedirectRequest {
            account: account.clone(),
            call_sid: call_sid.to_owned(),
            user,
            url,
            method,
        });
        u32::try_from(before).expect("a small count")
    };
    let answer = state
        .answers
        .lock()
        .expect("stand-in lock")
        .get(call_sid)
        .cloned()
        .unwrap_or(CallAnswer::NotFound);
    let redirected = || {
        axum::Json(serde_json::json!({
            "sid": call_sid,
            "account_sid": ACCOUNT_SID,
            "status": "in-progress",
            "api_version": "2010-04-01",
        }))
        .into_response()
    };
    match answer {
        CallAnswer::Succeed => redirected(),
        CallAnswer::NotFound => twilio_error(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/Calls/{call_sid}.json was not found"
            ),
        ),
        CallAnswer::NotInProgress => {
            twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
        }
        CallAnswer::RateLimitedThenSucceed {
            times,
            retry_after_secs,
        } if tries_before < times => {
            let mut response = twilio_error(429, 20429, "Too Many Requests");
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from(secs));
            }
            response
        }
        CallAnswer::RateLimitedThenSucceed { .. } => redirected(),
        CallAnswer::ServerErrorForever => twilio_error(500, 20500, "Internal Server Error"),
        CallAnswer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            redirected()
        }
        CallAnswer::SlowServerError(delay) => {
            tokio::time::sleep(delay).await;
            twilio_error(500, 20500, "Internal Server Error")
        }
    }
}

// ---------------------------------------------------------------------------
// Callbacks (tests/callbacks.rs, the console's tests)
// ---------------------------------------------------------------------------

/// The action of an answer's `<Gather>`.
pub fn gather_action(answer: &Answer) -> String {
    answer
        .attribute("Gather", "action")
        .unwrap_or_else(|| panic!("a <Gather>: {}", answer.body))
        .replace("&amp;", "&")
}

/// Caller `sid`, waiting (`round`), presses the callback key and confirms its
/// own number; returns what it heard last.
pub async fn ask_for_callback(app: &TestApp, sid: &str, round: &Answer) -> Answer {
    let prompt = post_signed(
        &app.http,
        &gather_action(round),
        &[
            ("CallSid", sid),
            ("CallStatus", "in-progress"),
            ("From", "+15005550001"),
            ("To", SUPPORT),
            ("Digits", "2"),
        ],
    )
    .await;
    assert!(
        prompt.body.contains("press 1"),
        "asked which number: {}",
        prompt.body
    );
    post_signed(
        &app.http,
        &gather_action(&prompt),
        &[
            ("CallSid", sid),
            ("CallStatus", "in-progress"),
            ("From", "+15005550001"),
            ("To", SUPPORT),
            ("Digits", "1"),
        ],
    )
    .await
}
