//! The REST calls switchboard makes to Twilio. The first redirects a live
//! call to a new TwiML URL (`POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
//! `Url` and `Method=POST`), which is how a caller waiting in a hold queue is
//! connected the moment an agent is free (SPEC 1, "Callers wait in line"). The
//! second fetches a call (`GET …/Calls/{CallSid}.json`) for its status: the
//! worker asks about an agent leg that was answered and then went quiet, so an
//! agent whose call's end was never reported is not held for hours. The third
//! places a callback's outbound call (`POST …/Calls.json`, docs/callbacks.md).
//!
//! There is no maintained Twilio SDK for Rust, so this is a small typed client on
//! `reqwest`. Its shape follows from who is waiting on it: a caller on hold and
//! an agent reserved for them. So every redirect is bounded by one budget (total
//! time, time per try, number of tries); 429 and 5xx answers and network
//! failures are retried with exponential backoff and full jitter inside it; and
//! the answer is one of three outcomes the caller of `redirect` must act on,
//! never a bare HTTP status. When the budget is spent the caller's next wait
//! fetch connects them instead, so giving up early costs seconds, not the call.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;

use crate::config::Secret;

/// Where Twilio's REST API lives unless `SWITCHBOARD_TWILIO_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

/// How long an idle connection to the API is kept for the next request.
const POOL_IDLE: Duration = Duration::from_secs(300);

/// Twilio's error code for a realtime operation (redirect, record) on a call
/// that is not in progress: the call has ended.
pub const INVALID_CALL_STATE: u32 = 21220;

/// The HTTP basic credentials of Twilio's REST API. Both kinds name the account
/// in the request path; only the user name and password differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Account SID and auth token: the account's master key.
    AuthToken { account_sid: String, token: Secret },
    /// An API key (`SK…`) and its secret: revocable, what Twilio recommends in
    /// production.
    ApiKey {
        account_sid: String,
        key_sid: String,
        secret: Secret,
    },
}

impl Credentials {
    /// The account whose calls are updated (the `{AccountSid}` of the path).
    pub fn account_sid(&self) -> &str {
        match self {
            Credentials::AuthToken { account_sid, .. }
            | Credentials::ApiKey { account_sid, .. } => account_sid,
        }
    }

    fn user(&self) -> &str {
        match self {
            Credentials::AuthToken { account_sid, .. } => account_sid,
            Credentials::ApiKey { key_sid, .. } => key_sid,
        }
    }

    fn password(&self) -> &Secret {
        match self {
            Credentials::AuthToken { token, .. } => token,
            Credentials::ApiKey { secret, .. } => secret,
        }
    }
}

/// How long one redirect may keep a caller and an agent waiting.
///
/// The caller is never blocked on it: the redirect is sent off any webhook's
/// answer, the caller hears its hold music meanwhile, and a wait fetch that
/// comes while it is on its way gets one-second rounds until it lands or the
/// claim (the total budget and a second) runs out, never a whole hold round.
/// So the budget can afford what a healthy Twilio needs on a bad day: a new
/// TLS connection (most redirects reuse a pooled one) plus an answer that is
/// slow but coming, instead of giving up after a second and leaving the caller
/// to their next hold round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    /// The whole redirect, retries and backoff included: two full tries and
    /// their backoff fit, and the caller's one-second rounds stop after it.
    pub total: Duration,
    /// Opening a connection, TCP and TLS handshake together. Twilio's edge
    /// answers a handshake in well under a second; one that takes two is a
    /// path worth a fresh try (twilio-java once used one second and saw
    /// spurious connection failures, twilio/twilio-java#16).
    pub connect: Duration,
    /// One HTTP request, connection included.
    pub per_try: Duration,
    /// Requests sent at most, the first one included.
    pub max_tries: u32,
    /// The first backoff's ceiling; each retry doubles it up to `max_backoff`.
    pub base_backoff: Duration,
    /// The longest pause between two tries, a `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RequestBudget {
    fn default() -> Self {
        RequestBudget {
            total: Duration::from_secs(10),
            connect: Duration::from_secs(2),
            per_try: Duration::from_secs(4),
            max_tries: 4,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Everything the client needs; `Debug` shows no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// Without a trailing slash, e.g. `https://api.twilio.com`.
    pub base_url: String,
    pub credentials: Credentials,
    pub budget: RequestBudget,
}

impl RestConfig {
    /// A config with the default budget.
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> RestConfig {
        RestConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            credentials,
            budget: RequestBudget::default(),
        }
    }
}

