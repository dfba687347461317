//! Callbacks (docs/callbacks.md): a waiting caller asks to be called back and
//! keeps its place; when an agent is reserved for it, a replica places the
//! call to the customer through Twilio's REST API at the account's pace, and
//! the customer who answers and presses 1 is connected to that agent. Every
//! move is a token-fenced script (src/store/callbacks.rs); this module is the
//! HTTP side of it: placing the call, and reading what Twilio reports.

use std::time::Duration;

use super::{Decision, Engine};
use crate::config::hold::Hold;
use crate::metrics;
use crate::store::StoreError;
use crate::store::callbacks::{
    Cancelled, Claim, ClaimedDial, Connected, Dialed, NewCallback, Requested, TryVerdict,
};
use crate::twilio::rest::{NewCall, PlaceOutcome};

/// How long the customer's phone rings before Twilio reports `no-answer`.
pub const CUSTOMER_RING_SECS: u32 = 30;
/// From the call placed to the customer's 1: Twilio may hold a call a few
/// seconds past its `Timeout`, then the prompt and its `<Gather>` (8 s), and
/// slack for the callbacks. After it, a try nobody reported is over.
const DIAL_MS: u64 = (CUSTOMER_RING_SECS as u64 + 10 + 25) * 1000;
/// Callbacks whose next try is due, moved back into line per script.
const DUE_BATCH: usize = 200;

/// The webhook paths of a callback's outbound call.
pub mod paths {
    /// The `<Gather>` action of the number a waiting caller keys in.
    pub const NUMBER: &str = "/twilio/voice/callback/number";
    /// The outbound call's `Url`: the customer answered.
    pub const ANSWER: &str = "/twilio/voice/callback/answer";
    /// The customer's key.
    pub const CONNECT: &str = "/twilio/voice/callback/connect";
    /// The outbound call's `StatusCallback`.
    pub const STATUS: &str = "/twilio/voice/callback/status";
    /// Agent first: the customer's leg's `statusCallback` (its answer).
    pub const CUSTOMER: &str = "/twilio/voice/callback/customer";
    /// Agent first: the `<Dial>` action of the customer's leg.
    pub const DIALED: &str = "/twilio/voice/callback/dialed";
}

/// The heartbeat of a caller asked for the number to call back: no wait fetch
/// comes while it listens and keys (twice, when the first number keyed was
/// not one, with pauses of up to 6 s between keys), so its place is kept this
/// long from its key rather than a round.
pub(crate) const KEYING_MS: u64 = 180_000;

/// The query of a try's URLs: the callback, its try's token, its queue and,
/// for an agent-first try, `first=agent` (how it was placed, whatever the
/// routing file says by the time Twilio calls back), signed with the rest of
/// the URL.
pub(crate) fn fenced_query(call: &str, token: &str, queue: &str, agent_first: bool) -> String {
    let first = if agent_first { "&first=agent" } else { "" };
    format!("call={call}&token={token}&queue={queue}{first}")
}

/// What became of a customer's 1.
#[derive(Debug)]
pub enum Pressed {
    /// The outbound call rings its agent.
    Dial(Decision),
    /// The agent was forced free meanwhile: the customer is called again.
    Later,
    /// About another try, or the callback is over.
    Over,
}

/// Why a request to be called back was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// The queue offers no callbacks (no `callback_key`).
    NotOffered,
    /// No REST credentials or public URL: nobody could place the call.
    CannotDial,
}

impl Engine {
    /// `queue`'s hold settings if it offers callbacks, and this replica can
    /// place them.
    pub fn callbacks_of(&self, queue: &str) -> Result<&Hold, CallbackRefusal> {
        let hold = self
            .table
            .queue(queue)
            .and_then(|q| q.hold.as_ref())
            .filter(|h| h.callback_key.is_some())
            .ok_or(CallbackRefusal::NotOffered)?;
        if self.connector.is_none() {
            return Err(CallbackRefusal::CannotDial);
        }
        Ok(hold)
    }

    /// Whether some queue offers callbacks and this replica can dial them.
    pub fn dials_callbacks(&self) -> bool {
        self.connector.is_some()
            && self
                .table
                .queues()
                .iter()
                .any(|q| q.hold.as_ref().is_some_and(|h| h.callback_key.is_some()))
    }

