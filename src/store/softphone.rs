//! What minting a softphone token reads: the agent's contact and Redis's
//! clock, in one round trip. Read-only, so no script: the token's times come
//! from Redis `TIME`, like every other time switchboard keeps, never from this
//! replica's clock.

use super::{Store, StoreError};

/// An agent's contact, and the Redis time it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAt {
    /// As stored: `client:NAME`, `+1555…` or `sip:…`.
    pub contact: String,
    /// Redis `TIME`, whole Unix seconds.
    pub now_secs: i64,
}

impl Store {
    /// Agent `id`'s contact and the Redis time; `None` when there is no such
    /// agent (never created, or deleted).
    pub async fn contact_at(&self, id: &str) -> Result<Option<ContactAt>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        pipe.cmd("HMGET")
            .arg(self.keys().agent(id))
            .arg(&["contact", "deleted"]);
        let ((secs, _micros), (contact, deleted)): ((i64, i64), (Option<String>, Option<String>)) =
            self.query("contact_at", pipe).await?;
        if deleted.as_deref() == Some("1") {
            return Ok(None);
        }
        Ok(contact.map(|contact| ContactAt {
            contact,
            now_secs: secs,
        }))
    }
}
