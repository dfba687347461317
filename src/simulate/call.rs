//! One simulated call, from the incoming webhook to its last callback, played
//! the way Twilio plays it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::twiml::{self, Dial, Verb};
use super::{Holders, SimulateArgs};
use crate::twilio::overrides::ConnectionOverrides;
use crate::twilio::signature;

/// A call never follows more TwiML documents than this (a loop is a bug);
/// hold rounds count too, so a caller can wait this many rounds at most.
const MAX_STEPS: usize = 10_000;
/// A keypad menu's URL (its `<Gather>` action and `<Redirect>`).
const MENU_PATH: &str = "/twilio/voice/menu";
/// The `<Gather>` action of the number a caller keys in for a callback.
const CALLBACK_NUMBER_PATH: &str = "/twilio/voice/callback/number";

/// What every simulated call shares.
pub(crate) struct Shared {
    /// Redirects from the REST stand-in (`--rest-listen`), by CallSid.
    pub redirects: std::sync::Arc<super::rest::Redirects>,
    /// Callbacks' calls placed through the REST stand-in.
    pub placements: std::sync::Arc<super::rest::Placements>,
    pub http: reqwest::Client,
    pub args: SimulateArgs,
    pub holders: Holders,
    pub next_url: AtomicUsize,
    pub trace: bool,
    pub started: Instant,
    /// Random per run: the high half of every CallSid.
    pub run_id: u64,
}

/// How a call ended, as the caller experienced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallOutcome {
    /// An agent answered.
    Answered,
    /// Forwarded by a `number:`/`client:` fallback step.
    Forwarded,
    /// Left in voicemail.
    Voicemail,
    /// The caller hung up while an agent rang.
    CallerHungUp,
    /// The caller hung up while waiting in line.
    AbandonedWaiting,
    /// The caller asked to be called back and no try of it connected (none
    /// came within `--callback-wait-ms` of the last).
    CallbackNotConnected,
    /// An agent's voicemail took the call (an agent on a real phone in a queue
    /// without `confirm`): the caller talked to a machine.
    AgentVoicemail,
    /// A Dial action was lost, so the call ended there.
    LostAction,
    /// Switchboard answered `<Hangup/>` or nothing to act on.
    HungUp,
    /// A webhook failed (non-200 or invalid TwiML).
    Error,
}

impl CallOutcome {
    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Answered => "answered",
            CallOutcome::Forwarded => "forwarded",
            CallOutcome::Voicemail => "voicemail",
            CallOutcome::CallerHungUp => "caller_hung_up",
            CallOutcome::AbandonedWaiting => "abandoned_waiting",
            CallOutcome::CallbackNotConnected => "callback_not_connected",
            CallOutcome::AgentVoicemail => "agent_voicemail",
            CallOutcome::LostAction => "lost_action",
            CallOutcome::HungUp => "hung_up",
            CallOutcome::Error => "error",
        }
    }
}

/// What the caller saw of a line, with the times it saw it (since the run
/// started): what the overtaking check (`line_check`) reasons from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineMark {
    /// A hold round announcing a position: at some instant between `sent` (the
    /// fetch's first try) and `received`, the caller was in `queue`'s line and
    /// not yet given an agent.
    Waiting {
        queue: String,
        position: u32,
        sent: Duration,
        received: Duration,
    },
    /// An agent's `<Dial>`: the agent was reserved for the caller at or before
    /// `received`, and the attempt was over at `ended`.
    Offered { received: Duration, ended: Duration },
}

/// The result of one call.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub sid: String,
    pub outcome: CallOutcome,
    /// Agents offered the call.
    pub attempts: u32,
    /// Attempts ended by `no-answer` or `busy`, or by an agent's voicemail that
    /// did not press 1.
    pub missed: u32,
    /// Attempts whose phone was picked up by the agent's voicemail.
    pub voicemail_pickups: u32,
    /// Hold rounds this call heard (0: it never waited).
    pub hold_rounds: u32,
    /// Hold rounds cut short by a REST redirect.
    pub rest_redirects: u32,
    /// Requests a server could not answer (killed, restarting) sent again to
    /// the next, as a load balancer does.
    pub retried: u32,
    pub line: Vec<LineMark>,
    /// The caller asked to be called back; the tries it was called on; one
    /// connected it (it pressed 1 and its agent rang).
    pub callback_requested: bool,
    pub callback_tries: u32,
    pub callback_connected: bool,
    /// When the call came in, when an agent answered it (if one did), and
    /// when the caller's call was over (since the run started).
    pub started_at: Duration,
    pub answered_at: Option<Duration>,
    pub ended_at: Duration,
    pub latencies: Vec<Duration>,
    pub errors: Vec<String>,
    pub violations: Vec<String>,
}

