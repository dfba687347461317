//! `X-Twilio-Signature`, checked exactly as Twilio's helper libraries do
//! (twilio-python's `RequestValidator`, whose output tests/fixtures/signatures.json
//! holds): base64 of the HMAC-SHA1, keyed with the auth token, of the full URL
//! followed by every POST parameter as name then value, names sorted, each name's
//! distinct values sorted.
//!
//! The URL is tried in the two forms twilio-python tries, because Twilio signs with
//! and without the port inconsistently: with its port removed, whatever the port
//! (an HTTPS deployment on :8443 receives requests Twilio signed for the bare host),
//! and with the scheme's default port (`:443`, `:80`) added when it has none. Both
//! forms go through the same normalisation as Python's `urlparse(..).geturl()`.
//!
//! Only this classic signature is supported. Twilio's Webhook Settings (public beta)
//! can sign with a separate SharedKey and name it in
//! `X-Twilio-Webhooks-Signature-Settings`; switchboard has no setting for such a
//! key, so that header is ignored, as twilio-python's `validate` does when not
//! given an algorithm, and such a request fails the auth-token check with 403.
//!
//! The cost is O(n log n) in the number of parameters and linear in the body:
//! the pairs are sorted once and the parameter payload is built once, then only
//! the URL forms (two per URL tried, for each auth token) are hashed in front of
//! it. An unauthenticated sender can make
//! no body up to 64 KiB cost more than that (benches/signature_cost.rs).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<sha1::Sha1>;

/// The request header holding the signature.
pub const HEADER: &str = "x-twilio-signature";
/// The header of Twilio's SharedKey signatures, which switchboard does not
/// support; named only to say so when such a request is refused.
pub const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

/// The signature Twilio sends for a POST of `params` to `url`.
pub fn compute(token: &str, url: &str, params: &[(String, String)]) -> String {
    sign(&keyed(token), url, &payload(params))
}

/// Whether `signature` is Twilio's for this request, with the URL in either of the
/// forms twilio-python tries. Compared in constant time; both forms are always
/// computed, so timing does not tell which one matched.
pub fn is_valid(token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    is_valid_for_any(&[token], &[url], params, signature)
}

/// Whether `signature` is Twilio's for this request under any of `tokens` (the
/// auth token and, while it is rotated, the secondary one) and any of `urls`
/// (the URL with and without its connection overrides), each in both forms.
/// The parameters are sorted and joined once, and every candidate is always
/// computed, so the cost is one HMAC of the body per token and URL form, and
/// timing does not tell which one matched.
pub fn is_valid_for_any(
    tokens: &[&str],
    urls: &[&str],
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let payload = payload(params);
    let mut valid = false;
    for token in tokens {
        let key = keyed(token);
        for url in urls {
            // twilio-python raises on a URL whose port is not a number, so
            // nothing matches it.
            let Some(forms) = url_forms(url) else {
                continue;
            };
            for form in forms {
                let expected = sign(&key, &form, &payload);
                valid |= bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
            }
        }
    }
    valid
}

fn keyed(token: &str) -> HmacSha1 {
    // HMAC takes a key of any length, so this cannot fail.
    <HmacSha1 as KeyInit>::new_from_slice(token.as_bytes()).expect("HMAC accepts any key")
}

/// HMAC of `url` then `payload`, from a copy of the keyed state, so the key is
/// set up once per request however many URL forms are tried.
fn sign(key: &HmacSha1, url: &str, payload: &[u8]) -> String {
    let mut mac = key.clone();
    mac.update(url.as_bytes());
    mac.update(payload);
    BASE64.encode(mac.finalize().into_bytes())
}

/// Every distinct (name, value) pair as name then value, sorted by name then
/// value: the same order as sorting the names, then each name's distinct values
/// (byte order of UTF-8 is code point order, which Python sorts by). One sort,
/// one pass, so many distinct names cost no more than one long value.
fn payload(params: &[(String, String)]) -> Vec<u8> {
    // The no-op counter compiles away.
    payload_counted(params, || {})
}

