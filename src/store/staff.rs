//! Supervisor and wallboard tokens: issued and revoked by the admin (one script
//! each), checked with one read on every request that carries one. They work
//! as agent tokens do (src/store/tokens.rs): a token is `<prefix><id>_<secret>`
//! and Redis keeps, under the id, the name it was issued to, its role, its
//! expiry and the SHA-256 of the secret, never the secret itself. Each role has
//! its own prefix, so a console can tell from the token alone which view to
//! open, and a secret scanner can tell what leaked; the role stored in Redis
//! must match the prefix, so rewriting the prefix gains nothing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit::Actor;
use super::requests::{IssueStaffTokenRequest, MAX_LIVE_TOKENS, RevokeStaffTokensRequest};
use super::tokens::IssuedToken;
use super::{Store, StoreError, scripts, texts};

/// What a supervisor or wallboard token may do (the API's table of routes,
/// `api::roles`, says where each may go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    /// Reads everything, sets agents' states, takes callers out of a line.
    Supervisor,
    /// Reads queues, agents, calls and events; changes nothing.
    Wallboard,
}

impl StaffRole {
    pub const ALL: [StaffRole; 2] = [StaffRole::Supervisor, StaffRole::Wallboard];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Supervisor => "supervisor",
            StaffRole::Wallboard => "wallboard",
        }
    }

    /// What every token of the role starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            StaffRole::Supervisor => SUPERVISOR_PREFIX,
            StaffRole::Wallboard => WALLBOARD_PREFIX,
        }
    }

    fn parse(text: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Supervisor tokens: `sbst_<16 hex>_<43 base64url>`.
pub const SUPERVISOR_PREFIX: &str = "sbst_";
/// Wallboard tokens: `sbwt_<16 hex>_<43 base64url>`.
pub const WALLBOARD_PREFIX: &str = "sbwt_";

/// Whose a live staff token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffToken {
    pub name: String,
    pub role: StaffRole,
}

/// The role its prefix claims and the two halves of a token, if it has the
/// shape of a staff token.
fn parse(token: &str) -> Option<(StaffRole, &str, &str)> {
    let role = StaffRole::ALL
        .into_iter()
        .find(|r| token.starts_with(r.prefix()))?;
    let (id, secret) = token[role.prefix().len()..].split_once('_')?;
    let is_id = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let is_secret = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (is_id && is_secret).then_some((role, id, secret))
}

/// Whether `token` starts like a staff token (its shape aside): such a token
/// is looked up in Redis, anything else is not one.
pub fn looks_like(token: &str) -> bool {
    StaffRole::ALL
        .into_iter()
        .any(|r| token.starts_with(r.prefix()))
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A staff token's record as read: name, role, expiry, SHA-256 of its secret.
type StaffRecord = (Option<String>, Option<String>, Option<i64>, Option<String>);

impl Store {
    /// A new token of `role` for `name`, valid for `ttl_ms`.
    pub async fn issue_staff_token(
        &self,
        name: &str,
        role: StaffRole,
        ttl_ms: u64,
        by: &Actor,
    ) -> Result<IssuedToken, StoreError> {
        let token_id = format!("{:016x}", rand::random::<u64>());
        let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let hash = sha256_hex(&secret);
        let request = IssueStaffTokenRequest {
            name,
            role: role.as_str(),
            token_id: &token_id,
            hash: &hash,
            ttl_ms,
            max_live: MAX_LIVE_TOKENS,
            by: by.label(),
        };
        let reply = self
            .invoke(
                &scripts::ISSUE_STAFF_TOKEN,
                self.keys().staff_tokens(name),
                &request,
            )
            .await?;
        let script = scripts::ISSUE_STAFF_TOKEN.name;
        let items = texts(script, &reply)?;
        match items.as_slice() {
            [code, expires] if code == "ok" => {
                let expires_at_ms = expires
                    .parse()
                    .map_err(|_| StoreError::reply(script, format!("expiry {expires:?}")))?;
                Ok(IssuedToken {
                    token: format!("{}{token_id}_{secret}", role.prefix()).into(),
                    expires_at_ms,
                })
            }
            _ => Err(StoreError::reply(script, format!("{items:?}"))),
        }
    }

    /// Revokes every token of `name`: how many live ones there were (0: none,
    /// and nothing was recorded).
    pub async fn revoke_staff_tokens(&self, name: &str, by: &Actor) -> Result<u64, StoreError> {
        let reply = self
            .invoke(
                &scripts::REVOKE_STAFF_TOKENS,
                self.keys().staff_tokens(name),
                &RevokeStaffTokensRequest {
                    name,
                    by: by.label(),
                },
            )
            .await?;
        let script = scripts::REVOKE_STAFF_TOKENS.name;
        let items = texts(script, &reply)?;
        match items.as_slice() {
            [code] if code == "none" => Ok(0),
            [code, n] if code == "ok" => n
                .parse()
                .map_err(|_| StoreError::reply(script, format!("count {n:?}"))),
            _ => Err(StoreError::reply(script, format!("{items:?}"))),
        }
    }

    /// Whose a staff token is, if it is a live one of this namespace whose
    /// stored role is the one its prefix says; one read (the Redis clock and
    /// the token's record).
    pub async fn staff_of_token(&self, token: &str) -> Result<Option<StaffToken>, StoreError> {
        let Some((claimed, token_id, secret)) = parse(token) else {
            return Ok(None);
        };
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        pipe.cmd("HMGET")
            .arg(self.keys().staff_token(token_id))
            .arg(&["name", "role", "expires_at", "hash"]);
        let (time, record): ((i64, i64), StaffRecord) =
            self.query("check_staff_token", pipe).await?;
        let (Some(name), Some(role), Some(expires_at), Some(stored)) = record else {
            return Ok(None);
        };
        let matches: bool = sha256_hex(secret)
            .as_bytes()
            .ct_eq(stored.as_bytes())
            .into();
        let live = expires_at > super::redis_ms(time);
        Ok(
            (matches && live && StaffRole::parse(&role) == Some(claimed)).then_some(StaffToken {
                name,
                role: claimed,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shape_of_a_staff_token_is_parsed() {
        let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let token = format!("sbst_0123456789abcdef_{secret}");
        assert_eq!(
            parse(&token),
            Some((StaffRole::Supervisor, "0123456789abcdef", secret.as_str()))
        );
        let token = format!("sbwt_0123456789abcdef_{secret}");
        assert_eq!(parse(&token).map(|p| p.0), Some(StaffRole::Wallboard));
        for bad in [
            "",
            "sbst_",
            &format!("sbat_0123456789abcdef_{secret}"),
            &format!("sbst_0123456789abcde_{secret}"),
            &format!("sbwt_0123456789abcdef_{secret}x"),
            &format!("SBST_0123456789abcdef_{secret}"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
