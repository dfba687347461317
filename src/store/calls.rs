//! Calls in Redis: reserving an agent for an incoming call (or settling on its
//! fallback) in one script, and keeping voicemail messages.

use serde::Serialize;

use super::requests::{
    CALL_TAIL_MS, ClaimConnectRequest, HoldQueueEntry, MatchRequest, RelaxRequest,
    RemoveWaitingRequest, RouteRequest, VOICEMAILS_KEPT, VoicemailRequest, WaitRequest,
};

/// What a wait fetch tells `wait.lua` (inside its `WaitRequest`).
#[derive(Debug, Clone, Serialize)]
pub struct WaitFetch {
    pub max_wait_ms: u64,
    /// The queue's longest hold round (`Hold::round_ms`: `loop_secs`, or
    /// `music_secs` when longer): the heartbeat allows it and 15 s. The name
    /// stays `loop_ms` so replicas of both versions read each other's entries.
    pub loop_ms: u64,
    /// The chain's step for a wait that ran out.
    pub step: String,
    /// The caller pressed a key that leaves the line.
    pub exit: bool,
    /// The fetch a REST redirect asked for.
    pub connect: bool,
    /// The longest a REST redirect can take (its whole budget): a claim older
    /// than this was left by a replica that died mid-redirect.
    pub redirect_ms: u64,
    pub call_ttl_ms: u64,
}

/// A REST redirect this replica may send (`claim_connect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The reservation's token, which the report of a failure names.
    pub token: String,
    /// The call's Twilio account ('' when its webhook had none).
    pub account: String,
}

/// How a claimed REST redirect ended, when it did not redirect the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectReport {
    /// It did not go through: the caller's next wait fetch connects.
    Failed,
    /// Twilio has no such call in this account (404): the agent is freed
    /// without a miss, and the caller goes back to its place in line, to be
    /// connected by its own wait fetches from then on.
    Unknown,
}

/// A caller in a queue's line, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    pub call_sid: String,
    pub from: String,
    pub since_ms: i64,
    /// 1 for the head of the line.
    pub position: u32,
    /// Its priority (a menu's or a lookup's); 0: served by arrival.
    pub priority: u8,
    /// What is left of the last estimated wait it heard; `None` before one.
    pub estimated_wait_ms: Option<u64>,
    /// A callback keeping the caller's place (docs/callbacks.md).
    pub callback: bool,
}

/// One ended wait, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitEvent {
    pub queue: String,
    /// `answered`, `abandoned`, `timeout`, `exit`, `full`, `no_agents`, `removed`.
    pub outcome: String,
    pub waited_ms: u64,
    /// The first estimated wait the caller heard, if one was made.
    pub estimate_ms: Option<u64>,
}

/// A call with steps given an agent at `step`, or (`relaxed`) a waiting call
/// moved on to it, `waited_ms` after it came; for the step metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEvent {
    pub queue: String,
    pub relaxed: bool,
    pub step: u32,
    pub waited_ms: u64,
}

use super::{Store, StoreError, scripts, texts};

/// What a call was given. `fresh` is false when the same CallSid was routed before
/// and this repeats that decision (nothing new was reserved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOutcome {
    Dial {
        agent: String,
        contact: String,
        token: String,
        queue: String,
        via: String,
        attempt: u32,
        fresh: bool,
    },
    Fallback {
        step: String,
        fresh: bool,
    },
    /// The caller waits in line: its position, and when it joined (ms).
    Waiting {
        position: u32,
        since_ms: i64,
        fresh: bool,
        /// lua/lib/forecast.lua; `None` while nobody is signed in or too little
        /// is known.
        estimated_wait_ms: Option<u64>,
    },
    /// No such call (a wait fetch for a call Redis does not know).
    Unknown,
    /// A REST redirect to this caller's `<Dial>` is on its way: a short round.
    Connecting,
    /// The caller pressed a key that leaves the line.
    Exit,
    /// The call is already over.
    Ended,
}