/// `payload`, calling `compared` once per comparison of two pairs, so a test
/// can prove the work is O(n log n) in the number of pairs, not O(n²) as a
/// filter of all pairs per distinct name was.
fn payload_counted(params: &[(String, String)], mut compared: impl FnMut()) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.sort_unstable_by(|a, b| {
        compared();
        a.cmp(b)
    });
    pairs.dedup_by(|a, b| {
        compared();
        a == b
    });
    let mut out = Vec::with_capacity(pairs.iter().map(|(n, v)| n.len() + v.len()).sum());
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// twilio-python's two URL forms: `remove_port(urlparse(url))` and
/// `add_port(urlparse(url))`. `None` when Python's `urlparse(url).port` raises.
fn url_forms(url: &str) -> Option<[String; 2]> {
    let url = normalized(url);
    let Some((scheme, after)) = url.split_once("://") else {
        return Some([url.clone(), url]);
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (netloc, rest) = after.split_at(end);
    Some(match python_port(netloc)? {
        // remove_port keeps the netloc up to its first ':' (so `user:pw@host:8443`
        // becomes `user`, and an IPv6 literal `[`: Python's quirk, kept to match).
        Some(_) => {
            let host = netloc.split(':').next().unwrap_or(netloc);
            [format!("{scheme}://{host}{rest}"), url.clone()]
        }
        None => {
            let port = if scheme == "https" { 443 } else { 80 };
            [url.clone(), format!("{scheme}://{netloc}:{port}{rest}")]
        }
    })
}

/// `geturl()` drops an empty query (`…/voice?` → `…/voice`) and an empty fragment.
fn normalized(url: &str) -> String {
    let (before, fragment) = match url.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment).filter(|f| !f.is_empty())),
        None => (url, None),
    };
    let before = match before.split_once('?') {
        Some((head, "")) => head,
        _ => before,
    };
    match fragment {
        Some(fragment) => format!("{before}#{fragment}"),
        None => before.to_owned(),
    }
}

/// Python's `SplitResult.port`, where 0 counts as none (`if not uri.port`):
/// `Some(None)` no port, `Some(Some(p))` a port, `None` an invalid one.
fn python_port(netloc: &str) -> Option<Option<u16>> {
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let port = match hostinfo.split_once('[') {
        Some((_, bracketed)) => bracketed
            .split_once(']')
            .and_then(|(_, after)| after.split_once(':'))
            .map(|(_, port)| port),
        None => hostinfo.split_once(':').map(|(_, port)| port),
    };
    match port {
        None | Some("") => Some(None),
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            let port: u16 = digits.parse().ok()?;
            Some((port != 0).then_some(port))
        }
        Some(_) => None,
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
        );
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn any_port_is_removed_and_the_default_one_added() {
        let forms = |url| url_forms(url).unwrap();
        assert_eq!(
            forms("https://a.example:8443/x"),
            ["https://a.example/x", "https://a.example:8443/x"]
        );
        assert_eq!(
            forms("https://a.example/x?y=1"),
            ["https://a.example/x?y=1", "https://a.example:443/x?y=1"]
        );
        assert_eq!(
            forms("http://a.example"),
            ["http://a.example", "http://a.example:80"]
        );
        assert_eq!(
            forms("http://a.example:0/x"),
            ["http://a.example:0/x", "http://a.example:0:80/x"]
        );
        assert_eq!(url_forms("https://a.example:99999/x"), None);
        assert_eq!(url_forms("https://a.example:8x/x"), None);
    }

    /// ~16,000 distinct names (a 64 KiB body of `name=&`): a sort needs about
    /// n·log2(n) ≈ 14·n comparisons. The old per-name filter over every pair
    /// made n² = 16,000·n. Counted, not timed, so it holds on any machine.
    #[test]
    fn payload_work_is_n_log_n_in_the_pairs_not_quadratic() {
        const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        // Reversed, so the input is not already sorted.
        let params: Vec<(String, String)> = (0..16_000)
            .rev()
            .map(|i: usize| {
                let name = [i / 3844, (i / 62) % 62, i % 62]
                    .iter()
                    .map(|&d| ALNUM[d] as char)
                    .collect();
                (name, String::new())
            })
            .collect();
        let n = params.len();
        let mut comparisons = 0usize;
        let built = payload_counted(&params, || comparisons += 1);
        assert!(
            comparisons < 50 * n,
            "{comparisons} comparisons for {n} pairs ({} per pair)",
            comparisons / n
        );
        // Every byte goes to the HMAC once: the payload is the names, no more.
        assert_eq!(built.len(), 3 * n);
        assert_eq!(built, payload(&params));
    }

    #[test]
    fn pairs_sort_by_name_then_value_once() {
        let params = p(&[("b", "2"), ("a", "z"), ("b", "1"), ("a", "y"), ("b", "2")]);
        assert_eq!(payload(&params), b"ayazb1b2");
    }
}
