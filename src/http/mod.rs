//! The HTTP surface: one `Router` holding the Twilio webhooks, the admin API, the
//! operations endpoints and the console's files, with the layers every request
//! passes through. This is the only place where errors become status codes or
//! fallback TwiML.

mod callbacks;
mod console;
pub mod listener;
pub mod webhooks;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::FutureExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api;
use crate::app::AppState;
use crate::metrics;

/// Twilio's webhook bodies are a few KiB; anything larger is refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The whole application, without a socket (tests drive it with `oneshot`).
pub fn router(state: AppState) -> Router {
    public_router(state, true)
}

/// The application a public listener serves: everything, and `/metrics` only
/// if `with_metrics` (false when `SWITCHBOARD_OPS_LISTEN` serves it apart).
pub fn public_router(state: AppState, with_metrics: bool) -> Router {
    let twilio = Router::new()
        .route("/twilio/voice", post(webhooks::voice))
        .route("/twilio/voice/status", post(webhooks::call_status))
        .route("/twilio/voice/dial", post(webhooks::dial_action))
        .route("/twilio/voice/agent", post(webhooks::agent_status))
        .route("/twilio/voice/voicemail", post(webhooks::voicemail))
        .route("/twilio/voice/fallback", post(webhooks::fallback_action))
        .route("/twilio/voice/confirm", post(webhooks::confirm))
        .route("/twilio/voice/wait", post(webhooks::wait))
        .route("/twilio/voice/menu", post(webhooks::menu))
        .route("/twilio/voice/callback/number", post(callbacks::number))
        .route("/twilio/voice/callback/answer", post(callbacks::answer))
        .route("/twilio/voice/callback/connect", post(callbacks::connect))
        .route("/twilio/voice/callback/status", post(callbacks::status))
        .route("/twilio/voice/callback/customer", post(callbacks::customer))
        .route("/twilio/voice/callback/dialed", post(callbacks::dialed));
    let timeout = state.settings.request_timeout;
    let admin = Router::new()
        .nest("/v1", api::router(state.clone()))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(middleware::map_response(api::json_errors));
    let ops = ops_routes(with_metrics)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new());
    Router::new()
        .merge(guard_webhooks(twilio, &state).layer(RequestBodyLimitLayer::new(BODY_LIMIT)))
        .merge(admin)
        .merge(ops)
        .merge(console::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            // The path only: no query (callback tokens) and no headers (signatures).
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
}

/// Started by the `Webhook` extractor once a request has been read and its
/// signature checked. The emergency timeout runs from then on, so it covers the
/// handler's work for Twilio and never a slow or unsigned sender: those get 408
/// or 403 from the extractor, not the emergency number and no routing failure.
#[derive(Clone, Default)]
pub struct EmergencyClock(Arc<tokio::sync::Notify>);

impl EmergencyClock {
    pub fn start(&self) {
        // A stored permit: the layer may not be waiting yet.
        self.0.notify_one();
    }
}

/// The layers that keep Twilio from ever hearing an error: a verified webhook
/// whose handler takes longer than `request_timeout`, or a panic, answers the
/// `[emergency]` TwiML with 200; every webhook is timed.
pub fn guard_webhooks(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .route_layer(middleware::from_fn(time_webhook))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
}

/// Runs a webhook, answering the emergency TwiML when it panics or, once the
/// extractor has started the clock, outlasts `request_timeout`. The answer's
/// URLs (a voicemail step's `<Record action>`) are built like every other
/// TwiML's, on `SWITCHBOARD_PUBLIC_URL` or else the request's own host, so
/// they hold behind a public URL with a path prefix (`https://host/sb`).
async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let base = webhooks::base_url(&state.settings, request.headers(), request.uri());
    let timeout = state.settings.request_timeout;
    let clock = EmergencyClock::default();
    request.extensions_mut().insert(clock.clone());
    let run = async move {
        let mut response = std::pin::pin!(next.run(request));
        // Until the extractor starts the clock, reading and checking the
        // request is bounded by the extractor itself (body read timeout).
        tokio::select! {
            biased;
            response = &mut response => return Some(response),
            () = clock.0.notified() => {}
        }
        tokio::time::timeout(timeout, response).await.ok()
    };
    // The handler's future is dropped, never polled again, after a panic.
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(Some(response)) => response,
        Ok(None) => {
            metrics::routing_failure("request_timeout");
            tracing::error!(
                ?timeout,
                "webhook took too long: answering the emergency TwiML"
            );
            webhooks::twiml_response(webhooks::emergency(&state, &base))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            metrics::routing_failure("panic");
            tracing::error!(
                panic = what,
                "webhook handler panicked: answering the emergency TwiML"
            );
            webhooks::twiml_response(webhooks::emergency(&state, &base))
        }
    }
}

