//! switchboard: an inbound-call router for Twilio. Every incoming call is offered
//! to the agent who has been free the longest; all shared state is in Redis and
//! every state change is one Lua script, so any number of replicas can serve.
//!
//! Layout:
//! - `agent`        what an agent is: ids, contacts, states
//! - `app`          what every handler reaches (engine, settings, metrics)
//! - `config`       settings from env/flags, and the routing file (`config::routing`)
//! - `twilio`       the wire: signatures, form params, the TwiML writer, the REST client
//! - `store`        Redis: key names, the scripts of `lua/`, typed replies
//! - `routing`      the engine: a webhook becomes a decision through the store
//! - `http`         the router, layers, Twilio webhooks; errors become answers here
//! - `api`          the admin API under `/v1`, agents' `/v1/me`, `/v1/events`
//! - `events`       the live event feed one process hands its event streams
//! - `metrics`      the metrics catalogue and the Prometheus recorder
//! - `stats`        a queue's figures (service level windows, today, trend) from its buckets
//! - `telemetry`    logging setup
//! - `worker`       the sweep of expired reservations and leases, and the gauges
//! - `server`       wiring a process together and shutting it down
//! - `tls`          the one rustls crypto provider (ring)
//! - `redis_server` a throwaway `redis-server` for `demo` and the tests
//! - `roster`       agents files: checked, compared with Redis, applied (`agents import`, the demo)
//! - `demo`         the zero-setup `switchboard demo`
//! - `simulate`     a Twilio stand-in: places calls, follows TwiML, reports

pub mod agent;
pub mod api;
pub mod app;
pub mod config;
pub mod demo;
pub mod events;
pub mod http;
pub mod lookup;
pub mod metrics;
pub mod needs;
pub mod redis_server;
pub mod roster;
pub mod routing;
pub mod server;
pub mod simulate;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod twilio;
pub mod worker;
