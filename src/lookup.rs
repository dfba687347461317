//! The customer's lookup (`[lookup]`, issue 21 item 2): before a new call is
//! routed, switchboard POSTs who is calling to the customer's service, which
//! may answer needs and a priority for the call. It has `timeout_ms` (at most
//! 1 s); a lookup that times out, fails or answers something unusable leaves
//! the call as it was, and is counted (`switchboard_lookups_total`). The
//! caller is never failed by it.
//!
//! The request is JSON `{"call_sid", "from", "to", "queue"}` with
//! `X-Switchboard-Signature: t=<unix seconds>,v1=<base64 HMAC-SHA256 of
//! "<t>.<body>" keyed by SWITCHBOARD_LOOKUP_SECRET>`, so the service can tell
//! switchboard's requests from forged ones and refuse replays of old ones.
//! The answer is JSON `{"needs": "vip and es", "priority": 5}`, both optional.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::config::lookup::LookupSettings;
use crate::config::menus::MAX_PRIORITY;
use crate::metrics;
use crate::needs::Needs;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";
/// The longest answer read: needs and a priority fit in far less.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// What a lookup added to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupAnswer {
    pub needs: Needs,
    pub priority: u8,
}

impl LookupAnswer {
    /// Nothing: the call as its number (or menu) made it.
    pub fn nothing() -> LookupAnswer {
        LookupAnswer {
            needs: Needs::any(),
            priority: 0,
        }
    }
}

#[derive(Debug, Serialize)]
struct LookupRequest<'a> {
    call_sid: &'a str,
    from: &'a str,
    to: &'a str,
    queue: &'a str,
}

#[derive(Debug, Deserialize)]
struct RawAnswer {
    needs: Option<String>,
    priority: Option<i64>,
}

/// Why a lookup added nothing: the `outcome` label of the metric.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("no answer within the timeout")]
    Timeout,
    #[error("{0}")]
    Error(String),
    #[error("answer refused: {0}")]
    Refused(String),
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Error(_) => "error",
            Failure::Refused(_) => "refused",
        }
    }
}

/// The lookup client: one connection pool, reused across calls.
#[derive(Debug, Clone)]
pub struct Lookup {
    http: reqwest::Client,
    settings: LookupSettings,
    secret: Secret,
}

impl Lookup {
    pub fn new(settings: LookupSettings, secret: Secret) -> Result<Lookup, String> {
        let http = crate::tls::http_client_builder()
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // The customer's service is asked on every call: keep connections.
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the lookup client: {e}"))?;
        Ok(Lookup {
            http,
            settings,
            secret,
        })
    }

    /// The longest a lookup takes.
    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// Asks about a call of `queue`: its answer and what `accept` made of it
    /// (an `Err` refuses the answer: its needs cannot join the call's steps),
    /// or `None` when the lookup gave nothing usable, which is counted and
    /// logged; the call then goes on without it.
    pub async fn ask<T>(
        &self,
        call: (&str, &str, &str),
        queue: &str,
        accept: impl FnOnce(&LookupAnswer) -> Result<T, String>,
    ) -> Option<(LookupAnswer, T)> {
        let (call_sid, from, to) = call;
        let started = Instant::now();
        let result = tokio::time::timeout(
            self.settings.timeout,
            self.request(call_sid, from, to, queue),
        )
        .await
        .unwrap_or(Err(Failure::Timeout))
        .and_then(|answer| {
            let accepted = accept(&answer).map_err(Failure::Refused)?;
            Ok((answer, accepted))
        });
        let took = started.elapsed();
        match result {
            Ok(answered) => {
                metrics::lookup("answered", took);
                Some(answered)
            }
            Err(failure) => {
                metrics::lookup(failure.label(), took);
                tracing::warn!(error = %failure, url = self.settings.url, "lookup added nothing: the call goes on without it");
                None
            }
        }
    }

