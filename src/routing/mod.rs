//! The routing engine: turns Twilio's webhooks into decisions (dial this agent,
//! take that fallback step, hang up) by applying the routing table and calling
//! the store's scripts, and counts what it decided. It knows nothing of HTTP or
//! TwiML.

use std::sync::Arc;
use std::time::Duration;

pub mod callbacks;
pub mod explain;
pub mod unapplied;

use crate::agent::Contact;
use crate::config::menus::MenuOption;
use crate::config::steps::Steps;
use crate::config::{FallbackStep, Queue, QueueSettings, RoutingTable};
use crate::lookup::Lookup;
use crate::metrics;
use crate::needs::Needs;
use crate::store::alt_lines::Published;
use crate::store::calls::new_token;
use crate::store::calls::{RedirectReport, WaitFetch};
use crate::store::requests::{CALL_TAIL_MS, CONFIRM_WINDOW_MS};
use crate::store::requests::{HoldQueueEntry, HoldRequest, QueueAlts};
use crate::store::{
    AttemptRequest, NO_REPLICA_BACKOFF, NextStep, Outcome, PlanEntry, Replicated, RouteOutcome,
    RouteRequest, SettleCode, Settled, Store, StoreError,
};
use crate::twilio::params::{CallStatus, DialCallStatus};
use crate::twilio::rest::{CallState, RedirectOutcome, RequestBudget, RestClient};

/// An incoming call, as `POST /twilio/voice` describes it.
#[derive(Debug, Clone)]
pub struct IncomingCall<'a> {
    pub call_sid: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// `AccountSid`: the (sub-)account of the number; '' when not sent.
    pub account: &'a str,
}

/// One dial attempt's callback: which call, which agent and token (from the
/// callback URL switchboard wrote), and what Twilio reported.
#[derive(Debug, Clone)]
pub struct AttemptReport<'a> {
    pub call_sid: &'a str,
    pub agent: &'a str,
    pub token: &'a str,
    pub outcome: Outcome,
    /// The agent leg's CallSid (its status callback's `CallSid`).
    pub leg: Option<&'a str>,
}

/// What a call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Ring one agent; the token fences this attempt's callbacks.
    Dial {
        agent: String,
        contact: Contact,
        token: String,
        /// The call's own queue (its Dial action plans the next attempt from it).
        home: String,
        /// The queue the agent was taken from, and its settings.
        queue: String,
        settings: QueueSettings,
        attempt: u32,
        /// The agent must press 1 before the call is theirs (`confirm = true`,
        /// a `<Number>` or `<Sip>` contact).
        confirm: bool,
    },
    /// No agent: this step of the fallback chain of `queue` (never `Queue`).
    /// `next`: the index of the chain's step after it, where a forward nobody
    /// answers goes on (`None`: the chain ends here).
    Fallback {
        queue: String,
        step: FallbackStep,
        next: Option<usize>,
    },
    /// The caller waits in `queue`'s line: another hold round.
    Wait {
        queue: String,
        /// 0 when unknown (Redis unreachable: the caller keeps waiting).
        position: u32,
        /// Spoken to the nearest minute; `None`: nobody signed in, or too little
        /// known (lua/lib/forecast.lua).
        estimated_wait_secs: Option<u64>,
    },
    /// An agent was given to the caller and a REST redirect to its `<Dial>` is
    /// on its way: a second of silence, then the wait URL again.
    Connecting { queue: String },
    /// The number answers with a keypad menu (`[menus.NAME]`): its prompt,
    /// heard for the `attempt`th time, in `queue`'s voice (the number's
    /// queue).
    Menu {
        queue: String,
        menu: String,
        attempt: u32,
    },
    /// The call is over; answer with a hang-up.
    Hangup,
}

/// How one attempt's reports are read. On a confirm attempt a phone that picks
/// up has not answered: Twilio reports the leg answered and then completed (and
/// the Dial action may say `completed`) when a voicemail picks up and hangs up,
/// so only the agent's key press makes the call theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    Plain,
    Confirm,
}

/// What a Dial action reports about its attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialReport {
    /// `DialCallStatus`: how the agent's leg ended.
    pub dial_call_status: DialCallStatus,
    /// `DialBridged`, when Twilio sends it: whether the agent's leg was connected
    /// to the caller.
    pub bridged: Option<bool>,
    /// The action's own `CallStatus` (the caller's leg) is final.
    pub caller_gone: bool,
}

