//! The live feed of one process, for `GET /v1/events`: one reader follows the
//! namespace's event stream (a non-blocking XRANGE every 20 ms on the shared
//! connection, so it works alike on one Redis, through Sentinels and on a
//! Cluster, and holds no connection of its own) and hands each event to the
//! open event streams of this process that may see it: every admin stream,
//! and the streams of the agent the event is about. An agent's console is
//! woken only by its own events, so a thousand open consoles cost nothing per
//! event they do not show. Each stream has a bounded queue (`BUFFERED`): one
//! that falls that far behind is closed (its client resumes with
//! `Last-Event-ID`), so a slow client holds no more memory than that. The
//! reader runs while any stream is open: it starts with the first and stops
//! after the last has gone, so a replica nobody watches reads nothing. The
//! hub also counts the streams it feeds, and refuses one past the process's
//! cap or its agent's (`StreamLimits`): each holds a connection and a queue,
//! and one leaked agent token must not be able to open thousands. It
//! remembers (by their SHA-256) the tokens its agents' streams were opened
//! with, so that token's next stream past the cap is refused before anything
//! is asked of Redis: a storm of resumes with a token whose streams fill its
//! agent's cap costs the webhooks next to nothing. (A second token of that
//! agent, which opened none of them, is still checked in Redis each time.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::StreamLimits;
use crate::metrics;
use crate::store::events::StoredEvent;
use crate::store::{Store, StoreError};

/// How often the reader looks for new events: well inside the 100 ms an event
/// may take to reach a console.
const POLL: Duration = Duration::from_millis(20);
/// Events read at most per look; a full page is followed by another at once.
const PAGE: usize = 500;
/// Events a stream may have waiting before it is closed.
pub const BUFFERED: usize = 512;

#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    limits: StreamLimits,
    subscribers: Mutex<Subscribers>,
    /// The running reader, if any. Held across the read of its first
    /// position, so no subscriber goes on before the reader it relies on has
    /// one; the reader takes it too before it stops (see `read`).
    reader: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

/// An agent token as the hub remembers it: its SHA-256, never the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    pub fn of(token: &str) -> TokenKey {
        TokenKey(Sha256::digest(token.as_bytes()).into())
    }
}

/// One open stream: where its events go, and the agent token it was opened
/// with (none for an admin's).
struct Stream {
    sender: mpsc::Sender<Arc<StoredEvent>>,
    token: Option<TokenKey>,
}

/// Open streams by what they see: `None` every event (admins), `Some(id)`
/// agent `id`'s.
#[derive(Default)]
struct Subscribers {
    next: u64,
    by_viewer: HashMap<Option<String>, HashMap<u64, Stream>>,
    /// Streams in `by_viewer`, all viewers together.
    open: usize,
    /// The tokens open streams were opened with: whose agent each is, and
    /// how many streams it opened; each was checked in Redis then.
    by_token: HashMap<TokenKey, (String, usize)>,
}

/// A stream the hub would not open.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("this agent has {0} event streams open on this server, the most it may")]
    AgentFull(usize),
    #[error("this server has {0} event streams open, the most it serves")]
    ProcessFull(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One open stream's feed; leaves the hub when dropped.
pub struct Subscription {
    pub events: mpsc::Receiver<Arc<StoredEvent>>,
    inner: Arc<Inner>,
    viewer: Option<String>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inner.lock().remove(&self.viewer, self.id);
    }
}

impl Subscribers {
    fn remove(&mut self, viewer: &Option<String>, id: u64) {
        let Some(streams) = self.by_viewer.get_mut(viewer) else {
            return;
        };
        let removed = streams.remove(&id);
        if streams.is_empty() {
            self.by_viewer.remove(viewer);
        }
        if let Some(stream) = removed {
            self.open -= 1;
            if let Some(key) = stream.token {
                self.forget_token(key);
            }
        }
    }

    /// Hands `event` to every stream that may see it; closes those whose
    /// queue is full.
    fn dispatch(&mut self, event: &Arc<StoredEvent>) {
        let mut closed = Vec::new();
        let viewers = [None, event.agent.clone()];
        let viewers = if event.agent.is_some() {
            &viewers[..]
        } else {
            &viewers[..1]
        };
        for viewer in viewers {
            let Some(streams) = self.by_viewer.get(viewer) else {
                continue;
            };
            for (id, stream) in streams {
                if let Err(e) = stream.sender.try_send(event.clone()) {
                    if matches!(e, mpsc::error::TrySendError::Full(_)) {
                        metrics::event_stream_dropped("lagged");
                    }
                    closed.push((viewer.clone(), *id));
                }
            }
        }
        for (viewer, id) in closed {
            self.remove(&viewer, id);
        }
    }
}

impl Subscribers {
    fn forget_token(&mut self, key: TokenKey) {
        if let Some((_, streams)) = self.by_token.get_mut(&key) {
            *streams -= 1;
            if *streams == 0 {
                self.by_token.remove(&key);
            }
        }
    }

