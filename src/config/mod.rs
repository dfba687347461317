//! Typed settings: every environment variable of SPEC 1 ("Process") is also a
//! CLI flag, parsed by clap in one place, then turned into `Settings` with the
//! routing file already loaded and checked.

pub mod console;
pub mod hold;
pub mod hours;
pub mod lookup;
pub mod menus;
mod numbers;
pub mod routing;
pub mod steps;
pub mod targets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub use routing::{
    FallbackStep, Queue, QueueSettings, RoutingFileError, RoutingFileWarning, RoutingTable,
};

use crate::twilio::access_token::VoiceTokens;
use crate::twilio::overrides::{ConnectionOverrides, OverridesError as ConnectionOverridesError};
use crate::twilio::rest::{Credentials, RestConfig};

/// The flags and environment variables `serve`, `worker` and `demo` share.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// HTTP listen address.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Operations listen address: when set, /metrics is served here and no
    /// longer on the listen address (/healthz and /readyz on both).
    #[arg(long, env = "SWITCHBOARD_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub redis: RedisArgs,

    /// Routing file (TOML); without it, one queue `default` with a voicemail fallback.
    #[arg(long, env = "SWITCHBOARD_ROUTING")]
    pub routing: Option<PathBuf>,

    /// Base URL as Twilio sees it; default: derived from Host / X-Forwarded-Proto.
    // Twilio accepts basic-auth credentials in webhook URLs, so this may carry one.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL", hide_env_values = true)]
    pub public_url: Option<String>,

    /// Twilio auth token, the key of X-Twilio-Signature.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,

    /// Twilio's secondary auth token, also accepted for X-Twilio-Signature while
    /// the auth token is rotated (set it before promoting it at Twilio).
    #[arg(long, env = "TWILIO_AUTH_TOKEN_SECONDARY", hide_env_values = true)]
    pub twilio_auth_token_secondary: Option<String>,

    /// The connection overrides on the number's status callback URL (its `#…`
    /// fragment, e.g. `rc=5&rp=5xx,ct,rt&tt=15000`) when they are not
    /// switchboard's own: signatures over the URL with them are accepted too.
    #[arg(long, env = "SWITCHBOARD_STATUS_CALLBACK_OVERRIDES")]
    pub status_callback_overrides: Option<String>,

    /// Development only: accept webhooks without a valid signature.
    #[arg(long, env = "SWITCHBOARD_SKIP_SIGNATURE", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    pub skip_signature: bool,

    /// Bearer token of the admin API; without it /v1 answers 503.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Log format: json or pretty (RUST_LOG filters).
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,

    /// How often the worker sweeps expired reservations and leases, in ms.
    #[arg(long, env = "SWITCHBOARD_SWEEP_INTERVAL_MS", default_value_t = 1000)]
    pub sweep_interval_ms: u64,

    /// With Twilio REST credentials: the worker asks Twilio about an answered
    /// call with no callback for this long, and ends it if Twilio says it is over.
    #[arg(long, env = "SWITCHBOARD_RECONCILE_AFTER_SECS", default_value_t = 300)]
    pub reconcile_after_secs: u64,

    /// Calls a second the Twilio account may place (callbacks), shared by
    /// every replica through Redis; Twilio queues calls placed faster.
    #[arg(long, env = "TWILIO_CPS", default_value_t = 1.0)]
    pub twilio_cps: f64,

    /// The longest any HTTP request may take, in ms (a webhook then answers the
    /// emergency TwiML; other requests 408).
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT_MS", default_value_t = 10000)]
    pub request_timeout_ms: u64,

    /// Open connections past which new ones wait to be accepted.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 10000)]
    pub max_connections: usize,

    /// Event streams (GET /v1/events) this process serves at once, at most
    /// half of --max-connections; past it a new one is answered 429.
    #[arg(long, env = "SWITCHBOARD_MAX_EVENT_STREAMS", default_value_t = StreamLimits::default().total)]
    pub max_event_streams: usize,

    /// Event streams one agent token's agent may have open at once on this
    /// process (a console, a few tabs); past it a new one is answered 429.
    #[arg(long, env = "SWITCHBOARD_MAX_AGENT_STREAMS", default_value_t = StreamLimits::default().per_agent)]
    pub max_agent_streams: usize,

    /// Open connections one client address (IPv6: one /64) may hold; past it
    /// its new ones are held unread until the header timeout, then reset. 0:
    /// no limit, what a server behind a load balancer or ingress needs (every
    /// connection has the proxy's address).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_PEER",
        default_value_t = 1000
    )]
    pub max_connections_per_peer: usize,

    /// Twilio account of the REST API requests (redirecting held callers); with
    /// TWILIO_AUTH_TOKEN, or with TWILIO_API_KEY + TWILIO_API_SECRET.
    // Hidden like the secrets: `--help` output ends up in tickets and logs.
    #[arg(long, env = "TWILIO_ACCOUNT_SID", hide_env_values = true)]
    pub twilio_account_sid: Option<String>,

    /// Twilio API key SID (SK…) for the REST API, instead of the auth token.
    #[arg(long, env = "TWILIO_API_KEY", hide_env_values = true)]
    pub twilio_api_key: Option<String>,

    /// The secret of TWILIO_API_KEY.
    #[arg(long, env = "TWILIO_API_SECRET", hide_env_values = true)]
    pub twilio_api_secret: Option<String>,

    /// Base URL of Twilio's REST API (tests point it at a stand-in).
    #[arg(long, env = "SWITCHBOARD_TWILIO_API_URL", default_value = crate::twilio::rest::DEFAULT_API_URL)]
    pub twilio_api_url: String,

    #[command(flatten)]
    pub voice: VoiceArgs,

    /// The key that signs each `[lookup]` request (HMAC-SHA256; the
    /// customer's service checks it). Needed when the routing file has
    /// `[lookup]`.
    #[arg(long, env = "SWITCHBOARD_LOOKUP_SECRET", hide_env_values = true)]
    pub lookup_secret: Option<String>,
}