/// Only `/healthz`, `/readyz` and `/metrics`: what a `worker` process serves,
/// and what `SWITCHBOARD_OPS_LISTEN` does.
pub fn ops_router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    ops_routes(true)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

fn ops_routes(with_metrics: bool) -> Router<AppState> {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if with_metrics {
        routes.route("/metrics", get(render_metrics))
    } else {
        routes
    }
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
    // Anyone may ask /readyz: the detail (addresses, server messages) goes to
    // the log, with back-off (`Store::ready`), and the answer is fixed text.
    match state.engine.store().ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable\n").into_response(),
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    crate::telemetry::publish_dropped();
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;
    use crate::config::{RoutingTable, Settings};

    fn state() -> AppState {
        state_with("number:+15005550010", None)
    }

    /// No Redis is contacted by these routes; `emergency` is the `[emergency]`
    /// step, `public_url` `SWITCHBOARD_PUBLIC_URL`.
    fn state_with(emergency: &str, public_url: Option<&str>) -> AppState {
        let mut settings = Settings::new("redis://127.0.0.1:1");
        settings.routing = RoutingTable::parse(
            &format!("[[queues]]\nname = \"default\"\n[emergency]\nfallback = \"{emergency}\"\n"),
            "t.toml",
        )
        .unwrap();
        settings.request_timeout = Duration::from_millis(100);
        settings.public_url = public_url.map(str::to_owned);
        // The test routes take `Webhook`, which starts the emergency clock.
        settings.skip_signature = true;
        crate::server::build_state(settings).unwrap()
    }

    async fn send(router: Router<AppState>, state: AppState, path: &str) -> (StatusCode, String) {
        send_to(router, state, path, "switchboard.internal:8080").await
    }

    async fn send_to(
        router: Router<AppState>,
        state: AppState,
        path: &str,
        host: &str,
    ) -> (StatusCode, String) {
        let app = guard_webhooks(router, &state).with_state(state);
        let response = app
            .oneshot(
                Request::post(path)
                    .header("host", host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn panicking() -> Router<AppState> {
        Router::new().route(
            "/twilio/boom",
            axum::routing::post(|_: webhooks::Webhook| async {
                panic!("a bug");
                #[allow(unreachable_code)]
                ""
            }),
        )
    }

    fn slow() -> Router<AppState> {
        Router::new().route(
            "/twilio/slow",
            axum::routing::post(|_: webhooks::Webhook| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
    }

    #[tokio::test]
    async fn a_panicking_webhook_answers_the_emergency_twiml() {
        let (status, body) = send(panicking(), state(), "/twilio/boom").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<Number>+15005550010</Number>"), "{body}");
    }

    #[tokio::test]
    async fn a_webhook_past_the_request_timeout_answers_the_emergency_twiml() {
        let (status, body) = send(slow(), state(), "/twilio/slow").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<Number>+15005550010</Number>"), "{body}");
    }

    /// The `<Record action>` of an emergency voicemail, which Twilio posts to.
    fn record_action(body: &str) -> &str {
        let at = body.find("<Record").expect("a <Record>") + "<Record".len();
        let start = at + body[at..].find(" action=\"").expect("an action") + 9;
        let end = start + body[start..].find('"').expect("a closing quote");
        &body[start..end]
    }

    #[tokio::test]
    async fn emergency_voicemail_actions_are_absolute_under_the_public_urls_path_prefix() {
        let public = Some("https://calls.example/sb");
        for (route, path) in [(panicking(), "/twilio/boom"), (slow(), "/twilio/slow")] {
            let state = state_with("voicemail", public);
            let (status, body) = send(route, state, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                record_action(&body),
                "https://calls.example/sb/twilio/voice/voicemail",
                "{path}: {body}"
            );
        }
    }

    #[tokio::test]
    async fn without_a_public_url_emergency_voicemail_actions_name_the_requests_host() {
        for (route, path) in [(panicking(), "/twilio/boom"), (slow(), "/twilio/slow")] {
            let state = state_with("voicemail", None);
            let (status, body) = send_to(route, state, path, "calls.example:8443").await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                record_action(&body),
                "http://calls.example:8443/twilio/voice/voicemail",
                "{path}: {body}"
            );
        }
    }
}
