//! `GET /v1/events`: the namespace's events as Server-Sent Events, live, from
//! where `Last-Event-ID` says the client stopped (admin, supervisor and
//! wallboard tokens: every event; agent token: that agent's). `GET /v1/calls/{CallSid}`: one call's events,
//! oldest first. Both read what the scripts appended (lua/lib/common.lua).
//!
//! What a stream may cost is bounded, since an agent token is a credential
//! that leaks: the hub caps open streams per agent and per process (429), a
//! resume reads at most `RESUME_WINDOW` events however old its id (further
//! back it gets a `gap` notice and the client reloads the present), and an
//! id the stream never gave is refused (400). At shutdown each stream sends a
//! `shutdown` notice and ends at once, so the listener's drain does not wait
//! for it and clients reconnect (elsewhere) without losing their place.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures_util::Stream;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::me::AgentCaller;
use super::roles::Caller;
use super::{ApiError, ErrorBody};
use crate::app::AppState;
use crate::events::{SubscribeError, Subscription, TokenKey};
use crate::http::listener::Draining;
use crate::metrics;
use crate::store::Store;
use crate::store::events::{StoredEvent, parse_id};

/// How often an agent's open stream checks its token again (revoked,
/// expired, agent deleted: the stream ends) and counts as a heartbeat.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(15);
/// About how often an idle stream gets a comment line, so proxies keep it
/// open (12 to 18 s, a stream's own).
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Who watches: an admin sees every event, and so do supervisors and
/// wallboards (with the token they came with, checked again while the stream
/// is open); an agent its own (likewise).
pub enum Viewer {
    Admin,
    Staff { token: String },
    Agent { id: String, token: String },
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // `roles::authorize` found the admin or a staff token already.
        match parts.extensions.get::<Caller>() {
            Some(Caller::Admin) => return Ok(Viewer::Admin),
            Some(Caller::Staff { .. }) => {
                let token = super::bearer_token(&parts.headers).to_owned();
                return Ok(Viewer::Staff { token });
            }
            None => {}
        }
        let AgentCaller(id) = AgentCaller::from_request_parts(parts, state).await?;
        let token = super::bearer_token(&parts.headers).to_owned();
        Ok(Viewer::Agent { id, token })
    }
}

/// Passes unless the request's bearer token is an agent token whose agent
/// has its most streams open on this server already (`EventHub::refuse_early`):
/// taken before `Viewer`, so such a request is answered 429 without a read
/// of Redis. Admin tokens and unknown ones go on to be checked.
pub struct UnderStreamCap;

impl FromRequestParts<AppState> for UnderStreamCap {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = super::bearer_token(&parts.headers);
        if !token.is_empty() {
            state.events.refuse_early(&TokenKey::of(token))?;
        }
        Ok(UnderStreamCap)
    }
}

impl Viewer {
    /// The agent whose events this viewer may see; `None`: every event.
    fn agent(&self) -> Option<String> {
        match self {
            Viewer::Admin | Viewer::Staff { .. } => None,
            Viewer::Agent { id, .. } => Some(id.clone()),
        }
    }

    /// The agent token this viewer came with, as the hub remembers it.
    fn token(&self) -> Option<TokenKey> {
        match self {
            Viewer::Admin => None,
            Viewer::Staff { token } | Viewer::Agent { token, .. } => Some(TokenKey::of(token)),
        }
    }

    fn sees(&self, event: &StoredEvent) -> bool {
        match self {
            Viewer::Admin | Viewer::Staff { .. } => true,
            Viewer::Agent { id, .. } => event.agent.as_deref() == Some(id.as_str()),
        }
    }
}

/// How far back a resume may go: the newest this many events after its
/// `Last-Event-ID` (filtered to what the viewer sees). One from further back
/// gets a `gap` notice instead, so every resume is one bounded read, for an
/// admin and an agent alike, however old the id it brings; and a resumed
/// stream holds about what a live one may have queued (`events::BUFFERED`).
pub const RESUME_WINDOW: usize = 500;