/// The console's softphone: what signs its Twilio Access Tokens. Without the
/// key pair, `POST /v1/me/voice-token` answers 503.
#[derive(Debug, Clone, Args)]
pub struct VoiceArgs {
    /// Twilio API key SID (SK…) that signs the softphone's Access Tokens
    /// (with TWILIO_ACCOUNT_SID and TWILIO_API_KEY_SECRET).
    #[arg(long, env = "TWILIO_API_KEY_SID", hide_env_values = true)]
    pub twilio_api_key_sid: Option<String>,

    /// The secret of TWILIO_API_KEY_SID.
    #[arg(long, env = "TWILIO_API_KEY_SECRET", hide_env_values = true)]
    pub twilio_api_key_secret: Option<String>,

    /// A TwiML application SID (AP…): the softphone's token then also allows
    /// outgoing calls through it.
    #[arg(long, env = "TWILIO_TWIML_APP_SID")]
    pub twilio_twiml_app_sid: Option<String>,

    /// How long a softphone Access Token lives, in seconds (at most 86400,
    /// Twilio's limit); the console renews it before it runs out.
    #[arg(long, env = "SWITCHBOARD_VOICE_TOKEN_TTL_SECS", default_value_t = crate::twilio::access_token::DEFAULT_TTL.as_secs())]
    pub voice_token_ttl_secs: u64,
}

/// Which Redis and namespace: the flags and environment variables of every
/// command that opens the store (`serve`, `worker`, `agents import`), so a Job
/// importing agents reads the same settings as the Deployment it feeds.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis URL.
    // The URL carries the Redis password: clap would print it in `--help`.
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// Cluster mode: seed nodes' URLs, comma-separated (redis://host:port),
    /// instead of the Redis URL.
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_CLUSTER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub redis_cluster: Vec<String>,

    /// Sentinel mode: the Sentinels' URLs, comma-separated (redis://host:port);
    /// with SWITCHBOARD_REDIS_SENTINEL_MASTER. The master's password, user and
    /// database then come from the Redis URL, its address from the Sentinels.
    #[arg(long, env = "SWITCHBOARD_REDIS_SENTINELS", value_delimiter = ',')]
    pub redis_sentinels: Vec<String>,

    /// Sentinel mode: the name the Sentinels know the master by.
    #[arg(long, env = "SWITCHBOARD_REDIS_SENTINEL_MASTER")]
    pub redis_sentinel_master: Option<String>,

    /// PEM file of the CA that signed a `rediss://` server's certificate;
    /// default: the system's roots.
    #[arg(long, env = "SWITCHBOARD_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,

    /// Redis key namespace; all keys of one namespace share one Cluster hash slot.
    #[arg(long, env = "SWITCHBOARD_NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// The longest a Redis command may take, in ms (a webhook past it answers
    /// the emergency TwiML).
    #[arg(long, env = "SWITCHBOARD_REDIS_TIMEOUT_MS", default_value_t = 2000)]
    pub redis_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A token that must never reach a log: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// A Redis URL, which carries the password (`redis://user:pw@host`): `Debug`
/// prints it with the password, and any query (`redis+unix://…?pass=`), as
/// `***`, so `Settings` can derive `Debug`. It derefs to `&str` so the code that
/// connects reads it as before (`&settings.redis_url` where a `&str` is wanted).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without its secrets, fit for logs.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            // Not a URL: nothing can be told safely.
            return "***".to_owned();
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let authority = match authority.rsplit_once('@') {
            // A lone userinfo may be a password given without a user name.
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***@{host}"),
                None => format!("***@{host}"),
            },
            None => authority.to_owned(),
        };
        let tail = match tail.split_once('?') {
            Some((path, _query)) => format!("{path}?***"),
            None => tail.to_owned(),
        };
        format!("{scheme}://{authority}{tail}")
    }
}

impl std::ops::Deref for RedisUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({:?})", self.redacted())
    }
}

impl From<String> for RedisUrl {
    fn from(value: String) -> Self {
        RedisUrl(value)
    }
}

impl From<&str> for RedisUrl {
    fn from(value: &str) -> Self {
        RedisUrl(value.to_owned())
    }
}

/// A setting that makes no sense, found before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Routing(#[from] RoutingFileError),
    #[error(
        "SWITCHBOARD_REDIS_SENTINELS and SWITCHBOARD_REDIS_SENTINEL_MASTER go together: set both, or neither"
    )]
    SentinelHalfSet,
    #[error("SWITCHBOARD_REDIS_CLUSTER and SWITCHBOARD_REDIS_SENTINELS are two modes: set one")]
    ClusterAndSentinels,
    #[error("TWILIO_CPS must be more than 0 and at most 1000 calls a second, not {0}")]
    Cps(f64),
    #[error(
        "SWITCHBOARD_REDIS_CLUSTER: a seed node URL does not parse (redis:// or rediss://host:port)"
    )]
    ClusterUrl,
    #[error(
        "SWITCHBOARD_REDIS_CLUSTER: some seed nodes are rediss:// and some redis://; a Cluster is reached one way"
    )]
    ClusterMixedTls,
    #[error(
        "SWITCHBOARD_REDIS_URL {0} is not a Redis URL: expected redis://host:port (rediss:// for TLS; a password and database as redis://:password@host:port/0; redis+unix:///path/to/socket)"
    )]
    RedisUrl(String),
    #[error("SWITCHBOARD_REDIS_SENTINELS: {0:?} is not a redis://host:port URL")]
    SentinelUrl(String),
    #[error(
        "Sentinel mode does not support TLS yet: with SWITCHBOARD_REDIS_SENTINELS, SWITCHBOARD_REDIS_URL must be redis:// and SWITCHBOARD_REDIS_CA_FILE unset"
    )]
    SentinelTls,
    #[error("SWITCHBOARD_REDIS_CA_FILE {path}: {error}")]
    RedisCaFile { path: String, error: String },
    #[error(
        "SWITCHBOARD_REDIS_CA_FILE is set, but the Redis URL (in Cluster mode: the seed nodes) is not rediss://: the connection would not use TLS"
    )]
    RedisCaWithoutTls,
    #[error("SWITCHBOARD_NAMESPACE {0:?} must match [A-Za-z0-9._-]{{1,64}} and not be . or ..")]
    Namespace(String),
    #[error("SWITCHBOARD_PUBLIC_URL {0:?} must be an absolute http(s) URL")]
    PublicUrl(String),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error(
        "SWITCHBOARD_REQUEST_TIMEOUT_MS must be longer than SWITCHBOARD_REDIS_TIMEOUT_MS (and the [lookup] timeout_ms)"
    )]
    RequestTimeout,
    #[error(
        "the routing file has [lookup], but SWITCHBOARD_LOOKUP_SECRET is not set: its requests must be signed"
    )]
    LookupSecret,
    #[error("SWITCHBOARD_TWILIO_API_URL {0:?} must be an absolute http(s) URL")]
    TwilioApiUrl(String),
    #[error("TWILIO_ACCOUNT_SID {0:?} must be letters and digits (AC…)")]
    TwilioAccountSid(String),
    #[error(
        "SWITCHBOARD_STATUS_CALLBACK_OVERRIDES {0:?} is not a Twilio connection override fragment (like rc=5&rp=5xx,ct,rt): {1}"
    )]
    StatusCallbackOverrides(String, #[source] ConnectionOverridesError),
    #[error("{set} is set without {missing}: set both, or neither")]
    TwilioHalfSet {
        set: &'static str,
        missing: &'static str,
    },
    #[error(
        "TWILIO_ACCOUNT_SID is set without credentials: set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET"
    )]
    TwilioNoCredentials,
    #[error("{0} {1:?} must be letters and digits")]
    TwilioSid(&'static str, String),
    #[error("SWITCHBOARD_VOICE_TOKEN_TTL_SECS must be from 1 to 86400 (Twilio's 24 hours)")]
    VoiceTokenTtl,
}