/// A fresh reservation token: 128 random bits, hex.
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `route`'s reply (lua/lib/calls.lua), strictly: an unknown tag or a missing
/// field is an error, never a default.
pub(super) fn decode_route(
    script: &'static str,
    items: &[String],
) -> Result<RouteOutcome, StoreError> {
    let bad = || StoreError::reply(script, format!("{items:?}"));
    let fresh = |v: &String| match v.as_str() {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(bad()),
    };
    match items {
        [tag, agent, contact, token, queue, via, attempt, f, ..] if tag == "dial" => {
            Ok(RouteOutcome::Dial {
                agent: agent.clone(),
                contact: contact.clone(),
                token: token.clone(),
                queue: queue.clone(),
                via: via.clone(),
                attempt: attempt.parse().map_err(|_| bad())?,
                fresh: fresh(f)?,
            })
        }
        [tag, step, f, ..] if tag == "fallback" => Ok(RouteOutcome::Fallback {
            step: step.clone(),
            fresh: fresh(f)?,
        }),
        [tag, position, since, f, estimate, ..] if tag == "waiting" => Ok(RouteOutcome::Waiting {
            position: position.parse().map_err(|_| bad())?,
            since_ms: since.parse().map_err(|_| bad())?,
            fresh: fresh(f)?,
            estimated_wait_ms: estimate
                .parse::<i64>()
                .map_err(|_| bad())
                .map(|e| u64::try_from(e).ok())?,
        }),
        [tag, ..] if tag == "unknown" => Ok(RouteOutcome::Unknown),
        [tag, ..] if tag == "connecting" => Ok(RouteOutcome::Connecting),
        [tag, ..] if tag == "exit" => Ok(RouteOutcome::Exit),
        [tag, ..] if tag == "ended" => Ok(RouteOutcome::Ended),
        _ => Err(bad()),
    }
}

impl Store {
    /// Routes an incoming call in one script (one round trip).
    pub async fn route_call(&self, req: &RouteRequest<'_>) -> Result<RouteOutcome, StoreError> {
        let name = scripts::ROUTE_CALL.name;
        let reply = self
            .invoke(&scripts::ROUTE_CALL, self.keys().call(req.sid), req)
            .await?;
        decode_route(name, &texts(name, &reply)?)
    }

    /// A waiting caller's fetch of the wait URL: another hold round, its `<Dial>`
    /// if an agent was reserved for it, or how its wait ended.
    pub async fn wait(&self, call_sid: &str, wait: WaitFetch) -> Result<RouteOutcome, StoreError> {
        let name = scripts::WAIT.name;
        let request = WaitRequest {
            sid: call_sid,
            fetch: &wait,
            tail_ms: CALL_TAIL_MS,
        };
        let reply = self
            .invoke(&scripts::WAIT, self.keys().call(call_sid), &request)
            .await?;
        decode_route(name, &texts(name, &reply)?)
    }