/// `Last-Event-ID`: a stream id (`<ms>-<seq>`), if the client sent one.
fn last_event_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    match value.to_str().ok().map(str::trim) {
        Some(id) if parse_id(id).is_some() => Ok(Some(id.to_owned())),
        _ => Err(ApiError::BadRequest(
            "Last-Event-ID must be an event id given by this stream (<ms>-<seq>)".into(),
        )),
    }
}

impl From<SubscribeError> for ApiError {
    fn from(e: SubscribeError) -> Self {
        match e {
            SubscribeError::Store(e) => ApiError::Store(e),
            full => ApiError::TooMany(format!("{full}: close one, or try again later")),
        }
    }
}

/// Live events as Server-Sent Events (`event:` its kind, `data:` its JSON,
/// `id:` to resume from with `Last-Event-ID`).
#[utoipa::path(get, path = "/v1/events", operation_id = "stream_events", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this event id: if at most 500 events of the namespace came after it, those this token may see are sent first; else a `gap` notice", pattern = r"^[0-9]{1,20}-[0-9]{1,20}$")),
    responses(
        (status = 200, description = "Server-Sent Events: each `event:` one of agent_state, call_routed, call_waiting, wait_estimated, step_relaxed, call_connected, call_ended, fallback, callback_requested, callback_dialing, callback_placed, callback_answered, callback_attempt, callback_connected, callback_ended, callback_cancelled, token_issued, tokens_revoked, wrap_up, with a JSON `data:` line and an `id:`. Two notices besides: `gap` (with an `id:`; data `{\"missed_after\": <the Last-Event-ID>, \"resume_window\": 500}`): more than 500 events came after the Last-Event-ID, they are not sent, so reload the present from the API; live events follow. `shutdown` (no `id:`; a `retry:` line; data `{\"reason\": \"shutdown\", \"retry_ms\": n}`): the server is stopping and the stream ends now; reconnect after `retry_ms` with the same Last-Event-ID", content_type = "text/event-stream", body = String),
        (status = 400, description = "a Last-Event-ID that is not a stream id (<ms>-<seq>), or one after the stream's newest event", body = ErrorBody),
        (status = 401, description = "no admin or agent token, or one that is unknown, expired or revoked (or a token in the URL)", body = ErrorBody),
        (status = 429, description = "too many event streams open: this agent's (SWITCHBOARD_MAX_AGENT_STREAMS, default 5) or this server's (SWITCHBOARD_MAX_EVENT_STREAMS, default 5000)", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    _: UnderStreamCap,
    viewer: Viewer,
    draining: Option<Extension<Draining>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = last_event_id(&headers)?;
    let store = state.engine.store().clone();
    let live = state
        .events
        .subscribe(viewer.agent(), viewer.token())
        .await?;
    let mut pending = VecDeque::new();
    let mut gap = None;
    // Without Last-Event-ID the stream starts now.
    let cursor = match resume {
        None => store.last_event_id().await?,
        Some(after) => {
            let (newest, mut window) = store.resume_after(&after, RESUME_WINDOW + 1).await?;
            // An id this stream has not given yet: a client of another
            // namespace or Redis, or one that made it up. Refused rather than
            // followed: its events would be held back until the stream passed it.
            if parse_id(&after) > parse_id(&newest) {
                return Err(ApiError::BadRequest(format!(
                    "Last-Event-ID {after} is after this stream's newest event ({newest})"
                )));
            }
            let end = window
                .last()
                .map_or_else(|| after.clone(), |e| e.id.clone());
            if window.len() > RESUME_WINDOW {
                gap = Some(Gap {
                    missed_after: after,
                    id: end.clone(),
                });
            } else {
                window.retain(|e| viewer.sees(e));
                pending.extend(window);
            }
            end
        }
    };
    // Streams opened together (a shift starting, consoles reconnecting after
    // a deploy) would otherwise check and write together, every time: a burst
    // of Redis reads and writes the webhooks queue behind. Each stream gets
    // its own phase.
    let phase = RECHECK.mul_f64(rand::random::<f64>());
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + phase, RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        store,
        viewer,
        ended: false,
        recheck,
        live,
        cursor,
        gap,
        pending,
        draining: draining.map(|Extension(Draining(token))| token),
        _open: OpenStream::new(),
    };
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        let sse = feed.next().await?.into_sse();
        Some((Ok(sse), feed))
    });
    let keep_alive = KEEP_ALIVE.mul_f64(0.8 + 0.4 * rand::random::<f64>());
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)))
}