    /// The waiting caller `call_sid` of `queue` confirmed `to` to be called
    /// back from `from` (the number it called).
    pub async fn request_callback(
        &self,
        call_sid: &str,
        queue: &str,
        to: &str,
        from: &str,
    ) -> Result<Option<Requested>, StoreError> {
        let Ok(hold) = self.callbacks_of(queue) else {
            return Ok(None);
        };
        let callback = NewCallback {
            to,
            from,
            max_tries: 1 + hold.callback_retries,
            retry_ms: u64::from(hold.callback_retry_secs) * 1000,
            redirect_ms: self.redirect_ms(),
            loop_ms: hold.round_ms(),
        };
        let requested = self.store.request_callback(call_sid, callback).await?;
        if matches!(requested, Requested::Callback { .. }) {
            metrics::callback(queue, "requested");
            tracing::info!(
                call_sid,
                queue,
                "callback requested: it keeps its place in line"
            );
        }
        Ok(Some(requested))
    }

    /// Places the callbacks just given an agent (`callback_dials`), each at
    /// the account's pace. Without REST the list is only emptied (their
    /// reservations run out and they go back to their places).
    pub async fn dial_callbacks(&self) -> Result<usize, StoreError> {
        let mut placed = 0;
        loop {
            let batch = self.store.drain_callback_dials(64).await?;
            if self.connector.is_none() {
                return Ok(0);
            }
            let full = batch.len() == 64;
            let mut dials = tokio::task::JoinSet::new();
            for (sid, queue) in batch {
                let engine = self.clone();
                dials.spawn(async move { engine.dial_one(&sid, &queue).await });
            }
            while let Some(done) = dials.join_next().await {
                match done {
                    Ok(Ok(true)) => placed += 1,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot place a callback now: its reservation runs out and it is tried again")
                    }
                    _ => {}
                }
            }
            if !full {
                return Ok(placed);
            }
        }
    }

    /// Claims one callback (waiting for the pace), places its call, and says
    /// what Twilio answered.
    async fn dial_one(&self, sid: &str, queue: &str) -> Result<bool, StoreError> {
        let Some(connector) = &self.connector else {
            return Ok(false);
        };
        let claimed = loop {
            match self.store.claim_callback(sid, self.cps, DIAL_MS).await? {
                Claim::Claimed(claimed) => break claimed,
                Claim::Wait(pause) => tokio::time::sleep(pause.min(Duration::from_secs(5))).await,
                Claim::Stale => return Ok(false),
            }
        };
        let (client, public_url) = connector.as_ref();
        let hold = self.table.queue(queue).and_then(|q| q.hold.as_ref());
        let agent_first = hold.is_some_and(|h| h.callback_agent_first);
        // Agent first: the agent's phone rings, from the number that calls
        // back; a known phone needs no machine detection.
        let machine_detection = !agent_first && hold.is_some_and(|h| h.callback_machine_detection);
        // A contact as stored is what Twilio's `To` takes: a number,
        // `client:…` or `sip:…`.
        let agent_to = agent_first.then(|| claimed.contact.clone());
        let fenced = fenced_query(sid, &claimed.token, queue, agent_first);
        let url = format!("{public_url}{}?{fenced}", paths::ANSWER);
        let status_callback = format!(
            "{public_url}{}?{fenced}#{}",
            paths::STATUS,
            crate::twilio::twiml::CONNECTION_OVERRIDES
        );
        let call = NewCall {
            to: agent_to.as_deref().unwrap_or(&claimed.to),
            from: &claimed.from,
            url: &url,
            status_callback: &status_callback,
            timeout_secs: CUSTOMER_RING_SECS,
            machine_detection,
        };
        let outcome = client.place_call(&claimed.account, &call).await;
        self.dialed(sid, &claimed, outcome).await
    }

    async fn dialed(
        &self,
        sid: &str,
        claimed: &ClaimedDial,
        outcome: PlaceOutcome,
    ) -> Result<bool, StoreError> {
        let (queue, attempt) = (claimed.queue.as_str(), claimed.attempt);
        let token = claimed.token.as_str();
        let verdict = match &outcome {
            PlaceOutcome::Placed(outbound) => {
                metrics::callback(queue, "dialled");
                tracing::info!(call_sid = sid, outbound, attempt, "callback placed");
                self.store
                    .callback_dialed(sid, token, Dialed::Placed(outbound))
                    .await?
            }
            PlaceOutcome::Busy(e) => {
                tracing::warn!(call_sid = sid, error = %e, "Twilio asked for a later try: the callback waits a little, the try not counted");
                self.store.callback_dialed(sid, token, Dialed::Busy).await?
            }
            PlaceOutcome::Refused(e) => {
                tracing::warn!(call_sid = sid, error = %e, "Twilio cannot call the callback's number: it failed");
                self.store
                    .callback_dialed(sid, token, Dialed::Refused)
                    .await?
            }
            PlaceOutcome::NotPlaced(e) => {
                tracing::error!(call_sid = sid, error = %e, "Twilio refused to place a callback (check the account's credentials and the From number): the try counts, the next comes after callback_retry_secs");
                self.store
                    .callback_dialed(sid, token, Dialed::NotPlaced)
                    .await?
            }
            PlaceOutcome::Unknown(e) => {
                // Maybe placed: its status callbacks, or its deadline, tell.
                tracing::warn!(call_sid = sid, error = %e, "no answer from Twilio placing a callback: its status callbacks or its deadline settle the try");
                return Ok(false);
            }
        };
        self.count_verdict(queue, &verdict);
        Ok(matches!(outcome, PlaceOutcome::Placed(_)))
    }

    /// Counts a try that ended the callback.
    fn count_verdict(&self, queue: &str, verdict: &TryVerdict) {
        if *verdict == TryVerdict::Failed {
            metrics::callback(queue, "failed");
        }
    }

    /// The customer of try `token` answered on `outbound`; `machine`: a
    /// machine or fax did (answering machine detection).
    pub async fn callback_answered(
        &self,
        call_sid: &str,
        token: &str,
        outbound: &str,
        machine: bool,
        queue: &str,
    ) -> Result<TryVerdict, StoreError> {
        let verdict = self
            .store
            .callback_answer(call_sid, token, outbound, machine)
            .await?;
        self.count_verdict(queue, &verdict);
        Ok(verdict)
    }

    /// The customer pressed 1: the outbound call rings the reserved agent.
    pub async fn callback_connect(
        &self,
        call_sid: &str,
        token: &str,
        outbound: &str,
        queue: &str,
    ) -> Result<Pressed, StoreError> {
        let outcome = match self
            .store
            .callback_connect(call_sid, token, outbound, self.call_ttl_ms(), false)
            .await?
        {
            Connected::Dial(outcome) => outcome,
            Connected::Over(verdict) => {
                self.count_verdict(queue, &verdict);
                return Ok(match verdict {
                    TryVerdict::Retry => Pressed::Later,
                    _ => Pressed::Over,
                });
            }
            Connected::Bridged { .. } | Connected::Stale => return Ok(Pressed::Over),
        };
        let fresh = matches!(
            outcome,
            crate::store::RouteOutcome::Dial { fresh: true, .. }
        );
        if fresh {
            metrics::callback(queue, "connected");
            tracing::info!(call_sid, outbound, "callback connected: ringing its agent");
        }
        let decision = self.decide(queue, outcome, false)?;
        Ok(Pressed::Dial(self.replicated(decision).await))
    }

    /// Agent first: the customer answered the agent on `outbound`, which is
    /// the queue's answered call from now; `false` for another try's report.
    pub async fn callback_bridged(
        &self,
        call_sid: &str,
        token: &str,
        outbound: &str,
        queue: &str,
    ) -> Result<bool, StoreError> {
        let connected = self
            .store
            .callback_connect(call_sid, token, outbound, self.call_ttl_ms(), true)
            .await?;
        if let Connected::Over(verdict) = &connected {
            self.count_verdict(queue, verdict);
        }
        if connected == (Connected::Bridged { fresh: true }) {
            metrics::callback(queue, "connected");
            tracing::info!(
                call_sid,
                outbound,
                "callback connected: the customer answered its agent"
            );
        }
        Ok(matches!(connected, Connected::Bridged { .. }))
    }

    /// The status callback of try `token`'s outbound call (`agent_first`:
    /// the try rang the agent first).
    pub async fn callback_status(
        &self,
        call_sid: &str,
        token: &str,
        outbound: &str,
        status: &str,
        queue: &str,
        agent_first: bool,
    ) -> Result<(), StoreError> {
        let verdict = self
            .store
            .callback_status(call_sid, token, outbound, status, agent_first)
            .await?;
        match verdict {
            TryVerdict::HandedOver => {
                self.store.end_call(outbound).await?;
            }
            verdict => self.count_verdict(queue, &verdict),
        }
        Ok(())
    }

    /// Cancels a live callback of `queue` (the API).
    pub async fn cancel_callback(
        &self,
        call_sid: &str,
        queue: &str,
        by: &crate::store::Actor,
    ) -> Result<Cancelled, StoreError> {
        let cancelled = self.store.cancel_callback(call_sid, queue, by).await?;
        if cancelled == Cancelled::Cancelled {
            metrics::callback(queue, "cancelled");
        }
        Ok(cancelled)
    }

    /// Puts the callbacks whose next try is due back at their places (the
    /// worker, each round).
    pub async fn due_callbacks(&self) -> Result<usize, StoreError> {
        let mut moved = 0;
        loop {
            let n = self.store.due_callbacks(DUE_BATCH).await?;
            moved += n;
            if n < DUE_BATCH {
                return Ok(moved);
            }
        }
    }
}