    /// How many streams the agent of token `key` has open, when that is its
    /// cap already; `None` when the token opened none (or it is under).
    fn token_at_cap(&self, key: &TokenKey, limits: StreamLimits) -> Option<usize> {
        let (agent, _) = self.by_token.get(key)?;
        let open = self
            .by_viewer
            .get(&Some(agent.clone()))
            .map_or(0, HashMap::len);
        (open >= limits.per_agent).then_some(open)
    }

    /// Adds a stream for `viewer` (opened with agent token `token`) unless a
    /// cap says no.
    fn add(
        &mut self,
        viewer: &Option<String>,
        token: Option<TokenKey>,
        sender: mpsc::Sender<Arc<StoredEvent>>,
        limits: StreamLimits,
    ) -> Result<u64, SubscribeError> {
        if self.open >= limits.total {
            return Err(SubscribeError::ProcessFull(self.open));
        }
        if viewer.is_some() {
            let mine = self.by_viewer.get(viewer).map_or(0, HashMap::len);
            if mine >= limits.per_agent {
                return Err(SubscribeError::AgentFull(mine));
            }
        } else if let Some(key) = token {
            // A supervisor's or wallboard's token sees every event, as the
            // admin does, but leaks like an agent's (a wall screen): it gets
            // an agent's cap, counted by token.
            let mine = self.by_viewer.get(&None).map_or(0, |streams| {
                streams.values().filter(|s| s.token == Some(key)).count()
            });
            if mine >= limits.per_agent {
                return Err(SubscribeError::AgentFull(mine));
            }
        }
        self.next += 1;
        let id = self.next;
        self.by_viewer
            .entry(viewer.clone())
            .or_default()
            .insert(id, Stream { sender, token });
        self.open += 1;
        if let (Some(agent), Some(key)) = (viewer, token) {
            self.by_token
                .entry(key)
                .or_insert_with(|| (agent.clone(), 0))
                .1 += 1;
        }
        Ok(id)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventHub {
    pub fn new(store: Store, limits: StreamLimits) -> EventHub {
        EventHub {
            inner: Arc::new(Inner {
                store,
                limits,
                subscribers: Mutex::new(Subscribers::default()),
                reader: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Refuses a stream for agent token `token` before the token is checked
    /// (a read of Redis), when it opened streams here that were and its
    /// agent has its most open already: the answer the check would lead to.
    /// A token revoked meanwhile still gets it, until its streams end (they
    /// check their token every 15 s).
    pub fn refuse_early(&self, token: &TokenKey) -> Result<(), SubscribeError> {
        match self.inner.lock().token_at_cap(token, self.inner.limits) {
            Some(open) => {
                metrics::event_stream_dropped("refused");
                Err(SubscribeError::AgentFull(open))
            }
            None => Ok(()),
        }
    }

    /// Every event appended from now on that `agent` may see (`None`: all),
    /// unless this process or this agent has its most streams open already;
    /// `token`, the agent token it was asked with, is remembered for
    /// `refuse_early`. The reader's first position is read before any
    /// subscriber goes on, so a subscriber that then reads the stream up to
    /// its end and follows this feed misses nothing between.
    pub async fn subscribe(
        &self,
        agent: Option<String>,
        token: Option<TokenKey>,
    ) -> Result<Subscription, SubscribeError> {
        let (sender, events) = mpsc::channel(BUFFERED);
        let id = self
            .inner
            .lock()
            .add(&agent, token, sender, self.inner.limits)
            .inspect_err(|e| {
                if !matches!(e, SubscribeError::Store(_)) {
                    metrics::event_stream_dropped("refused");
                }
            })?;
        let subscription = Subscription {
            events,
            inner: self.inner.clone(),
            viewer: agent,
            id,
        };
        // After the insert above: a reader that finds no subscriber and stops
        // does so holding this lock, so this subscriber then starts another.
        // A reader that panicked is finished without having said so: it is
        // replaced too, or every later stream would get keep-alives only.
        let mut reader = self.inner.reader.lock().await;
        if reader.as_ref().is_none_or(JoinHandle::is_finished) {
            let start = self.inner.store.last_event_id().await?;
            *reader = Some(tokio::spawn(read(self.inner.clone(), start)));
        }
        Ok(subscription)
    }
}

/// Follows the stream from `last` until no stream is open.
async fn read(inner: Arc<Inner>, mut last: String) {
    let mut failing = false;
    loop {
        // Under `reader`: a subscriber that joined before this look is seen
        // here; one that joins after it finds no reader and starts one.
        {
            let mut reader = inner.reader.lock().await;
            if inner.lock().by_viewer.is_empty() {
                *reader = None;
                return;
            }
        }
        match inner.store.events_after(&last, PAGE).await {
            Ok(events) => {
                if failing {
                    tracing::info!("reading events again");
                    failing = false;
                }
                let full = events.len() >= PAGE;
                if let Some(newest) = events.last() {
                    last.clone_from(&newest.id);
                }
                // Streams opened later read the stream themselves up to where
                // they join: an event nobody follows right now is not lost.
                let mut subscribers = inner.lock();
                for event in events {
                    subscribers.dispatch(&Arc::new(event));
                }
                drop(subscribers);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, agent: Option<&str>) -> Arc<StoredEvent> {
        let data = match agent {
            Some(a) => format!(r#"{{"agent":"{a}"}}"#),
            None => "{}".into(),
        };
        Arc::new(StoredEvent::new(id.into(), "agent_state".into(), data))
    }

    #[test]
    fn events_go_to_admins_and_to_their_agent_only_and_a_full_queue_is_closed() {
        let mut subscribers = Subscribers::default();
        let mut add = |viewer: Option<&str>, capacity: usize| {
            let (sender, receiver) = mpsc::channel(capacity);
            subscribers
                .add(
                    &viewer.map(str::to_owned),
                    None,
                    sender,
                    StreamLimits::default(),
                )
                .expect("under the caps");
            receiver
        };
        let mut admin = add(None, 10);
        let mut ana = add(Some("ana"), 10);
        let mut bob = add(Some("bob"), 1);
        subscribers.dispatch(&event("1-0", Some("ana")));
        subscribers.dispatch(&event("2-0", None));
        subscribers.dispatch(&event("3-0", Some("bob")));
        subscribers.dispatch(&event("4-0", Some("bob")));
        let ids = |r: &mut mpsc::Receiver<Arc<StoredEvent>>| {
            let mut out = Vec::new();
            while let Ok(e) = r.try_recv() {
                out.push(e.id.clone());
            }
            out
        };
        assert_eq!(ids(&mut admin), ["1-0", "2-0", "3-0", "4-0"]);
        assert_eq!(ids(&mut ana), ["1-0"]);
        // bob's queue held one: the second closed it.
        assert_eq!(ids(&mut bob), ["3-0"]);
        assert!(bob.try_recv().is_err());
        assert!(!subscribers.by_viewer.contains_key(&Some("bob".to_owned())));
        assert_eq!(
            subscribers.open, 2,
            "bob's closed stream is no longer counted"
        );
    }

    #[test]
    fn a_stream_past_its_agents_cap_or_the_processs_is_refused() {
        let limits = StreamLimits {
            total: 3,
            per_agent: 2,
        };
        let mut subscribers = Subscribers::default();
        let mut add = |viewer: Option<&str>| {
            let (sender, receiver) = mpsc::channel(1);
            // The receivers are kept: a dropped one would close its stream.
            std::mem::forget(receiver);
            subscribers.add(&viewer.map(str::to_owned), None, sender, limits)
        };
        assert!(add(Some("ana")).is_ok());
        assert!(add(Some("ana")).is_ok());
        assert!(matches!(
            add(Some("ana")),
            Err(SubscribeError::AgentFull(2))
        ));
        assert!(add(None).is_ok(), "admins have no per-agent cap");
        assert!(matches!(
            add(Some("bob")),
            Err(SubscribeError::ProcessFull(3))
        ));
        assert!(matches!(add(None), Err(SubscribeError::ProcessFull(3))));
    }

    #[test]
    fn a_token_whose_agent_is_at_its_cap_is_refused_early_until_a_stream_ends() {
        let limits = StreamLimits {
            total: 10,
            per_agent: 2,
        };
        let (ana1, ana2) = (TokenKey::of("sbat_ana_1"), TokenKey::of("sbat_ana_2"));
        let mut subscribers = Subscribers::default();
        let mut receivers = Vec::new();
        let mut add = |subscribers: &mut Subscribers, token| {
            let (sender, receiver) = mpsc::channel(1);
            receivers.push(receiver);
            subscribers.add(&Some("ana".to_owned()), Some(token), sender, limits)
        };
        let first = add(&mut subscribers, ana1).expect("under the cap");
        assert_eq!(subscribers.token_at_cap(&ana1, limits), None);
        add(&mut subscribers, ana2).expect("under the cap");
        // Ana's two streams: each of her tokens is refused now, another
        // token (unknown here) goes on to be checked.
        assert_eq!(subscribers.token_at_cap(&ana1, limits), Some(2));
        assert_eq!(subscribers.token_at_cap(&ana2, limits), Some(2));
        assert_eq!(
            subscribers.token_at_cap(&TokenKey::of("sbat_other"), limits),
            None
        );
        subscribers.remove(&Some("ana".to_owned()), first);
        assert_eq!(subscribers.token_at_cap(&ana2, limits), None);
        assert!(
            !subscribers.by_token.contains_key(&ana1),
            "a token with no stream open is forgotten"
        );
    }
}