/// The notice that events were left out: those after `missed_after` up to
/// `id`, more than `RESUME_WINDOW` of them.
struct Gap {
    missed_after: String,
    id: String,
}

/// What a stream sends.
enum Outgoing {
    Event(StoredEvent),
    Gap(Gap),
    /// The last thing a stream sends when the server shuts down.
    Shutdown,
}

impl Outgoing {
    fn into_sse(self) -> Event {
        match self {
            Outgoing::Event(event) => Event::default()
                .id(event.id)
                .event(event.kind)
                .data(event.data),
            // With an id: the client's next resume starts after the gap.
            Outgoing::Gap(gap) => Event::default().id(gap.id).event("gap").data(
                serde_json::json!({"missed_after": gap.missed_after, "resume_window": RESUME_WINDOW})
                    .to_string(),
            ),
            // No id: the client resumes from the last event it got. `retry:`
            // is the reconnection time an EventSource waits before it
            // reconnects; with data, the event is dispatched (the SSE spec
            // drops an event without), so a fetch() client sees it too.
            // Spread over 1 to 3 s so one replica's consoles do not all come
            // back at once.
            Outgoing::Shutdown => {
                let retry = Duration::from_millis(1000 + rand::random_range(0..2000));
                Event::default()
                    .event("shutdown")
                    .retry(retry)
                    .data(
                        serde_json::json!({"reason": "shutdown", "retry_ms": retry.as_millis() as u64})
                            .to_string(),
                    )
            }
        }
    }
}

/// One client's events: those its resume read (or a `gap` notice), then the
/// live feed past the last one sent. Polled only as the client reads; the
/// stream ends when the client fell too far behind (the hub closed its
/// queue), and at shutdown after a `shutdown` notice.
struct Feed {
    store: Store,
    viewer: Viewer,
    /// The last thing was sent (its agent was deleted, or shutdown).
    ended: bool,
    recheck: tokio::time::Interval,
    live: Subscription,
    /// The id of the last event handled (sent or filtered out).
    cursor: String,
    gap: Option<Gap>,
    pending: VecDeque<StoredEvent>,
    /// Cancelled when the server begins shutting down (the listener's).
    draining: Option<CancellationToken>,
    _open: OpenStream,
}