/// An agent attempt's outcome, drawn from the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Play {
    Answer,
    NoAnswer,
    Busy,
    Hangup,
    /// The agent's voicemail picks up.
    Voicemail,
}

struct Call<'a> {
    shared: &'a Shared,
    n: usize,
    sid: String,
    from: String,
    to: String,
    rng: StdRng,
    result: CallResult,
    /// Callbacks to send again once the call is over: late duplicates.
    replays: Vec<(String, Vec<(String, String)>)>,
    legs: u32,
    /// Redirects the REST stand-in received for this call.
    redirected: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    /// Where the caller's own call's status goes: the number's status
    /// callback, or that of the callback's call that took over.
    status_url: String,
    /// Drawn at the start: this caller asks to be called back when offered.
    wants_callback: bool,
    /// It asked: the calls placed for it arrive here.
    callbacks: Option<tokio::sync::mpsc::UnboundedReceiver<super::rest::Placed>>,
    /// The callback's CallSid (the caller's first), once its call took over.
    callback_of: Option<String>,
    /// The last answered request: when its first try was sent, and when its
    /// answer came (since the run started).
    last_sent: Duration,
    last_received: Duration,
}

pub(crate) async fn place(shared: &Shared, n: usize) -> CallResult {
    let args = &shared.args;
    // Unique per run (CallSids of an earlier run are ended calls), while the
    // outcomes still follow the seed.
    let sid = format!("CA{:032x}", (u128::from(shared.run_id) << 64) | n as u128);
    let mut call = Call {
        shared,
        n,
        sid: sid.clone(),
        // Callers repeat, so affinity is exercised under load.
        from: format!("+1500555{:04}", n % 997),
        to: args.to[n % args.to.len()].clone(),
        rng: StdRng::seed_from_u64(
            args.seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(n as u64),
        ),
        result: CallResult {
            sid,
            outcome: CallOutcome::HungUp,
            attempts: 0,
            missed: 0,
            voicemail_pickups: 0,
            hold_rounds: 0,
            rest_redirects: 0,
            retried: 0,
            line: Vec::new(),
            callback_requested: false,
            callback_tries: 0,
            callback_connected: false,
            started_at: shared.started.elapsed(),
            answered_at: None,
            ended_at: Duration::ZERO,
            latencies: Vec::new(),
            errors: Vec::new(),
            violations: Vec::new(),
        },
        replays: Vec::new(),
        legs: 0,
        redirected: None,
        status_url: format!(
            "/twilio/voice/status#{}",
            crate::twilio::twiml::CONNECTION_OVERRIDES
        ),
        wants_callback: false,
        callbacks: None,
        callback_of: None,
        last_sent: Duration::ZERO,
        last_received: Duration::ZERO,
    };
    if shared.args.rest_listen.is_some() {
        call.redirected = Some(shared.redirects.open(&call.sid));
    }
    if args.callback > 0.0 {
        call.wants_callback = call.rng.random_bool(args.callback.clamp(0.0, 1.0));
    }
    call.run().await;
    if call.result.ended_at == Duration::ZERO {
        // A call that stopped on an error: the caller is gone from here on.
        call.result.ended_at = shared.started.elapsed();
    }
    shared.redirects.close(&call.sid);
    if let Some(first) = &call.callback_of {
        shared.redirects.close(first);
        shared.placements.close(first);
    }
    shared.placements.close(&call.sid);
    for (url, params) in std::mem::take(&mut call.replays) {
        call.post(&url, &params, "replay").await;
    }
    call.result
}

