//! Twilio Access Tokens for the console's softphone: a JWT with a Voice grant,
//! signed HS256 with an API key's secret, exactly as Twilio's helper libraries
//! build it (twilio-python's `twilio.jwt.access_token.AccessToken` with a
//! `VoiceGrant`; tests/voice_token.rs decodes ours with it):
//!
//! - header `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}`;
//! - claims `jti` (`<key SID>-<issued at>`), `iss` (the API key SID), `sub`
//!   (the account SID), `nbf`, `exp`, and `grants`: `identity` (the `<Client>`
//!   name calls ring) and `voice`: `incoming.allow`, and
//!   `outgoing.application_sid` when a TwiML application is configured.
//!
//! Twilio accepts a lifetime of up to 24 hours; the caller passes the time
//! (Redis's clock, in seconds), so nothing here reads the machine's.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;

use crate::config::Secret;

/// Twilio refuses an Access Token that lives longer than this.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// An hour: what Twilio's libraries default to; the console renews it before
/// it runs out.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);

/// What signs the softphone's tokens: `TWILIO_API_KEY_SID`,
/// `TWILIO_API_KEY_SECRET`, the account they belong to, and optionally
/// `TWILIO_TWIML_APP_SID`. `Debug` shows no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceTokens {
    pub account_sid: String,
    pub key_sid: String,
    pub secret: Secret,
    /// With it, the grant also lets the Device place calls through this
    /// TwiML application.
    pub twiml_app_sid: Option<String>,
    /// At most [`MAX_TTL`].
    pub ttl: Duration,
}

/// A signed token and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub jwt: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Serialize)]
struct Header {
    alg: &'static str,
    typ: &'static str,
    cty: &'static str,
}

#[derive(Serialize)]
struct Claims<'a> {
    jti: String,
    iss: &'a str,
    sub: &'a str,
    nbf: i64,
    exp: i64,
    grants: Grants<'a>,
}

#[derive(Serialize)]
struct Grants<'a> {
    identity: &'a str,
    voice: VoiceGrant<'a>,
}

#[derive(Serialize)]
struct VoiceGrant<'a> {
    incoming: Incoming,
    #[serde(skip_serializing_if = "Option::is_none")]
    outgoing: Option<Outgoing<'a>>,
}

#[derive(Serialize)]
struct Incoming {
    allow: bool,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    application_sid: &'a str,
}

impl VoiceTokens {
    /// A token for `identity`, valid from `now` (Unix seconds) for the
    /// configured lifetime.
    pub fn mint(&self, identity: &str, now: i64) -> Minted {
        let ttl = i64::try_from(self.ttl.min(MAX_TTL).as_secs()).unwrap_or(0);
        let exp = now + ttl;
        let claims = Claims {
            jti: format!("{}-{now}", self.key_sid),
            iss: &self.key_sid,
            sub: &self.account_sid,
            nbf: now,
            exp,
            grants: Grants {
                identity,
                voice: VoiceGrant {
                    incoming: Incoming { allow: true },
                    outgoing: self
                        .twiml_app_sid
                        .as_deref()
                        .map(|application_sid| Outgoing { application_sid }),
                },
            },
        };
        let header = Header {
            alg: "HS256",
            typ: "JWT",
            cty: "twilio-fpa;v=1",
        };
        let signing_input = format!("{}.{}", encode_json(&header), encode_json(&claims));
        let mut mac =
            <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.secret.expose().as_bytes())
                .expect("HMAC accepts any key");
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Minted {
            jwt: format!("{signing_input}.{signature}"),
            expires_at: exp,
        }
    }
}

/// base64url (no padding) of the JSON of `value`, as JWT's compact form has it.
fn encode_json(value: &impl Serialize) -> String {
    // These structs of strings and numbers always serialize.
    let json = serde_json::to_vec(value).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(app: Option<&str>) -> VoiceTokens {
        VoiceTokens {
            account_sid: "AC00000000000000000000000000000001".into(),
            key_sid: "SK00000000000000000000000000000001".into(),
            secret: "secret".into(),
            twiml_app_sid: app.map(str::to_owned),
            ttl: DEFAULT_TTL,
        }
    }

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        let segment = jwt.split('.').nth(i).expect("three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
    }

    #[test]
    fn a_token_carries_twilios_header_and_claims() {
        let minted = tokens(None).mint("ana", 1_700_000_000);
        assert_eq!(minted.expires_at, 1_700_003_600);
        assert_eq!(minted.jwt.split('.').count(), 3);
        assert_eq!(
            part(&minted.jwt, 0),
            serde_json::json!({"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"})
        );
        assert_eq!(
            part(&minted.jwt, 1),
            serde_json::json!({
                "jti": "SK00000000000000000000000000000001-1700000000",
                "iss": "SK00000000000000000000000000000001",
                "sub": "AC00000000000000000000000000000001",
                "nbf": 1_700_000_000,
                "exp": 1_700_003_600,
                "grants": {"identity": "ana", "voice": {"incoming": {"allow": true}}},
            })
        );
    }

    #[test]
    fn a_twiml_application_allows_outgoing_calls_through_it() {
        let minted = tokens(Some("AP00000000000000000000000000000001")).mint("ana", 10);
        assert_eq!(
            part(&minted.jwt, 1)["grants"]["voice"]["outgoing"],
            serde_json::json!({"application_sid": "AP00000000000000000000000000000001"})
        );
    }

    #[test]
    fn the_lifetime_never_passes_twilios_24_hours() {
        let mut long = tokens(None);
        long.ttl = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(long.mint("ana", 0).expires_at, 86_400);
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let shown = format!("{:?}", tokens(None));
        assert!(!shown.contains("\"secret\""), "{shown}");
    }
}
