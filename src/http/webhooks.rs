//! The Twilio webhooks. Each checks the signature before anything else, reads the
//! fields it needs (400 when one is missing or malformed; a status value Twilio
//! may add later is answered with TwiML where a caller is on the line), asks the
//! engine, and answers TwiML. When Redis fails, a call still gets the
//! `[emergency]` TwiML with 200: Twilio must never play "an application error
//! has occurred".

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::agent::Contact;
use crate::agent::is_valid_id;
use crate::app::AppState;
use crate::config::hold::Announce;
use crate::config::menus;
use crate::config::{FallbackStep, Secret, Settings};
use crate::metrics;
use crate::routing::unapplied::Source;
use crate::routing::{self, AttemptKind, AttemptReport, Decision, IncomingCall};
use crate::store::{Outcome, StoreError};
use crate::twilio::params::{CallStatus, DialCallStatus, Params, ParamsError, is_sid};
use crate::twilio::signature;
use crate::twilio::twiml;

/// Paths of the callbacks switchboard writes into its own TwiML.
pub mod paths {
    pub const DIAL_ACTION: &str = "/twilio/voice/dial";
    pub const AGENT_STATUS: &str = "/twilio/voice/agent";
    pub const VOICEMAIL: &str = "/twilio/voice/voicemail";
    pub const FALLBACK_ACTION: &str = "/twilio/voice/fallback";
    pub const CONFIRM: &str = "/twilio/voice/confirm";
    pub const WAIT: &str = "/twilio/voice/wait";
    pub const MENU: &str = "/twilio/voice/menu";
}

/// Bounds all the Redis work of one webhook by `SWITCHBOARD_REDIS_TIMEOUT_MS`,
/// however many round trips it takes, so the caller is answered in time.
pub(super) async fn within_budget<T>(
    state: &AppState,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    within(state.settings.redis_timeout, work).await
}

async fn within<T>(
    budget: std::time::Duration,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(budget, work)
        .await
        .unwrap_or(Err(StoreError::Timeout(budget)))
}

/// The budget of a webhook that may route a new call: Redis' and, before
/// it, the `[lookup]`'s (which never fails the call: it adds nothing when
/// late).
async fn within_route_budget<T>(
    state: &AppState,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    within(
        state.engine.route_budget(state.settings.redis_timeout),
        work,
    )
    .await
}

/// A TwiML answer with the content type Twilio expects.
pub fn twiml_response(xml: String) -> Response {
    ([(header::CONTENT_TYPE, twiml::CONTENT_TYPE)], xml).into_response()
}

/// The base URL Twilio used to reach us: `SWITCHBOARD_PUBLIC_URL`, or the scheme of
/// `X-Forwarded-Proto` (trusted only without a public URL) and the `Host`.
pub fn base_url(settings: &Settings, headers: &HeaderMap, uri: &Uri) -> String {
    if let Some(public) = &settings.public_url {
        return public.clone();
    }
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{proto}://{host}")
}

/// Why a webhook is refused before anything happens (403, 408, 400, or 503 while
/// shutting down or overloaded): never after a change was made.
#[derive(Debug)]
pub enum Refusal {
    Signature(&'static str),
    /// No URL checked matched the signature under any token: the URLs (with
    /// any userinfo hidden), how many tokens were tried, and whether the
    /// request named a SharedKey signature (which switchboard cannot check).
    Mismatch {
        checked: Vec<String>,
        tokens: usize,
        shared_key: bool,
    },
    /// The body did not arrive within the body read timeout.
    SlowBody(std::time::Duration),
    /// The server began shutting down while the body was still arriving.
    ShuttingDown,
    /// Other connections hold the whole body budget (`BodyBudget`) for longer
    /// than the budget wait: answered 503, which Twilio treats as a failure of
    /// this URL (the number's fallback URL, or a retry with `#rp=5xx`).
    Overloaded(std::time::Duration),
    Params(ParamsError),
}

impl From<ParamsError> for Refusal {
    fn from(e: ParamsError) -> Self {
        Refusal::Params(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Signature(why) => {
                tracing::warn!(why, "webhook refused: bad signature");
                (StatusCode::FORBIDDEN, "invalid X-Twilio-Signature\n").into_response()
            }
            Refusal::Mismatch {
                checked,
                tokens,
                shared_key,
            } => {
                // What was hashed, so an operator can compare it with the URL
                // in Twilio's console (each is also tried with its port
                // removed, or the scheme's default port added).
                let checked = checked.join(" ");
                if shared_key {
                    tracing::warn!(
                        checked,
                        tokens,
                        "webhook refused: signature does not match any URL checked (X-Twilio-Webhooks-Signature-Settings: SharedKey signatures are not supported)"
                    );
                } else {
                    tracing::warn!(
                        checked,
                        tokens,
                        "webhook refused: signature does not match any URL checked"
                    );
                }
                (StatusCode::FORBIDDEN, "invalid X-Twilio-Signature\n").into_response()
            }
            Refusal::SlowBody(limit) => {
                tracing::warn!(?limit, "webhook refused: the body arrived too slowly");
                (
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the request body did not arrive within {limit:?}\n"),
                )
                    .into_response()
            }
            Refusal::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONNECTION, "close")],
                "shutting down\n",
            )
                .into_response(),
            Refusal::Overloaded(waited) => {
                tracing::warn!(
                    ?waited,
                    "webhook refused: webhook bodies in flight hold the whole body budget"
                );
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "1")],
                    "too many request bodies in flight\n",
                )
                    .into_response()
            }
            Refusal::Params(e) => {
                tracing::warn!(error = %e, "webhook refused: bad parameters");
                (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
            }
        }
    }
}

