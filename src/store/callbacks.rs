//! Callbacks in Redis (lua/lib/callbacks.lua): a waiting caller's request to be
//! called back, each try's claim, Twilio's answers and the customer's, the
//! retries, the API's list and cancel. Every move is one token-fenced script;
//! each reply is decoded into an enum, an unknown one is an error.

use serde::Serialize;

use super::calls::{RouteOutcome, decode_route, new_token};
use super::requests::{
    CALL_TAIL_MS, CallbackReportRequest, CallbackRequest, CancelCallbackRequest,
    ClaimCallbackRequest, DueCallbacksRequest,
};
use super::{Store, StoreError, scripts, texts};

/// What became of a caller's request to be called back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// A callback now (or already), at this place in line.
    Callback { position: u32 },
    /// No longer waiting: its decision (an agent reserved meanwhile, ended).
    Not(RouteOutcome),
}

/// A waiting caller's request to be called back (`request_callback.lua`'s
/// fields beside the CallSid).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NewCallback<'a> {
    /// The customer's number, and the number that calls back (the one the
    /// caller called).
    pub to: &'a str,
    pub from: &'a str,
    /// 1 + the queue's `callback_retries`, `callback_retry_secs` in ms.
    pub max_tries: u32,
    pub retry_ms: u64,
    /// As a wait fetch's: the longest a REST redirect may take, and the
    /// queue's round (the heartbeat of a caller who goes back to its place).
    pub redirect_ms: u64,
    pub loop_ms: u64,
}

/// A try claimed for dialling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDial {
    /// The try's token (its agent's reservation), which every report names.
    pub token: String,
    /// The customer's number, and the number that calls back.
    pub to: String,
    pub from: String,
    /// The call's Twilio account ('' when its webhook had none).
    pub account: String,
    pub queue: String,
    pub attempt: u32,
    /// The reserved agent's contact (`client:…`, a number, `sip:…`).
    pub contact: String,
}

/// `claim_callback`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed(ClaimedDial),
    /// The pace allows no call for this long.
    Wait(std::time::Duration),
    /// Not reserved for dialling any more (claimed elsewhere, ended).
    Stale,
}

/// What Twilio answered the request to place a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialed<'a> {
    /// The outbound call's CallSid.
    Placed(&'a str),
    /// Twilio asked to try later (429): the customer was not called.
    Busy,
    /// Twilio refused the request: the number cannot be called.
    Refused,
    /// Twilio refused the request for another reason (the account): the try
    /// counts, the callback is tried again.
    NotPlaced,
}

/// Where a report left the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryVerdict {
    /// Noted; the try goes on.
    Noted,
    /// The try is over; the next is scheduled.
    Retry,
    /// The try was the last (or the number cannot be called): failed.
    Failed,
    /// The first party answered: ask the customer to press 1, or (agent
    /// first) dial the customer `to` from `from`.
    Prompt {
        queue: String,
        to: String,
        from: String,
    },
    /// The outbound call was connected and is an ordinary call now; its final
    /// status ends it as the number's status callback would.
    HandedOver,
    /// About another try, or the callback ended: nothing changed.
    Stale,
}

/// What became of a customer's 1, or of the customer answering the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connected {
    /// The outbound call's decision: its agent's `<Dial>`.
    Dial(RouteOutcome),
    /// Agent first: the agent's call is the queue's answered call now.
    Bridged { fresh: bool },
    /// The agent was forced free meanwhile: the try is over (not counted),
    /// and the callback waits for its next (`Retry`) or has none (`Failed`).
    Over(TryVerdict),
    /// About another try, or the callback ended.
    Stale,
}

/// What became of a request to cancel a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    Cancelled,
    /// No live callback of that queue has that CallSid.
    NotFound,
    /// A try is being connected (the customer hears the prompt, or the agent
    /// is on the phone): it ends on its own within a minute.
    Connecting,
}

/// A live callback, as the API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallbackDoc {
    /// The waiting caller's CallSid, which names the callback.
    pub call_sid: String,
    /// The number it calls back.
    pub to: String,
    /// When the caller came (ms): its place in line.
    pub since_ms: i64,
    /// `waiting` (in line), `reserved` (an agent is reserved, the call is
    /// about to be placed), `dialing`, `answered` (the customer hears the
    /// prompt), `retry` (waiting for its next try).
    pub status: &'static str,
    /// Tries made, and at most.
    pub tries: u32,
    pub max_tries: u32,
    /// When the next try may start (ms), while `retry`.
    pub next_try_ms: Option<i64>,
}

