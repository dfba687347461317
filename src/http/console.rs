//! `/console/`: the agent and supervisor web console, static files compiled
//! into the binary (no CDN, no external fonts: it works offline). Every byte
//! of data it shows comes from this server's own `/v1` API, with the token the
//! user signs in with.
//!
//! The softphone's Twilio Voice SDK (`console/vendor/`, an npm release, see its
//! README) is served from here too, embedded gzipped (63 KB rather than 303
//! KB of the binary) and sent as it is stored to every client that accepts
//! gzip (every browser); one that refuses gzip gets 406 and says why: a
//! decoder in the binary (flate2) cost 55 KB the 12 MB budget does not have. The console loads it only
//! for an agent whose contact is `client:`. The SDK's own connections are the
//! one thing the console reaches beyond this server: Twilio's signalling
//! (`wss://voice-js.<edge>.twilio.com`), its insights (`https://eventgw…`)
//! and the SDK's sounds (`https://sdk.twilio.com`), which the
//! Content-Security-Policy names and nothing else.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::AppState;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const SUPERVISOR: &str = include_str!("../../console/supervisor.js");
const STYLE: &str = include_str!("../../console/console.css");
const ICON: &str = include_str!("../../console/favicon.svg");
const RINGING_ICON: &str = include_str!("../../console/favicon-ringing.svg");
const ALERTS: &str = include_str!("../../console/alerts.js");
const SOFTPHONE: &str = include_str!("../../console/softphone.js");
const AGENT_WORK: &str = include_str!("../../console/agentwork.js");
/// `console/vendor/twilio.min.js`, gzipped (zopfli: see console/vendor/README.md).
const SDK_GZ: &[u8] = include_bytes!("../../console/vendor/twilio.min.js.gz");
/// The vendored SDK's npm version, part of its URL so it can be cached for good.
macro_rules! sdk_version {
    () => {
        "2.18.5"
    };
}
/// Where the SDK is served; `console/softphone.js` names the same path.
const SDK_PATH: &str = concat!(
    "/console/vendor/twilio-voice-sdk-",
    sdk_version!(),
    ".min.js"
);

/// No inline script or style, no frames; scripts, styles and images from this
/// origin only. Connections and media beyond this server: only the Twilio
/// hosts the Voice SDK talks to (signalling over WebSocket, insights and its
/// sounds over HTTPS, the sounds also as `<audio>` where Web Audio is missing).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self' wss://*.twilio.com https://*.twilio.com; \
                   media-src https://sdk.twilio.com; \
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
        .route(
            "/console/favicon-ringing.svg",
            get(|| async { file(RINGING_ICON, "image/svg+xml") }),
        )
        .route(
            "/console/alerts.js",
            get(|| async { file(ALERTS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/softphone.js",
            get(|| async { file(SOFTPHONE, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/agentwork.js",
            get(|| async { file(AGENT_WORK, "text/javascript; charset=utf-8") }),
        )
        .route(SDK_PATH, get(sdk))
}

/// The Voice SDK, gzipped as stored; 406 for a client that refuses gzip.
async fn sdk(headers: HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers);
    if !gzip {
        return (
            StatusCode::NOT_ACCEPTABLE,
            "the Voice SDK is served gzipped only: send Accept-Encoding: gzip",
        )
            .into_response();
    }
    let mut response = Body::from(SDK_GZ).into_response();
    secure(&mut response, "text/javascript; charset=utf-8");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // Its URL names its version: a new SDK is a new URL.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

/// Whether the request's `Accept-Encoding` allows gzip (RFC 9110, 12.5.3):
/// no header allows any coding; otherwise `gzip` (or `x-gzip`), or `*` when
/// gzip is not named, with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return true;
    }
    let mut gzip = None;
    let mut any = None;
    for item in values.iter().flat_map(|v| v.split(',')) {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(weight > 0.0),
            "*" => any = Some(weight > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    secure(&mut response, content_type);
    // A new binary may bring new files: ask each time (they are small).
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The type, and the headers every console file carries.
fn secure(response: &mut Response, content_type: &'static str) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        headers
    }

    #[test]
    fn gzip_is_sent_unless_the_client_refuses_it() {
        for yes in [
            &[][..],
            &["gzip, deflate, br, zstd"],
            &["br", "gzip"],
            &["GZIP;q=0.5"],
            &["x-gzip"],
            &["*"],
            &["br;q=1, *;q=0.1"],
        ] {
            assert!(accepts_gzip(&with(yes)), "{yes:?}");
        }
        for no in [
            &["identity"][..],
            &[""],
            &["br, deflate"],
            &["gzip;q=0"],
            &["gzip;q=0, *"],
            &["*;q=0"],
        ] {
            assert!(!accepts_gzip(&with(no)), "{no:?}");
        }
    }

    #[test]
    fn the_embedded_sdk_is_the_vendored_file_and_names_its_version() {
        use std::io::Read as _;
        let vendored = include_bytes!("../../console/vendor/twilio.min.js");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(SDK_GZ)
            .read_to_end(&mut decoded)
            .expect("it decodes");
        assert_eq!(decoded, &vendored[..]);
        let readme = include_str!("../../console/vendor/README.md");
        assert!(readme.contains(concat!("**", sdk_version!(), "**")));
        assert!(
            SOFTPHONE.contains(SDK_PATH),
            "console/softphone.js loads another path"
        );
    }
}