/// The auth tokens (the secondary one too while it is set) and the request's
/// `X-Twilio-Signature`, or the refusal that needs no body; `None` when
/// signatures are skipped (development only).
fn credentials<'a>(
    settings: &'a Settings,
    headers: &'a HeaderMap,
) -> Result<Option<(Vec<&'a str>, &'a str)>, Refusal> {
    if settings.skip_signature {
        return Ok(None);
    }
    let token = settings
        .twilio_auth_token
        .as_ref()
        .map(Secret::expose)
        .ok_or(Refusal::Signature("no TWILIO_AUTH_TOKEN configured"))?;
    let given = headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(Refusal::Signature("no X-Twilio-Signature header"))?;
    let mut tokens = vec![token];
    tokens.extend(
        settings
            .twilio_auth_token_secondary
            .as_ref()
            .map(Secret::expose),
    );
    Ok(Some((tokens, given)))
}

/// Everything a webhook can answer other than its TwiML: a refusal before
/// anything happened, or Redis failing while its change was applied. The one
/// place where such a failure is counted (`switchboard_routing_failures_total`),
/// logged (inside the call's span, captured when the error was made) and turned
/// into what Twilio must hear.
#[derive(Debug)]
pub enum WebhookError {
    Refused(Refusal),
    Store {
        error: StoreError,
        /// What was lost, and what happens instead (the log line's text).
        lost: &'static str,
        answer: Response,
        span: tracing::Span,
    },
}

impl WebhookError {
    /// Redis failed: answer `answer` (TwiML; a caller never hears an error).
    pub(super) fn store(error: StoreError, lost: &'static str, answer: String) -> WebhookError {
        WebhookError::Store {
            error,
            lost,
            answer: twiml_response(answer),
            span: tracing::Span::current(),
        }
    }

    /// Redis failed on a status callback, which no caller waits on: 503, so
    /// that Twilio sends it again (the connection overrides on the URL ask it
    /// to), rather than a 200 that drops the change.
    pub(super) fn unapplied(error: StoreError, lost: &'static str) -> WebhookError {
        WebhookError::Store {
            error,
            lost,
            answer: (
                StatusCode::SERVICE_UNAVAILABLE,
                twiml_response(twiml::empty()),
            )
                .into_response(),
            span: tracing::Span::current(),
        }
    }
}

impl From<Refusal> for WebhookError {
    fn from(refusal: Refusal) -> Self {
        WebhookError::Refused(refusal)
    }
}

impl From<ParamsError> for WebhookError {
    fn from(e: ParamsError) -> Self {
        WebhookError::Refused(Refusal::Params(e))
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        match self {
            WebhookError::Refused(refusal) => refusal.into_response(),
            WebhookError::Store {
                error,
                lost,
                answer,
                span,
            } => {
                let _in_call = span.enter();
                metrics::routing_failure(error.reason());
                tracing::error!(error = %error, "{lost}");
                answer
            }
        }
    }
}

/// Parses the form body and checks `X-Twilio-Signature` over the URL as Twilio
/// saw it and every parameter.
fn verify(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Params, Refusal> {
    let params = Params::parse(body)?;
    let settings = &state.settings;
    let Some((tokens, given)) = credentials(settings, headers)? else {
        tracing::warn!(
            "SWITCHBOARD_SKIP_SIGNATURE is on: webhook accepted without a signature check"
        );
        return Ok(params);
    };
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!("{}{path}", base_url(settings, headers, uri));
    let urls = signed_urls(settings, url);
    let candidates: Vec<&str> = urls.iter().map(String::as_str).collect();
    if signature::is_valid_for_any(&tokens, &candidates, params.pairs(), given) {
        Ok(params)
    } else {
        Err(Refusal::Mismatch {
            checked: urls.iter().map(|u| without_userinfo(u)).collect(),
            tokens: tokens.len(),
            // Tells the operator why a real Twilio request fails: a Webhook
            // Rule signs this URL with a SharedKey.
            shared_key: headers.contains_key(signature::SETTINGS_HEADER),
        })
    }
}

/// The URLs a webhook may have been signed over. A URL's connection overrides
/// (its `#…` fragment) never reach the server, and Twilio's docs say only that
/// it signs "the webhook URL set in Twilio"; its libraries sign whatever URL
/// they are given. So the URL is tried as received, and with each fragment it
/// may carry: switchboard's own (the agent legs' status callbacks) and the
/// operator's `SWITCHBOARD_STATUS_CALLBACK_OVERRIDES` (the number's status
/// callback). Only these: a signature over any other fragment does not pass.
fn signed_urls(settings: &Settings, url: String) -> Vec<String> {
    let mut urls = vec![format!("{url}#{}", twiml::CONNECTION_OVERRIDES)];
    if let Some(own) = &settings.status_callback_overrides
        && own.as_str() != twiml::CONNECTION_OVERRIDES
    {
        urls.push(format!("{url}#{}", own.as_str()));
    }
    urls.insert(0, url);
    urls
}

/// `url` without a `user:password@` (a public URL may carry basic-auth
/// credentials for Twilio), fit for a log line.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_owned(),
    }
}