/// Where Sentinel mode finds the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentinels {
    /// `redis://host:port` of each Sentinel.
    pub urls: Vec<String>,
    /// The name the Sentinels know the master by.
    pub master: String,
}

/// Whether the client reaches the Redis of `url` over TLS (`rediss://`,
/// `valkeys://`), as redis's own parser reads it.
fn uses_tls(url: &str) -> bool {
    redis::IntoConnectionInfo::into_connection_info(url)
        .is_ok_and(|info| matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }))
}

/// Cluster mode's seed nodes, checked: each a redis:// or rediss:// URL.
fn cluster_seeds(urls: Vec<String>) -> Result<Option<Vec<RedisUrl>>, SettingsError> {
    let urls: Vec<String> = urls
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    for url in &urls {
        if redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
            // Not echoed: a seed URL may carry the password.
            return Err(SettingsError::ClusterUrl);
        }
    }
    // The cluster client takes TLS or not for every node from the seeds.
    if urls.iter().any(|u| uses_tls(u)) && !urls.iter().all(|u| uses_tls(u)) {
        return Err(SettingsError::ClusterMixedTls);
    }
    Ok(Some(urls.into_iter().map(RedisUrl).collect()))
}

/// Sentinel mode's two settings, checked: both or neither.
fn sentinels(
    urls: Vec<String>,
    master: Option<String>,
) -> Result<Option<Sentinels>, SettingsError> {
    let urls: Vec<String> = urls
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    let master = master
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    match (urls.is_empty(), master) {
        (true, None) => Ok(None),
        (false, Some(master)) => {
            if let Some(bad) = urls
                .iter()
                .find(|u| !u.starts_with("redis://") || reqwest::Url::parse(u).is_err())
            {
                return Err(SettingsError::SentinelUrl(bad.clone()));
            }
            Ok(Some(Sentinels { urls, master }))
        }
        _ => Err(SettingsError::SentinelHalfSet),
    }
}

/// The CA file's PEM: readable, holding a certificate, for a `rediss://` URL.
fn read_redis_ca(path: &std::path::Path, redis_url: &str) -> Result<Vec<u8>, SettingsError> {
    if !uses_tls(redis_url) {
        return Err(SettingsError::RedisCaWithoutTls);
    }
    let error = |error: String| SettingsError::RedisCaFile {
        path: path.display().to_string(),
        error,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(pem)
}

/// An admin token shorter than this gets a start-up warning.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Something odd but workable in the settings. `into_settings` runs before
/// logging is set up, so these travel in `Settings` and are logged after.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsWarning {
    #[error("{0} had whitespace around it (a trailing newline from a secret file?): trimmed")]
    Trimmed(&'static str),
    #[error(
        "SWITCHBOARD_ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_CHARS} characters: easy to guess"
    )]
    ShortAdminToken,
    /// The routing file works but looks mistaken (`file:line: …`).
    #[error("{0}")]
    Routing(RoutingFileWarning),
}

/// Everything a server or worker needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Where `/metrics` (and `/healthz`, `/readyz`) are served apart from the
    /// webhooks, so what `/metrics` tells (queue names, volumes) stays off
    /// the public listener; `None`: on `listen`, beside the webhooks.
    pub ops_listen: Option<SocketAddr>,
    /// Holds the Redis password; `Debug` redacts it.
    pub redis_url: RedisUrl,
    /// PEM of the CA a `rediss://` server's certificate must chain to;
    /// `None`: the system's roots.
    pub redis_ca: Option<Vec<u8>>,
    /// Sentinel mode: where the master is found, instead of the URL's host.
    pub redis_sentinels: Option<Sentinels>,
    /// Cluster mode: seed nodes (may carry a password; `Debug` redacts them).
    pub redis_cluster: Option<Vec<RedisUrl>>,
    pub routing: RoutingTable,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    pub twilio_auth_token: Option<Secret>,
    /// `TWILIO_AUTH_TOKEN_SECONDARY`: a second key of `X-Twilio-Signature`,
    /// for rotating the auth token without downtime.
    pub twilio_auth_token_secondary: Option<Secret>,
    /// The fragment operators put on the number's status callback URL, when it
    /// is not switchboard's own; parsed (checked) at start.
    pub status_callback_overrides: Option<ConnectionOverrides>,
    pub skip_signature: bool,
    pub admin_token: Option<Secret>,
    /// To log once logging is up; never holds a secret.
    pub warnings: Vec<SettingsWarning>,
    pub namespace: String,
    pub log_format: LogFormat,
    pub sweep_interval: Duration,
    pub redis_timeout: Duration,
    /// The longest any request may take; a webhook past it answers the
    /// emergency TwiML, well inside Twilio's 15 s.
    pub request_timeout: Duration,
    pub connections: ConnectionLimits,
    pub event_streams: StreamLimits,
    /// Twilio's REST API (redirecting held callers); `None` without
    /// `TWILIO_ACCOUNT_SID`, and then held callers are connected by their next
    /// wait fetch. `Debug` shows no secret.
    pub twilio_rest: Option<RestConfig>,
    /// How long an answered call may go without a callback before the worker
    /// asks Twilio about it (with `twilio_rest` only).
    pub reconcile_after: Duration,
    /// Calls a second callbacks may place, every replica together
    /// (`TWILIO_CPS`).
    pub twilio_cps: f64,
    /// What signs the softphone's Access Tokens; `None` without
    /// `TWILIO_API_KEY_SID`. `Debug` shows no secret.
    pub voice_tokens: Option<VoiceTokens>,
    /// Signs `[lookup]` requests (`SWITCHBOARD_LOOKUP_SECRET`).
    pub lookup_secret: Option<Secret>,
}