impl Call<'_> {
    fn params(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            // The account the call belongs to, as Twilio sends it: the one
            // the REST stand-in serves, so redirects name it in their path.
            ("AccountSid", self.shared.args.account_sid.as_str()),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", self.sid.as_str()),
            ("From", self.from.as_str()),
            ("To", self.to.as_str()),
            ("Direction", "inbound"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            match p.iter_mut().find(|(name, _)| name == k) {
                Some(pair) => pair.1 = v.to_string(),
                None => p.push((k.to_string(), v.to_string())),
            }
        }
        p
    }

    /// The parameters of an agent-leg status callback.
    fn leg(&self, leg_sid: &str, status: &str) -> Vec<(String, String)> {
        let mut p = self.params(&[("CallStatus", status), ("ParentCallSid", self.sid.as_str())]);
        if let Some(sid) = p.iter_mut().find(|(k, _)| k == "CallSid") {
            sid.1 = leg_sid.to_owned();
        }
        p
    }

    async fn run(&mut self) {
        let params = self.params(&[("CallStatus", "ringing")]);
        let mut answer = self.post("/twilio/voice", &params, "incoming call").await;
        for _ in 0..MAX_STEPS {
            let Some(body) = answer else {
                self.result.outcome = CallOutcome::Error;
                return;
            };
            answer = match twiml::first_verb(&body) {
                Err(e) => {
                    self.error(format!("{e}: {body}"));
                    return;
                }
                // An agent's <Dial> reports its leg; a forward does not.
                Ok(Verb::Dial(dial)) if dial.status_callback.is_some() => {
                    let received = self.last_received;
                    let next = self.attempt(dial).await;
                    let ended = self.shared.started.elapsed();
                    self.result.line.push(LineMark::Offered { received, ended });
                    match next {
                        Some(next) => Some(next),
                        None => return,
                    }
                }
                Ok(Verb::Dial(dial)) => {
                    // The forwarded party answers; a chain action then ends the call.
                    self.result.outcome = CallOutcome::Forwarded;
                    if let Some(action) = dial.action {
                        let params = self.params(&[
                            ("CallStatus", "in-progress"),
                            ("DialCallStatus", "completed"),
                        ]);
                        self.callback(&action, params, "forward completed").await;
                    }
                    self.end_call().await;
                    return;
                }
                Ok(Verb::Record { action }) => {
                    self.result.outcome = CallOutcome::Voicemail;
                    if let Some(action) = action {
                        let rec = format!("RE{:032x}", self.n);
                        let url = format!("https://api.twilio.com/2010-04-01/Recordings/{rec}");
                        let params = self.params(&[
                            ("CallStatus", "in-progress"),
                            ("RecordingSid", &rec),
                            ("RecordingUrl", &url),
                            ("RecordingDuration", "7"),
                        ]);
                        self.callback(&action, params, "voicemail recorded").await;
                    }
                    self.end_call().await;
                    return;
                }
                Ok(Verb::Hangup) | Ok(Verb::Nothing) => {
                    self.end_call().await;
                    // A caller who asked to be called back waits for its call.
                    match self.await_callback().await {
                        Some(next) => Some(next),
                        None => return,
                    }
                }
                Ok(Verb::Redirect { url, gather }) if path_of(&url) == MENU_PATH => {
                    self.menu_key(&url, gather).await
                }
                Ok(Verb::Redirect {
                    gather: Some(g), ..
                }) if path_of(&g.action).starts_with(CALLBACK_NUMBER_PATH) => {
                    self.confirm_callback_number(&g.action).await
                }
                Ok(Verb::Redirect { url, gather }) => {
                    self.note_round(&url, &body);
                    let offered = body.contains("called back");
                    match self.hold_round(&url, gather, offered).await {
                        Some(next) => Some(next),
                        None => return,
                    }
                }
            };
        }
        self.error(format!("more than {MAX_STEPS} TwiML steps"));
    }

    /// A keypad menu: the key of `--menu-digits` for this call, or none (the
    /// `<Redirect>` after the `<Gather>`).
    async fn menu_key(&mut self, url: &str, gather: Option<twiml::Gather>) -> Option<String> {
        let keys: Vec<char> = self.shared.args.menu_digits.chars().collect();
        let key = (!keys.is_empty()).then(|| keys[self.n % keys.len()]);
        let mut params = self.params(&[("CallStatus", "in-progress")]);
        let (target, what) = match key.and_then(|k| Some((k, gather.as_ref()?.pressed(k)?))) {
            Some((k, action)) => {
                params.push(("Digits".into(), k.to_string()));
                (action.to_owned(), "caller pressed a menu key")
            }
            None => (url.to_owned(), "no key at the menu"),
        };
        let next = self.post(&target, &params, what).await;
        if next.is_none() {
            self.end_call().await;
        }
        next
    }

    /// Notes a hold round that announced a position (one that did not is the
    /// short pause of a redirect on its way), and checks that the position
    /// did not go up.
    fn note_round(&mut self, url: &str, body: &str) {
        let Some(position) = twiml::announced_position(body) else {
            return;
        };
        // Callers are compared in line only with those who need the same: the
        // same number, menu key and lookup answer (others may rightly pass).
        let args = &self.shared.args;
        let keys: Vec<char> = args.menu_digits.chars().collect();
        let mut queue = format!(
            "{} (to {}",
            query_value(url, "queue").unwrap_or_default(),
            self.to
        );
        if !keys.is_empty() {
            let _ = write!(queue, ", key {}", keys[self.n % keys.len()]);
        }
        if let Some(needs) = super::lookup::needs_of(&args.needs, self.n) {
            let _ = write!(queue, ", needs {needs}");
        }
        queue.push(')');
        let before = self.result.line.iter().rev().find_map(|mark| match mark {
            LineMark::Waiting {
                queue: q,
                position: p,
                ..
            } if *q == queue => Some(*p),
            _ => None,
        });
        if let Some(before) = before
            && position > before
        {
            self.result.violations.push(format!(
                "{} went from number {before} to {position} in {queue}'s line",
                self.sid
            ));
        }
        self.result.line.push(LineMark::Waiting {
            queue,
            position,
            sent: self.last_sent,
            received: self.last_received,
        });
    }

    /// One agent rings; returns the TwiML of the call's next step, or `None`
    /// when the call is over.
    async fn attempt(&mut self, dial: Dial) -> Option<String> {
        self.result.attempts += 1;
        self.legs += 1;
        let agent = format!("{}:{}", dial.noun, dial.target);
        if let Some(other) = self.shared.holders.take(&agent, &self.sid) {
            self.result.violations.push(format!(
                "{agent} offered to {} while {other} still holds it",
                self.sid
            ));
        }
        let action = dial.action.clone().unwrap_or_default();
        let leg_sid = format!("CA{:016x}{:016x}", self.n, self.legs);
        let callback = dial.status_callback.clone();
        if let Some(cb) = &callback {
            self.callback(cb, self.leg(&leg_sid, "initiated"), "agent leg initiated")
                .await;
            self.callback(cb, self.leg(&leg_sid, "ringing"), "agent leg ringing")
                .await;
        }
        tokio::time::sleep(Duration::from_millis(self.shared.args.ring_ms)).await;
        let play = self.draw();
        match play {
            Play::Answer => {
                self.result.answered_at = Some(self.shared.started.elapsed());
                if let Some(cb) = &callback {
                    self.callback(cb, self.leg(&leg_sid, "in-progress"), "agent answered")
                        .await;
                }
                if let Some(url) = &dial.url
                    && !self.press_1(url, &leg_sid).await
                {
                    // The call moved on meanwhile (a lost callback let the
                    // reservation expire): the leg hangs up, as a miss.
                    self.result.answered_at = None;
                    self.result.missed += 1;
                    self.shared.holders.release(&agent, &self.sid);
                    return self.leg_ended(&callback, &action, &leg_sid).await;
                }
                let talk = self.talk_time();
                tokio::time::sleep(talk).await;
                self.shared.holders.release(&agent, &self.sid);
                self.result.outcome = CallOutcome::Answered;
                self.bridged_call_ends(&callback, &action, &leg_sid).await;
                None
            }
            Play::NoAnswer | Play::Busy => {
                let status = if play == Play::Busy {
                    "busy"
                } else {
                    "no-answer"
                };
                self.result.missed += 1;
                self.shared.holders.release(&agent, &self.sid);
                if let Some(cb) = &callback {
                    self.callback(cb, self.leg(&leg_sid, status), "agent leg ended")
                        .await;
                }
                let params = self.params(&[
                    ("CallStatus", "in-progress"),
                    ("DialCallStatus", status),
                    ("DialCallSid", &leg_sid),
                ]);
                let next = self.callback(&action, params, "dial action").await;
                if next.is_none() {
                    self.result.outcome = CallOutcome::LostAction;
                    self.end_call().await;
                }
                next
            }
            Play::Hangup => {
                self.shared.holders.release(&agent, &self.sid);
                self.result.outcome = CallOutcome::CallerHungUp;
                // Twilio reports the agent leg `canceled` or its own `no-answer`,
                // and its callbacks race the Dial action: both orders are played.
                let leg_status = if self.rng.random_bool(0.5) {
                    "canceled"
                } else {
                    "no-answer"
                };
                let leg_first = self.rng.random_bool(0.5);
                if leg_first && let Some(cb) = &callback {
                    self.callback(cb, self.leg(&leg_sid, leg_status), "agent leg ended")
                        .await;
                }
                // What Twilio posts: the agent leg did not answer, and the
                // caller's own leg is over.
                let params =
                    self.params(&[("CallStatus", "completed"), ("DialCallStatus", "no-answer")]);
                let next = self
                    .callback(&action, params, "dial action: caller hung up")
                    .await;
                if !leg_first && let Some(cb) = &callback {
                    self.callback(cb, self.leg(&leg_sid, leg_status), "agent leg ended")
                        .await;
                }
                if let Some(next) = next
                    && let Ok(Verb::Dial(d)) = twiml::first_verb(&next)
                {
                    self.result.violations.push(format!(
                        "{} rang {} {} for a caller who had hung up",
                        self.sid, d.noun, d.target
                    ));
                }
                self.end_call().await;
                None
            }
            Play::Voicemail => {
                self.result.voicemail_pickups += 1;
                if let Some(cb) = &callback {
                    self.callback(
                        cb,
                        self.leg(&leg_sid, "in-progress"),
                        "agent's voicemail picked up",
                    )
                    .await;
                }
                let Some(url) = &dial.url else {
                    // Nothing asks for a key: the machine takes the call.
                    self.shared.holders.release(&agent, &self.sid);
                    self.result.outcome = CallOutcome::AgentVoicemail;
                    self.bridged_call_ends(&callback, &action, &leg_sid).await;
                    return None;
                };
                // The prompt plays to a machine; no key comes, the leg hangs up.
                let prompt = self
                    .post(url, &self.leg(&leg_sid, "in-progress"), "confirm prompt")
                    .await;
                if prompt.as_deref().and_then(twiml::gather_action).is_none() {
                    self.error(format!("the confirm url answered no <Gather>: {prompt:?}"));
                    return None;
                }
                self.result.missed += 1;
                self.shared.holders.release(&agent, &self.sid);
                self.leg_ended(&callback, &action, &leg_sid).await
            }
        }
    }

    /// A connected call ends: the agent leg completes, the Dial action says so
    /// (and must answer `<Hangup/>`), and the caller's call is over.
    async fn bridged_call_ends(&mut self, callback: &Option<String>, action: &str, leg_sid: &str) {
        if let Some(cb) = callback {
            self.callback(cb, self.leg(leg_sid, "completed"), "agent leg completed")
                .await;
        }
        let params = self.params(&[
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "completed"),
            ("DialCallSid", leg_sid),
            ("DialCallDuration", "1"),
            ("DialBridged", "true"),
        ]);
        let next = self
            .callback(action, params, "dial action: completed")
            .await;
        if let Some(next) = next
            && !matches!(
                twiml::first_verb(&next),
                Ok(Verb::Hangup) | Ok(Verb::Nothing)
            )
        {
            self.error(format!(
                "expected <Hangup/> after a completed call, got {next}"
            ));
        }
        self.end_call().await;
    }

    /// The agent's phone runs the confirm `url` and the agent presses 1; whether
    /// switchboard then connected the call (an empty answer, not `<Hangup/>`).
    async fn press_1(&mut self, url: &str, leg_sid: &str) -> bool {
        let prompt = self
            .post(url, &self.leg(leg_sid, "in-progress"), "confirm prompt")
            .await;
        let Some(action) = prompt.as_deref().and_then(twiml::gather_action) else {
            self.error(format!("the confirm url answered no <Gather>: {prompt:?}"));
            return false;
        };
        let mut keys = self.leg(leg_sid, "in-progress");
        keys.push(("Digits".into(), "1".into()));
        let answer = self.post(&action, &keys, "agent pressed 1").await;
        matches!(
            answer.as_deref().map(twiml::first_verb),
            Some(Ok(Verb::Nothing))
        )
    }

    /// A picked-up leg that hung up without the agent taking the call: Twilio
    /// reports it completed, and the Dial action completed too; the caller's
    /// next step is switchboard's answer.
    async fn leg_ended(
        &mut self,
        callback: &Option<String>,
        action: &str,
        leg_sid: &str,
    ) -> Option<String> {
        if let Some(cb) = callback {
            self.callback(cb, self.leg(leg_sid, "completed"), "agent leg hung up")
                .await;
        }
        let params = self.params(&[
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "completed"),
            ("DialCallSid", leg_sid),
        ]);
        let next = self
            .callback(action, params, "dial action: leg hung up unconfirmed")
            .await;
        if next.is_none() {
            self.result.outcome = CallOutcome::LostAction;
            self.end_call().await;
        }
        next
    }

    /// One hold round: the music plays (`--hold-ms`), then the caller either
    /// hangs up (`--wait-hangup`), presses a key (`--wait-key`, when the round
    /// gathers keys) or stays, and Twilio fetches the next document. A caller
    /// who wants a callback presses its key halfway through the first round
    /// that offers one, once the offer has been spoken.
    async fn hold_round(
        &mut self,
        url: &str,
        gather: Option<twiml::Gather>,
        offered: bool,
    ) -> Option<String> {
        self.result.hold_rounds += 1;
        let args = &self.shared.args;
        let callback_action = gather
            .as_ref()
            .and_then(|g| g.pressed(args.callback_key))
            .filter(|_| offered && self.wants_callback && self.callbacks.is_none())
            .map(str::to_owned);
        let hold_ms = match callback_action {
            Some(_) => args.hold_ms / 2,
            None => args.hold_ms,
        };
        // A REST redirect interrupts the round: Twilio fetches the new URL now.
        let hold = tokio::time::sleep(Duration::from_millis(hold_ms));
        let redirected = match self.redirected.as_mut() {
            Some(rx) => tokio::select! {
                () = hold => None,
                url = rx.recv() => url,
            },
            None => {
                hold.await;
                None
            }
        };
        if let Some(new_url) = redirected {
            self.result.rest_redirects += 1;
            let params = self.params(&[("CallStatus", "in-progress")]);
            let next = self.post(&new_url, &params, "REST redirect").await;
            if next.is_none() {
                self.end_call().await;
            }
            return next;
        }
        let args = &self.shared.args;
        let (hangup, key) = (
            args.wait_hangup.clamp(0.0, 1.0),
            args.wait_key.clamp(0.0, 1.0),
        );
        if self.rng.random_bool(hangup) {
            self.result.outcome = CallOutcome::AbandonedWaiting;
            self.end_call().await;
            return None;
        }
        let mut params = self.params(&[("CallStatus", "in-progress")]);
        // A caller who wants a callback takes the first offer of one.
        if let Some(action) = callback_action {
            params.push(("Digits".into(), args.callback_key.to_string()));
            let next = self
                .post(&action, &params, "caller asked for a callback")
                .await;
            if next.is_none() {
                self.end_call().await;
            }
            return next;
        }
        let digit = args.wait_digit;
        let pressed = gather.as_ref().filter(|_| self.rng.random_bool(key));
        let (target, what) = match pressed.and_then(|g| g.pressed(digit)) {
            Some(action) => {
                params.push(("Digits".into(), digit.to_string()));
                (action.to_owned(), "caller pressed a key")
            }
            // No key, or the finish key: the round runs on to its <Redirect>.
            None => (url.to_owned(), "wait fetch"),
        };
        let next = self.post(&target, &params, what).await;
        if next.is_none() {
            self.end_call().await;
        }
        next
    }

    /// The number prompt after the callback key: the caller confirms its own
    /// number (1), and from then waits for its calls (registered first: an
    /// agent may be free at once).
    async fn confirm_callback_number(&mut self, action: &str) -> Option<String> {
        let calls = self.shared.placements.open(&self.sid);
        let mut params = self.params(&[("CallStatus", "in-progress")]);
        params.push(("Digits".into(), "1".into()));
        let next = self
            .post(action, &params, "caller confirmed its number")
            .await;
        if next.as_deref().is_some_and(|b| b.contains("call you back")) {
            self.result.callback_requested = true;
            self.callbacks = Some(calls);
        } else {
            self.shared.placements.close(&self.sid);
        }
        if next.is_none() {
            self.end_call().await;
        }
        next
    }

    /// A caller who asked to be called back, its own call over, waits for
    /// each try's call (`--callback-wait-ms` at most) and plays the customer;
    /// the TwiML after it pressed 1 (its agent's `<Dial>`), or `None` when no
    /// try connected it.
    async fn await_callback(&mut self) -> Option<String> {
        let wait = Duration::from_millis(self.shared.args.callback_wait_ms);
        loop {
            let calls = self.callbacks.as_mut()?;
            let Ok(Some(placed)) = tokio::time::timeout(wait, calls.recv()).await else {
                self.shared.placements.close(&self.sid);
                self.callbacks = None;
                self.result.outcome = CallOutcome::CallbackNotConnected;
                self.result.ended_at = self.shared.started.elapsed();
                return None;
            };
            self.result.callback_tries += 1;
            if placed.to != self.from {
                self.result.violations.push(format!(
                    "{}'s callback called {}, not the number it confirmed ({})",
                    self.sid, placed.to, self.from
                ));
            }
            if let Some(next) = self.callback_try(&placed).await {
                return Some(next);
            }
        }
    }

    /// The parameters of Twilio's requests about the outbound call `sid`.
    fn outbound(&self, sid: &str, status: &str) -> Vec<(String, String)> {
        let mut p = self.params(&[("CallStatus", status), ("Direction", "outbound-api")]);
        for (k, v) in &mut p {
            match k.as_str() {
                "CallSid" => *v = sid.to_owned(),
                "From" => *v = self.to.clone(),
                "To" => *v = self.from.clone(),
                _ => {}
            }
        }
        p
    }

    /// One try: the phone rings (`--callback-ring-ms`), then the customer
    /// answers and presses 1, does not answer, or its voicemail picks up.
    async fn callback_try(&mut self, placed: &super::rest::Placed) -> Option<String> {
        let (out, cb) = (placed.call_sid.as_str(), placed.status_callback.as_str());
        let first = self.sid.clone();
        for status in ["initiated", "ringing"] {
            self.callback(cb, self.outbound(out, status), "callback's call status")
                .await;
        }
        tokio::time::sleep(Duration::from_millis(self.shared.args.callback_ring_ms)).await;
        let a = &self.shared.args;
        let weights = [
            (Customer::Answers, a.callback_answer),
            (Customer::NoAnswer, a.callback_no_answer),
            (Customer::Voicemail, a.callback_voicemail),
        ];
        let customer = weighted(&mut self.rng, &weights).unwrap_or(Customer::Answers);
        let final_status = match customer {
            Customer::NoAnswer => "no-answer",
            _ => {
                let mut params = self.outbound(out, "in-progress");
                let machine = customer == Customer::Voicemail;
                if placed.machine_detection {
                    let by = if machine { "machine_start" } else { "human" };
                    params.push(("AnsweredBy".into(), by.into()));
                }
                let prompt = self.post(&placed.url, &params, "callback answered").await;
                match prompt.as_deref().and_then(twiml::gather_action) {
                    // A person presses 1: the agent's <Dial>.
                    Some(action) if !machine => {
                        let mut keys = self.outbound(out, "in-progress");
                        keys.push(("Digits".into(), "1".into()));
                        let next = self.post(&action, &keys, "customer pressed 1").await;
                        if let Some(next) = next
                            && matches!(twiml::first_verb(&next), Ok(Verb::Dial(_)))
                        {
                            self.result.callback_connected = true;
                            self.callbacks = None;
                            self.shared.placements.close(&first);
                            self.callback_of = Some(first);
                            self.sid = out.to_owned();
                            self.status_url = cb.to_owned();
                            return Some(next);
                        }
                        "completed"
                    }
                    // A machine hears the prompt and presses nothing, or was
                    // told apart and hung up on.
                    _ => "completed",
                }
            }
        };
        self.callback(
            cb,
            self.outbound(out, final_status),
            "callback's call ended",
        )
        .await;
        self.shared.placements.over(&first, out);
        None
    }

    /// How long an answered call lasts: `--talk-ms`, or with `--talk-sigma`
    /// a log-normal time of that median.
    fn talk_time(&mut self) -> Duration {
        let args = &self.shared.args;
        let median = Duration::from_millis(args.talk_ms);
        match rand_distr::LogNormal::new(0.0, args.talk_sigma) {
            Ok(spread) if args.talk_sigma > 0.0 => {
                median.mul_f64(rand::RngExt::sample(&mut self.rng, spread))
            }
            _ => median,
        }
    }

    fn draw(&mut self) -> Play {
        let a = &self.shared.args;
        let weights = [
            (Play::Answer, a.answer),
            (Play::NoAnswer, a.no_answer),
            (Play::Busy, a.busy),
            (Play::Hangup, a.hangup),
            (Play::Voicemail, a.agent_voicemail),
        ];
        weighted(&mut self.rng, &weights).unwrap_or(Play::Answer)
    }

    /// The number's status callback: the caller's call is over.
    async fn end_call(&mut self) {
        self.result.ended_at = self.shared.started.elapsed();
        let params = self.params(&[("CallStatus", "completed"), ("CallDuration", "1")]);
        // With the connection overrides README asks the number's status
        // callback to carry, so a 503 is sent again.
        let url = self.status_url.clone();
        self.callback(&url, params, "call completed").await;
        if let Some(first) = &self.callback_of {
            self.shared.placements.over(first, &self.sid);
        }
    }

    /// A callback Twilio might lose or send twice.
    async fn callback(
        &mut self,
        url: &str,
        params: Vec<(String, String)>,
        what: &str,
    ) -> Option<String> {
        let args = &self.shared.args;
        if self.rng.random_bool(args.lost.clamp(0.0, 1.0)) {
            self.trace(&format!("{what}: LOST {}", path_of(url)));
            return None;
        }
        let answer = self.post(url, &params, what).await;
        if self.rng.random_bool(args.duplicate.clamp(0.0, 1.0)) {
            if self.rng.random_bool(0.5) {
                // The answer acted on is the first one: so are its times.
                let timing = (self.last_sent, self.last_received);
                self.post(url, &params, "duplicate").await;
                (self.last_sent, self.last_received) = timing;
            } else {
                self.replays.push((url.to_owned(), params));
            }
        }
        answer
    }

    /// Posts a signed webhook to the next server in rotation, as a load balancer
    /// would; `None` (and an error) unless it answers 200. A server that cannot
    /// be reached, or drops the connection before answering (killed,
    /// restarting), gets the request sent to the next one, once per server, as
    /// a load balancer retries (and as Twilio does with connection overrides).
    async fn post(&mut self, url: &str, params: &[(String, String)], what: &str) -> Option<String> {
        let urls = &self.shared.args.urls;
        let body = serde_urlencoded::to_string(params).unwrap_or_default();
        let first_sent = self.shared.started.elapsed();
        let started = Instant::now();
        let first = self.shared.next_url.fetch_add(1, Ordering::Relaxed);
        let mut tries = 0;
        // Twilio's connection overrides on the URL: this many more tries when
        // the answer is a 5xx.
        let mut retries_on_5xx = retries_on_5xx(url);
        let mut backoff = Duration::from_millis(250);
        let result = loop {
            let base = urls[(first + tries) % urls.len()].trim_end_matches('/');
            tries += 1;
            let target = format!("{base}{}", path_of(url));
            let sig = signature::compute(&self.shared.args.auth_token, &target, params);
            let sent = self
                .shared
                .http
                .post(&target)
                .header("X-Twilio-Signature", sig)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let status = response.status();
                    match response.text().await {
                        Ok(text) if status.is_success() => break Ok(text),
                        Ok(_) if status.is_server_error() && retries_on_5xx > 0 => {
                            retries_on_5xx -= 1;
                            self.result.retried += 1;
                            self.trace(&format!(
                                "{what}: POST {target} answered {status}: sent again, as Twilio's connection overrides ask"
                            ));
                            // Twilio's spacing is not documented: doubling
                            // from 250 ms spreads 5 tries over about 8 s.
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                        }
                        Ok(text) => {
                            break Err(format!("{what}: POST {target} answered {status}: {text}"));
                        }
                        Err(e) if tries < urls.len() => {
                            self.note_retry(what, &target, &e);
                        }
                        Err(e) => break Err(format!("{what}: POST {target}: {e}")),
                    }
                }
                Err(e) if (e.is_connect() || e.is_request()) && tries < urls.len() => {
                    self.note_retry(what, &target, &e);
                }
                Err(e) => break Err(format!("{what}: POST {target} failed: {e}")),
            }
        };
        self.result.latencies.push(started.elapsed());
        match result {
            Ok(body) => {
                self.last_sent = first_sent;
                self.last_received = self.shared.started.elapsed();
                self.trace(&format!(
                    "{what}: POST {} -> 200 {}",
                    path_of(url),
                    summarize(&body)
                ));
                Some(body)
            }
            Err(e) => {
                self.error(e);
                None
            }
        }
    }

    fn note_retry(&mut self, what: &str, target: &str, error: &reqwest::Error) {
        self.result.retried += 1;
        self.trace(&format!(
            "{what}: POST {target} got no answer ({error}): sent to the next server"
        ));
    }

    fn error(&mut self, message: String) {
        self.trace(&format!("ERROR {message}"));
        self.result.errors.push(message);
        self.result.outcome = CallOutcome::Error;
    }

    fn trace(&self, line: &str) {
        if self.shared.trace {
            let at = self.shared.started.elapsed().as_millis();
            println!("[call {} +{at} ms] {line}", self.n);
        }
    }
}

