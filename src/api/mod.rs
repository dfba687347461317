//! The admin API under `/v1`: agents and queues as JSON, behind a bearer token.
//! Errors are `{"error": "..."}` with the status codes of SPEC 1 ("Admin API").
//! Which token each route takes is the table of `roles`.

mod agent_work;
mod agents;
mod audit;
mod callbacks;
mod events;
mod explain;
mod me;
mod openapi;
mod queues;
pub mod roles;
mod supervisors;
mod tokens;
mod voice;

pub use openapi::{ApiDoc, document};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::config::Secret;
use crate::store::StoreError;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/agents", get(agents::list))
        .route(
            "/agents/{id}",
            put(agents::upsert).get(agents::get).delete(agents::delete),
        )
        .route("/agents/{id}/state", put(agents::set_state))
        .route("/agents/{id}/calls", get(agent_work::agent_calls))
        .route(
            "/agents/{id}/tokens",
            post(tokens::issue).delete(tokens::revoke),
        )
        .route("/queues", get(queues::list))
        .route("/queues/{name}", get(queues::get))
        .route(
            "/queues/{name}/waiting/{call_sid}",
            axum::routing::delete(queues::remove_waiting),
        )
        .route("/queues/{name}/callbacks", get(callbacks::list))
        .route(
            "/queues/{name}/callbacks/{call_sid}",
            axum::routing::delete(callbacks::cancel),
        )
        .route("/voicemails", get(queues::voicemails))
        .route("/calls/{call_sid}", get(events::call))
        .route(
            "/supervisors/{name}/tokens",
            post(supervisors::issue).delete(supervisors::revoke),
        )
        .route("/audit", get(audit::list))
        .route("/routing/explain", post(explain::explain))
        // An agent's own routes: its token, checked by `me::AgentCaller`.
        .route("/me", get(me::get))
        .route("/me/state", put(me::set_state))
        .route("/me/heartbeat", post(me::heartbeat))
        .route("/me/calls", get(agent_work::my_calls))
        .route(
            "/me/calls/{call_sid}/wrap-up",
            put(agent_work::set_my_wrap_up),
        )
        .route("/me/voice-token", post(voice::token))
        // Any token: `events::Viewer` tells which.
        .route("/events", get(events::stream))
        // Every route above takes the tokens `roles::ACCESS` lists for it.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            roles::authorize,
        ))
        // The description of the API needs no token: without one it holds no
        // data (the queue names are added only for a request with the token).
        .route("/openapi.json", get(openapi::serve))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_enabled,
        ))
        .layer(middleware::from_fn_with_state(state, refuse_token_in_url))
}

/// Every error under `/v1` as `{"error": …}`, also those answered by axum and
/// tower-http themselves (405, 408, 413, a bad query string, a panic's 500).
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let error = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut json = (status, Json(ErrorBody { error })).into_response();
    for name in [header::WWW_AUTHENTICATE, header::ALLOW] {
        if let Some(value) = parts.headers.get(&name) {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}

/// The body of every admin API error.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What is wrong.
    pub error: String,
}

