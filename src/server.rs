//! Putting a process together: settings → store → engine → router, served by
//! `http::listener` until a shutdown signal, then in-flight requests are
//! finished (within the drain time) before returning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::config::{RedisSettings, Settings};
use crate::http::{self, listener};
use crate::metrics;
use crate::routing::Engine;
use crate::store::{Store, StoreError};
use crate::twilio::rest::RestClient;
use crate::worker;

/// Opens the store the settings name (one Redis, a Sentinel-found master, or a
/// Cluster). Redis is not contacted yet: the first command connects.
pub fn build_store(redis: &RedisSettings) -> Result<Store, StoreError> {
    match (&redis.redis_cluster, &redis.redis_sentinels) {
        (Some(seeds), _) => {
            let seeds: Vec<String> = seeds.iter().map(|s| s.expose().to_owned()).collect();
            Store::with_cluster(
                &seeds,
                redis.redis_ca.as_deref(),
                &redis.namespace,
                redis.redis_timeout,
            )
        }
        (None, Some(sentinels)) => Store::with_sentinels(
            &sentinels.urls,
            &sentinels.master,
            &redis.redis_url,
            &redis.namespace,
            redis.redis_timeout,
        ),
        (None, None) => Store::with_ca(
            &redis.redis_url,
            redis.redis_ca.as_deref(),
            &redis.namespace,
            redis.redis_timeout,
        ),
    }
}

/// Builds the application state. Redis is not contacted: a server whose Redis is
/// down still starts, reports not ready, and answers callers the emergency TwiML.
pub fn build_state(settings: Settings) -> Result<AppState, StoreError> {
    let store = build_store(&settings.redis())?;
    let mut engine = Engine::new(store, Arc::new(settings.routing.clone()))
        .with_reconcile_after(settings.reconcile_after)
        .with_cps(settings.twilio_cps);
    match (&settings.twilio_rest, &settings.public_url) {
        (Some(rest), Some(public_url)) => match RestClient::new(rest.clone()) {
            Ok(client) => engine = engine.with_rest(client, public_url.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "no REST client: waiting callers connect at their next wait fetch")
            }
        },
        (Some(_), None) => tracing::warn!(
            "TWILIO_ACCOUNT_SID is set but SWITCHBOARD_PUBLIC_URL is not: a REST redirect needs the URL Twilio reaches; waiting callers connect at their next wait fetch"
        ),
        _ => {}
    }
    if let (Some(lookup), Some(secret)) = (&settings.routing.lookup, &settings.lookup_secret) {
        match crate::lookup::Lookup::new(lookup.clone(), secret.clone()) {
            Ok(client) => engine = engine.with_lookup(client),
            Err(e) => tracing::warn!(error = %e, "no lookup: calls are routed without it"),
        }
    }
    let handle = metrics::install();
    metrics::register_series(settings.routing.queues());
    Ok(AppState {
        events: crate::events::EventHub::new(engine.store().clone(), settings.event_streams),
        engine,
        settings: Arc::new(settings),
        metrics: handle,
    })
}

/// Loads the scripts if Redis answers; otherwise they load on first use.
pub async fn warm_up(state: &AppState) {
    let loaded = state.engine.store().load_scripts().await;
    let loaded = match loaded {
        Ok(()) => state.engine.publish_hold_queues(true).await,
        Err(e) => Err(e),
    };
    match loaded {
        Ok(()) => tracing::info!("Redis scripts loaded"),
        Err(e) => tracing::warn!(
            redis = %state.engine.store().target(),
            error = %e,
            "Redis is not reachable yet; /readyz answers 503 until it is"
        ),
    }
}

/// Serves `state` on `listener` until `shutdown` completes, then gives the
/// requests in flight their drain time.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (limits, drain) = (state.settings.connections.clone(), drain_time(&state));
    listener::serve(listener, http::router(state), limits, drain, shutdown).await
}

/// SPEC: requests in flight get up to `SWITCHBOARD_REQUEST_TIMEOUT_MS` after
/// SIGTERM; a second more lets an answer due at that deadline (the emergency
/// TwiML) be written before the connection is dropped.
fn drain_time(state: &AppState) -> Duration {
    state.settings.request_timeout + Duration::from_secs(1)
}

/// `serve`: the webhooks and admin API, plus the worker unless `with_worker` is
/// false, until `shutdown` is cancelled; then requests in flight finish and the
/// worker ends its round.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    with_worker: bool,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    run_with_ops(listener, None, state, with_worker, shutdown).await
}

/// As [`run`]; with an `ops` listener, `/metrics` (and `/healthz`, `/readyz`)
/// are served there and `/metrics` no longer on `listener`.
pub async fn run_with_ops(
    listener: TcpListener,
    ops: Option<TcpListener>,
    state: AppState,
    with_worker: bool,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let background = spawn_background(&state, with_worker, &shutdown);
    let (limits, drain) = (state.settings.connections.clone(), drain_time(&state));
    let public = http::public_router(state.clone(), ops.is_none());
    let public = listener::serve(
        listener,
        public,
        limits.clone(),
        drain,
        shutdown.clone().cancelled_owned(),
    );
    let result = match ops {
        None => public.await,
        Some(ops) => {
            let router = http::ops_router(state);
            let stop = shutdown.clone().cancelled_owned();
            let ops = listener::serve(ops, router, limits, drain, stop);
            // Either ending (an accept error) ends the process: a server
            // nobody can scrape or probe is as wrong as one nobody can call.
            let stopping = shutdown.clone();
            let (public, ops) = tokio::join!(
                async {
                    let r = public.await;
                    stopping.cancel();
                    r
                },
                async {
                    let r = ops.await;
                    shutdown.cancel();
                    r
                }
            );
            public.and(ops)
        }
    };
    shutdown.cancel();
    for task in background {
        let _ = task.await;
    }
    result
}

/// `worker`: the worker loop alone, with `/healthz`, `/readyz` and `/metrics` on
/// `listener` for probes and scraping.
pub async fn run_worker(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let background = spawn_background(&state, true, &shutdown);
    let (limits, drain) = (state.settings.connections.clone(), drain_time(&state));
    let router = http::ops_router(state);
    let stop = shutdown.clone().cancelled_owned();
    let result = listener::serve(listener, router, limits, drain, stop).await;
    shutdown.cancel();
    for task in background {
        let _ = task.await;
    }
    result
}

fn spawn_background(
    state: &AppState,
    with_worker: bool,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(metrics_upkeep(
        state.metrics.clone(),
        shutdown.clone(),
    ))];
    let (engine, stop) = (state.engine.clone(), shutdown.clone());
    tasks.push(tokio::spawn(async move {
        let unapplied = engine.unapplied().clone();
        unapplied.run(engine, stop).await;
    }));
    if with_worker {
        tasks.push(tokio::spawn(worker::run(
            state.engine.clone(),
            state.settings.sweep_interval,
            shutdown.clone(),
        )));
    }
    tasks
}

/// Histograms keep raw samples until rendered; drain them even if nobody scrapes.
async fn metrics_upkeep(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => handle.run_upkeep(),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing requests in flight");
}

/// A token cancelled by Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        cancel.cancel();
    });
    token
}
