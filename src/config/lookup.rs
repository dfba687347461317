//! `[lookup]`: the customer's own service switchboard asks about each new call
//! (issue 21, item 2): `url` gets the caller's number, signed with
//! `SWITCHBOARD_LOOKUP_SECRET`, and may answer needs and a priority within
//! `timeout_ms` (at most 1 s). src/lookup.rs asks it.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// The longest a lookup may take: a caller hears silence meanwhile.
pub const MAX_TIMEOUT_MS: i64 = 1000;

/// `[lookup]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupSettings {
    pub url: String,
    pub timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLookup {
    url: Spanned<String>,
    timeout_ms: Option<Spanned<i64>>,
}

/// Checks `[lookup]`; each problem goes to `error` with its span.
pub(super) fn check(
    raw: &RawLookup,
    error: &mut dyn FnMut(Range<usize>, String),
) -> LookupSettings {
    let url = raw.url.get_ref().trim();
    let parsed = reqwest::Url::parse(url);
    if !matches!(parsed.as_ref().map(|u| u.scheme()), Ok("https" | "http")) {
        error(
            raw.url.span(),
            format!("lookup url {url:?} must be an absolute http(s) URL"),
        );
    }
    let timeout_ms = match &raw.timeout_ms {
        None => MAX_TIMEOUT_MS,
        Some(t) if (50..=MAX_TIMEOUT_MS).contains(t.get_ref()) => *t.get_ref(),
        Some(t) => {
            error(
                t.span(),
                format!(
                    "lookup timeout_ms must be 50 to {MAX_TIMEOUT_MS}, not {}",
                    t.get_ref()
                ),
            );
            MAX_TIMEOUT_MS
        }
    };
    LookupSettings {
        url: url.to_owned(),
        timeout: Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(1000)),
    }
}