/// An admin API failure, as its status code and message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadJson(String),
    #[error("the body is larger than 64 KiB")]
    TooLarge,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A live supervisor or wallboard token on a route its role may not use.
    #[error("{0}")]
    Forbidden(String),
    #[error("a token goes in the Authorization header, never in the URL")]
    TokenInUrl,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// A request header this route cannot use (a bad `Last-Event-ID`).
    #[error("{0}")]
    BadRequest(String),
    /// Past a cap of open streams: try again once one has closed.
    #[error("{0}")]
    TooMany(String),
    #[error("the admin API is disabled: SWITCHBOARD_ADMIN_TOKEN is not set")]
    Disabled,
    /// The detail is logged, never answered: it names Redis's address and
    /// whatever Redis itself said.
    #[error("Redis is unavailable")]
    Store(#[from] StoreError),
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadJson(rejection.body_text())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized | ApiError::TokenInUrl => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Disabled | ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if let ApiError::Store(e) = &self {
            tracing::error!(error = %e, "admin API request failed on Redis");
        }
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Without `SWITCHBOARD_ADMIN_TOKEN`, all of `/v1` answers 503.
async fn require_enabled(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.settings.admin_token.is_none() {
        return ApiError::Disabled.into_response();
    }
    next.run(request).await
}

/// Any request whose URL carries a token is refused (401) before anything
/// else, even with a good header: a URL ends up in access logs, proxies and
/// browser history, so the token must be treated as leaked, and the client
/// told at once rather than have it work.
async fn refuse_token_in_url(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let admin = state.settings.admin_token.as_ref().map(Secret::expose);
    if request
        .uri()
        .query()
        .is_some_and(|query| query_carries_token(query, admin))
    {
        return ApiError::TokenInUrl.into_response();
    }
    next.run(request).await
}

/// How many layers of percent-encoding a query is decoded through
/// (`%2573bat_` is `%73bat_` is `sbat_`).
const DECODE_LAYERS: usize = 3;

/// Whether any name or value of `query`, decoded as a form (`+` and percent
/// escapes, repeated names each seen, nested encodings up to
/// `DECODE_LAYERS`), holds an agent, supervisor or wallboard token (`sbat_`,
/// `sbst_`, `sbwt_`, in any case) or is the
/// admin token (alone or after `Bearer `). Decoded the way servers and
/// proxies decode a query, not matched in its raw text, which an encoding
/// hides.
fn query_carries_token(query: &str, admin: Option<&str>) -> bool {
    fn carries(text: &[u8], admin: Option<&str>, layers: usize) -> bool {
        form_urlencoded::parse(text).any(|(name, value)| {
            [name, value].iter().any(|part| {
                is_token(part, admin)
                    || (layers > 0
                        && part.contains('%')
                        && carries(part.as_bytes(), admin, layers - 1))
            })
        })
    }
    carries(query.as_bytes(), admin, DECODE_LAYERS)
}

/// `text` holds an agent, supervisor or wallboard token, or is the admin token.
fn is_token(text: &str, admin: Option<&str>) -> bool {
    let prefixes = [
        crate::store::tokens::TOKEN_PREFIX,
        crate::store::staff::SUPERVISOR_PREFIX,
        crate::store::staff::WALLBOARD_PREFIX,
    ];
    if prefixes.iter().any(|prefix| {
        text.as_bytes()
            .windows(prefix.len())
            .any(|w| w.eq_ignore_ascii_case(prefix.as_bytes()))
    }) {
        return true;
    }
    let Some(admin) = admin else {
        return false;
    };
    let text = text.trim();
    let given = match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => text,
    };
    is_admin_token(given, admin)
}

/// `given` is the admin token `expected`. Both sides are hashed first, so the
/// comparison takes the same time whatever the length or content given.
fn is_admin_token(given: &str, expected: &str) -> bool {
    let matches = Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes()));
    bool::from(matches) && !given.is_empty()
}

/// An optional whole number in a JSON body: JSON Schema's `integer` (and
/// clients that write `60.0`) allow a number with a zero fraction, which
/// serde's integer types refuse; anything else is the usual 400.
pub(super) fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize as _;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// The token of `Authorization: Bearer <token>`; empty without one.
pub(super) fn bearer_token(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme name is case-insensitive (RFC 9110, section 11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim())
}

/// Whether `headers` carry the configured admin token (false when none is set).
pub(super) fn has_admin_token(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let Some(expected) = state.settings.admin_token.as_ref().map(Secret::expose) else {
        return false;
    };
    is_admin_token(bearer_token(headers), expected)
}

#[cfg(test)]
mod tests {
    use super::query_carries_token;

    const AGENT: &str = "sbat_0123456789abcdef_0123456789012345678901234567890123456789012";
    const ADMIN: &str = "admin-token-0123456789";

    #[test]
    fn a_token_is_found_in_any_name_or_value_whatever_the_encoding() {
        let hidden = [
            format!("token={AGENT}"),
            AGENT.to_owned(),
            format!("a=1&access_token={AGENT}"),
            format!("t=1&t={AGENT}"),
            "t=%73bat_0123".to_owned(),
            "t=%2573bat_0123".to_owned(),
            "t=%252573bat_0123".to_owned(),
            "t=SBAT_0123".to_owned(),
            "t=sBaT%5f0123".to_owned(),
            "t=sbst_0123".to_owned(),
            "t=%73bwt_0123".to_owned(),
            "SBWT_0123=".to_owned(),
            "auth=Bearer+sbat_0123".to_owned(),
            "%74oken=x&sb%61t_0123=".to_owned(),
            format!("key={ADMIN}"),
            "key=%61dmin-token-0123456789".to_owned(),
            "key=Bearer+admin-token-0123456789".to_owned(),
            "key=bearer%20admin%2Dtoken-0123456789+".to_owned(),
            ADMIN.to_owned(),
        ];
        for query in &hidden {
            assert!(query_carries_token(query, Some(ADMIN)), "{query}");
        }
        for query in [
            "limit=10&cursor=0",
            "cursor=123&limit=1",
            "x=admin-token",
            "x=%25",
            "sbat=1",
            "",
        ] {
            assert!(!query_carries_token(query, Some(ADMIN)), "{query}");
        }
        assert!(!query_carries_token(&format!("key={ADMIN}"), None));
    }
}