/// Why a redirect did not happen, or the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("Twilio API URL {0:?} must be an absolute http(s) URL")]
    BaseUrl(String),
    #[error("{what} {sid:?} is not a Twilio SID (letters and digits only)")]
    Sid { what: &'static str, sid: String },
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// The request never got an HTTP answer (connection refused, reset, timed out).
    #[error("sending to Twilio: {0}")]
    Network(#[source] reqwest::Error),
    /// Twilio answered with an error; `code` and `message` come from its JSON
    /// body (`{"code", "message", "more_info", "status"}`) when it had one.
    #[error("Twilio answered {status}{}: {message}", code.map(|c| format!(" (error {c})")).unwrap_or_default())]
    Twilio {
        status: u16,
        code: Option<u32>,
        message: String,
    },
    /// Retries were allowed but the budget ran out; `last` is the last failure.
    #[error("gave up after {tries} tries: {last}")]
    GaveUp { tries: u32, last: Box<RestError> },
}

/// What became of a redirect; each asks something different of the caller.
#[derive(Debug)]
pub enum RedirectOutcome {
    /// Twilio took the new URL: it fetches it at once.
    Redirected,
    /// The call has ended (error 21220, "invalid call state": Twilio keeps
    /// ended calls, and refuses to redirect them): the caller is gone, so
    /// whatever was held for them can be released.
    CallOver,
    /// Twilio has no such call in this account (404). Either the CallSid never
    /// was a call of this account (a forged webhook), or `TWILIO_ACCOUNT_SID`
    /// names another account than the number's, and then every redirect will
    /// answer this: so the agent is released, but the caller is not taken
    /// for gone; its own wait fetch, if it comes, connects it.
    UnknownCall,
    /// Not redirected; the caller's next wait fetch must connect them.
    Failed(RestError),
}

/// Twilio's answers that ask for a later try of a call never placed: its REST
/// concurrency limit (20429, with HTTP 429), the From number's queue being
/// full (21611), and 22005, which the callback issue lists with them (its
/// meaning is not in Twilio's error pages). Any HTTP 429 counts too.
const TRY_LATER: [u32; 3] = [20429, 21611, 22005];

/// Twilio's answers that the number itself cannot be called, whenever asked:
/// not supported or invalid (13224, 21211, 21217), cannot be reached (21214),
/// outside the account's geographic permissions (21215), blocked by Twilio
/// (21216).
const NUMBER_REFUSED: [u32; 6] = [13224, 21211, 21214, 21215, 21216, 21217];

/// An outbound call to place (a callback's try).
#[derive(Debug, Clone)]
pub struct NewCall<'a> {
    pub to: &'a str,
    pub from: &'a str,
    /// Fetched (POST) when the call is answered: its TwiML.
    pub url: &'a str,
    /// Told of `initiated`, `ringing`, `answered` and `completed`.
    pub status_callback: &'a str,
    /// How long it rings before `no-answer` (Twilio: up to 600 s).
    pub timeout_secs: u32,
    /// `MachineDetection=Enable`: the `url` fetch then says `AnsweredBy`.
    pub machine_detection: bool,
}

/// What became of a request to place a call.
#[derive(Debug)]
pub enum PlaceOutcome {
    /// Twilio took it: the new call's CallSid.
    Placed(String),
    /// Not placed, worth a later try: Twilio asked for one (429 and the codes
    /// of `TRY_LATER`) or could not be reached, through this request's own
    /// retries.
    Busy(RestError),
    /// Not placed: the number cannot be called (`NUMBER_REFUSED`).
    Refused(RestError),
    /// Not placed, for a reason not the number's (credentials, the account,
    /// the From number: any other 4xx): the try counts and the callback is
    /// tried again later, so a fixed account saves it.
    NotPlaced(RestError),
    /// No answer, or a 5xx: it may or may not have been placed. It is not
    /// sent again (that could call the customer twice); its status callbacks
    /// tell, or the try's deadline ends it.
    Unknown(RestError),
}

/// Where a call is, as far as switchboard needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// queued, ringing or in-progress.
    Live,
    /// A final status: completed, busy, failed, no-answer or canceled.
    Over,
}

/// Twilio's error body; every field may be missing on a proxy's answer.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

/// One try's verdict.
enum Try {
    Done(RedirectOutcome),
    /// Worth another try after at least `after` (a `Retry-After`).
    Retry {
        error: RestError,
        after: Option<Duration>,
    },
}

/// A client of Twilio's Calls resource, cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    config: RestConfig,
}

