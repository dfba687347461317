//! Twilio's REST side, played by `simulate --rest-listen`: a local stand-in of
//! the Calls update endpoint (`POST /2010-04-01/Accounts/{sid}/Calls/{call}.json`)
//! that the server under test redirects waiting callers with. It checks what a
//! real request would carry (basic auth by the account SID and the auth token,
//! `Url`, `Method=POST`) and hands the new URL to the simulated call, which then
//! fetches it at once, as Twilio would, instead of finishing its hold round.
//! And the Calls create endpoint (`POST …/Calls.json`) that callbacks are
//! placed with: it checks the form as Twilio does, hands the call to the
//! simulated caller waiting for it, and watches that no callback is dialled
//! twice at once and that calls come at the account's pace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A call the server placed: a callback's try, for the caller waiting for it.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub call_sid: String,
    pub to: String,
    pub url: String,
    pub status_callback: String,
    pub machine_detection: bool,
}

/// The callbacks of the run: who waits for its calls, which try of each is
/// still live, and when each call was placed.
pub(crate) struct Placements {
    waiting: Mutex<HashMap<String, mpsc::UnboundedSender<Placed>>>,
    /// Callback CallSid -> its outbound call still live.
    live: Mutex<HashMap<String, String>>,
    placed_at: Mutex<Vec<Instant>>,
    /// The high half of every outbound CallSid (random per run).
    run: u64,
    next: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl Default for Placements {
    fn default() -> Self {
        Placements {
            waiting: Mutex::default(),
            live: Mutex::default(),
            placed_at: Mutex::default(),
            run: rand::random(),
            next: AtomicU64::new(0),
            violations: Mutex::default(),
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Placements {
    /// The caller `call_sid` waits to be called back: its calls arrive on the
    /// receiver.
    pub(crate) fn open(&self, call_sid: &str) -> mpsc::UnboundedReceiver<Placed> {
        let (tx, rx) = mpsc::unbounded_channel();
        locked(&self.waiting).insert(call_sid.to_owned(), tx);
        rx
    }

    /// It waits no more.
    pub(crate) fn close(&self, call_sid: &str) {
        locked(&self.waiting).remove(call_sid);
    }

    /// The try `outbound` of callback `call_sid` is over (its final status).
    pub(crate) fn over(&self, call_sid: &str, outbound: &str) {
        let mut live = locked(&self.live);
        if live.get(call_sid).is_some_and(|o| o == outbound) {
            live.remove(call_sid);
        }
    }

    /// Calls placed, and the most placed within any `window`.
    pub(crate) fn pace(&self, window: Duration) -> (usize, usize) {
        let mut at = locked(&self.placed_at).clone();
        at.sort_unstable();
        let mut most = 0;
        let mut first = 0;
        for last in 0..at.len() {
            while at[last].duration_since(at[first]) >= window {
                first += 1;
            }
            most = most.max(last + 1 - first);
        }
        (at.len(), most)
    }

    /// Callbacks dialled while an earlier try of theirs was still live.
    pub(crate) fn violations(&self) -> Vec<String> {
        locked(&self.violations).clone()
    }

    /// Takes a call the server placed (the callback it is for is the `call`
    /// of its Url's query); its new CallSid.
    fn place(&self, mut placed: Placed) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        placed.call_sid = format!("CA{:016x}{n:016x}", self.run);
        locked(&self.placed_at).push(Instant::now());
        let callback = url_query(&placed.url, "call").unwrap_or_default();
        let tx = locked(&self.waiting).get(&callback).cloned();
        // A call nobody waits for rings out unanswered: only the server's
        // deadline ends it, so it is not tracked as live.
        if let Some(tx) = tx {
            let mut live = locked(&self.live);
            if let Some(earlier) = live.insert(callback.clone(), placed.call_sid.clone()) {
                locked(&self.violations).push(format!(
                    "callback {callback} dialled again ({}) while its try {earlier} was still live",
                    placed.call_sid
                ));
            }
            let _ = tx.send(placed.clone());
        }
        placed.call_sid
    }
}

/// The value of `name` in a URL's query.
fn url_query(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

#[derive(Clone)]
struct StandIn {
    redirects: Arc<Redirects>,
    placements: Arc<Placements>,
    account_sid: String,
    auth_token: String,
}

/// Serves the stand-in on `listener` until the process ends.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    redirects: Arc<Redirects>,
    placements: Arc<Placements>,
    account_sid: String,
    auth_token: String,
) {
    let app = Router::new()
        .route("/2010-04-01/Accounts/{account}/Calls/{call}", post(update))
        .route("/2010-04-01/Accounts/{account}/Calls.json", post(place))
        .with_state(StandIn {
            redirects,
            placements,
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

/// Whether the request carries the account's basic auth, in its own path.
fn authorized(s: &StandIn, account: &str, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", s.account_sid, s.auth_token))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
        && account == s.account_sid
}

/// `POST …/Calls.json`: checks the form as Twilio does (numbers, absolute
/// URLs, the events Twilio knows, a `Timeout` of 1 to 600 s) and answers 201
/// with the new call, which it hands to the caller waiting for it.
async fn place(
    State(s): State<StandIn>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&s, &account, &headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let number = |v: &Option<String>| {
        v.as_deref().is_some_and(|n| {
            n.strip_prefix('+')
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let absolute = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
    };
    let events_ok = form
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .all(|(_, e)| ["initiated", "ringing", "answered", "completed"].contains(&e.as_str()));
    let timeout_ok = field("Timeout")
        .and_then(|t| t.parse::<u32>().ok())
        .is_some_and(|t| (1..=600).contains(&t));
    let (to, url, status_callback) = (field("To"), field("Url"), field("StatusCallback"));
    // `To` may also be a client or a SIP address (an agent-first callback
    // calls the agent).
    let reachable = |v: &Option<String>| {
        number(v)
            || v.as_deref().is_some_and(|t| {
                t.strip_prefix("client:").is_some_and(|c| !c.is_empty()) || t.starts_with("sip:")
            })
    };
    if !(reachable(&to)
        && number(&field("From"))
        && absolute(&url)
        && absolute(&status_callback)
        && events_ok
        && timeout_ok)
    {
        return error(StatusCode::BAD_REQUEST, 21205, "Invalid call parameters");
    }
    let machine_detection = field("MachineDetection").is_some();
    let placed = Placed {
        call_sid: String::new(),
        to: to.unwrap_or_default(),
        url: url.unwrap_or_default(),
        status_callback: status_callback.unwrap_or_default(),
        machine_detection,
    };
    let sid = s.placements.place(placed);
    let body = serde_json::json!({ "sid": sid, "status": "queued" });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn update(
    State(s): State<StandIn>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&s, &account, &headers) {
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