    /// Gives agents that became free by time to waiting callers; how many were
    /// matched (at most `batch`: call again when it is reached).
    pub async fn match_lines(&self, batch: usize) -> Result<usize, StoreError> {
        let request = MatchRequest {
            tokens: (0..batch).map(|_| new_token()).collect(),
        };
        let reply = self
            .invoke(&scripts::MATCH_LINES, self.keys().hold_queues(), &request)
            .await?;
        super::text(&reply)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::reply(scripts::MATCH_LINES.name, format!("{reply:?}")))
    }

    /// Moves waiting calls whose next step began on to it; how many due calls
    /// were taken (at most `max`: call again when it is reached).
    pub async fn relax_steps(&self, max: usize) -> Result<usize, StoreError> {
        let reply = self
            .invoke(
                &scripts::RELAX_STEPS,
                self.keys().steps_due(),
                &RelaxRequest { max },
            )
            .await?;
        super::text(&reply)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::reply(scripts::RELAX_STEPS.name, format!("{reply:?}")))
    }

    /// Up to `max` step events the scripts recorded, oldest first, each taken
    /// by one worker (so counted once).
    pub async fn drain_step_events(&self, max: usize) -> Result<Vec<StepEvent>, StoreError> {
        let raw = self
            .pop_oldest("step_events", self.keys().step_events(), max)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|e| {
                let mut parts = e.splitn(4, '|');
                let queue = parts.next()?.to_owned();
                let relaxed = match parts.next()? {
                    "matched" => false,
                    "relaxed" => true,
                    _ => return None,
                };
                Some(StepEvent {
                    queue,
                    relaxed,
                    step: parts.next()?.parse().ok()?,
                    waited_ms: parts.next()?.parse().ok()?,
                })
            })
            .collect())
    }

    /// Writes the queues that hold callers into `hold_queues`, for the scripts
    /// that give freed agents to waiting callers (`replace`: drop the others
    /// first, in the same transaction).
    pub async fn publish_hold_queues(
        &self,
        entries: &[(String, HoldQueueEntry<'_>)],
        replace: bool,
    ) -> Result<(), StoreError> {
        if entries.is_empty() && !replace {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        if replace {
            pipe.del(self.keys().hold_queues()).ignore();
        }
        for (name, entry) in entries {
            let json = serde_json::to_string(entry)
                .map_err(|e| StoreError::reply("publish_hold_queues", e.to_string()))?;
            pipe.hset(self.keys().hold_queues(), name, json).ignore();
        }
        self.query::<()>("publish_hold_queues", pipe).await
    }

    /// Claims a matched caller for one REST redirect: the reservation's token
    /// and the call's Twilio account ('' when unknown) when this replica may
    /// send it (`None`: already dialled by its own wait fetch, claimed by
    /// another replica, or over).
    pub async fn claim_connect(&self, call_sid: &str) -> Result<Option<Claimed>, StoreError> {
        let name = scripts::CLAIM_CONNECT.name;
        let reply = self.connect_step(call_sid, "claim", None, None).await?;
        match texts(name, &reply)?.as_slice() {
            [tag, token, account] if tag == "claimed" => Ok(Some(Claimed {
                token: token.clone(),
                account: account.clone(),
            })),
            [tag] if tag == "refused" => Ok(None),
            other => Err(StoreError::reply(name, format!("{other:?}"))),
        }
    }

    /// Reports how the redirect claimed for reservation `token` went, when it
    /// did not redirect the call.
    pub async fn report_connect(
        &self,
        call_sid: &str,
        token: &str,
        report: RedirectReport,
    ) -> Result<(), StoreError> {
        let (step, spare) = match report {
            RedirectReport::Failed => ("failed", None),
            RedirectReport::Unknown => ("unknown", Some(new_token())),
        };
        self.connect_step(call_sid, step, Some(token), spare)
            .await
            .map(|_| ())
    }

    async fn connect_step(
        &self,
        call_sid: &str,
        step: &'static str,
        token: Option<&str>,
        spare_token: Option<String>,
    ) -> Result<redis::Value, StoreError> {
        self.invoke(
            &scripts::CLAIM_CONNECT,
            self.keys().call(call_sid),
            &ClaimConnectRequest {
                sid: call_sid,
                step,
                token,
                spare_token,
            },
        )
        .await
    }

    /// Takes a caller out of `queue`'s line (its next fetch gets `step`);
    /// `false` when that call is not waiting there.
    pub async fn remove_waiting(
        &self,
        call_sid: &str,
        queue: &str,
        step: String,
        by: &super::Actor,
    ) -> Result<bool, StoreError> {
        let request = RemoveWaitingRequest {
            sid: call_sid,
            queue,
            step,
            by: by.label(),
        };
        let reply = self
            .invoke(
                &scripts::REMOVE_WAITING,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        match super::text(&reply).as_deref() {
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            _ => Err(StoreError::reply(
                scripts::REMOVE_WAITING.name,
                format!("{reply:?}"),
            )),
        }
    }

    /// The first `limit` callers of `queue`'s line in the order they are
    /// served (those with a priority first, then by arrival), and the Redis
    /// clock (ms).
    pub async fn line(&self, queue: &str, limit: usize) -> Result<(i64, Vec<Waiter>), StoreError> {
        let last = limit.max(1) as isize - 1;
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        pipe.zrange(self.keys().line_priority(queue), 0, last);
        pipe.zrange_withscores(self.keys().line(queue), 0, last);
        type Lines = ((i64, i64), Vec<String>, Vec<(String, f64)>);
        let (time, first, line): Lines = self.query("line", pipe).await?;
        let now = super::redis_ms(time);
        let ahead: std::collections::HashSet<&str> = first.iter().map(String::as_str).collect();
        let order: Vec<(String, Option<i64>)> = first
            .iter()
            .map(|sid| (sid.clone(), None))
            .chain(
                line.iter()
                    .filter(|(sid, _)| !ahead.contains(sid.as_str()))
                    .map(|(sid, since)| (sid.clone(), Some(*since as i64))),
            )
            .take(limit)
            .collect();
        if order.is_empty() {
            return Ok((now, Vec::new()));
        }
        let mut pipe = redis::pipe();
        for (sid, _) in &order {
            pipe.cmd("HMGET").arg(self.keys().call(sid)).arg(&[
                "caller",
                "since",
                "priority",
                "estimate_ms",
                "estimate_at",
                "callback",
            ]);
        }
        type Fields = (
            Option<String>,
            Option<i64>,
            Option<u8>,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let fields: Vec<Fields> = self.query("line", pipe).await?;
        let waiters = order
            .into_iter()
            .zip(fields)
            .enumerate()
            .map(
                |(i, ((call_sid, score), (from, since, priority, estimate, at, callback)))| {
                    Waiter {
                        call_sid,
                        from: from.unwrap_or_default(),
                        since_ms: since.or(score).unwrap_or(now),
                        position: i as u32 + 1,
                        priority: priority.unwrap_or(0),
                        // The last estimate the caller heard, less the time since.
                        estimated_wait_ms: estimate
                            .zip(at)
                            .map(|(ms, at)| u64::try_from(ms - (now - at)).unwrap_or(0)),
                        callback: callback.as_deref() == Some("1"),
                    }
                },
            )
            .collect();
        Ok((now, waiters))
    }

    /// How many callers wait in each of `queues`, and for how long the head of
    /// each line has waited (ms; 0 with nobody waiting).
    pub async fn waiting_counts(&self, queues: &[&str]) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        for queue in queues {
            pipe.zcard(self.keys().line(queue));
            pipe.zrange_withscores(self.keys().line(queue), 0, 0);
        }
        let replies: Vec<redis::Value> = self.query("waiting_counts", pipe).await?;
        let bad = |e: redis::ParsingError| StoreError::reply("waiting_counts", e.to_string());
        let mut replies = replies.into_iter();
        let now = match replies.next() {
            Some(v) => super::redis_ms(redis::from_redis_value(v).map_err(bad)?),
            None => return Err(StoreError::reply("waiting_counts", "no TIME reply")),
        };
        let mut out = Vec::with_capacity(queues.len());
        while let (Some(count), Some(head)) = (replies.next(), replies.next()) {
            let count: u64 = redis::from_redis_value(count).map_err(bad)?;
            let head: Vec<(String, f64)> = redis::from_redis_value(head).map_err(bad)?;
            let longest = head.first().map_or(0, |(_, since)| {
                u64::try_from(now - *since as i64).unwrap_or(0)
            });
            out.push((count, longest));
        }
        Ok(out)
    }

    /// Up to `max` entries of a list the scripts `LPUSH`, oldest first; an entry
    /// popped here is taken by no other replica.
    pub(super) async fn pop_oldest(
        &self,
        name: &'static str,
        key: String,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let popped: Option<Vec<String>> = self
            .with_conn(name, |mut conn| async move {
                Ok(redis::cmd("RPOP")
                    .arg(key)
                    .arg(max)
                    .query_async(&mut conn)
                    .await?)
            })
            .await?;
        Ok(popped.unwrap_or_default())
    }

    /// Up to `max` ended waits recorded by the scripts, oldest first; each is
    /// taken by one worker only.
    pub async fn drain_wait_events(&self, max: usize) -> Result<Vec<WaitEvent>, StoreError> {
        let raw = self
            .pop_oldest("wait_events", self.keys().wait_events(), max)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|e| {
                let mut parts = e.splitn(4, '|');
                Some(WaitEvent {
                    queue: parts.next()?.to_owned(),
                    outcome: parts.next()?.to_owned(),
                    waited_ms: parts.next()?.parse().ok()?,
                    estimate_ms: parts.next().and_then(|ms| ms.parse().ok()),
                })
            })
            .collect())
    }

    /// Up to `max` waiting callers just given an agent (CallSid, queue, and when
    /// on the Redis clock), each taken by one replica only, oldest first.
    pub async fn drain_connects(
        &self,
        max: usize,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let raw = self
            .pop_oldest("connects", self.keys().connects(), max)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|e| {
                let mut parts = e.splitn(3, '|');
                let (sid, queue) = (parts.next()?, parts.next()?);
                let matched_ms = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
                Some((sid.to_owned(), queue.to_owned(), matched_ms))
            })
            .collect())
    }

    /// How many queues `hold_queues` holds (0 after Redis came back empty).
    pub async fn hold_queues_published(&self) -> Result<usize, StoreError> {
        let mut pipe = redis::pipe();
        pipe.hlen(self.keys().hold_queues());
        let (n,): (usize,) = self.query("hold_queues_published", pipe).await?;
        Ok(n)
    }

    /// Keeps a voicemail message once; `false` when this recording was already kept.
    pub async fn record_voicemail(
        &self,
        call_sid: &str,
        recording_sid: &str,
        message: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let request = VoicemailRequest {
            recording_sid,
            message,
            keep: VOICEMAILS_KEPT,
            tail_ms: CALL_TAIL_MS,
        };
        let reply = self
            .invoke(
                &scripts::RECORD_VOICEMAIL,
                self.keys().call(call_sid),
                &request,
            )
            .await?;
        Ok(super::text(&reply).as_deref() == Some("1"))
    }

    /// The newest voicemail messages, as stored (JSON objects).
    pub async fn voicemails(&self, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.lrange(self.keys().voicemails(), 0, limit.max(1) as isize - 1);
        let (raw,): (Vec<String>,) = self.query("voicemails", pipe).await?;
        Ok(raw
            .iter()
            .filter_map(|m| serde_json::from_str(m).ok())
            .collect())
    }
}
