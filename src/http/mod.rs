//! The HTTP surface: one `Router` holding the Twilio webhooks, the admin API, and
//! the operations endpoints, with the layers every request passes through. This
//! is the only place where errors become status codes or fallback TwiML.

pub mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::api;
use crate::config::Settings;
use crate::metrics;
use crate::routing::Engine;

/// Twilio's webhook bodies are a few KiB; anything larger is refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
}

/// The whole application, without a socket (tests drive it with `oneshot`).
pub fn router(state: AppState) -> Router {
    let twilio = Router::new()
        .route("/twilio/voice", post(webhooks::voice))
        .route("/twilio/voice/status", post(webhooks::call_status))
        .route("/twilio/voice/dial", post(webhooks::dial_action))
        .route("/twilio/voice/agent", post(webhooks::agent_status))
        .route("/twilio/voice/voicemail", post(webhooks::voicemail))
        .route_layer(middleware::from_fn(time_webhook));
    Router::new()
        .merge(twilio)
        .nest("/v1", api::router(state.clone()))
        .merge(ops_routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Only `/healthz`, `/readyz` and `/metrics`: what a `worker` process serves.
pub fn ops_router(state: AppState) -> Router {
    ops_routes().with_state(state)
}

fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
}

/// `switchboard_webhook_duration_seconds{route}`, labelled by route, not URL.
async fn time_webhook(path: MatchedPath, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::record_webhook(path.as_str().to_owned(), started.elapsed());
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine.store().check_ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response()
        }
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}
