//! The live feed of one process, for `GET /v1/events`: one reader follows the
//! namespace's event stream (a non-blocking XRANGE every 20 ms on the shared
//! connection, so it works alike on one Redis, through Sentinels and on a
//! Cluster, and holds no connection of its own) and hands each event to every
//! open event stream of this process through a bounded broadcast channel. It
//! starts with the first subscriber and then runs for the life of the process.
//! A subscriber that falls more than `BUFFERED` events behind is dropped (its
//! client resumes with `Last-Event-ID`), so a slow client costs no memory.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, broadcast};

use crate::store::events::StoredEvent;
use crate::store::{Store, StoreError};

/// How often the reader looks for new events: well inside the 100 ms an event
/// may take to reach a console.
const POLL: Duration = Duration::from_millis(20);
/// Events read at most per look; a full page is followed by another at once.
const PAGE: usize = 500;
/// Events a subscriber may be behind before it is dropped.
pub const BUFFERED: usize = 4096;

#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sender: broadcast::Sender<Arc<StoredEvent>>,
    started: OnceCell<()>,
}

impl EventHub {
    pub fn new(store: Store) -> EventHub {
        EventHub {
            inner: Arc::new(Inner {
                store,
                sender: broadcast::channel(BUFFERED).0,
                started: OnceCell::new(),
            }),
        }
    }

    /// Every event appended from now on. The reader's first position is read
    /// before any subscriber goes on, so a subscriber that then reads the
    /// stream up to its end and follows this feed misses nothing between.
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Arc<StoredEvent>>, StoreError> {
        let receiver = self.inner.sender.subscribe();
        self.inner
            .started
            .get_or_try_init(|| async {
                let start = self.inner.store.last_event_id().await?;
                tokio::spawn(read(self.inner.clone(), start));
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(receiver)
    }
}

/// Follows the stream from `last` for the life of the process.
async fn read(inner: Arc<Inner>, mut last: String) {
    let mut failing = false;
    loop {
        match inner.store.events_after(&last, PAGE).await {
            Ok(events) => {
                if failing {
                    tracing::info!("reading events again");
                    failing = false;
                }
                let full = events.len() >= PAGE;
                for event in events {
                    last.clone_from(&event.id);
                    // No subscriber right now is fine: they read the stream
                    // themselves up to where they join.
                    let _ = inner.sender.send(Arc::new(event));
                }
                if full {
                    continue;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read events; retrying");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}