/// What a callback's call meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Customer {
    Answers,
    NoAnswer,
    Voicemail,
}

/// One of `choices` drawn by weight (negative weights count as 0); `None`
/// when every weight is 0.
fn weighted<T: Copy>(rng: &mut StdRng, choices: &[(T, f64)]) -> Option<T> {
    let total: f64 = choices.iter().map(|(_, w)| w.max(0.0)).sum();
    if total <= 0.0 {
        return None;
    }
    let mut r = rng.random::<f64>() * total;
    for &(choice, w) in choices {
        if r < w.max(0.0) {
            return Some(choice);
        }
        r -= w.max(0.0);
    }
    choices.last().map(|&(c, _)| c)
}

/// The path and query of a URL (relative URLs pass through).
fn path_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

/// How many times Twilio sends a request again after a 5xx answer, by the
/// URL's connection overrides (`#rc=5&rp=5xx,…`): none without them, or with
/// overrides Twilio does not document.
fn retries_on_5xx(url: &str) -> u32 {
    url.split_once('#')
        .and_then(|(_, fragment)| fragment.parse::<ConnectionOverrides>().ok())
        .map_or(0, |o| o.retries_on_5xx())
}

/// The value of `name` in a URL's query, if it has one.
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// One line describing a TwiML answer, for traces.
fn summarize(body: &str) -> String {
    match twiml::first_verb(body) {
        Ok(Verb::Dial(d)) if d.status_callback.is_some() => {
            format!("<Dial> agent {} {}", d.noun, d.target)
        }
        Ok(Verb::Dial(d)) => format!("<Dial> forward {} {}", d.noun, d.target),
        Ok(Verb::Record { .. }) => "<Say> + <Record> (voicemail)".into(),
        Ok(Verb::Hangup) => "<Hangup/>".into(),
        Ok(Verb::Redirect { .. }) => "hold round (<Redirect> to the wait URL)".into(),
        Ok(Verb::Nothing) => "<Response/>".into(),
        Err(_) => body.chars().take(80).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_overrides_say_how_often_a_5xx_is_sent_again() {
        assert_eq!(retries_on_5xx("https://h/a?x=1#rc=5&rp=5xx,ct,rt"), 5);
        assert_eq!(retries_on_5xx("https://h/a#rc=4&rp=all"), 4);
        assert_eq!(
            retries_on_5xx("https://h/a#rc=9&rp=all"),
            0,
            "not an override"
        );
        assert_eq!(retries_on_5xx("https://h/a#rc=3&rp=ct,rt"), 0);
        assert_eq!(retries_on_5xx("https://h/a?x=1"), 0);
    }
}