/// A webhook whose signature checked out: its parameters and the base URL to
/// write callbacks on. As an extractor it answers 413, 408, 400 or 403 by itself,
/// so no handler can forget the check. A request without a signature header is
/// refused before its body is read, so however slowly it is sent it costs
/// nothing; a body still missing after the body read timeout is 408. Only then
/// does the emergency clock start (`EmergencyClock`). A signed-looking request's
/// body is read only once it holds its size in the process-wide `BodyBudget`
/// (503 if none frees up within the budget wait), so made-up signatures on
/// many connections cannot pin more than the budget.
pub struct Webhook {
    pub params: Params,
    pub uri: Uri,
    pub base: String,
}

impl FromRequest<AppState> for Webhook {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        credentials(&state.settings, &parts.headers).map_err(IntoResponse::into_response)?;
        let limits = &state.settings.connections;
        let _reserved = match parts.extensions.get::<super::listener::BodyBudget>() {
            Some(budget) => Some(reserve(budget, &parts.headers, limits).await?),
            None => None,
        };
        let limit = limits.body_read_timeout;
        let read = Bytes::from_request(Request::from_parts(parts.clone(), body), state);
        let draining = parts.extensions.get::<super::listener::Draining>().cloned();
        let body = tokio::select! {
            // A body that has arrived in full is served even if shutdown began
            // meanwhile: Twilio would otherwise get a 503 for a signed request
            // that only waits to be checked.
            biased;
            read = tokio::time::timeout(limit, read) => read
                .map_err(|_| Refusal::SlowBody(limit).into_response())?
                .map_err(IntoResponse::into_response)?,
            () = async {
                match draining {
                    Some(draining) => draining.0.cancelled().await,
                    None => std::future::pending().await,
                }
            } => return Err(Refusal::ShuttingDown.into_response()),
        };
        let params = verify(state, &parts.headers, &parts.uri, &body)
            .map_err(IntoResponse::into_response)?;
        if !state.settings.skip_signature {
            // Twilio: its connection keeps a slot however many strangers come.
            super::listener::prove(&parts.extensions);
        }
        if let Some(clock) = parts.extensions.get::<super::EmergencyClock>() {
            clock.start();
        }
        Ok(Webhook {
            params,
            base: base_url(&state.settings, &parts.headers, &parts.uri),
            uri: parts.uri,
        })
    }
}

/// Takes a request's share of the body budget: its Content-Length, or the 64 KiB
/// limit when it has none (chunked), never more than the whole budget (so one
/// request can always run alone).
async fn reserve(
    budget: &super::listener::BodyBudget,
    headers: &HeaderMap,
    limits: &crate::config::ConnectionLimits,
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(super::BODY_LIMIT);
    let bytes = announced.min(super::BODY_LIMIT).min(limits.body_budget);
    // BODY_LIMIT is 64 KiB: always fits a u32.
    let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
    let wait = limits.body_budget_wait;
    match tokio::time::timeout(wait, budget.0.clone().acquire_many_owned(bytes)).await {
        Ok(Ok(permit)) => Ok(permit),
        // Closed never happens (the listener never closes it); treat it as full.
        Ok(Err(_)) | Err(_) => Err(Refusal::Overloaded(wait).into_response()),
    }
}

/// `POST /twilio/voice`: a call comes in.
pub async fn voice(State(state): State<AppState>, hook: Webhook) -> Result<Response, WebhookError> {
    let Webhook { params, base, .. } = hook;
    let call = IncomingCall {
        call_sid: params.call_sid()?,
        from: params.optional_text("From").unwrap_or(""),
        to: params.text("To")?,
        // The number's (sub-)account: the REST requests about this call
        // name it. Twilio sends it on every webhook.
        account: params.sid("AccountSid", "AC").unwrap_or(""),
    };
    let (call_sid, to) = (call.call_sid, call.to);
    let span = tracing::info_span!("call", call_sid, to, from = call.from);
    routed(&state, &base, call_sid, state.engine.incoming(&call))
        .instrument(span)
        .await
}

/// The answer of a webhook that may route a new call: the decision's TwiML,
/// or the emergency answer when Redis did not answer within the budget.
async fn routed(
    state: &AppState,
    base: &str,
    call_sid: &str,
    routing: impl Future<Output = Result<Decision, StoreError>>,
) -> Result<Response, WebhookError> {
    let decision = within_route_budget(state, routing).await.map_err(|e| {
        let answer = emergency(state, base);
        WebhookError::store(
            e,
            "routing failed: answering the emergency fallback",
            answer,
        )
    })?;
    Ok(twiml_response(render(state, base, call_sid, &decision)))
}