/// What one client connection may hold (SPEC 1, "Connections"). Only the caps
/// are settings; the rest are fields so tests can change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections past which the listener stops accepting until one closes.
    pub max_connections: usize,
    /// Open connections one peer address may hold; 0: no limit.
    pub max_connections_per_peer: usize,
    /// Of `max_connections`, how many may be unproven (no request on them has
    /// passed authentication yet); past it the oldest unproven one is reset to
    /// make room. Three quarters of the cap: the rest is kept for proven ones.
    pub max_unproven: usize,
    /// Connections past a peer's share held unread until the header timeout
    /// (then reset) rather than reset at once; past it they are reset at once.
    /// `max_connections`, unless the open-file limit leaves less room
    /// (`listener::held_room`).
    pub max_held: usize,
    /// SO_SNDBUF and SO_RCVBUF of each accepted socket (the kernel doubles it
    /// for its bookkeeping). Without it Linux grows a socket's buffers to MBs,
    /// so a client that never reads pins them: 200 such connections pinned
    /// 753 MB. Webhook requests and answers are a few KiB.
    pub socket_buffer: usize,
    /// A request's headers must arrive within this, counted from the connection's
    /// start or the first byte of a later request on it.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request is closed after this; longer than
    /// load balancers' usual 60 s would race their reuse, so it is 60 s.
    pub idle_timeout: Duration,
    /// A webhook's body must arrive within this, or the answer is 408.
    pub body_read_timeout: Duration,
    /// A connection with a request in flight (or a response being written) that
    /// moves no byte either way for this long is closed: a client that never
    /// reads its answer would otherwise hold the connection, and its slot under
    /// `max_connections`, forever. Longer than any handler may work without I/O
    /// (`SWITCHBOARD_REQUEST_TIMEOUT_MS`), so only a stuck peer trips it.
    pub stall_timeout: Duration,
    /// hyper's per-connection read buffer limit: a request head larger than this
    /// is 431. Twilio's heads are ~1 KiB; hyper's default (~400 KiB) times
    /// 10,000 connections would let strangers pin 4 GB.
    pub max_buf_size: usize,
    /// Webhook body bytes that may be held at once across all connections,
    /// reserved before a body is read (its Content-Length, or the 64 KiB limit
    /// when chunked) and released once it is checked.
    pub body_budget: usize,
    /// How long a webhook waits for `body_budget` before it is answered 503.
    pub body_budget_wait: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            max_connections_per_peer: 1000,
            max_unproven: unproven_share(10_000),
            max_held: 10_000,
            socket_buffer: 32 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            max_buf_size: 16 * 1024,
            body_budget: 16 * 1024 * 1024,
            body_budget_wait: Duration::from_secs(1),
        }
    }
}

/// Which Redis and namespace, checked: what opening the store needs
/// (`server::build_store`), and all an `agents import` needs.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Holds the Redis password; `Debug` redacts it.
    pub redis_url: RedisUrl,
    pub redis_ca: Option<Vec<u8>>,
    pub redis_sentinels: Option<Sentinels>,
    pub redis_cluster: Option<Vec<RedisUrl>>,
    pub namespace: String,
    pub redis_timeout: Duration,
}

impl RedisArgs {
    pub fn into_redis_settings(self) -> Result<RedisSettings, SettingsError> {
        if !crate::agent::is_valid_id(&self.namespace) {
            return Err(SettingsError::Namespace(self.namespace));
        }
        if self.redis_timeout_ms == 0 {
            return Err(SettingsError::Zero("SWITCHBOARD_REDIS_TIMEOUT_MS"));
        }
        let redis_sentinels = sentinels(self.redis_sentinels, self.redis_sentinel_master)?;
        let redis_cluster = cluster_seeds(self.redis_cluster)?;
        if redis_cluster.is_some() && redis_sentinels.is_some() {
            return Err(SettingsError::ClusterAndSentinels);
        }
        // Checked now, not at the first connection: a mistake stops the start
        // with the form expected, before anything listens. (Cluster mode does
        // not use the URL.)
        if redis_cluster.is_none()
            && redis::IntoConnectionInfo::into_connection_info(self.redis_url.as_str()).is_err()
        {
            // Not echoed without a scheme: it may be a bare password.
            let shown = if self.redis_url.contains("://") {
                format!("{:?}", RedisUrl::from(self.redis_url.as_str()).redacted())
            } else {
                "(not shown: it has no scheme://)".to_owned()
            };
            return Err(SettingsError::RedisUrl(shown));
        }
        // Sentinel mode would connect to the master in plain text: refused
        // rather than silently dropping the TLS the URL asks for.
        if redis_sentinels.is_some() && (uses_tls(&self.redis_url) || self.redis_ca_file.is_some())
        {
            return Err(SettingsError::SentinelTls);
        }
        // The URL that says whether Redis is reached over TLS.
        let tls_decided_by = match &redis_cluster {
            Some(seeds) => seeds[0].expose(),
            None => self.redis_url.as_str(),
        };
        let redis_ca = match &self.redis_ca_file {
            Some(path) => Some(read_redis_ca(path, tls_decided_by)?),
            None => None,
        };
        Ok(RedisSettings {
            redis_url: self.redis_url.into(),
            redis_ca,
            redis_sentinels,
            redis_cluster,
            namespace: self.namespace,
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
        })
    }
}

