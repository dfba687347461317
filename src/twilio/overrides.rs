//! Twilio's webhook connection overrides: the `#…` fragment of a webhook URL
//! that tells Twilio how to call it (timeouts, retries, edge), such as the
//! `#rc=5&rp=5xx,ct,rt` switchboard writes on its agent-leg status callbacks
//! and README asks for on the number's. Parsed here, not string-matched, so an
//! operator's own fragment (`SWITCHBOARD_STATUS_CALLBACK_OVERRIDES`) is checked
//! at start against the syntax Twilio documents
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides>):
//! `key=value` pairs joined by `&`, keys `ct` (connect timeout, 100–10000 ms),
//! `rt` (read timeout, 100–15000 ms), `tt` (total time of all tries,
//! 100–15000 ms), `rc` (retry count, 0–5), `rp` (retry policy, a comma list of
//! `4xx`, `5xx`, `ct`, `rt`, `all`), `e` (the edge Twilio calls from) and `sni`.
//! A typo would otherwise be found only when Twilio refuses the URL (its error
//! 11243 for a bad `rp`) or, worse, ignores the retries it was meant to make.
//!
//! The fragment never reaches the server, so the signature check needs its
//! exact text: `as_str` keeps it as given.

use std::str::FromStr;

/// A fragment that is not a connection override Twilio documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverridesError {
    #[error("the connection overrides are empty")]
    Empty,
    #[error("{0:?} is not key=value")]
    NotAPair(String),
    #[error("{0:?} is not a connection override (ct, rt, tt, rc, rp, e, sni)")]
    UnknownKey(String),
    #[error("{0:?} is given twice")]
    Repeated(String),
    #[error("{key}={value:?} must be a whole number from {min} to {max}")]
    OutOfRange {
        key: &'static str,
        value: String,
        min: u32,
        max: u32,
    },
    #[error("rp={0:?} must be a comma list of 4xx, 5xx, ct, rt, all")]
    RetryPolicy(String),
    #[error("{key}={value:?} must be lower-case letters, digits and '-'")]
    Name { key: &'static str, value: String },
}

/// One override fragment, checked; `as_str` is its text as given, without `#`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOverrides {
    text: String,
    /// `rc`: how many times Twilio retries, 0 without it (Twilio's default
    /// makes no retry of a 5xx).
    retries: u32,
    /// `tt` in milliseconds, when given.
    total_ms: Option<u32>,
    /// `rp` names `5xx` or `all`: a 5xx answer is retried.
    on_5xx: bool,
}

impl ConnectionOverrides {
    /// The fragment as given, without its `#`: what Twilio has in the URL.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `rc`: the retries asked for.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// How many times Twilio sends the request again after a 5xx answer:
    /// `rc`, when `rp` names `5xx` or `all` (none otherwise).
    pub fn retries_on_5xx(&self) -> u32 {
        if self.on_5xx { self.retries } else { 0 }
    }

    /// `tt`: the total time of all tries, when set.
    pub fn total_ms(&self) -> Option<u32> {
        self.total_ms
    }
}

impl std::fmt::Display for ConnectionOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.text)
    }
}

impl FromStr for ConnectionOverrides {
    type Err = OverridesError;

    /// Parses `rc=5&rp=5xx,ct,rt`, with or without its leading `#`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let text = raw.trim().strip_prefix('#').unwrap_or(raw.trim());
        if text.is_empty() {
            return Err(OverridesError::Empty);
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut retries = 0;
        let mut total_ms = None;
        let mut on_5xx = false;
        for pair in text.split('&') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| OverridesError::NotAPair(pair.to_owned()))?;
            if seen.contains(&key) {
                return Err(OverridesError::Repeated(key.to_owned()));
            }
            seen.push(key);
            match key {
                "ct" => {
                    number("ct", value, 100, 10_000)?;
                }
                "rt" => {
                    number("rt", value, 100, 15_000)?;
                }
                "tt" => total_ms = Some(number("tt", value, 100, 15_000)?),
                "rc" => retries = number("rc", value, 0, 5)?,
                "rp" => {
                    retry_policy(value)?;
                    on_5xx = value.split(',').any(|p| p == "5xx" || p == "all");
                }
                "e" => name("e", value)?,
                "sni" => name("sni", value)?,
                other => return Err(OverridesError::UnknownKey(other.to_owned())),
            }
        }
        Ok(ConnectionOverrides {
            text: text.to_owned(),
            retries,
            total_ms,
            on_5xx,
        })
    }
}

fn number(key: &'static str, value: &str, min: u32, max: u32) -> Result<u32, OverridesError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n) && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| OverridesError::OutOfRange {
            key,
            value: value.to_owned(),
            min,
            max,
        })
}

fn retry_policy(value: &str) -> Result<(), OverridesError> {
    let valid = !value.is_empty()
        && value
            .split(',')
            .all(|p| matches!(p, "4xx" | "5xx" | "ct" | "rt" | "all"));
    if valid {
        Ok(())
    } else {
        Err(OverridesError::RetryPolicy(value.to_owned()))
    }
}

/// An edge (`ashburn`, `sao-paulo`, `frankfurt-ix`…) or an `sni` value: a
/// name, not checked against a list that Twilio grows.
fn name(key: &'static str, value: &str) -> Result<(), OverridesError> {
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(OverridesError::Name {
            key,
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switchboards_own_fragment_parses() {
        let own: ConnectionOverrides = crate::twilio::twiml::CONNECTION_OVERRIDES.parse().unwrap();
        assert_eq!(own.as_str(), "rc=5&rp=5xx,ct,rt");
        assert_eq!(own.retries(), 5);
        assert_eq!(own.retries_on_5xx(), 5);
        assert_eq!(own.total_ms(), None);
    }

    #[test]
    fn every_documented_key_parses_in_any_order_and_keeps_its_text() {
        for text in [
            "#ct=1000&rt=2000&tt=15000&rc=3&rp=all&e=dublin&sni=y",
            "rp=ct,rt,5xx,4xx&rc=0",
            "tt=100&e=sao-paulo",
        ] {
            let parsed: ConnectionOverrides = text.parse().unwrap();
            assert_eq!(parsed.as_str(), text.trim_start_matches('#'));
            assert_eq!(parsed.to_string(), format!("#{}", parsed.as_str()));
        }
    }

    #[test]
    fn what_twilio_would_refuse_or_ignore_is_refused() {
        for (text, why) in [
            ("", OverridesError::Empty),
            ("#", OverridesError::Empty),
            ("rc", OverridesError::NotAPair("rc".into())),
            ("rc=5&rx=1", OverridesError::UnknownKey("rx".into())),
            ("rc=5&rc=4", OverridesError::Repeated("rc".into())),
            (
                "rp=5xx,timeout",
                OverridesError::RetryPolicy("5xx,timeout".into()),
            ),
            ("rp=", OverridesError::RetryPolicy(String::new())),
            (
                "e=Dublin",
                OverridesError::Name {
                    key: "e",
                    value: "Dublin".into(),
                },
            ),
        ] {
            assert_eq!(text.parse::<ConnectionOverrides>(), Err(why), "{text:?}");
        }
        for text in [
            "rc=6", "ct=99", "ct=10001", "rt=15001", "tt=0", "rc=-1", "rc=+5",
        ] {
            assert!(
                matches!(
                    text.parse::<ConnectionOverrides>(),
                    Err(OverridesError::OutOfRange { .. })
                ),
                "{text:?}"
            );
        }
    }
}