impl Feed {
    async fn next(&mut self) -> Option<Outgoing> {
        loop {
            if self.ended {
                return None;
            }
            // Before anything pending: the listener waits for this stream to
            // end, and the client resumes whatever was not sent.
            if self
                .draining
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
            {
                self.ended = true;
                return Some(Outgoing::Shutdown);
            }
            if let Some(gap) = self.gap.take() {
                return Some(Outgoing::Gap(gap));
            }
            if let Some(event) = self.pending.pop_front() {
                if !self.viewer.sees(&event) {
                    continue;
                }
                // An agent's own deletion is the last event its stream
                // sends: its tokens went with it.
                self.ended = matches!(self.viewer, Viewer::Agent { .. })
                    && event.kind == "agent_state"
                    && event.data.contains(r#""state":"deleted""#);
                return Some(Outgoing::Event(event));
            }
            let draining = self.draining.clone();
            let next = tokio::select! {
                next = self.live.events.recv() => next,
                _ = self.recheck.tick() => {
                    if !self.still_allowed().await {
                        return None;
                    }
                    continue;
                }
                // The top of the loop sends the notice.
                () = cancelled(draining.as_ref()) => continue,
            };
            match next {
                Some(event) => {
                    if parse_id(&event.id) > parse_id(&self.cursor) {
                        self.cursor.clone_from(&event.id);
                        self.pending.push_back(event.as_ref().clone());
                    }
                }
                None => {
                    tracing::info!(
                        "an event stream fell behind: closed (its client resumes with Last-Event-ID)"
                    );
                    return None;
                }
            }
        }
    }

    /// An agent's token still works (not revoked, expired, nor its agent
    /// deleted); its open stream then counts as a heartbeat, since a console
    /// in a background tab may send its own late. Admin streams always are.
    async fn still_allowed(&self) -> bool {
        let (id, token) = match &self.viewer {
            Viewer::Admin => return true,
            Viewer::Agent { id, token } => (id, token),
            Viewer::Staff { token } => {
                return match self.store.staff_of_token(token).await {
                    Ok(found) => {
                        if found.is_none() {
                            tracing::info!("a staff token stopped working: its event stream ends");
                        }
                        found.is_some()
                    }
                    // Redis away: the stream stays; the next check decides.
                    Err(_) => true,
                };
            }
        };
        match self.store.agent_of_token(token).await {
            Ok(Some(agent)) if &agent == id => {
                if let Err(e) = self.store.heartbeat(id).await {
                    tracing::debug!(error = %e, "cannot record an open stream's heartbeat");
                }
                true
            }
            Ok(_) => {
                tracing::info!(
                    agent = id,
                    "an agent's token stopped working: its event stream ends"
                );
                false
            }
            // Redis away: the stream stays; the next check decides.
            Err(_) => true,
        }
    }
}

/// Completes when `token` is cancelled; never without one (a router served
/// without the listener, as in-process tests do).
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Counts an open event stream in `switchboard_event_streams` while it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> OpenStream {
        metrics::event_streams(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::event_streams(-1.0);
    }
}

/// One event of a call's history, as `emit` (lua/lib/common.lua) stores it.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct CallEvent {
    /// The event's id in the stream.
    pub id: String,
    /// agent_state, call_routed, call_waiting, wait_estimated, step_relaxed,
    /// call_connected, call_ended, fallback, the callback_* events
    /// (docs/callbacks.md), token_issued, tokens_revoked or wrap_up.
    pub event: String,
    /// What happened: call_sid, queue, agent, from, at (ms), and the kind's
    /// own fields; `by` (`admin`, `supervisor:NAME`, `agent:ID`, `import`) on
    /// a change asked for through the API.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// A call's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallHistory {
    pub call_sid: String,
    /// Oldest first.
    pub events: Vec<CallEvent>,
    /// The agent's wrap-up (disposition code and note), the latest given;
    /// null when none was, or the call's record is gone.
    pub wrap_up: Option<super::agent_work::CallWrapUpDoc>,
}

/// One call's events, oldest first (kept as long as the call's record, at
/// least an hour after it ended).
#[utoipa::path(get, path = "/v1/calls/{call_sid}", operation_id = "get_call", tag = "events",
    params(("call_sid" = String, Path, description = "the call's CallSid", pattern = r"^CA[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "the call's events", body = CallHistory),
        (status = 401, description = "no or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "no events of that call (unknown, or long over)", body = ErrorBody),
        (status = 422, description = "the CallSid breaks its pattern", body = ErrorBody),
        (status = 503, description = "no admin token configured, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn call(
    State(state): State<AppState>,
    Path(call_sid): Path<String>,
) -> Result<Json<CallHistory>, ApiError> {
    if !crate::twilio::params::is_sid(&call_sid, "CA") {
        return Err(ApiError::Invalid(format!(
            "{call_sid:?} is not a CallSid (CA and 32 hex digits)"
        )));
    }
    let stored = state.engine.store().call_events(&call_sid).await?;
    if stored.is_empty() {
        return Err(ApiError::NotFound(format!("no events of call {call_sid}")));
    }
    let mut events = Vec::with_capacity(stored.len());
    for json in stored {
        match serde_json::from_str::<CallEvent>(&json) {
            Ok(event) => events.push(event),
            Err(e) => tracing::error!(call_sid, error = %e, "an unreadable call event: left out"),
        }
    }
    let wrap_up = state
        .engine
        .store()
        .call_wrap_up(&call_sid)
        .await?
        .map(|(agent, w)| super::agent_work::CallWrapUpDoc {
            agent,
            wrap_up: w.into(),
        });
    Ok(Json(CallHistory {
        call_sid,
        events,
        wrap_up,
    }))
}