/// How many event streams (`GET /v1/events`) one process serves at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// In all: half the default connection cap, so streams never hold the
    /// connections webhooks need.
    pub total: usize,
    /// Of one agent (every token of it together): one console and a few tabs.
    /// Each stream costs a connection and up to `events::BUFFERED` queued
    /// events, so one leaked token cannot hold thousands.
    pub per_agent: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            total: 5_000,
            per_agent: 5,
        }
    }
}

impl SettingsArgs {
    pub fn into_settings(self) -> Result<Settings, SettingsError> {
        let routing = match &self.routing {
            Some(path) => RoutingTable::load(path)?,
            None => RoutingTable::builtin(),
        };
        let redis = self.redis.into_redis_settings()?;
        let public_url = match self.public_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => return Err(SettingsError::PublicUrl(url)),
            None => None,
        };
        if self.sweep_interval_ms == 0 {
            return Err(SettingsError::Zero("SWITCHBOARD_SWEEP_INTERVAL_MS"));
        }
        if self.reconcile_after_secs == 0 {
            return Err(SettingsError::Zero("SWITCHBOARD_RECONCILE_AFTER_SECS"));
        }
        if !(self.twilio_cps > 0.0 && self.twilio_cps <= 1000.0) {
            return Err(SettingsError::Cps(self.twilio_cps));
        }
        if self.max_connections == 0 {
            return Err(SettingsError::Zero("SWITCHBOARD_MAX_CONNECTIONS"));
        }
        if self.max_event_streams == 0 {
            return Err(SettingsError::Zero("SWITCHBOARD_MAX_EVENT_STREAMS"));
        }
        if self.max_agent_streams == 0 {
            return Err(SettingsError::Zero("SWITCHBOARD_MAX_AGENT_STREAMS"));
        }
        let lookup_timeout = routing
            .lookup
            .as_ref()
            .map_or(Duration::ZERO, |l| l.timeout);
        if Duration::from_millis(self.request_timeout_ms) <= redis.redis_timeout + lookup_timeout {
            return Err(SettingsError::RequestTimeout);
        }
        let mut warnings: Vec<SettingsWarning> = routing
            .warnings
            .iter()
            .cloned()
            .map(SettingsWarning::Routing)
            .collect();
        let twilio_auth_token = token(self.twilio_auth_token, "TWILIO_AUTH_TOKEN", &mut warnings);
        let twilio_auth_token_secondary = token(
            self.twilio_auth_token_secondary,
            "TWILIO_AUTH_TOKEN_SECONDARY",
            &mut warnings,
        );
        if twilio_auth_token_secondary.is_some() && twilio_auth_token.is_none() {
            return Err(SettingsError::TwilioHalfSet {
                set: "TWILIO_AUTH_TOKEN_SECONDARY",
                missing: "TWILIO_AUTH_TOKEN",
            });
        }
        let status_callback_overrides = match self.status_callback_overrides.as_deref() {
            Some(raw) if !raw.trim().is_empty() => Some(
                raw.parse::<ConnectionOverrides>()
                    .map_err(|e| SettingsError::StatusCallbackOverrides(raw.to_owned(), e))?,
            ),
            _ => None,
        };
        let admin_token = token(self.admin_token, "SWITCHBOARD_ADMIN_TOKEN", &mut warnings);
        let lookup_secret = token(
            self.lookup_secret,
            "SWITCHBOARD_LOOKUP_SECRET",
            &mut warnings,
        );
        if routing.lookup.is_some() && lookup_secret.is_none() {
            return Err(SettingsError::LookupSecret);
        }
        let account_sid = token(self.twilio_account_sid, "TWILIO_ACCOUNT_SID", &mut warnings);
        let voice_tokens = voice_tokens(self.voice, account_sid.as_ref(), &mut warnings)?;
        let twilio_rest = twilio_rest(
            TwilioRestArgs {
                account_sid,
                auth_token: twilio_auth_token.clone(),
                api_key: token(self.twilio_api_key, "TWILIO_API_KEY", &mut warnings),
                api_secret: token(self.twilio_api_secret, "TWILIO_API_SECRET", &mut warnings),
            },
            &self.twilio_api_url,
        )?;
        if admin_token
            .as_ref()
            .is_some_and(|t| t.expose().chars().count() < MIN_ADMIN_TOKEN_CHARS)
        {
            warnings.push(SettingsWarning::ShortAdminToken);
        }
        Ok(Settings {
            listen: self.listen,
            ops_listen: self.ops_listen,
            redis_url: redis.redis_url,
            redis_ca: redis.redis_ca,
            redis_sentinels: redis.redis_sentinels,
            redis_cluster: redis.redis_cluster,
            routing,
            public_url,
            twilio_auth_token,
            twilio_auth_token_secondary,
            status_callback_overrides,
            skip_signature: self.skip_signature,
            admin_token,
            warnings,
            namespace: redis.namespace,
            log_format: self.log_format,
            sweep_interval: Duration::from_millis(self.sweep_interval_ms),
            redis_timeout: redis.redis_timeout,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                max_connections_per_peer: self.max_connections_per_peer,
                max_unproven: unproven_share(self.max_connections),
                max_held: self.max_connections,
                // A handler may work without I/O for up to the request timeout;
                // only silence beyond that is a stuck peer.
                stall_timeout: ConnectionLimits::default()
                    .stall_timeout
                    .max(Duration::from_millis(self.request_timeout_ms) + Duration::from_secs(5)),
                ..ConnectionLimits::default()
            },
            event_streams: StreamLimits {
                // Streams are proven, long-lived connections: never more than
                // half the connection cap, whatever was asked, so webhooks
                // keep the other half.
                total: self
                    .max_event_streams
                    .min((self.max_connections / 2).max(1)),
                per_agent: self.max_agent_streams,
            },
            twilio_rest,
            reconcile_after: Duration::from_secs(self.reconcile_after_secs),
            twilio_cps: self.twilio_cps,
            voice_tokens,
            lookup_secret,
        })
    }
}