/// The TwiML of a decision for call `call_sid`.
pub(super) fn render(state: &AppState, base: &str, call_sid: &str, decision: &Decision) -> String {
    match decision {
        Decision::Dial {
            agent,
            contact,
            token,
            home,
            queue,
            settings,
            confirm,
            ..
        } => {
            // `confirm=1` tells the callbacks how to read this attempt's reports,
            // `home` which queue plans the call's next attempt; the signature
            // covers both, so nobody can add, drop or change them.
            let attempt = format!(
                "agent={agent}&token={token}&home={home}{}",
                if *confirm { "&confirm=1" } else { "" }
            );
            let confirm_url = confirm.then(|| {
                format!(
                    "{base}{}?call={call_sid}&queue={queue}&{attempt}",
                    paths::CONFIRM
                )
            });
            twiml::dial_agent(&twiml::AgentDial {
                contact,
                action: &format!("{base}{}?{attempt}", paths::DIAL_ACTION),
                status_callback: &format!(
                    "{base}{}?{attempt}#{}",
                    paths::AGENT_STATUS,
                    twiml::CONNECTION_OVERRIDES
                ),
                ring_timeout_secs: settings.ring_timeout_secs,
                max_call_secs: settings.max_call_secs,
                confirm_url: confirm_url.as_deref(),
            })
        }
        Decision::Fallback { queue, step, next } => {
            fallback(state, base, queue, step, next.map(|n| (queue.as_str(), n)))
        }
        Decision::Wait {
            queue,
            position,
            estimated_wait_secs,
        } => hold_round(state, base, queue, *position, *estimated_wait_secs),
        Decision::Connecting { queue } => twiml::hold(&twiml::HoldRound {
            announcement: "",
            music_url: None,
            loop_secs: 1,
            wait_url: &format!("{base}{}?queue={queue}", paths::WAIT),
            gather: false,
            speech: state.engine.table().speech(queue),
        }),
        Decision::Menu {
            queue,
            menu,
            attempt,
        } => match state.engine.table().menu(menu) {
            Some(m) => twiml::menu(
                &m.prompt,
                m.timeout_secs,
                &format!("{base}{}?menu={menu}&try={attempt}", paths::MENU),
                state.engine.table().speech(queue),
            ),
            None => twiml::hangup(),
        },
        Decision::Hangup => twiml::hangup(),
    }
}

/// The TwiML of a fallback step of `queue`'s call (empty: the emergency answer)
/// that needs no agent. With `next` (the queue and the index of its chain's next
/// step, as the engine decided), a forward reports to `/twilio/voice/fallback`
/// so that step runs if nobody answers.
fn fallback(
    state: &AppState,
    base: &str,
    queue: &str,
    step: &FallbackStep,
    next: Option<(&str, usize)>,
) -> String {
    let action = next
        .map(|(queue, next)| format!("{base}{}?queue={queue}&step={next}", paths::FALLBACK_ACTION));
    match step {
        FallbackStep::Number(n) => twiml::forward(&Contact::Number(n.clone()), action.as_deref()),
        FallbackStep::Client(id) => twiml::forward(&Contact::Client(id.clone()), action.as_deref()),
        // A queue step is resolved by the engine; reaching here means it had no
        // agent, and voicemail is the answer of last resort.
        FallbackStep::Voicemail | FallbackStep::Queue(_) => {
            let table = state.engine.table();
            twiml::voicemail(
                &table.voicemail.greeting,
                table.voicemail.max_length_secs,
                &format!("{base}{}", paths::VOICEMAIL),
                table.speech(queue),
            )
        }
    }
}

/// One hold round of `queue` for a caller at `position` (0: unknown).
fn hold_round(
    state: &AppState,
    base: &str,
    queue: &str,
    position: u32,
    estimated_wait_secs: Option<u64>,
) -> String {
    let table = state.engine.table();
    let hold = table
        .queue(queue)
        .and_then(|q| q.hold.clone())
        .unwrap_or_default();
    let mut said = Vec::new();
    if position > 0 && matches!(hold.announce, Announce::Position | Announce::Both) {
        said.push(format!("You are number {position} in line."));
    }
    if let Some(secs) = estimated_wait_secs
        && matches!(hold.announce, Announce::Wait | Announce::Both)
    {
        said.push(spoken_wait(secs));
    }
    // The callback offer, once the wait is long enough to be worth it (and
    // only where this replica can place the call).
    if let (Some(key), Ok(_)) = (hold.callback_key, state.engine.callbacks_of(queue))
        && (hold.offer_callback_after_secs == 0
            || estimated_wait_secs.is_some_and(|s| s >= u64::from(hold.offer_callback_after_secs)))
    {
        said.push(format!(
            "To be called back instead, keeping your place in line, press {}.",
            spoken_key(key)
        ));
    }
    twiml::hold(&twiml::HoldRound {
        announcement: &said.join(" "),
        music_url: hold.music_url.as_deref(),
        loop_secs: hold.loop_secs,
        wait_url: &format!("{base}{}?queue={queue}", paths::WAIT),
        gather: !hold.exit_digits.is_empty() || hold.callback_key.is_some(),
        speech: table.speech(queue),
    })
}

