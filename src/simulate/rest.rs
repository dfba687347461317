//! Twilio's REST side, played by `simulate --rest-listen`: a local stand-in of
//! the Calls update endpoint (`POST /2010-04-01/Accounts/{sid}/Calls/{call}.json`)
//! that the server under test redirects waiting callers with. It checks what a
//! real request would carry (basic auth by the account SID and the auth token,
//! `Url`, `Method=POST`) and hands the new URL to the simulated call, which then
//! fetches it at once, as Twilio would, instead of finishing its hold round.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use tokio::sync::mpsc;

/// The calls of the run, each with where to send a redirect's URL while it is
/// in progress (`None` once it is over).
#[derive(Default)]
pub(crate) struct Redirects {
    calls: Mutex<HashMap<String, Option<mpsc::UnboundedSender<String>>>>,
}

impl Redirects {
    /// Registers a call; its redirects arrive on the receiver.
    pub(crate) fn open(&self, call_sid: &str) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(call_sid.to_owned(), Some(tx));
        rx
    }

    /// The call is over: a redirect for it now answers 400 with error 21220
    /// ("Call is not in-progress"), as Twilio's does; a CallSid Twilio never
    /// had answers 404.
    pub(crate) fn close(&self, call_sid: &str) {
        if let Some(call) = self.lock().get_mut(call_sid) {
            *call = None;
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Option<mpsc::UnboundedSender<String>>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
struct StandIn {
    redirects: Arc<Redirects>,
    account_sid: String,
    auth_token: String,
}

/// Serves the stand-in on `listener` until the process ends.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    redirects: Arc<Redirects>,
    account_sid: String,
    auth_token: String,
) {
    let app = Router::new()
        .route("/2010-04-01/Accounts/{account}/Calls/{call}", post(update))
        .with_state(StandIn {
            redirects,
            account_sid,
            auth_token,
        });
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("the REST stand-in stopped: {e}");
    }
}

/// Twilio's error shape.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message, "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

async fn update(
    State(s): State<StandIn>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", s.account_sid, s.auth_token))
    );
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized || account != s.account_sid {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let Some(call_sid) = call.strip_suffix(".json") else {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let Some(url) = form
        .get("Url")
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    else {
        return error(StatusCode::BAD_REQUEST, 21205, "Url is not a valid URL");
    };
    if form.get("Method").map(String::as_str) != Some("POST") {
        return error(StatusCode::BAD_REQUEST, 21200, "the connect URL takes POST");
    }
    let sent = s
        .redirects
        .lock()
        .get(call_sid)
        .map(|call| call.as_ref().is_some_and(|tx| tx.send(url.clone()).is_ok()));
    match sent {
        Some(true) => {
            let body = serde_json::json!({ "sid": call_sid, "status": "in-progress" });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Some(false) => error(
            StatusCode::BAD_REQUEST,
            crate::twilio::rest::INVALID_CALL_STATE,
            "Call is not in-progress. Cannot redirect.",
        ),
        None => error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ),
    }
}