/// The softphone's signing key: none without `TWILIO_API_KEY_SID`; half a
/// pair, or a pair without the account it belongs to, is refused at start
/// rather than found by the first agent whose console cannot ring.
fn voice_tokens(
    args: VoiceArgs,
    account_sid: Option<&Secret>,
    warnings: &mut Vec<SettingsWarning>,
) -> Result<Option<VoiceTokens>, SettingsError> {
    if args.voice_token_ttl_secs == 0
        || Duration::from_secs(args.voice_token_ttl_secs) > crate::twilio::access_token::MAX_TTL
    {
        return Err(SettingsError::VoiceTokenTtl);
    }
    let key_sid = token(args.twilio_api_key_sid, "TWILIO_API_KEY_SID", warnings);
    let secret = token(
        args.twilio_api_key_secret,
        "TWILIO_API_KEY_SECRET",
        warnings,
    );
    let app = token(args.twilio_twiml_app_sid, "TWILIO_TWIML_APP_SID", warnings);
    let (key_sid, secret) = match (key_sid, secret) {
        (Some(key_sid), Some(secret)) => (key_sid, secret),
        (None, None) if app.is_none() => return Ok(None),
        (None, _) => {
            return Err(SettingsError::TwilioHalfSet {
                set: if app.is_some() {
                    "TWILIO_TWIML_APP_SID"
                } else {
                    "TWILIO_API_KEY_SECRET"
                },
                missing: "TWILIO_API_KEY_SID",
            });
        }
        (Some(_), None) => {
            return Err(SettingsError::TwilioHalfSet {
                set: "TWILIO_API_KEY_SID",
                missing: "TWILIO_API_KEY_SECRET",
            });
        }
    };
    let Some(account_sid) = account_sid else {
        return Err(SettingsError::TwilioHalfSet {
            set: "TWILIO_API_KEY_SID",
            missing: "TWILIO_ACCOUNT_SID",
        });
    };
    // The SIDs go into the token as they are: a typo would only show as
    // Twilio refusing every Device.
    let sid = |name: &'static str, value: &str| {
        if value.len() > 64 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Err(SettingsError::TwilioSid(name, value.to_owned()))
        } else {
            Ok(value.to_owned())
        }
    };
    Ok(Some(VoiceTokens {
        account_sid: sid("TWILIO_ACCOUNT_SID", account_sid.expose())?,
        key_sid: sid("TWILIO_API_KEY_SID", key_sid.expose())?,
        secret,
        twiml_app_sid: app
            .map(|a| sid("TWILIO_TWIML_APP_SID", a.expose()))
            .transpose()?,
        ttl: Duration::from_secs(args.voice_token_ttl_secs),
    }))
}

/// The connections of `max_connections` that unproven ones may fill: three
/// quarters, at least one.
fn unproven_share(max_connections: usize) -> usize {
    (max_connections / 4 * 3).max(1)
}

/// The REST settings as given, trimmed; secrets already wrapped.
struct TwilioRestArgs {
    account_sid: Option<Secret>,
    auth_token: Option<Secret>,
    api_key: Option<Secret>,
    api_secret: Option<Secret>,
}

/// REST credentials: none without an account SID; an API key pair when both
/// halves are set (Twilio's advice for production), else the auth token. Half a
/// pair is refused rather than silently falling back to the auth token, which
/// would hide the mistake until the first held caller.
fn twilio_rest(args: TwilioRestArgs, api_url: &str) -> Result<Option<RestConfig>, SettingsError> {
    let api_url = api_url.trim();
    if !(api_url.starts_with("http://") || api_url.starts_with("https://"))
        || reqwest::Url::parse(api_url).is_err()
    {
        return Err(SettingsError::TwilioApiUrl(api_url.to_owned()));
    }
    let key_pair = match (args.api_key, args.api_secret) {
        (Some(key), Some(secret)) => Some((key, secret)),
        (Some(_), None) => {
            return Err(SettingsError::TwilioHalfSet {
                set: "TWILIO_API_KEY",
                missing: "TWILIO_API_SECRET",
            });
        }
        (None, Some(_)) => {
            return Err(SettingsError::TwilioHalfSet {
                set: "TWILIO_API_SECRET",
                missing: "TWILIO_API_KEY",
            });
        }
        (None, None) => None,
    };
    let Some(account_sid) = args.account_sid else {
        if key_pair.is_some() {
            return Err(SettingsError::TwilioHalfSet {
                set: "TWILIO_API_KEY",
                missing: "TWILIO_ACCOUNT_SID",
            });
        }
        return Ok(None);
    };
    let account_sid = account_sid.expose().to_owned();
    if account_sid.len() > 64 || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SettingsError::TwilioAccountSid(account_sid));
    }
    let credentials = match (key_pair, args.auth_token) {
        (Some((key, secret)), _) => Credentials::ApiKey {
            account_sid,
            key_sid: key.expose().to_owned(),
            secret,
        },
        (None, Some(token)) => Credentials::AuthToken { account_sid, token },
        (None, None) => return Err(SettingsError::TwilioNoCredentials),
    };
    Ok(Some(RestConfig::new(api_url, credentials)))
}

/// A token as given, less surrounding whitespace: no client sends a token
/// ending in a newline, so one read from a secret file would never match.
/// Empty means unset.
fn token(
    raw: Option<String>,
    name: &'static str,
    warnings: &mut Vec<SettingsWarning>,
) -> Option<Secret> {
    let raw = raw?;
    let trimmed = raw.trim();
    if trimmed.len() != raw.len() {
        warnings.push(SettingsWarning::Trimmed(name));
    }
    (!trimmed.is_empty()).then(|| Secret::from(trimmed))
}

impl Settings {
    /// The Redis part, to open the store with.
    pub fn redis(&self) -> RedisSettings {
        RedisSettings {
            redis_url: self.redis_url.clone(),
            redis_ca: self.redis_ca.clone(),
            redis_sentinels: self.redis_sentinels.clone(),
            redis_cluster: self.redis_cluster.clone(),
            namespace: self.namespace.clone(),
            redis_timeout: self.redis_timeout,
        }
    }