/// A Dial action's report as an attempt outcome. A caller who hung up ends the
/// attempt as a hang-up whatever the agent's leg did: nobody new is rung and a
/// ringing agent is free at once, without a miss. On a confirm attempt a
/// `completed` leg was the agent's call only if it was bridged; without
/// `DialBridged` the script decides from whether the agent pressed 1 (`Ended`).
/// A `DialCallStatus` switchboard does not know is a miss: the caller is on the
/// line and gets the next attempt, where refusing the report would make Twilio
/// play "an application error has occurred" and hang up.
pub fn dial_outcome(report: &DialReport, kind: AttemptKind) -> Outcome {
    use DialCallStatus as D;
    let outcome = match (&report.dial_call_status, kind, report.bridged) {
        (D::Completed | D::Answered, AttemptKind::Plain, _) => Outcome::Completed,
        (D::Completed | D::Answered, AttemptKind::Confirm, Some(true)) => Outcome::Completed,
        (D::Completed | D::Answered, AttemptKind::Confirm, Some(false)) => Outcome::Miss,
        (D::Completed | D::Answered, AttemptKind::Confirm, None) => Outcome::Ended,
        (D::NoAnswer | D::Busy | D::Failed | D::Unknown(_), _, _) => Outcome::Miss,
        (D::Canceled, _, _) => Outcome::Hangup,
    };
    if report.caller_gone && outcome != Outcome::Completed {
        Outcome::Hangup
    } else {
        outcome
    }
}

/// `CallStatus` of the agent leg's status callback; `None` for the progress
/// events (`initiated`, `ringing`) and unknown values, which change nothing.
pub fn agent_leg_outcome(call_status: &CallStatus, kind: AttemptKind) -> Option<Outcome> {
    use CallStatus as C;
    match (call_status, kind) {
        (C::Answered | C::InProgress, AttemptKind::Plain) => Some(Outcome::Answered),
        (C::Answered | C::InProgress, AttemptKind::Confirm) => Some(Outcome::PickedUp),
        (C::Completed, AttemptKind::Plain) => Some(Outcome::Completed),
        (C::Completed, AttemptKind::Confirm) => Some(Outcome::Ended),
        (C::NoAnswer | C::Busy | C::Failed, _) => Some(Outcome::Miss),
        (C::Canceled, _) => Some(Outcome::Hangup),
        (C::Queued | C::Initiated | C::Ringing | C::Unknown(_), _) => None,
    }
}

/// The words a withheld caller id arrives as, in any case.
const WITHHELD: [&str; 6] = [
    "anonymous",
    "unknown",
    "restricted",
    "private",
    "blocked",
    "unavailable",
];

/// A word as typed on a phone keypad (`anonymous` → `266696687`): Twilio
/// has also delivered withheld ids spelled so, as `+266696687` (ANONYMOUS),
/// `+7378742833` (RESTRICTED), `+86282452253` (UNAVAILABLE), `+8656696`
/// (UNKNOWN), `+2562533` (BLOCKED). None is a dialable E.164 number.
fn keypad_digits(word: &str) -> impl Iterator<Item = u8> + '_ {
    word.bytes().map(|b| match b.to_ascii_lowercase() {
        b'a'..=b'c' => b'2',
        b'd'..=b'f' => b'3',
        b'g'..=b'i' => b'4',
        b'j'..=b'l' => b'5',
        b'm'..=b'o' => b'6',
        b'p'..=b's' => b'7',
        b't'..=b'v' => b'8',
        _ => b'9',
    })
}

/// The caller a call's affinity is kept under: its `From`, or nobody when the
/// caller id is withheld. Twilio writes a withheld id as one of the `WITHHELD`
/// words (any case), as that word's keypad spelling (with or without `+`), or
/// leaves `From` empty; sharing one affinity entry would hand every anonymous
/// caller to whoever answered the last one. The one place that decides it:
/// the scripts get `""` and keep no affinity for it, and the confirm whisper
/// says "a withheld number".
pub fn affinity_caller(from: &str) -> &str {
    let trimmed = from.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let withheld = trimmed.is_empty()
        || WITHHELD
            .iter()
            .any(|w| trimmed.eq_ignore_ascii_case(w) || keypad_digits(w).eq(digits.bytes()));
    if withheld { "" } else { from }
}

/// Milliseconds since the epoch on this replica's clock (0 if it is before 1970).
fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Logs a report that changed something.
fn log_settled(report: &AttemptReport<'_>, settled: &Settled, from: &'static str) {
    if settled.applied() {
        tracing::info!(
            from,
            agent = report.agent,
            outcome = ?report.outcome,
            agent_state = settled.agent_state.as_deref().unwrap_or(""),
            "dial attempt settled"
        );
    }
}

/// Where a new call's needs come from, and its priority in line.
#[derive(Debug, Clone, Copy)]
struct CallNeeds<'a> {
    /// The number called, or a menu option (`RoutingTable::steps_for`).
    source: &'a str,
    priority: u8,
}