/// A key as a caller hears it.
pub(super) fn spoken_key(key: char) -> String {
    match key {
        '*' => "star".to_owned(),
        '#' => "pound".to_owned(),
        digit => digit.to_string(),
    }
}

/// An estimated wait as a caller hears it: to the nearest minute, and under a
/// minute as such (an estimate is never exact: "about").
fn spoken_wait(secs: u64) -> String {
    if secs < 60 {
        return "Your wait is less than a minute.".to_owned();
    }
    let minutes = (secs + 30) / 60;
    format!(
        "Your wait is about {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    )
}

/// What a caller gets while Redis is unreachable.
pub fn emergency(state: &AppState, base: &str) -> String {
    render(state, base, "", &state.engine.emergency())
}

/// `POST /twilio/voice/voicemail`: the `<Record>` action. The message is kept in
/// Redis and always logged, so a Redis outage loses no voicemail.
pub async fn voicemail(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let params = hook.params;
    let call_sid = params.call_sid()?;
    let span = tracing::info_span!("call", call_sid);
    async {
        let recording_url = params.optional_url("RecordingUrl");
        let Some(recording_sid) = recording_id(&params, recording_url) else {
            tracing::info!("voicemail ended without a recording");
            return Ok(twiml_response(twiml::hangup()));
        };
        let message = serde_json::json!({
            "call_sid": call_sid,
            "recording_sid": recording_sid,
            "recording_url": recording_url,
            "duration_secs": params.get("RecordingDuration").and_then(|d| d.parse::<u32>().ok()),
            "digits": params.optional_text("Digits"),
            "from": params.optional_text("From"),
            "to": params.optional_text("To"),
        });
        // Not `message`: that key is the log line's own text.
        tracing::info!(voicemail = %message, "voicemail recorded");
        let store = state.engine.store();
        let stored = within_budget(
            &state,
            store.record_voicemail(call_sid, recording_sid, &message),
        )
        .await;
        let recorded = stored.map_err(|e| {
            let lost = "voicemail not stored in Redis; it is in the log line before";
            WebhookError::store(e, lost, twiml::hangup())
        })?;
        if recorded {
            metrics::voicemail_recorded();
        } else {
            tracing::info!("voicemail already recorded");
        }
        Ok(twiml_response(twiml::hangup()))
    }
    .instrument(span)
    .await
}

/// The id of a `<Record>` action's recording: `RecordingSid` when Twilio sends
/// it, else the last path segment of `RecordingUrl` (`…/Recordings/RE…`), which
/// is all Twilio documents for the action. `None`: nothing was recorded.
fn recording_id<'a>(params: &'a Params, recording_url: Option<&'a str>) -> Option<&'a str> {
    if let Ok(sid) = params.sid("RecordingSid", "RE") {
        return Some(sid);
    }
    let url = recording_url?;
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    // `RE….mp3` and `RE….wav` name the same recording.
    let last = last.split('.').next().unwrap_or(last);
    // A URL without a recording id still names one message: keep it under the
    // URL itself, which is as unique as the recording.
    Some(if is_sid(last, "RE") { last } else { url })
}

/// `?agent=<id>&token=<hex>[&confirm=1]` of the callback URLs switchboard
/// writes (the confirm URL adds `call` and `queue`). They are covered by the
/// signature, so a caller cannot forge them; a malformed one is 400.
#[derive(serde::Deserialize)]
struct AttemptQuery {
    agent: String,
    token: String,
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    call: Option<String>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    home: Option<String>,
}

impl AttemptQuery {
    fn parse(uri: &Uri) -> Result<AttemptQuery, Refusal> {
        let q: AttemptQuery = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|_| Refusal::Params(ParamsError::Missing("agent and token")))?;
        let token_ok = q.token.len() == 32 && q.token.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_valid_id(&q.agent) || !token_ok {
            return Err(Refusal::Params(ParamsError::Malformed("agent or token")));
        }
        Ok(q)
    }

    fn kind(&self) -> AttemptKind {
        if self.confirm.as_deref() == Some("1") {
            AttemptKind::Confirm
        } else {
            AttemptKind::Plain
        }
    }
}

/// Whether the caller's leg is over, from a Dial action's own `CallStatus`
/// (required: Twilio always sends it; 400 when missing). An unknown status is
/// not final: the caller may be on the line, and is answered.
fn caller_gone(params: &Params) -> Result<bool, Refusal> {
    let status = params.call_status()?;
    if let CallStatus::Unknown(value) = &status {
        tracing::warn!(
            call_sid = params.get("CallSid").unwrap_or(""),
            call_status = value.as_str(),
            "unknown CallStatus on a Dial action: taken as not final"
        );
    }
    Ok(status.is_final())
}