    /// Settings for tests and embedding: built-in routing, no tokens.
    pub fn new(redis_url: impl Into<String>) -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: None,
            redis_url: RedisUrl(redis_url.into()),
            redis_ca: None,
            redis_sentinels: None,
            redis_cluster: None,
            routing: RoutingTable::builtin(),
            public_url: None,
            twilio_auth_token: None,
            twilio_auth_token_secondary: None,
            status_callback_overrides: None,
            skip_signature: false,
            admin_token: None,
            warnings: Vec::new(),
            namespace: "default".into(),
            log_format: LogFormat::Pretty,
            sweep_interval: Duration::from_millis(1000),
            redis_timeout: Duration::from_millis(2000),
            request_timeout: Duration::from_millis(10000),
            connections: ConnectionLimits::default(),
            event_streams: StreamLimits::default(),
            twilio_rest: None,
            reconcile_after: Duration::from_secs(300),
            twilio_cps: 1.0,
            voice_tokens: None,
            lookup_secret: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    fn settings(args: &[&str]) -> Settings {
        let cli = Cli::try_parse_from(std::iter::once("switchboard").chain(args.iter().copied()))
            .expect("valid flags");
        cli.settings.into_settings().expect("valid settings")
    }

    #[test]
    fn event_streams_never_take_more_than_half_the_connections() {
        assert_eq!(settings(&[]).event_streams.total, 5000);
        let s = settings(&["--max-connections", "2000"]);
        assert_eq!(s.event_streams.total, 1000);
        let s = settings(&["--max-connections", "2000", "--max-event-streams", "10"]);
        assert_eq!(s.event_streams.total, 10);
    }

    #[test]
    fn the_per_peer_cap_is_a_setting_and_unproven_connections_get_three_quarters() {
        let s = settings(&[]);
        assert_eq!(s.connections.max_connections_per_peer, 1000);
        assert_eq!(s.connections.max_unproven, 7500);
        let s = settings(&["--max-connections-per-peer", "0", "--max-connections", "1"]);
        assert_eq!(s.connections.max_connections_per_peer, 0);
        assert_eq!(s.connections.max_unproven, 1);
    }

    #[test]
    fn tokens_are_trimmed_with_a_warning_that_names_the_setting_not_the_token() {
        let s = settings(&[
            "--twilio-auth-token",
            "twilio-secret-token\n",
            "--admin-token",
            " \tadmin-secret-token-0123\r\n",
        ]);
        assert_eq!(
            s.twilio_auth_token.as_ref().map(Secret::expose),
            Some("twilio-secret-token")
        );
        assert_eq!(
            s.admin_token.as_ref().map(Secret::expose),
            Some("admin-secret-token-0123")
        );
        assert_eq!(
            s.warnings,
            [
                SettingsWarning::Trimmed("TWILIO_AUTH_TOKEN"),
                SettingsWarning::Trimmed("SWITCHBOARD_ADMIN_TOKEN"),
            ]
        );
        for w in &s.warnings {
            assert!(!w.to_string().contains("secret-token"), "{w}");
        }
    }

    #[test]
    fn clean_tokens_get_no_warning_and_blank_ones_are_unset() {
        let s = settings(&[
            "--twilio-auth-token",
            "twilio-secret-token",
            "--admin-token",
            "admin-secret-token-0123",
        ]);
        assert_eq!(s.warnings, []);
        let s = settings(&["--twilio-auth-token", "\n", "--admin-token", ""]);
        assert!(s.twilio_auth_token.is_none());
        assert!(s.admin_token.is_none());
    }

    #[test]
    fn settings_debug_never_shows_the_redis_password() {
        let s = settings(&[
            "--redis-url",
            "rediss://alice:redis-pass-word@cache.example:6380/2",
        ]);
        let printed = format!("{s:?}");
        assert!(!printed.contains("redis-pass-word"), "{printed}");
        assert!(
            printed.contains("rediss://alice:***@cache.example:6380/2"),
            "{printed}"
        );
        // The connecting code still gets the URL itself.
        let url: &str = &s.redis_url;
        assert!(url.contains("redis-pass-word"));
        for (url, shown) in [
            ("redis://:pw-only@h:6379", "redis://:***@h:6379"),
            ("redis://pw-as-user@h", "redis://***@h"),
            (
                "redis+unix:///run/r.sock?pass=pw",
                "redis+unix:///run/r.sock?***",
            ),
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("not a url pw", "***"),
        ] {
            assert_eq!(RedisUrl::from(url).redacted(), shown);
        }
    }

