//! Presence by heartbeat: an agent's console or softphone says it is there
//! (one script), and the worker sets agents that went silent offline (one
//! script a batch), so nobody rings a closed softphone.

use super::requests::{HeartbeatRequest, PRESENCE_BATCH, PresenceRequest};
use super::{Store, StoreError, scripts, texts};

impl Store {
    /// Records a heartbeat of agent `id`; `false` when there is no such agent.
    pub async fn heartbeat(&self, id: &str) -> Result<bool, StoreError> {
        let reply = self
            .invoke(
                &scripts::HEARTBEAT,
                self.keys().agent(id),
                &HeartbeatRequest {},
            )
            .await?;
        let name = scripts::HEARTBEAT.name;
        match texts(name, &reply)?.as_slice() {
            [code] if code == "ok" => Ok(true),
            [code] if code == "not_found" => Ok(false),
            other => Err(StoreError::reply(name, format!("{other:?}"))),
        }
    }

    /// Sets offline every free agent whose presence deadline has passed;
    /// returns their ids.
    pub async fn expire_presence(&self) -> Result<Vec<String>, StoreError> {
        let mut offline = Vec::new();
        loop {
            let reply = self
                .invoke(
                    &scripts::EXPIRE_PRESENCE,
                    self.keys().presence(),
                    &PresenceRequest {
                        limit: PRESENCE_BATCH,
                    },
                )
                .await?;
            let ids = texts(scripts::EXPIRE_PRESENCE.name, &reply)?;
            let full = ids.len() >= PRESENCE_BATCH;
            offline.extend(ids);
            if !full {
                return Ok(offline);
            }
        }
    }
}