impl RestClient {
    pub fn new(config: RestConfig) -> Result<RestClient, RestError> {
        let base = &config.base_url;
        if !(base.starts_with("https://") || base.starts_with("http://"))
            || reqwest::Url::parse(base).is_err()
        {
            return Err(RestError::BaseUrl(base.clone()));
        }
        check_sid("account SID", config.credentials.account_sid())?;
        let http = crate::tls::http_client_builder()
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.budget.connect.min(config.budget.per_try))
            // Connections stay open between redirects, so most of them skip
            // the TCP and TLS handshakes; keepalive probes find a dead one
            // before a redirect needs it.
            .pool_idle_timeout(POOL_IDLE)
            .tcp_keepalive(Duration::from_secs(30))
            // Twilio's API does not redirect; following one would send the
            // credentials' request somewhere unplanned.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(RestError::Build)?;
        Ok(RestClient { http, config })
    }

    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    /// Asks Twilio where the call `call_sid` is (`GET
    /// /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`): the worker's
    /// backstop for an answered call whose end was never reported. One try
    /// within the per-try time: the worker asks again a while later.
    pub async fn call_state(&self, call_sid: &str) -> Result<CallState, RestError> {
        self.call_state_in("", call_sid).await
    }

    /// `call_state` of a call of account `account` (a sub-account of the
    /// credentials' account, or `""` for the credentials' own).
    pub async fn call_state_in(
        &self,
        account: &str,
        call_sid: &str,
    ) -> Result<CallState, RestError> {
        let credentials = &self.config.credentials;
        let endpoint = self.call_endpoint(account, call_sid)?;
        let response = self
            .http
            .get(&endpoint)
            .basic_auth(credentials.user(), Some(credentials.password().expose()))
            .timeout(self.config.budget.per_try)
            .send()
            .await
            .map_err(RestError::Network)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(RestError::Network)?;
        if !status.is_success() {
            let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            return Err(RestError::Twilio {
                status: status.as_u16(),
                code: body.as_ref().and_then(|b| b.code),
                message: body
                    .and_then(|b| b.message)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
            });
        }
        #[derive(Deserialize)]
        struct CallResource {
            status: String,
        }
        let call: CallResource = serde_json::from_slice(&bytes).map_err(|e| RestError::Twilio {
            status: status.as_u16(),
            code: None,
            message: format!("not a call resource: {e}"),
        })?;
        Ok(match call.status.as_str() {
            "completed" | "busy" | "failed" | "no-answer" | "canceled" => CallState::Over,
            _ => CallState::Live,
        })
    }

    /// Places `call` in account `account` (`""`: the credentials' own): `POST
    /// …/Accounts/{AccountSid}/Calls.json`. Retried within the budget only
    /// when it surely was not placed (no connection, a 429): a customer is
    /// never called twice by one request.
    pub async fn place_call(&self, account: &str, call: &NewCall<'_>) -> PlaceOutcome {
        let account = match account {
            "" => self.config.credentials.account_sid(),
            sub => sub,
        };
        if let Err(e) = check_sid("AccountSid", account) {
            return PlaceOutcome::NotPlaced(e);
        }
        let endpoint = format!(
            "{}/2010-04-01/Accounts/{account}/Calls.json",
            self.config.base_url
        );
        let timeout = call.timeout_secs.to_string();
        let mut form = vec![
            ("To", call.to),
            ("From", call.from),
            ("Url", call.url),
            ("Method", "POST"),
            ("StatusCallback", call.status_callback),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", timeout.as_str()),
        ];
        // Several events: the parameter once per event (Twilio's API).
        for event in ["initiated", "ringing", "answered", "completed"] {
            form.push(("StatusCallbackEvent", event));
        }
        if call.machine_detection {
            form.push(("MachineDetection", "Enable"));
        }
        let outcome = self.place_within_budget(&endpoint, &form).await;
        crate::metrics::twilio_call_placed(match &outcome {
            PlaceOutcome::Placed(_) => "placed",
            PlaceOutcome::Busy(_) => "busy",
            PlaceOutcome::Refused(_) => "refused",
            PlaceOutcome::NotPlaced(_) => "not_placed",
            PlaceOutcome::Unknown(_) => "unknown",
        });
        outcome
    }

    async fn place_within_budget(&self, endpoint: &str, form: &[(&str, &str)]) -> PlaceOutcome {
        let budget = self.config.budget;
        let deadline = Instant::now() + budget.total;
        let credentials = &self.config.credentials;
        let mut tries = 0;
        loop {
            tries += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent = self
                .http
                .post(endpoint)
                .basic_auth(credentials.user(), Some(credentials.password().expose()))
                .form(form)
                .timeout(budget.per_try.min(remaining))
                .send()
                .await;
            let (error, retry_after) = match sent {
                // Never connected: surely not placed, worth another try.
                Err(e) if e.is_connect() => (RestError::Network(e), None),
                Err(e) => return PlaceOutcome::Unknown(RestError::Network(e)),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let bytes = match response.bytes().await {
                        Ok(bytes) => bytes,
                        Err(e) if status.is_success() => {
                            return PlaceOutcome::Unknown(RestError::Network(e));
                        }
                        Err(_) => Default::default(),
                    };
                    if status.is_success() {
                        #[derive(Deserialize)]
                        struct Created {
                            sid: String,
                        }
                        return match serde_json::from_slice::<Created>(&bytes) {
                            Ok(created) => PlaceOutcome::Placed(created.sid),
                            Err(e) => PlaceOutcome::Unknown(RestError::Twilio {
                                status: status.as_u16(),
                                code: None,
                                message: format!("not a call resource: {e}"),
                            }),
                        };
                    }
                    let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
                    let code = body.as_ref().and_then(|b| b.code);
                    let error = RestError::Twilio {
                        status: status.as_u16(),
                        code,
                        message: body
                            .and_then(|b| b.message)
                            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
                    };
                    let later = status == StatusCode::TOO_MANY_REQUESTS
                        || code.is_some_and(|c| TRY_LATER.contains(&c));
                    if status.is_server_error() {
                        return PlaceOutcome::Unknown(error);
                    }
                    if code.is_some_and(|c| NUMBER_REFUSED.contains(&c)) {
                        return PlaceOutcome::Refused(error);
                    }
                    if !later {
                        return PlaceOutcome::NotPlaced(error);
                    }
                    (error, retry_after)
                }
            };
            let pause = retry_after.map_or_else(
                || full_jitter(budget, tries),
                |after| after.min(budget.max_backoff),
            );
            if Instant::now() + pause >= deadline || tries >= budget.max_tries.max(1) {
                return PlaceOutcome::Busy(RestError::GaveUp {
                    tries,
                    last: Box::new(error),
                });
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Tells Twilio to fetch `url` (POST) for the live call `call_sid` now.
    ///
    /// Retrying a redirect is safe: redirecting twice to the same connect URL
    /// makes Twilio fetch it twice, and that URL answers the same TwiML again.
    pub async fn redirect(&self, call_sid: &str, url: &str) -> RedirectOutcome {
        self.redirect_in("", call_sid, url).await
    }

    /// `redirect` of a call of account `account` (a sub-account of the
    /// credentials' account, or `""` for the credentials' own). Twilio lets an
    /// account's credentials act on its sub-accounts' calls, in their path.
    pub async fn redirect_in(&self, account: &str, call_sid: &str, url: &str) -> RedirectOutcome {
        let outcome = self.redirect_within_budget(account, call_sid, url).await;
        crate::metrics::twilio_redirect(match &outcome {
            RedirectOutcome::Redirected => "redirected",
            RedirectOutcome::CallOver => "call_over",
            RedirectOutcome::UnknownCall => "unknown_call",
            RedirectOutcome::Failed(_) => "failed",
        });
        outcome
    }

    /// `…/Accounts/{account}/Calls/{call_sid}.json`, the credentials' own
    /// account when `account` is empty; either SID is checked first.
    fn call_endpoint(&self, account: &str, call_sid: &str) -> Result<String, RestError> {
        let account = match account {
            "" => self.config.credentials.account_sid(),
            sub => sub,
        };
        check_sid("AccountSid", account)?;
        check_sid("CallSid", call_sid)?;
        Ok(format!(
            "{}/2010-04-01/Accounts/{account}/Calls/{call_sid}.json",
            self.config.base_url
        ))
    }

    async fn redirect_within_budget(
        &self,
        account: &str,
        call_sid: &str,
        url: &str,
    ) -> RedirectOutcome {
        let endpoint = match self.call_endpoint(account, call_sid) {
            Ok(endpoint) => endpoint,
            Err(e) => return RedirectOutcome::Failed(e),
        };
        let budget = self.config.budget;
        let deadline = Instant::now() + budget.total;
        let mut tries = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            tries += 1;
            let (error, retry_after) = match self
                .try_once(&endpoint, url, budget.per_try.min(remaining))
                .await
            {
                Try::Done(outcome) => return outcome,
                Try::Retry { error, after } => (error, after),
            };
            let pause = match retry_after {
                // Twilio asks for a pause; longer than the cap and the caller
                // is better served by the wait fetch than by waiting here.
                Some(after) => after.min(budget.max_backoff),
                None => full_jitter(budget, tries),
            };
            let out_of_budget =
                Instant::now() + pause >= deadline || tries >= budget.max_tries.max(1);
            if out_of_budget {
                return RedirectOutcome::Failed(RestError::GaveUp {
                    tries,
                    last: Box::new(error),
                });
            }
            tracing::debug!(call_sid, tries, ?pause, error = %error, "Twilio redirect: retrying");
            tokio::time::sleep(pause).await;
        }
    }

    async fn try_once(&self, endpoint: &str, url: &str, timeout: Duration) -> Try {
        let credentials = &self.config.credentials;
        let sent = self
            .http
            .post(endpoint)
            .basic_auth(credentials.user(), Some(credentials.password().expose()))
            .form(&[("Url", url), ("Method", "POST")])
            .timeout(timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // A request that could not be built will not build next time.
            Err(e) if e.is_builder() => {
                return Try::Done(RedirectOutcome::Failed(RestError::Network(e)));
            }
            // A request that timed out after it was sent may have reached
            // Twilio: a second redirect would cut off the <Dial> the first one
            // started, so it is not retried (the wait fetch connects instead).
            Err(e) if e.is_timeout() && !e.is_connect() => {
                return Try::Done(RedirectOutcome::Failed(RestError::Network(e)));
            }
            Err(e) => {
                return Try::Retry {
                    error: RestError::Network(e),
                    after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Try::Done(RedirectOutcome::Redirected);
        }
        let retry_after = retry_after(response.headers());
        // The body only explains; a timeout or a body that is not Twilio's
        // JSON still leaves the status to decide.
        let body: Option<ErrorBody> = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(_) => None,
        };
        let code = body.as_ref().and_then(|b| b.code);
        let error = RestError::Twilio {
            status: status.as_u16(),
            code,
            message: body
                .and_then(|b| b.message)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
        };
        if code == Some(INVALID_CALL_STATE) {
            Try::Done(RedirectOutcome::CallOver)
        } else if status == StatusCode::NOT_FOUND {
            Try::Done(RedirectOutcome::UnknownCall)
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Try::Retry {
                error,
                after: retry_after,
            }
        } else {
            // 400, 401, 403…: the same request would be refused again.
            Try::Done(RedirectOutcome::Failed(error))
        }
    }
}

/// "Full jitter" (a random pause up to the exponential ceiling): replicas
/// that were refused together do not come back together.
fn full_jitter(budget: RequestBudget, tries: u32) -> Duration {
    let ceiling = budget
        .base_backoff
        .saturating_mul(2u32.saturating_pow(tries.saturating_sub(1)))
        .min(budget.max_backoff);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(0..=ceiling_ms))
}