    fn settings_err(args: &[&str]) -> SettingsError {
        let cli = Cli::try_parse_from(std::iter::once("switchboard").chain(args.iter().copied()))
            .expect("valid flags");
        match cli.settings.into_settings() {
            Ok(_) => panic!("{args:?} should be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn status_callback_overrides_are_parsed_at_start() {
        let s = settings(&["--status-callback-overrides", "#rc=5&rp=5xx,ct,rt&tt=15000"]);
        let own = s.status_callback_overrides.expect("set");
        assert_eq!(own.as_str(), "rc=5&rp=5xx,ct,rt&tt=15000");
        let bad = Cli::try_parse_from(["test", "--status-callback-overrides", "rc=9"])
            .expect("clap parses")
            .settings
            .into_settings();
        let Err(e) = bad else {
            panic!("rc=9 accepted");
        };
        assert!(e.to_string().contains("rc=\"9\""), "{e}");
    }

    #[test]
    fn a_secondary_auth_token_needs_the_primary() {
        let s = settings(&[
            "--twilio-auth-token",
            "primary",
            "--twilio-auth-token-secondary",
            "secondary\n",
        ]);
        assert_eq!(
            s.twilio_auth_token_secondary.as_ref().map(Secret::expose),
            Some("secondary")
        );
        assert!(!format!("{s:?}").contains("secondary\""), "{s:?}");
        let alone = Cli::try_parse_from(["test", "--twilio-auth-token-secondary", "secondary"])
            .expect("clap parses")
            .settings
            .into_settings();
        assert!(
            matches!(alone, Err(SettingsError::TwilioHalfSet { .. })),
            "{alone:?}"
        );
    }

    #[test]
    fn twilio_rest_is_off_without_an_account_sid() {
        let s = settings(&["--twilio-auth-token", "tok"]);
        assert!(s.twilio_rest.is_none());
    }

    #[test]
    fn twilio_rest_uses_the_auth_token_or_a_whole_api_key_pair() {
        let s = settings(&[
            "--twilio-account-sid",
            "AC0123\n",
            "--twilio-auth-token",
            "auth-secret-value",
        ]);
        let rest = s.twilio_rest.expect("REST config");
        assert_eq!(rest.base_url, "https://api.twilio.com");
        assert_eq!(
            rest.credentials,
            Credentials::AuthToken {
                account_sid: "AC0123".into(),
                token: "auth-secret-value".into()
            }
        );
        let s = settings(&[
            "--twilio-account-sid",
            "AC0123",
            "--twilio-auth-token",
            "auth-secret-value",
            "--twilio-api-key",
            "SK9",
            "--twilio-api-secret",
            "api-secret-value\n",
            "--twilio-api-url",
            "http://127.0.0.1:9/",
        ]);
        let rest = s.twilio_rest.as_ref().expect("REST config");
        assert_eq!(rest.base_url, "http://127.0.0.1:9");
        assert_eq!(
            rest.credentials,
            Credentials::ApiKey {
                account_sid: "AC0123".into(),
                key_sid: "SK9".into(),
                secret: "api-secret-value".into()
            }
        );
        assert_eq!(s.warnings, [SettingsWarning::Trimmed("TWILIO_API_SECRET")]);
        let printed = format!("{s:?}");
        for secret in ["auth-secret-value", "api-secret-value"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn the_softphone_key_signs_tokens_for_the_account_within_twilios_24_hours() {
        assert_eq!(settings(&[]).voice_tokens, None);
        let s = settings(&[
            "--twilio-account-sid",
            "AC0123",
            "--twilio-auth-token",
            "auth-secret-value",
            "--twilio-api-key-sid",
            "SK0456",
            "--twilio-api-key-secret",
            "voice-secret-value\n",
        ]);
        let voice = s.voice_tokens.as_ref().expect("voice tokens");
        assert_eq!(voice.account_sid, "AC0123");
        assert_eq!(voice.key_sid, "SK0456");
        assert_eq!(voice.secret.expose(), "voice-secret-value");
        assert_eq!(voice.twiml_app_sid, None);
        assert_eq!(voice.ttl, Duration::from_secs(3600));
        assert_eq!(
            s.warnings,
            [SettingsWarning::Trimmed("TWILIO_API_KEY_SECRET")]
        );
        let printed = format!("{s:?}");
        assert!(!printed.contains("voice-secret-value"), "{printed}");
        let voice = settings(&[
            "--twilio-account-sid",
            "AC0123",
            "--twilio-auth-token",
            "t",
            "--twilio-api-key-sid",
            "SK0456",
            "--twilio-api-key-secret",
            "s",
            "--twilio-twiml-app-sid",
            "AP0789",
            "--voice-token-ttl-secs",
            "86400",
        ])
        .voice_tokens
        .expect("voice tokens");
        assert_eq!(voice.twiml_app_sid.as_deref(), Some("AP0789"));
        assert_eq!(voice.ttl, Duration::from_secs(86_400));

        for ttl in ["0", "86401"] {
            let e = settings_err(&["--voice-token-ttl-secs", ttl]);
            assert!(matches!(e, SettingsError::VoiceTokenTtl), "{e}");
        }
        let e = settings_err(&[
            "--twilio-api-key-sid",
            "SK1",
            "--twilio-api-key-secret",
            "s",
        ]);
        assert!(e.to_string().contains("TWILIO_ACCOUNT_SID"), "{e}");
        let e = settings_err(&[
            "--twilio-account-sid",
            "AC1",
            "--twilio-auth-token",
            "t",
            "--twilio-api-key-sid",
            "SK1",
        ]);
        assert!(e.to_string().contains("TWILIO_API_KEY_SECRET"), "{e}");
        let e = settings_err(&["--twilio-api-key-secret", "s"]);
        assert!(e.to_string().contains("TWILIO_API_KEY_SID"), "{e}");
        let e = settings_err(&["--twilio-twiml-app-sid", "AP1"]);
        assert!(e.to_string().contains("TWILIO_API_KEY_SID"), "{e}");
        let e = settings_err(&[
            "--twilio-account-sid",
            "AC1",
            "--twilio-auth-token",
            "t",
            "--twilio-api-key-sid",
            "SK1",
            "--twilio-api-key-secret",
            "s",
            "--twilio-twiml-app-sid",
            "AP 1",
        ]);
        assert!(e.to_string().contains("TWILIO_TWIML_APP_SID"), "{e}");
    }

    #[test]
    fn half_set_twilio_credentials_are_refused_naming_the_variables() {
        let e = settings_err(&["--twilio-account-sid", "AC1", "--twilio-api-key", "SK1"]);
        assert!(matches!(e, SettingsError::TwilioHalfSet { .. }), "{e}");
        assert!(e.to_string().contains("TWILIO_API_SECRET"), "{e}");
        let e = settings_err(&["--twilio-account-sid", "AC1", "--twilio-api-secret", "s"]);
        assert!(e.to_string().contains("TWILIO_API_KEY"), "{e}");
        let e = settings_err(&["--twilio-api-key", "SK1", "--twilio-api-secret", "s"]);
        assert!(e.to_string().contains("TWILIO_ACCOUNT_SID"), "{e}");
        let e = settings_err(&["--twilio-account-sid", "AC1"]);
        assert!(matches!(e, SettingsError::TwilioNoCredentials), "{e}");
        let e = settings_err(&[
            "--twilio-account-sid",
            "AC/../x",
            "--twilio-auth-token",
            "t",
        ]);
        assert!(matches!(e, SettingsError::TwilioAccountSid(_)), "{e}");
    }

    #[test]
    fn the_twilio_api_url_must_be_absolute_http() {
        for bad in ["api.twilio.com", "ftp://api.twilio.com", "https://"] {
            let e = settings_err(&["--twilio-api-url", bad]);
            assert!(matches!(e, SettingsError::TwilioApiUrl(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn an_admin_token_under_16_characters_gets_a_warning() {
        let s = settings(&["--admin-token", "fifteen-chars-x"]);
        assert_eq!(s.warnings, [SettingsWarning::ShortAdminToken]);
        assert!(s.warnings[0].to_string().contains("16"));
        let s = settings(&["--admin-token", "sixteen-chars-xy"]);
        assert_eq!(s.warnings, []);
    }
}
