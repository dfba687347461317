//! Agent tokens: issued and revoked by admins (one script each), checked on
//! every agent request with one read. A token is `sbat_<id>_<secret>`: Redis
//! keeps, under the id, the agent it belongs to, its expiry, and the SHA-256 of
//! the secret, never the secret itself; the hash of what a client sends is
//! compared with it in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::requests::{IssueTokenRequest, MAX_LIVE_TOKENS, RevokeTokensRequest};
use super::{Store, StoreError, scripts, texts};
use crate::config::Secret;

/// What every agent token starts with, so a leaked one is recognisable
/// (secret scanners, logs) and an admin token is never mistaken for one.
pub const TOKEN_PREFIX: &str = "sbat_";

/// A token just issued: the only time its secret is known.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: Secret,
    pub expires_at_ms: i64,
}

/// The two halves of a token as a client sent it, if it has the shape of one.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    let is_id = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let is_secret = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (is_id && is_secret).then_some((id, secret))
}

/// A token's record as read: its agent, expiry and the SHA-256 of its secret.
type TokenRecord = (Option<String>, Option<i64>, Option<String>);

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// A new token for agent `id`, valid for `ttl_ms`; `None` when there is no
    /// such agent.
    pub async fn issue_token(
        &self,
        id: &str,
        ttl_ms: u64,
        by: &super::Actor,
    ) -> Result<Option<IssuedToken>, StoreError> {
        let token_id = format!("{:016x}", rand::random::<u64>());
        let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let hash = sha256_hex(&secret);
        let request = IssueTokenRequest {
            id,
            token_id: &token_id,
            hash: &hash,
            ttl_ms,
            max_live: MAX_LIVE_TOKENS,
            by: by.label(),
        };
        let reply = self
            .invoke(&scripts::ISSUE_TOKEN, self.keys().agent(id), &request)
            .await?;
        let name = scripts::ISSUE_TOKEN.name;
        let items = texts(name, &reply)?;
        match items.as_slice() {
            [code] if code == "not_found" => Ok(None),
            [code, expires] if code == "ok" => {
                let expires_at_ms = expires
                    .parse()
                    .map_err(|_| StoreError::reply(name, format!("expiry {expires:?}")))?;
                Ok(Some(IssuedToken {
                    token: format!("{TOKEN_PREFIX}{token_id}_{secret}").into(),
                    expires_at_ms,
                }))
            }
            _ => Err(StoreError::reply(name, format!("{items:?}"))),
        }
    }

    /// Revokes every token of agent `id`: how many there were, or `None` when
    /// there is no such agent (and it had none).
    pub async fn revoke_tokens(
        &self,
        id: &str,
        by: &super::Actor,
    ) -> Result<Option<u64>, StoreError> {
        let reply = self
            .invoke(
                &scripts::REVOKE_TOKENS,
                self.keys().agent(id),
                &RevokeTokensRequest { id, by: by.label() },
            )
            .await?;
        let name = scripts::REVOKE_TOKENS.name;
        let items = texts(name, &reply)?;
        match items.as_slice() {
            [code] if code == "not_found" => Ok(None),
            [code, n] if code == "ok" => n
                .parse()
                .map(Some)
                .map_err(|_| StoreError::reply(name, format!("count {n:?}"))),
            _ => Err(StoreError::reply(name, format!("{items:?}"))),
        }
    }

    /// The agent a token belongs to, if it is a live token of this namespace;
    /// one read (the Redis clock and the token's record).
    pub async fn agent_of_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let Some((token_id, secret)) = parse(token) else {
            return Ok(None);
        };
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        pipe.cmd("HMGET")
            .arg(self.keys().token(token_id))
            .arg(&["agent", "expires_at", "hash"]);
        let (time, record): ((i64, i64), TokenRecord) = self.query("check_token", pipe).await?;
        let (Some(agent), Some(expires_at), Some(stored)) = record else {
            return Ok(None);
        };
        let matches: bool = sha256_hex(secret)
            .as_bytes()
            .ct_eq(stored.as_bytes())
            .into();
        Ok((matches && expires_at > super::redis_ms(time)).then_some(agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shape_of_a_token_is_parsed() {
        let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let token = format!("sbat_0123456789abcdef_{secret}");
        assert_eq!(parse(&token), Some(("0123456789abcdef", secret.as_str())));
        for bad in [
            "",
            "sbat_",
            "test-admin-token",
            &format!("sbat_0123456789abcde_{secret}"),
            &format!("sbat_0123456789abcdeg_{secret}"),
            &format!("sbat_0123456789abcdef_{secret}x"),
            &format!("sbat_0123456789abcdef_{}", &secret[1..]),
            &format!("sbat_0123456789abcdef_{}+", &secret[1..]),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
