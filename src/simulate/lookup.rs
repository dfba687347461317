//! The customer's lookup service, played by `simulate --lookup-listen`: it
//! checks each request's signature (`SWITCHBOARD_LOOKUP_SECRET`, as the
//! server under test signs), and answers the needs of `--needs` in turn by
//! the call's number (call n gets the (n mod len)th). A request with a bad
//! signature is answered 401 and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::config::Secret;
use crate::lookup::{SIGNATURE_HEADER, verify};

/// How old a signature the stand-in takes, as a careful service would.
const MAX_AGE_SECS: u64 = 300;

#[derive(Default)]
pub(crate) struct Asked {
    pub answered: AtomicU64,
    pub forged: AtomicU64,
}

#[derive(Clone)]
struct StandIn {
    secret: Secret,
    needs: Arc<Vec<String>>,
    asked: Arc<Asked>,
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    secret: Secret,
    needs: Vec<String>,
    asked: Arc<Asked>,
) {
    let app = Router::new()
        .route("/lookup", post(answer))
        .with_state(StandIn {
            secret,
            needs: Arc::new(needs),
            asked,
        });
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("the lookup stand-in stopped: {e}");
    }
}

/// The simulated call's number: the low 64 bits of its CallSid.
pub(crate) fn call_number(call_sid: &str) -> Option<usize> {
    let hex = call_sid.strip_prefix("CA")?;
    let n = u128::from_str_radix(hex, 16).ok()?;
    usize::try_from(n & u128::from(u64::MAX)).ok()
}

/// The needs call `n` is given (`None`: nothing).
pub(crate) fn needs_of(needs: &[String], n: usize) -> Option<&str> {
    (!needs.is_empty()).then(|| needs[n % needs.len()].as_str())
}

async fn answer(State(s): State<StandIn>, headers: HeaderMap, body: Bytes) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| verify(&s.secret, h, &body, now, MAX_AGE_SECS));
    if !signed {
        s.asked.forged.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    s.asked.answered.fetch_add(1, Ordering::Relaxed);
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let n = request["call_sid"].as_str().and_then(call_number);
    let needs = n.and_then(|n| needs_of(&s.needs, n));
    axum::Json(serde_json::json!({ "needs": needs })).into_response()
}