fn verdict(script: &'static str, reply: &redis::Value) -> Result<TryVerdict, StoreError> {
    let items = texts(script, reply)?;
    match items.first().map(String::as_str) {
        Some("placed" | "noted") => Ok(TryVerdict::Noted),
        Some("retry") => Ok(TryVerdict::Retry),
        Some("failed") => Ok(TryVerdict::Failed),
        Some("handed_over") => Ok(TryVerdict::HandedOver),
        Some("stale") => Ok(TryVerdict::Stale),
        Some("prompt") => match items.as_slice() {
            [_, queue, to, from] => Ok(TryVerdict::Prompt {
                queue: queue.clone(),
                to: to.clone(),
                from: from.clone(),
            }),
            _ => Err(StoreError::reply(script, format!("{items:?}"))),
        },
        _ => Err(StoreError::reply(script, format!("{items:?}"))),
    }
}

impl Store {
    /// The waiting caller `call_sid` asked to be called back.
    pub async fn request_callback(
        &self,
        call_sid: &str,
        callback: NewCallback<'_>,
    ) -> Result<Requested, StoreError> {
        let name = scripts::REQUEST_CALLBACK.name;
        let request = CallbackRequest {
            sid: call_sid,
            callback,
        };
        let reply = self
            .invoke(
                &scripts::REQUEST_CALLBACK,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        let items = texts(name, &reply)?;
        match items.as_slice() {
            [tag, position] if tag == "requested" => Ok(Requested::Callback {
                position: position
                    .parse()
                    .map_err(|_| StoreError::reply(name, format!("{items:?}")))?,
            }),
            _ => decode_route(name, &items).map(Requested::Not),
        }
    }

    /// Claims the callback `call_sid` for dialling, at `cps` calls a second
    /// across every replica; `dial_ms`: the longest a placed try may take.
    pub async fn claim_callback(
        &self,
        call_sid: &str,
        cps: f64,
        dial_ms: u64,
    ) -> Result<Claim, StoreError> {
        let name = scripts::CLAIM_CALLBACK.name;
        let request = ClaimCallbackRequest {
            sid: call_sid,
            cps,
            dial_ms,
            spare_token: new_token(),
        };
        let reply = self
            .invoke(
                &scripts::CLAIM_CALLBACK,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        let items = texts(name, &reply)?;
        let bad = || StoreError::reply(name, format!("{items:?}"));
        match items.as_slice() {
            [tag, token, to, from, account, queue, attempt, contact] if tag == "claimed" => {
                Ok(Claim::Claimed(ClaimedDial {
                    token: token.clone(),
                    to: to.clone(),
                    from: from.clone(),
                    account: account.clone(),
                    queue: queue.clone(),
                    attempt: attempt.parse().map_err(|_| bad())?,
                    contact: contact.clone(),
                }))
            }
            [tag, ms] if tag == "wait" => Ok(Claim::Wait(std::time::Duration::from_millis(
                ms.parse().map_err(|_| bad())?,
            ))),
            [tag] if tag == "stale" => Ok(Claim::Stale),
            _ => Err(bad()),
        }
    }

    fn report<'a>(&self, call_sid: &'a str, token: &'a str) -> CallbackReportRequest<'a> {
        CallbackReportRequest {
            sid: call_sid,
            token,
            call_sid: "",
            outcome: None,
            machine: false,
            status: None,
            agent_first: false,
            bridged: false,
            call_ttl_ms: 0,
            tail_ms: CALL_TAIL_MS,
            spare_token: new_token(),
        }
    }

    /// What Twilio answered the request to place try `token` of `call_sid`.
    pub async fn callback_dialed(
        &self,
        call_sid: &str,
        token: &str,
        dialed: Dialed<'_>,
    ) -> Result<TryVerdict, StoreError> {
        let (outcome, placed) = match dialed {
            Dialed::Placed(sid) => ("placed", sid),
            Dialed::Busy => ("busy", ""),
            Dialed::Refused => ("refused", ""),
            Dialed::NotPlaced => ("not_placed", ""),
        };
        let request = CallbackReportRequest {
            call_sid: placed,
            outcome: Some(outcome),
            ..self.report(call_sid, token)
        };
        let reply = self
            .invoke(
                &scripts::CALLBACK_DIALED,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        verdict(scripts::CALLBACK_DIALED.name, &reply)
    }

    /// The customer of try `token` answered on `outbound` (`machine`: a
    /// machine or fax did, by answering machine detection).
    pub async fn callback_answer(
        &self,
        call_sid: &str,
        token: &str,
        outbound: &str,
        machine: bool,
    ) -> Result<TryVerdict, StoreError> {
        let request = CallbackReportRequest {
            call_sid: outbound,
            machine,
            ..self.report(call_sid, token)
        };
        let reply = self
            .invoke(
                &scripts::CALLBACK_ANSWER,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        verdict(scripts::CALLBACK_ANSWER.name, &reply)
    }

    /// The customer pressed 1, or (`bridged`, agent first) answered the
    /// agent who called: `outbound` takes the reservation over (its hash lives
    /// `call_ttl_ms`).
    pub async fn callback_connect(
        &self,
        call_sid: &str,
        token: &str,
        outbound: &str,
        call_ttl_ms: u64,
        bridged: bool,
    ) -> Result<Connected, StoreError> {
        let name = scripts::CALLBACK_CONNECT.name;
        let request = CallbackReportRequest {
            call_sid: outbound,
            call_ttl_ms,
            bridged,
            ..self.report(call_sid, token)
        };
        let reply = self
            .invoke(
                &scripts::CALLBACK_CONNECT,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        let items = texts(name, &reply)?;
        match items.as_slice() {
            [tag] if tag == "stale" => Ok(Connected::Stale),
            [tag] if tag == "retry" => Ok(Connected::Over(TryVerdict::Retry)),
            [tag] if tag == "failed" => Ok(Connected::Over(TryVerdict::Failed)),
            [tag, fresh] if tag == "bridged" => Ok(Connected::Bridged {
                fresh: fresh == "1",
            }),
            _ => decode_route(name, &items).map(Connected::Dial),
        }
    }

    /// The status callback of try `token`'s outbound call (`agent_first`:
    /// it rings the agent first).
    pub async fn callback_status(
        &self,
        call_sid: &str,
        token: &str,
        outbound: &str,
        status: &str,
        agent_first: bool,
    ) -> Result<TryVerdict, StoreError> {
        let request = CallbackReportRequest {
            call_sid: outbound,
            status: Some(status),
            agent_first,
            ..self.report(call_sid, token)
        };
        let reply = self
            .invoke(
                &scripts::CALLBACK_STATUS,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        verdict(scripts::CALLBACK_STATUS.name, &reply)
    }

    /// Puts the callbacks whose next try is due back at their place in line,
    /// `batch` at a time; how many went back.
    pub async fn due_callbacks(&self, batch: usize) -> Result<usize, StoreError> {
        let name = scripts::DUE_CALLBACKS.name;
        let reply = self
            .invoke(
                &scripts::DUE_CALLBACKS,
                self.keys().callbacks_retry(),
                &DueCallbacksRequest { batch },
            )
            .await?;
        match reply {
            redis::Value::Int(n) => Ok(usize::try_from(n).unwrap_or(0)),
            other => Err(StoreError::reply(name, format!("{other:?}"))),
        }
    }

    /// Cancels the live callback `call_sid` of `queue`.
    pub async fn cancel_callback(
        &self,
        call_sid: &str,
        queue: &str,
        by: &super::Actor,
    ) -> Result<Cancelled, StoreError> {
        let name = scripts::CANCEL_CALLBACK.name;
        let request = CancelCallbackRequest {
            sid: call_sid,
            queue,
            by: by.label(),
            spare_token: new_token(),
        };
        let reply = self
            .invoke(
                &scripts::CANCEL_CALLBACK,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        match reply {
            redis::Value::Int(1) => Ok(Cancelled::Cancelled),
            redis::Value::Int(0) => Ok(Cancelled::NotFound),
            redis::Value::Int(2) => Ok(Cancelled::Connecting),
            other => Err(StoreError::reply(name, format!("{other:?}"))),
        }
    }

    /// Up to `max` callbacks given an agent, to dial (CallSid, queue), each
    /// taken by one replica only, oldest first.
    pub async fn drain_callback_dials(
        &self,
        max: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let raw = self
            .pop_oldest("callback_dials", self.keys().callback_dials(), max)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|e| {
                let mut parts = e.splitn(3, '|');
                Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
            })
            .collect())
    }

    /// The live callbacks of `queue` (at most `limit`), oldest first.
    pub async fn callbacks(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<CallbackDoc>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.smembers(self.keys().callbacks(queue));
        let (sids,): (Vec<String>,) = self.query("callbacks", pipe).await?;
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for sid in &sids {
            pipe.cmd("HMGET").arg(self.keys().call(sid)).arg(&[
                "status",
                "callback_to",
                "since",
                "callback_tries",
                "callback_max_tries",
                "callback_next_at",
            ]);
        }
        type Fields = (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<u32>,
            Option<u32>,
            Option<i64>,
        );
        let fields: Vec<Fields> = self.query("callbacks", pipe).await?;
        let mut docs: Vec<CallbackDoc> = sids
            .into_iter()
            .zip(fields)
            .filter_map(|(call_sid, (status, to, since, tries, max, next))| {
                let status = match status.as_deref()? {
                    "callback" => "waiting",
                    "cb_reserved" => "reserved",
                    "cb_dialing" => "dialing",
                    "cb_answered" => "answered",
                    "cb_retry" => "retry",
                    _ => return None,
                };
                Some(CallbackDoc {
                    call_sid,
                    to: to.unwrap_or_default(),
                    since_ms: since.unwrap_or(0),
                    status,
                    tries: tries.unwrap_or(0),
                    max_tries: max.unwrap_or(1),
                    next_try_ms: next.filter(|_| status == "retry"),
                })
            })
            .collect();
        docs.sort_by(|a, b| {
            a.since_ms
                .cmp(&b.since_ms)
                .then(a.call_sid.cmp(&b.call_sid))
        });
        docs.truncate(limit);
        Ok(docs)
    }
}