    async fn request(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
        queue: &str,
    ) -> Result<LookupAnswer, Failure> {
        let body = serde_json::to_vec(&LookupRequest {
            call_sid,
            from,
            to,
            queue,
        })
        .map_err(|e| Failure::Error(e.to_string()))?;
        // The replica's clock: the timestamp only lets the service refuse
        // old replays, it orders nothing in switchboard.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let response = self
            .http
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Failure::Timeout
                } else {
                    Failure::Error(format!("request failed: {e}"))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Error(format!("answered {status}")));
        }
        let mut bytes = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Error(format!("answer cut short: {e}")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(Failure::Refused(format!(
                    "longer than {MAX_ANSWER_BYTES} bytes"
                )));
            }
        }
        parse_answer(&bytes).map_err(Failure::Refused)
    }
}

/// `t=<secs>,v1=<base64 HMAC-SHA256 of "<secs>.<body>">`.
pub fn signature(secret: &Secret, unix_secs: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts any key");
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let v1 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("t={unix_secs},v1={v1}")
}

/// True when `header` is a signature of `body` by `secret` whose timestamp is
/// within `max_age_secs` of `now_secs` (for a service written in Rust, and
/// for `simulate`'s stand-in of one).
pub fn verify(
    secret: &Secret,
    header: &str,
    body: &[u8],
    now_secs: u64,
    max_age_secs: u64,
) -> bool {
    let Some(t) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(','))
        .and_then(|(t, _)| t.parse::<u64>().ok())
    else {
        return false;
    };
    let expected = signature(secret, t, body);
    now_secs.abs_diff(t) <= max_age_secs
        && subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), header.as_bytes()).into()
}

/// The answer's needs and priority, or why it cannot be used.
fn parse_answer(bytes: &[u8]) -> Result<LookupAnswer, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(LookupAnswer::nothing());
    }
    let raw: RawAnswer = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let needs = match raw.needs.as_deref().map(str::trim) {
        None | Some("") => Needs::any(),
        Some(text) => Needs::parse(text).map_err(|e| format!("needs {text:?}: {e}"))?,
    };
    let priority = match raw.priority {
        None => 0,
        Some(p) => u8::try_from(p)
            .ok()
            .filter(|p| *p <= MAX_PRIORITY)
            .ok_or_else(|| format!("priority must be 0 to {MAX_PRIORITY}, not {p}"))?,
    };
    Ok(LookupAnswer { needs, priority })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_needs_and_a_priority_or_is_refused() {
        let a = parse_answer(br#"{"needs": "vip and es", "priority": 5}"#).unwrap();
        assert_eq!(a.needs.text(), "vip and es");
        assert_eq!(a.priority, 5);
        assert_eq!(parse_answer(b"").unwrap(), LookupAnswer::nothing());
        assert_eq!(parse_answer(b"{}").unwrap(), LookupAnswer::nothing());
        assert!(parse_answer(br#"{"needs": "vip and"}"#).is_err());
        assert!(parse_answer(br#"{"priority": 101}"#).is_err());
        assert!(parse_answer(br#"{"priority": -1}"#).is_err());
        assert!(parse_answer(b"<html>").is_err());
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_body() {
        // Checked against Python: base64.b64encode(hmac.new(b"s3cret",
        // b"1700000000.{}", hashlib.sha256).digest()).
        let secret = Secret::from("s3cret");
        let header = signature(&secret, 1_700_000_000, b"{}");
        assert_eq!(
            header,
            "t=1700000000,v1=l5JoFumPu0HMsWcyJf8povNTaQmZkOGxVhZR570Jfr8="
        );
        assert!(verify(&secret, &header, b"{}", 1_700_000_100, 300));
        assert!(
            !verify(&secret, &header, b"{}", 1_700_000_400, 300),
            "too old"
        );
        assert!(
            !verify(&secret, &header, b"{ }", 1_700_000_000, 300),
            "another body"
        );
        assert!(!verify(
            &Secret::from("other"),
            &header,
            b"{}",
            1_700_000_000,
            300
        ));
        assert!(!verify(&secret, "v1=x", b"{}", 1_700_000_000, 300));
    }
}