impl<'a> CallNeeds<'a> {
    fn of_number(to: &'a str) -> CallNeeds<'a> {
        CallNeeds {
            source: to,
            priority: 0,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    store: Store,
    table: Arc<RoutingTable>,
    /// Twilio's REST API and the public base URL, to connect a waiting caller
    /// as soon as an agent is reserved for it.
    connector: Option<Arc<(RestClient, String)>>,
    /// Dial actions Redis could not take, to apply when it answers again.
    unapplied: Arc<unapplied::Unapplied>,
    /// An answered call quiet this long is looked up at Twilio (with REST).
    reconcile_after: std::time::Duration,
    /// `[lookup]`: the customer's service, asked before a new call is routed.
    lookup: Option<Arc<Lookup>>,
    /// Calls a second callbacks may place, every replica together.
    cps: f64,
}

impl Engine {
    pub fn new(store: Store, table: Arc<RoutingTable>) -> Engine {
        Engine {
            store,
            table,
            connector: None,
            unapplied: Arc::default(),
            reconcile_after: std::time::Duration::from_secs(300),
            lookup: None,
            cps: 1.0,
        }
    }

    /// Places callbacks at `cps` calls a second, every replica together.
    pub fn with_cps(mut self, cps: f64) -> Engine {
        self.cps = cps;
        self
    }

    /// Asks `lookup` about each new call before routing it.
    pub fn with_lookup(mut self, lookup: Lookup) -> Engine {
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// True when calls may route by needs: some queue has steps, some number
    /// or menu option needs, or a lookup may add needs.
    pub fn routes_by_needs(&self) -> bool {
        self.lookup.is_some() || self.table.routes_by_needs()
    }

    /// The longest a new call's routing may take: Redis' budget, and the
    /// lookup's before it.
    pub fn route_budget(&self, redis: std::time::Duration) -> std::time::Duration {
        redis
            + self
                .lookup
                .as_ref()
                .map_or(std::time::Duration::ZERO, |l| l.timeout())
    }

    /// How long an answered call may go without a callback before the worker
    /// asks Twilio about it.
    pub fn with_reconcile_after(mut self, quiet: std::time::Duration) -> Engine {
        self.reconcile_after = quiet;
        self
    }

    /// The backstop for answered calls whose end was never reported: each one
    /// quiet for `reconcile_after` is looked up at Twilio by its agent leg, and
    /// settled as completed (the agent to wrap-up) if Twilio says it is over.
    /// A no-op without REST credentials. How many were ended.
    pub async fn reconcile(&self) -> Result<usize, StoreError> {
        let Some(connector) = &self.connector else {
            return Ok(0);
        };
        let mut lookups = tokio::task::JoinSet::new();
        for quiet in self.store.due_reconciles(self.reconcile_after, 50).await? {
            let connector = connector.clone();
            lookups.spawn(async move {
                let state = connector
                    .0
                    .call_state_in(&quiet.account, &quiet.leg_sid)
                    .await;
                (quiet, state)
            });
        }
        let mut ended = 0;
        while let Some(Ok((quiet, state))) = lookups.join_next().await {
            match state {
                Ok(CallState::Over) => {
                    let settled = self
                        .store
                        .settle_attempt(AttemptRequest {
                            sid: &quiet.call_sid,
                            agent: &quiet.agent,
                            token: &quiet.token,
                            outcome: Outcome::Completed,
                            confirm_ms: CONFIRM_WINDOW_MS,
                            leg: None,
                        })
                        .await?;
                    if settled.code == SettleCode::Applied {
                        tracing::info!(
                            call_sid = quiet.call_sid,
                            agent = quiet.agent,
                            "Twilio says the agent's call is over though nobody reported it: agent to wrap-up"
                        );
                        ended += 1;
                    }
                }
                Ok(CallState::Live) => {}
                Err(e) => tracing::warn!(
                    call_sid = quiet.call_sid,
                    error = %e,
                    "cannot ask Twilio about a quiet call; asking again later"
                ),
            }
        }
        Ok(ended)
    }

    /// The dial actions this replica keeps until Redis takes them.
    pub fn unapplied(&self) -> &Arc<unapplied::Unapplied> {
        &self.unapplied
    }

    /// Connects waiting callers through Twilio's REST API (the redirect's URL is
    /// built on `public_url`, as Twilio must reach it).
    pub fn with_rest(mut self, client: RestClient, public_url: String) -> Engine {
        self.connector = Some(Arc::new((client, public_url)));
        self
    }

    /// Whether a freed agent can be given to a waiting caller that this
    /// replica then connects: some queue holds callers and REST is set up.
    pub fn connects_waiting(&self) -> bool {
        self.connector.is_some() && self.table.queues().iter().any(|q| q.hold.is_some())
    }

    /// Connects the waiting callers that were just given an agent: each is
    /// redirected to its wait URL, which now answers its `<Dial>`. A call that
    /// is over releases its agent at once without a miss; a redirect that
    /// fails leaves the caller's next wait fetch to connect it. Without REST
    /// the list is only emptied.
    pub async fn connect_waiting(&self) -> Result<usize, StoreError> {
        let mut connected = 0;
        loop {
            let batch = self.store.drain_connects(64).await?;
            if self.connector.is_none() {
                return Ok(0);
            }
            // Concurrently: one slow answer from Twilio must not hold the rest.
            let mut redirects = tokio::task::JoinSet::new();
            for (sid, queue, matched_ms) in batch.iter().cloned() {
                let engine = self.clone();
                redirects.spawn(async move { engine.connect_one(&sid, &queue, matched_ms).await });
            }
            while let Some(done) = redirects.join_next().await {
                if let Ok(Ok(true)) = done {
                    connected += 1;
                }
            }
            if batch.len() < 64 {
                return Ok(connected);
            }
        }
    }

    /// One matched caller: claimed (so at most one redirect, and none after its
    /// own wait fetch already dialled), then redirected to its wait URL with
    /// `connect=1`, which answers its `<Dial>`.
    async fn connect_one(
        &self,
        sid: &str,
        queue: &str,
        matched_ms: i64,
    ) -> Result<bool, StoreError> {
        let Some(connector) = &self.connector else {
            return Ok(false);
        };
        let Some(claimed) = self.store.claim_connect(sid).await? else {
            return Ok(false);
        };
        let token = claimed.token;
        let (client, public_url) = connector.as_ref();
        let url = format!("{public_url}/twilio/voice/wait?queue={queue}&connect=1");
        match client.redirect_in(&claimed.account, sid, &url).await {
            RedirectOutcome::Redirected => {
                // Redis's clock at the match, this replica's now: the two
                // agree to NTP's milliseconds.
                let took = unix_ms_now().saturating_sub(matched_ms);
                metrics::connected(std::time::Duration::from_millis(
                    u64::try_from(took).unwrap_or(0),
                ));
                Ok(true)
            }
            RedirectOutcome::CallOver => {
                tracing::info!(call_sid = sid, "waiting caller was gone: agent released");
                self.store.end_call(sid).await?;
                Ok(false)
            }
            RedirectOutcome::UnknownCall => {
                tracing::error!(
                    call_sid = sid,
                    account_sid = if claimed.account.is_empty() {
                        client.config().credentials.account_sid()
                    } else {
                        claimed.account.as_str()
                    },
                    "Twilio does not know this call in this account (404): agent released, the caller's own wait fetch connects it; check TWILIO_ACCOUNT_SID and the API URL's region"
                );
                self.store
                    .report_connect(sid, &token, RedirectReport::Unknown)
                    .await?;
                Ok(false)
            }
            RedirectOutcome::Failed(e) => {
                tracing::warn!(call_sid = sid, error = %e, "REST redirect failed: the caller's next wait fetch connects it");
                self.store
                    .report_connect(sid, &token, RedirectReport::Failed)
                    .await?;
                Ok(false)
            }
        }
    }

    /// How long a claimed REST redirect may still be on its way: the client's
    /// whole budget, and a second for what happens between the claim (stamped
    /// by Redis) and the client's first try (the default budget's for a
    /// replica without REST, in case another one has it).
    fn redirect_ms(&self) -> u64 {
        let budget = match &self.connector {
            Some(connector) => connector.0.config().budget,
            None => RequestBudget::default(),
        };
        u64::try_from(budget.total.as_millis()).unwrap_or(u64::MAX) + 1000
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// How long a call's hash outlives its last change: the longest call any
    /// queue allows, plus an hour for late callbacks and voicemail.
    pub fn call_ttl_ms(&self) -> u64 {
        let longest = self
            .table
            .queues()
            .iter()
            .map(|q| u64::from(q.settings.max_call_secs) * 1000 + q.settings.reservation_ms())
            .max()
            .unwrap_or(0);
        longest + CALL_TAIL_MS
    }

    /// Routes an incoming call: the agent who last answered this caller if free
    /// right now, else the agent free the longest in its queue, then in the
    /// overflow queues of its fallback chain, else the chain's next step. The same
    /// CallSid routed again gets the same answer and reserves nobody.
    pub async fn incoming(&self, call: &IncomingCall<'_>) -> Result<Decision, StoreError> {
        let home = self.table.queue_for_number(call.to);
        if let Some(menu) = self.table.menu_for_number(call.to) {
            // Nothing is written before the caller chose: a caller who hangs
            // up during the menu leaves nothing behind.
            return Ok(Decision::Menu {
                queue: home.name.clone(),
                menu: menu.name.clone(),
                attempt: 1,
            });
        }
        self.route_new(call, home, CallNeeds::of_number(call.to))
            .await
    }

    /// A caller's key (`digits`; None for none) on the `attempt`th hearing
    /// of menu `menu`: its option's queue and needs, its step, or the prompt
    /// again; the second time without a valid key, the menu's default. A menu
    /// the routing file no longer has routes the call as its number's.
    pub async fn menu_choice(
        &self,
        call: &IncomingCall<'_>,
        menu: &str,
        attempt: u32,
        digits: Option<&str>,
    ) -> Result<Decision, StoreError> {
        let number_queue = self.table.queue_for_number(call.to);
        let Some(menu) = self.table.menu(menu) else {
            return self
                .route_new(call, number_queue, CallNeeds::of_number(call.to))
                .await;
        };
        match menu.choose(digits, attempt) {
            None => Ok(Decision::Menu {
                queue: number_queue.name.clone(),
                menu: menu.name.clone(),
                attempt: attempt + 1,
            }),
            Some((
                key,
                MenuOption::Route {
                    queue, priority, ..
                },
            )) => {
                tracing::info!(menu = menu.name, key = %key, queue, priority, "menu: routed");
                let home = self.table.queue(queue).unwrap_or(number_queue);
                let how = CallNeeds {
                    source: &menu.source(key),
                    priority: *priority,
                };
                self.route_new(call, home, how).await
            }
            Some((key, MenuOption::Step(step))) => {
                tracing::info!(menu = menu.name, key = %key, step = %step.metric_label(), "menu: fallback step");
                metrics::call_received(&number_queue.name);
                metrics::fallback(&number_queue.name, &step.metric_label());
                Ok(Decision::Fallback {
                    queue: number_queue.name.clone(),
                    step: step.clone(),
                    next: None,
                })
            }
        }
    }

    /// Routes a new call to `home`, with the needs and priority `how` says.
    async fn route_new(
        &self,
        call: &IncomingCall<'_>,
        home: &Queue,
        how: CallNeeds<'_>,
    ) -> Result<Decision, StoreError> {
        // Business hours are a person's wall-clock rule, decided before any
        // script runs, so this replica's (NTP-kept) clock decides; the order
        // of calls and agents keeps the Redis clock.
        if let Some(hours) = &home.hours
            && !hours.is_open(unix_ms_now())
        {
            let step = self.table.closed_step(home);
            metrics::call_received(&home.name);
            metrics::fallback(&home.name, &step.metric_label());
            metrics::wait_ended(&home.name, "closed", std::time::Duration::ZERO, false);
            tracing::info!(queue = home.name, step = %step.metric_label(), "outside the queue's hours: closed step");
            return Ok(Decision::Fallback {
                queue: home.name.clone(),
                step,
                next: None,
            });
        }
        // The lookup's needs join every step of each queue of the plan; an
        // answer whose needs cannot (a contradiction) is refused.
        let asked = match &self.lookup {
            Some(lookup) => {
                let call = (call.call_sid, call.from, call.to);
                lookup
                    .ask(call, &home.name, |answer| {
                        self.joined_steps(home, how.source, &answer.needs)
                    })
                    .await
            }
            None => None,
        };
        let (priority, extra) = asked.map_or((0, None), |(answer, steps)| (answer.priority, steps));
        let how = CallNeeds {
            priority: how.priority.max(priority),
            ..how
        };
        let request = self.route_request(call, home, how, extra.as_deref());
        let outcome = self.store.route_call(&request).await?;
        let decision = self.decide(&home.name, outcome, true)?;
        Ok(self.replicated(decision).await)
    }

    /// Each queue of `home`'s plan's steps for `source`, with `needs` too;
    /// `None` when `needs` adds nothing, an error when it contradicts a step.
    fn joined_steps(
        &self,
        home: &Queue,
        source: &str,
        needs: &Needs,
    ) -> Result<Option<Vec<Steps>>, String> {
        if needs.is_any() {
            return Ok(None);
        }
        self.steps_with(home, source, needs).map(Some)
    }

    /// Each queue of `home`'s plan's steps for `source`, with `needs` too (an
    /// error when it contradicts a step).
    pub(super) fn steps_with(
        &self,
        home: &Queue,
        source: &str,
        needs: &Needs,
    ) -> Result<Vec<Steps>, String> {
        self.table
            .plan(home)
            .queues
            .iter()
            .map(|(queue, _)| {
                self.table
                    .steps_for(source, queue)
                    .and(needs)
                    .map_err(|(step, e)| {
                        format!(
                            "needs {:?} with queue {:?}, step {}: {e}",
                            needs.text(),
                            queue.name,
                            step + 1
                        )
                    })
            })
            .collect()
    }

    /// In Sentinel mode a reservation is copied to a replica (`WAIT`) before
    /// its agent is dialled: Redis replicates asynchronously, and a failover
    /// that lost the reservation would offer that ringing agent to another
    /// call. A replica that does not confirm in time delays the call by the
    /// store's replica wait at most, and the agent is dialled anyway (the
    /// caller matters more than the rare failover at that very moment).
    async fn replicated(&self, decision: Decision) -> Decision {
        if matches!(decision, Decision::Dial { .. }) && self.store.waits_for_replicas() {
            match self.store.wait_for_replica().await {
                Ok(Replicated::NotConfirmed) => {
                    metrics::replica_wait("not_confirmed");
                    tracing::warn!(
                        "no replica confirmed the reservation in time: dialled anyway, and reservations do not wait for one for {NO_REPLICA_BACKOFF:?}"
                    )
                }
                Ok(Replicated::Confirmed) => metrics::replica_wait("confirmed"),
                Ok(Replicated::NotAsked) => metrics::replica_wait("not_asked"),
                Err(e) => {
                    metrics::replica_wait("failed");
                    tracing::warn!(error = %e, "cannot wait for a replica: dialled anyway")
                }
            }
        }
        decision
    }

    /// The Dial action: settles the attempt and decides the call's next step in
    /// one script — the next agent after a miss, a hang-up when the call is over
    /// (a stale report of a completed or hung-up call never rings another agent),
    /// or, for a replayed action, the answer already given. A call Redis does
    /// not know (never routed, expired, or lost) is hung up with nothing written.
    pub async fn dial_action(
        &self,
        report: &AttemptReport<'_>,
        call: &IncomingCall<'_>,
        home: Option<&str>,
    ) -> Result<Decision, StoreError> {
        // `home` comes from the signed action URL; a URL without it (written by
        // an older version) falls back to the called number's queue.
        let home = home
            .and_then(|name| self.table.queue(name))
            .unwrap_or_else(|| self.table.queue_for_number(call.to));
        // A call's needs are kept with it at its first route (a menu's
        // choice too): the number's stand in here, and are not used.
        let next = self.route_request(call, home, CallNeeds::of_number(call.to), None);
        let (settled, step) = self
            .store
            .settle_and_route(self.attempt(report), next)
            .await?;
        log_settled(report, &settled, "dial action");
        match step {
            NextStep::Hangup => {
                if settled.code == SettleCode::Unknown {
                    tracing::warn!("Dial action for a call switchboard does not know: hung up");
                }
                Ok(Decision::Hangup)
            }
            NextStep::Route(outcome) => {
                let decision = self.decide(&home.name, outcome, false)?;
                Ok(self.replicated(decision).await)
            }
        }
    }

    /// The agent leg's status callback: answered, or how the leg ended.
    pub async fn agent_status(&self, report: &AttemptReport<'_>) -> Result<(), StoreError> {
        let settled = self.store.settle_attempt(self.attempt(report)).await?;
        log_settled(report, &settled, "agent leg");
        Ok(())
    }

    /// A confirm attempt's agent pressed 1: the call is theirs if this attempt
    /// still holds it, a late press recovers it, or it is the same press again.
    /// `false`: the call moved on or ended, or the agent is held by another call
    /// meanwhile, and the agent's leg must not be connected.
    pub async fn accept(&self, report: &AttemptReport<'_>) -> Result<bool, StoreError> {
        let settled = self.store.settle_attempt(self.attempt(report)).await?;
        log_settled(report, &settled, "agent pressed 1");
        let agent_on_the_call = settled.agent_state.as_deref() == Some("on_call");
        Ok(match settled.code {
            SettleCode::Applied | SettleCode::Duplicate | SettleCode::Recovered => {
                agent_on_the_call
            }
            SettleCode::Stale | SettleCode::Unknown => false,
        })
    }

    /// The number's status callback with a final status: whatever the call still
    /// holds is released, and it gets no new attempt.
    pub async fn call_ended(&self, call_sid: &str) -> Result<(), StoreError> {
        self.store.end_call(call_sid).await
    }

    fn attempt<'a>(&self, report: &AttemptReport<'a>) -> AttemptRequest<'a> {
        AttemptRequest {
            sid: report.call_sid,
            agent: report.agent,
            token: report.token,
            outcome: report.outcome,
            confirm_ms: CONFIRM_WINDOW_MS,
            leg: report.leg,
        }
    }

    /// Everything the route script needs for a call to `home`: its plan (own
    /// queue, then overflow queues) and the step after them.
    fn route_request<'a>(
        &'a self,
        call: &IncomingCall<'a>,
        home: &'a Queue,
        how: CallNeeds<'_>,
        extra: Option<&'a [Steps]>,
    ) -> RouteRequest<'a> {
        let plan = self.table.plan(home);
        RouteRequest {
            sid: call.call_sid,
            token: new_token(),
            spare_token: new_token(),
            caller: affinity_caller(call.from),
            account: call.account,
            home: &home.name,
            call_ttl_ms: self.call_ttl_ms(),
            max_attempts: home.settings.max_attempts,
            step: plan.terminal.to_string(),
            plan: plan
                .queues
                .iter()
                .enumerate()
                .map(|(i, (queue, via))| {
                    let steps = extra
                        .and_then(|steps| steps.get(i))
                        .unwrap_or_else(|| self.table.steps_for(how.source, queue));
                    PlanEntry::new(&queue.name, via, &queue.settings).with_steps(steps)
                })
                .collect(),
            hold: home.hold.as_ref().map(|h| HoldRequest {
                loop_ms: h.round_ms(),
                max_waiting: h.max_waiting,
                join_when_no_agents: h.join_when_no_agents,
            }),
            sl_ms: u64::from(home.service_level_secs()) * 1000,
            priority: how.priority,
        }
    }

    /// A waiting caller's fetch of `/twilio/voice/wait?queue=…` (`digits`: a key
    /// it pressed during the round). Another hold round, its agent's `<Dial>`,
    /// or how its wait ended (the chain's step after `max_wait_secs`, the step
    /// of an exit key). A call Redis does not know is hung up, with nothing
    /// written.
    pub async fn wait(
        &self,
        call: &IncomingCall<'_>,
        queue: &str,
        digits: Option<&str>,
        connect: bool,
    ) -> Result<Decision, StoreError> {
        let Some(home) = self.table.queue(queue) else {
            return Ok(Decision::Hangup);
        };
        let Some(hold) = home.hold.as_ref() else {
            // The queue stopped holding callers (a new routing file): the
            // caller gets the queue's chain rather than a hang-up.
            return Ok(Decision::Fallback {
                queue: home.name.clone(),
                step: self.table.plan(home).terminal,
                next: None,
            });
        };
        let exit = digits
            .and_then(|d| d.chars().next())
            .and_then(|d| hold.exit_digits.get(&d).map(|step| (d, step)));
        // The callback key: the number prompt comes next, without fetches.
        let keying = digits.is_some_and(|d| hold.asks_callback(d));
        let fetch = WaitFetch {
            max_wait_ms: u64::from(hold.max_wait_secs) * 1000,
            loop_ms: if keying {
                hold.round_ms().max(callbacks::KEYING_MS)
            } else {
                hold.round_ms()
            },
            step: self.table.plan(home).terminal.to_string(),
            exit: exit.is_some(),
            connect,
            redirect_ms: self.redirect_ms(),
            call_ttl_ms: self.call_ttl_ms() + u64::from(hold.max_wait_secs) * 1000,
        };
        let outcome = self.store.wait(call.call_sid, fetch).await?;
        match outcome {
            RouteOutcome::Exit => {
                let Some((digit, step)) = exit.map(|(d, s)| (d, s.clone())) else {
                    return Err(StoreError::Reply {
                        script: "wait",
                        detail: "an exit without a key pressed".into(),
                    });
                };
                metrics::fallback(&home.name, &step.metric_label());
                tracing::info!(queue = home.name, digit = %digit, step = %step.metric_label(), "caller left the line by key");
                Ok(Decision::Fallback {
                    queue: home.name.clone(),
                    step,
                    next: None,
                })
            }
            RouteOutcome::Unknown => {
                // Any TwiML in the Twilio account can redirect a call here, and
                // Twilio signs that fetch: a call that never came in through
                // the voice webhook (or whose record is gone) gets no agent and
                // no place in line, and the script wrote nothing.
                tracing::warn!(
                    queue = home.name,
                    "wait fetch for a call switchboard does not know: hung up"
                );
                Ok(Decision::Hangup)
            }
            other => {
                let decision = self.decide(&home.name, other, false)?;
                Ok(self.replicated(decision).await)
            }
        }
    }

    /// Publishes the queues that hold callers (`hold_queues` in Redis): at start
    /// (`replace`: this routing file's queues replace whatever was there, so a
    /// changed priority or a removed queue takes effect), and from the worker
    /// whenever Redis came back without them.
    pub async fn publish_hold_queues(&self, replace: bool) -> Result<(), StoreError> {
        let entries: Vec<(String, HoldQueueEntry<'_>)> = self
            .table
            .queues()
            .iter()
            .filter_map(|q| {
                let hold = q.hold.as_ref()?;
                Some((
                    q.name.clone(),
                    HoldQueueEntry {
                        plan: PlanEntry::new(&q.name, "line", &q.settings),
                        priority: q.priority,
                        loop_ms: hold.round_ms(),
                        rise_ms: u64::from(hold.estimate_max_rise_secs) * 1000,
                    },
                ))
            })
            .collect();
        if !replace && self.store.hold_queues_published().await? >= entries.len() {
            return Ok(());
        }
        self.store.publish_hold_queues(&entries, replace).await
    }

    /// Publishes the alternatives this routing file names, so Redis keeps a
    /// line of free agents for each (lua/lib/skills.lua), and drops those no
    /// replica published for `stale` (a routing file that changed).
    pub async fn publish_alternatives(&self, stale: Duration) -> Result<Published, StoreError> {
        let named = self.table.named_alternatives();
        let queues = named
            .iter()
            .map(|(queue, alts)| QueueAlts {
                queue,
                alts: alts.iter().copied().collect(),
            })
            .collect();
        self.store.publish_alts(queues, stale).await
    }

    /// What a caller gets while Redis is unreachable: the `[emergency]` step,
    /// with no chain after it.
    pub fn emergency(&self) -> Decision {
        Decision::Fallback {
            queue: String::new(),
            step: self.table.emergency.clone(),
            next: None,
        }
    }

    /// The action of a forward (`number:`/`client:` step `step` of `queue`'s
    /// chain): nobody answered (a miss) goes on to the chain's next step; an
    /// answered forward, or a caller who hung up, ends the call. `None`: that
    /// step is not one a forward reports from (a forged or stale URL). Needs no
    /// Redis.
    pub fn forward_ended(&self, queue: &str, step: usize, outcome: Outcome) -> Option<Decision> {
        let chain = self.table.queue(queue)?;
        let (at, current) = chain.answering_step(step).filter(|(i, _)| *i == step)?;
        if outcome != Outcome::Miss {
            return Some(Decision::Hangup);
        }
        metrics::fallback(queue, &current.metric_label());
        tracing::info!(queue, step = %current.metric_label(), "forward not answered: next fallback step");
        Some(Decision::Fallback {
            queue: queue.to_owned(),
            step: current.clone(),
            next: self.next_answering_step(queue, at),
        })
    }

    /// The index of the step after `at` in `queue`'s chain that answers without
    /// an agent (later `queue:` steps are skipped: the call left the queues).
    fn next_answering_step(&self, queue: &str, at: usize) -> Option<usize> {
        let (next, _) = self.table.queue(queue)?.answering_step(at + 1)?;
        Some(next)
    }

    /// Turns a script's outcome into a decision, counting it the first time.
    pub(crate) fn decide(
        &self,
        home: &str,
        outcome: RouteOutcome,
        first: bool,
    ) -> Result<Decision, StoreError> {
        match outcome {
            RouteOutcome::Dial {
                agent,
                contact,
                token,
                queue,
                via,
                attempt,
                fresh,
            } => {
                let contact = Contact::parse(&contact).ok_or_else(|| StoreError::Reply {
                    script: "route_call",
                    detail: format!("agent {agent} has an invalid contact {contact:?}"),
                })?;
                // A contact stored before `[contacts] allow` was set is never
                // dialled: the caller gets the emergency answer and the
                // reservation expires as a miss.
                if !self.table.contacts.allows(&contact.to_string()) {
                    return Err(StoreError::Reply {
                        script: "route_call",
                        detail: format!(
                            "agent {agent}'s contact {contact} is not allowed by [contacts] allow"
                        ),
                    });
                }
                let from_queue = self.table.queue(&queue);
                let settings =
                    from_queue.map_or_else(QueueSettings::default, |q| q.settings.clone());
                // A softphone (`<Client>`) is a person: only real phones confirm.
                let confirm =
                    from_queue.is_some_and(|q| q.confirm) && !matches!(contact, Contact::Client(_));
                if fresh {
                    if first {
                        metrics::call_received(home);
                    }
                    metrics::routed(home, &via);
                    if via == "overflow" {
                        metrics::fallback(home, &format!("queue:{queue}"));
                    }
                    tracing::info!(agent, queue, via, attempt, "call offered to agent");
                }
                Ok(Decision::Dial {
                    agent,
                    contact,
                    token,
                    home: home.to_owned(),
                    queue,
                    settings,
                    attempt,
                    confirm,
                })
            }
            RouteOutcome::Fallback { step, fresh } => {
                let step: FallbackStep = step.parse().map_err(|detail| StoreError::Reply {
                    script: "route_call",
                    detail,
                })?;
                if fresh {
                    if first {
                        metrics::call_received(home);
                    }
                    metrics::fallback(home, &step.metric_label());
                    tracing::info!(queue = home, step = %step.metric_label(), "no agent for the call: fallback");
                }
                // The route's step is the chain's first that needs no agent.
                let next = self
                    .table
                    .queue(home)
                    .and_then(|q| q.answering_step(0))
                    .and_then(|(at, _)| self.next_answering_step(home, at));
                Ok(Decision::Fallback {
                    queue: home.to_owned(),
                    step,
                    next,
                })
            }
            RouteOutcome::Waiting {
                position,
                estimated_wait_ms,
                fresh,
                ..
            } => {
                if fresh && first {
                    metrics::call_received(home);
                    tracing::info!(
                        queue = home,
                        position,
                        "no agent for the call: waiting in line"
                    );
                }
                Ok(Decision::Wait {
                    queue: home.to_owned(),
                    position,
                    estimated_wait_secs: estimated_wait_ms.map(|ms| ms.div_ceil(1000)),
                })
            }
            // A REST redirect is on its way to this caller: a short round.
            RouteOutcome::Connecting => Ok(Decision::Connecting {
                queue: home.to_owned(),
            }),
            RouteOutcome::Ended | RouteOutcome::Exit | RouteOutcome::Unknown => {
                Ok(Decision::Hangup)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withheld_caller_ids_in_words_and_keypad_spellings_have_no_affinity() {
        let words = ["", " ", "anonymous", "Anonymous", "RESTRICTED", "private"];
        for from in words
            .into_iter()
            .chain(["blocked", "unavailable", "unknown"])
        {
            assert_eq!(affinity_caller(from), "", "{from:?}");
        }
        // ANONYMOUS, RESTRICTED, UNAVAILABLE, UNKNOWN, BLOCKED, PRIVATE.
        let keypad = [
            "266696687",
            "7378742833",
            "86282452253",
            "8656696",
            "2562533",
        ];
        for digits in keypad.into_iter().chain(["7748283"]) {
            for from in [digits.to_owned(), format!("+{digits}")] {
                assert_eq!(affinity_caller(&from), "", "{from:?}");
            }
        }
        for from in ["+15005550001", "client:alice", "+2666966870", "+26669668"] {
            assert_eq!(affinity_caller(from), from, "{from:?}");
        }
    }

    #[test]
    fn an_unknown_dial_call_status_is_a_miss_unless_the_caller_is_gone() {
        let report = |status: &str, caller_gone| DialReport {
            dial_call_status: DialCallStatus::parse(status),
            bridged: None,
            caller_gone,
        };
        for kind in [AttemptKind::Plain, AttemptKind::Confirm] {
            assert_eq!(
                dial_outcome(&report("exploded", false), kind),
                Outcome::Miss
            );
            assert_eq!(
                dial_outcome(&report("exploded", true), kind),
                Outcome::Hangup
            );
        }
        assert_eq!(
            dial_outcome(&report("completed", false), AttemptKind::Plain),
            Outcome::Completed
        );
    }
}
