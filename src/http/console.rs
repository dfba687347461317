//! `/console/`: the agent and supervisor web console, a few static files
//! compiled into the binary (no CDN, no external fonts: it works offline and
//! cannot load anything from elsewhere). Every byte of data it shows comes
//! from this server's own `/v1` API, with the token the user signs in with.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::AppState;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const SUPERVISOR: &str = include_str!("../../console/supervisor.js");
const STYLE: &str = include_str!("../../console/console.css");
const ICON: &str = include_str!("../../console/favicon.svg");

/// Only this origin: no inline script or style, no frames, no other hosts.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        // What a person typing the server's address wants.
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/console/favicon.svg") }),
        )
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|| async { file(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/supervisor.js",
            get(|| async { file(SUPERVISOR, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { file(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/favicon.svg",
            get(|| async { file(ICON, "image/svg+xml") }),
        )
}

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new binary may bring new files: ask each time (they are small).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
