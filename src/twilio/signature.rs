//! `X-Twilio-Signature`, checked exactly as Twilio's helper libraries do
//! (twilio-python's `RequestValidator`): HMAC of the full URL followed by every
//! POST parameter name and value, names sorted, each name's distinct values sorted;
//! base64. The URL is also tried with its default port (`:443`, `:80`) added or
//! removed, since Twilio signs `https://host/…` and `https://host:443/…`
//! inconsistently. (twilio-python drops any port; SPEC allows only the default
//! one, so a request to another port must be signed for that port.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The request header holding the signature.
pub const HEADER: &str = "x-twilio-signature";
/// The header naming another algorithm, for webhooks signed with a SharedKey.
pub const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
}

impl Algorithm {
    /// Reads `X-Twilio-Webhooks-Signature-Settings` (`key=…,algorithm=HMAC_SHA256`).
    /// No header, or none naming an algorithm, is the classic HMAC-SHA1; an
    /// algorithm we do not know is `None`, and the request is refused.
    pub fn from_settings_header(header: Option<&str>) -> Option<Algorithm> {
        let named = header.unwrap_or("").split(',').find_map(|part| {
            let (name, value) = part.split_once('=')?;
            let value = value.trim();
            (name.trim() == "algorithm" && !value.is_empty()).then_some(value)
        });
        match named.map(str::to_ascii_uppercase).as_deref() {
            None | Some("HMAC_SHA1") => Some(Algorithm::HmacSha1),
            Some("HMAC_SHA256") => Some(Algorithm::HmacSha256),
            Some(_) => None,
        }
    }
}

/// The signature Twilio sends for a POST of `params` to `url`.
pub fn compute(
    token: &str,
    url: &str,
    params: &[(String, String)],
    algorithm: Algorithm,
) -> String {
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut payload = String::from(url);
    for name in names {
        let mut values: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort_unstable();
        values.dedup();
        for value in values {
            payload.push_str(name);
            payload.push_str(value);
        }
    }
    let digest = match algorithm {
        Algorithm::HmacSha1 => mac::<Hmac<sha1::Sha1>>(token, &payload),
        Algorithm::HmacSha256 => mac::<Hmac<sha2::Sha256>>(token, &payload),
    };
    BASE64.encode(digest)
}

fn mac<M: Mac + KeyInit>(token: &str, payload: &str) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <M as KeyInit>::new_from_slice(token.as_bytes()).expect("HMAC accepts any key");
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Whether `signature` is Twilio's for this request, with the URL as received or
/// with its default port added or removed. Compared in constant time.
pub fn is_valid(
    token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
    algorithm: Algorithm,
) -> bool {
    let matches = |candidate: &str| {
        let expected = compute(token, candidate, params, algorithm);
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    };
    // Both are always computed, so timing does not tell which form matched.
    let without = matches(&without_port(url));
    let with = matches(&with_port(url));
    without | with
}

/// Splits `scheme://netloc rest` at the authority, as `urlparse` sees it.
fn split_authority(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, after) = url.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some((scheme, &after[..end], &after[end..]))
}

/// The port of a netloc, if it has a numeric one (IPv6 brackets respected).
fn port_of(netloc: &str) -> Option<(&str, &str)> {
    let host_end = netloc.rfind(']').unwrap_or(0);
    let colon = netloc[host_end..].rfind(':')? + host_end;
    let port = &netloc[colon + 1..];
    (!port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0))
    .then(|| (&netloc[..colon], port))
}

/// 443 for https, 80 otherwise (as twilio-python's `add_port`).
fn default_port(scheme: &str) -> &'static str {
    if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    }
}

/// The URL without its port, if that port is the scheme's default.
fn without_port(url: &str) -> String {
    match split_authority(url) {
        Some((scheme, netloc, rest)) => match port_of(netloc) {
            Some((host, port)) if port == default_port(scheme) => {
                format!("{scheme}://{host}{rest}")
            }
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The URL with the scheme's default port, if it has no port.
fn with_port(url: &str) -> String {
    match split_authority(url) {
        Some((scheme, netloc, rest)) if port_of(netloc).is_none() => {
            format!("{scheme}://{netloc}:{}{rest}", default_port(scheme))
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The example of Twilio's "Webhooks security" page.
    #[test]
    fn matches_twilios_documented_example() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let sig = compute(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
            Algorithm::HmacSha1,
        );
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn default_ports_are_added_and_removed() {
        assert_eq!(
            with_port("https://a.example/x?y=1"),
            "https://a.example:443/x?y=1"
        );
        assert_eq!(with_port("http://a.example"), "http://a.example:80");
        assert_eq!(
            without_port("https://a.example:443/x"),
            "https://a.example/x"
        );
        assert_eq!(without_port("http://[::1]:80/x"), "http://[::1]/x");
        assert_eq!(
            without_port("https://a.example:8443/x"),
            "https://a.example:8443/x"
        );
        assert_eq!(
            without_port("http://a.example:443/x"),
            "http://a.example:443/x"
        );
        assert_eq!(with_port("http://[::1]/x"), "http://[::1]:80/x");
    }

    #[test]
    fn settings_header_picks_the_algorithm() {
        assert_eq!(
            Algorithm::from_settings_header(None),
            Some(Algorithm::HmacSha1)
        );
        assert_eq!(
            Algorithm::from_settings_header(Some("key=k1,algorithm=HMAC_SHA256")),
            Some(Algorithm::HmacSha256)
        );
        assert_eq!(Algorithm::from_settings_header(Some("algorithm=MD5")), None);
    }
}
