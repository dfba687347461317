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

/// The calls in progress, each with where to send a redirect's URL.
#[derive(Default)]
pub(crate) struct Redirects {
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<String>>>,
}

impl Redirects {
    /// Registers a call; its redirects arrive on the receiver.
    pub(crate) fn open(&self, call_sid: &str) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(call_sid.to_owned(), tx);
        rx
    }

    /// The call is over: a redirect for it now answers 404, as Twilio's does.
    pub(crate) fn close(&self, call_sid: &str) {
        self.lock().remove(call_sid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<String>>> {
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
        .is_some_and(|tx| tx.send(url.clone()).is_ok());
    if sent {
        let body = serde_json::json!({ "sid": call_sid, "status": "in-progress" });
        (StatusCode::OK, axum::Json(body)).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        )
    }
}