/// `DialCallStatus` (400 when missing) and what it means for the attempt,
/// given how its reports are read and whether the caller is gone. An unknown
/// value is a miss (`routing::dial_outcome`), and logged.
fn dial_call_status(
    params: &Params,
    kind: AttemptKind,
    caller_gone: bool,
) -> Result<(DialCallStatus, Outcome), Refusal> {
    let status = params.dial_call_status()?;
    if let DialCallStatus::Unknown(value) = &status {
        tracing::warn!(
            call_sid = params.get("CallSid").unwrap_or(""),
            dial_call_status = value.as_str(),
            "unknown DialCallStatus: taken as a miss"
        );
    }
    let report = routing::DialReport {
        dial_call_status: status,
        bridged: match params.get("DialBridged") {
            Some(b) if b.eq_ignore_ascii_case("true") => Some(true),
            Some(b) if b.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
        caller_gone,
    };
    let outcome = routing::dial_outcome(&report, kind);
    Ok((report.dial_call_status, outcome))
}

/// A status callback's `CallStatus` (no caller waits on the answer): a value
/// switchboard does not know is refused with 400 and changes nothing, which
/// shows in Twilio's debugger; guessing what it means could free an agent who
/// is on a call.
pub(super) fn status_callback_status(params: &Params) -> Result<CallStatus, Refusal> {
    match params.call_status()? {
        CallStatus::Unknown(value) => {
            tracing::warn!(
                call_status = value.as_str(),
                "unknown CallStatus on a status callback"
            );
            Err(Refusal::Params(ParamsError::Malformed("CallStatus")))
        }
        known => Ok(known),
    }
}

/// `POST /twilio/voice/dial`: the Dial action, how one attempt ended. Answers the
/// next agent, the fallback, or a hang-up.
pub async fn dial_action(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, base } = hook;
    let attempt = AttemptQuery::parse(&uri)?;
    let call_sid = params.call_sid()?;
    let gone = caller_gone(&params)?;
    let (dial_status, outcome) = dial_call_status(&params, attempt.kind(), gone)?;
    let dial_status = dial_status.as_str();
    let report = AttemptReport {
        call_sid,
        agent: &attempt.agent,
        token: &attempt.token,
        outcome,
        leg: params.sid("DialCallSid", "CA").ok(),
    };
    let agent = &attempt.agent;
    let call = IncomingCall {
        call_sid,
        from: params.optional_text("From").unwrap_or(""),
        to: params.optional_text("To").unwrap_or(""),
        account: params.sid("AccountSid", "AC").unwrap_or(""),
    };
    let span = tracing::info_span!("call", call_sid, agent, dial_status);
    async {
        let home = attempt.home.as_deref();
        let decision = within_budget(&state, state.engine.dial_action(&report, &call, home))
            .await
            .map_err(|e| {
                // The attempt's end is applied once Redis answers again.
                if !state.engine.unapplied().keep(Source::DialAction, &report) {
                    tracing::error!("too many reports wait for Redis: this dial action is left to the worker's deadline");
                }
                // A caller still waiting for an agent gets the emergency answer.
                if matches!(outcome, Outcome::Miss | Outcome::Ended) {
                    let lost = "dial action not applied: the caller gets the emergency fallback; kept to apply when Redis answers";
                    WebhookError::store(e, lost, emergency(&state, &base))
                } else {
                    let lost = "dial action not applied: the call is over; kept to apply when Redis answers";
                    WebhookError::store(e, lost, twiml::hangup())
                }
            })?;
        state.connect_waiting_soon();
        Ok(twiml_response(render(&state, &base, call_sid, &decision)))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/agent`: the agent leg's statusCallback. Twilio ignores the
/// answer; `ParentCallSid` is the caller's call.
pub async fn agent_status(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, .. } = hook;
    let attempt = AttemptQuery::parse(&uri)?;
    let call_sid = params.sid("ParentCallSid", "CA")?;
    let status = status_callback_status(&params)?;
    let Some(outcome) = routing::agent_leg_outcome(&status, attempt.kind()) else {
        return Ok(twiml_response(twiml::empty()));
    };
    let report = AttemptReport {
        call_sid,
        agent: &attempt.agent,
        token: &attempt.token,
        outcome,
        // The leg's own CallSid: what the worker asks Twilio about if the
        // call's end is never reported.
        leg: params.sid("CallSid", "CA").ok(),
    };
    let agent = &attempt.agent;
    let span = tracing::info_span!("call", call_sid, agent, agent_leg_status = status.as_str());
    async {
        within_budget(&state, state.engine.agent_status(&report))
            .await
            .map_err(|e| {
                // Twilio's retries last 15 s at most: the replica keeps the
                // report too, and applies it once Redis answers.
                if !state.engine.unapplied().keep(Source::AgentLeg, &report) {
                    tracing::error!("too many reports wait for Redis: this agent leg status is left to the worker's deadline and the reconcile backstop");
                }
                let lost = "agent leg status not applied: answered 503 for Twilio to send it again; kept to apply when Redis answers";
                WebhookError::unapplied(e, lost)
            })?;
        state.connect_waiting_soon();
        Ok(twiml_response(twiml::empty()))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/status`: the number's call status callback. A final status
/// releases whatever the call still holds.
pub async fn call_status(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let params = hook.params;
    let call_sid = params.call_sid()?;
    let status = status_callback_status(&params)?;
    if !status.is_final() {
        return Ok(twiml_response(twiml::empty()));
    }
    let span = tracing::info_span!("call", call_sid, call_status = status.as_str());
    async {
        within_budget(&state, state.engine.call_ended(call_sid))
            .await
            .map_err(|e| {
                if !state.engine.unapplied().keep_call_end(call_sid) {
                    tracing::error!("too many reports wait for Redis: this call's end is left to the Dial action and the worker's deadlines");
                }
                let lost = "call end not applied: answered 503 for Twilio to send it again; kept to apply when Redis answers";
                WebhookError::unapplied(e, lost)
            })?;
        tracing::info!("call ended");
        state.connect_waiting_soon();
        Ok(twiml_response(twiml::empty()))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/fallback?queue=…&step=…`: the action of a forwarding
/// `<Dial>`. A forward nobody answered goes on to the chain's next step; one that
/// was answered, or whose caller hung up (a final `CallStatus`), ends the call.
/// Needs no Redis.
pub async fn fallback_action(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    #[derive(serde::Deserialize)]
    struct Query {
        queue: String,
        step: usize,
    }
    let Webhook { params, uri, base } = hook;
    let call_sid = params.call_sid()?;
    let gone = caller_gone(&params)?;
    let (dial_status, outcome) = dial_call_status(&params, AttemptKind::Plain, gone)?;
    let dial_status = dial_status.as_str();
    let query: Query = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|_| Refusal::Params(ParamsError::Missing("queue and step")))?;
    let _span = tracing::info_span!("call", call_sid, dial_status).entered();
    let decision = state
        .engine
        .forward_ended(&query.queue, query.step, outcome)
        .ok_or(Refusal::Params(ParamsError::Malformed("queue or step")))?;
    Ok(twiml_response(render(&state, &base, call_sid, &decision)))
}

/// `POST /twilio/voice/confirm?call=…&queue=…&agent=…&token=…&confirm=1`: the
/// `url` of a confirm attempt's `<Number>`/`<Sip>`, run on the agent's phone
/// when it picks up. Without `Digits` it answers who is calling and "press 1";
/// with `Digits=1` (the Gather's action) the call becomes the agent's and the
/// empty answer connects it; anything else hangs the agent's leg up, and that
/// leg's end is a miss.
pub async fn confirm(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, base } = hook;
    let attempt = AttemptQuery::parse(&uri)?;
    let call_sid = attempt
        .call
        .as_deref()
        .filter(|sid| is_sid(sid, "CA"))
        .ok_or(Refusal::Params(ParamsError::Malformed("call")))?;
    let queue = attempt
        .queue
        .as_deref()
        .filter(|q| is_valid_id(q))
        .ok_or(Refusal::Params(ParamsError::Malformed("queue")))?;
    let span = tracing::info_span!("call", call_sid, agent = attempt.agent);
    let Some(digits) = params.get("Digits") else {
        let _span = span.entered();
        let path = uri
            .path_and_query()
            .map_or(paths::CONFIRM, |pq| pq.as_str());
        let announcement = format!(
            "Call from {} for {queue}. Press 1 to accept.",
            spoken_caller(params.optional_text("From").unwrap_or(""))
        );
        return Ok(twiml_response(twiml::confirm_prompt(
            &announcement,
            &format!("{base}{path}"),
            state.engine.table().speech(queue),
        )));
    };
    if digits != "1" {
        tracing::info!(digits, "agent declined the call");
        return Ok(twiml_response(twiml::hangup()));
    }
    let report = AttemptReport {
        call_sid,
        agent: &attempt.agent,
        token: &attempt.token,
        outcome: Outcome::Answered,
        leg: params.sid("CallSid", "CA").ok(),
    };
    async {
        // A person pressed 1 and the caller is waiting: with Redis unreachable
        // they are connected anyway; the leg's end then counts as a miss, the
        // lesser harm.
        let taken = within_budget(&state, state.engine.accept(&report))
            .await
            .map_err(|e| {
                let lost = "agent accepted while Redis is unreachable: connecting anyway";
                WebhookError::store(e, lost, twiml::empty())
            })?;
        if taken {
            Ok(twiml_response(twiml::empty()))
        } else {
            tracing::info!("agent pressed 1 for a call that moved on: leg hung up");
            Ok(twiml_response(twiml::hangup()))
        }
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/wait?queue=…`: a waiting caller's fetch, once a hold
/// round (and the action of the round's `<Gather>` when it pressed a key).
/// Answers another round, its agent's `<Dial>`, or the step that ends its wait.
/// With Redis unreachable the caller keeps waiting: another round, never the
/// emergency answer and never a dropped caller.
pub async fn wait(State(state): State<AppState>, hook: Webhook) -> Result<Response, WebhookError> {
    #[derive(serde::Deserialize)]
    struct Query {
        queue: String,
        /// `1` on the URL a REST redirect names (signed, like the rest).
        #[serde(default)]
        connect: Option<String>,
    }
    let Webhook { params, uri, base } = hook;
    let call_sid = params.call_sid()?;
    let query: Query = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|_| Refusal::Params(ParamsError::Missing("queue")))?;
    if !is_valid_id(&query.queue) {
        return Err(Refusal::Params(ParamsError::Malformed("queue")).into());
    }
    let call = IncomingCall {
        call_sid,
        from: params.optional_text("From").unwrap_or(""),
        to: params.optional_text("To").unwrap_or(""),
        account: params.sid("AccountSid", "AC").unwrap_or(""),
    };
    let digits = params.get("Digits");
    let span = tracing::info_span!("call", call_sid, queue = query.queue);
    async {
        let connect = query.connect.as_deref() == Some("1");
        let decision = within_budget(
            &state,
            state.engine.wait(&call, &query.queue, digits, connect),
        )
        .await
        .map_err(|e| {
            let lost = "wait fetch lost: the caller gets another hold round";
            let keep_waiting = Decision::Wait {
                queue: query.queue.clone(),
                position: 0,
                estimated_wait_secs: None,
            };
            WebhookError::store(e, lost, render(&state, &base, call_sid, &keep_waiting))
        })?;
        // The callback key: the caller still waits, and is asked which number
        // to call back (src/http/callbacks.rs).
        if let (Decision::Wait { queue, .. }, Some(key)) = (&decision, digits)
            && let Ok(hold) = state.engine.callbacks_of(queue)
            && hold.asks_callback(key)
        {
            return Ok(twiml_response(super::callbacks::number_prompt(
                &state, &base, queue, hold, call.from, false,
            )));
        }
        Ok(twiml_response(render(&state, &base, call_sid, &decision)))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/menu?menu=…&try=…`: the caller's key on a keypad menu
/// (the `<Gather>` action, with `Digits`), or no key (the `<Redirect>` after
/// it). Answers the prompt again, or routes the call as its option says; with
/// Redis unreachable, the emergency answer, as a new call gets.
pub async fn menu(State(state): State<AppState>, hook: Webhook) -> Result<Response, WebhookError> {
    #[derive(serde::Deserialize)]
    struct Query {
        menu: String,
        #[serde(rename = "try")]
        attempt: u32,
    }
    let Webhook { params, uri, base } = hook;
    let call_sid = params.call_sid()?;
    let query: Query = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|_| Refusal::Params(ParamsError::Missing("menu")))?;
    if !is_valid_id(&query.menu) || !(1..=menus::TRIES).contains(&query.attempt) {
        return Err(Refusal::Params(ParamsError::Malformed("menu")).into());
    }
    let call = IncomingCall {
        call_sid,
        from: params.optional_text("From").unwrap_or(""),
        to: params.text("To")?,
        account: params.sid("AccountSid", "AC").unwrap_or(""),
    };
    let digits = params.get("Digits");
    let span = tracing::info_span!("call", call_sid, menu = query.menu);
    let choice = state
        .engine
        .menu_choice(&call, &query.menu, query.attempt, digits);
    routed(&state, &base, call_sid, choice)
        .instrument(span)
        .await
}

/// The caller as an agent hears it: a number digit by digit (TTS would read
/// "+15551230001" as one large number), or "a withheld number".
fn spoken_caller(from: &str) -> String {
    if routing::affinity_caller(from).is_empty() {
        return "a withheld number".to_owned();
    }
    match from.strip_prefix('+') {
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" "),
        _ => from.trim_start_matches("client:").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_urls_checked_are_the_bare_one_and_each_configured_fragment_once() {
        let mut settings = Settings::new("redis://127.0.0.1:1");
        let url = "https://h.example/twilio/voice/status".to_owned();
        assert_eq!(
            signed_urls(&settings, url.clone()),
            [url.clone(), format!("{url}#rc=5&rp=5xx,ct,rt")]
        );
        settings.status_callback_overrides = Some("rc=5&rp=5xx,ct,rt".parse().unwrap());
        assert_eq!(signed_urls(&settings, url.clone()).len(), 2, "no copy");
        settings.status_callback_overrides = Some("#tt=15000&rc=5".parse().unwrap());
        assert_eq!(
            signed_urls(&settings, url.clone()),
            [
                url.clone(),
                format!("{url}#rc=5&rp=5xx,ct,rt"),
                format!("{url}#tt=15000&rc=5"),
            ]
        );
    }

    #[test]
    fn a_logged_url_shows_no_credentials() {
        assert_eq!(
            without_userinfo("https://twilio:pw@h.example/twilio/voice?x=1#rc=5"),
            "https://***@h.example/twilio/voice?x=1#rc=5"
        );
        assert_eq!(
            without_userinfo("https://h.example/a@b"),
            "https://h.example/a@b"
        );
    }
}