/// `Retry-After` in seconds; the HTTP-date form is not worth a date parser for
/// a pause that is capped at a second anyway.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// SIDs go into the URL path: anything but letters and digits would change
/// which resource is updated.
fn check_sid(what: &'static str, sid: &str) -> Result<(), RestError> {
    if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(RestError::Sid {
            what,
            sid: sid.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_doubling_ceiling_and_the_cap() {
        let budget = RequestBudget::default();
        for tries in 1..=10 {
            let ceiling = (budget.base_backoff * 2u32.pow(tries - 1)).min(budget.max_backoff);
            for _ in 0..50 {
                assert!(full_jitter(budget, tries) <= ceiling);
            }
        }
        // No overflow however many tries.
        assert!(full_jitter(budget, u32::MAX) <= budget.max_backoff);
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn sids_that_would_change_the_path_are_refused() {
        assert!(check_sid("CallSid", "CA0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "CA/../x", "CA?x=1", "CA 1", "CA#1"] {
            assert!(check_sid("CallSid", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_base_url_that_is_not_http_is_refused() {
        let creds = Credentials::AuthToken {
            account_sid: "AC1".into(),
            token: "t".into(),
        };
        for bad in ["api.twilio.com", "ftp://api.twilio.com", "https://"] {
            let result = RestClient::new(RestConfig::new(bad, creds.clone()));
            assert!(matches!(result, Err(RestError::BaseUrl(_))), "{bad}");
        }
        // Real Twilio is https: the TLS backend and the system roots' verifier
        // must build without any network.
        assert!(RestClient::new(RestConfig::new(DEFAULT_API_URL, creds)).is_ok());
    }
}
