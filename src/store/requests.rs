//! The one argument of every script: a JSON object (ARGV[1]) serialized from a
//! struct of this module, so Lua reads `req.sid` instead of counting positions
//! that two languages must agree on. Limits the scripts apply come from the
//! constants here: Rust is their one definition, and the scripts get them in the
//! request. A script that may free an agent also gets a `spare_token`, the
//! reservation token if that agent is given to a waiting caller (Lua has no
//! good source of randomness).

use serde::Serialize;

use crate::config::QueueSettings;
use crate::config::steps::Steps;
use crate::needs::Test;
use crate::store::Outcome;

/// How long a call's hash outlives the call's end: long enough for late and
/// replayed callbacks (Twilio retries within minutes) and a voicemail.
pub const CALL_TAIL_MS: u64 = 3_600_000;
/// Most deadlines one sweep round reads; the worker loops while rounds are full.
pub const SWEEP_BATCH: usize = 500;
/// Most ended wrap-ups one `settle_wrap_ups` settles before giving its lease back.
pub const WRAP_UPS_BATCH: usize = 1000;
/// Voicemail messages kept in Redis (newest first); they are also logged.
pub const VOICEMAILS_KEPT: usize = 1000;
/// How long a confirm attempt's agent has, from pick-up, to hear who is calling
/// and press 1: the prompt, `<Gather timeout="5">`, and slack for the callbacks.
pub const CONFIRM_WINDOW_MS: u64 = 30_000;

/// About how many events the namespace's stream keeps (`XADD MAXLEN ~`): the
/// last hours of a busy call center, for `GET /v1/events` to resume from.
pub const EVENTS_KEPT: usize = 10_000;

/// How many changes made through the API the audit list keeps (newest first,
/// `LTRIM`): what `GET /v1/audit` can show.
pub const AUDIT_KEPT: usize = 1000;

/// Calls an agent's last-calls list keeps (`GET /v1/me/calls`), newest first.
pub const AGENT_CALLS_KEPT: usize = 20;
/// How long an agent's last-calls list lives after its last new entry: an
/// agent gone for a month starts afresh, and a list nobody writes goes away.
pub const AGENT_CALLS_TTL_MS: u64 = 30 * 86_400_000;
/// How long after a call ended its agent may still give (or change) its
/// wrap-up: well within the call record's `CALL_TAIL_MS`.
pub const WRAP_UP_WINDOW_MS: u64 = 30 * 60_000;

/// What every request carries: the namespace's key prefix, the events and
/// audit caps, the last-calls cap and lifetime, then the script's own fields.
#[derive(Debug, Serialize)]
pub(super) struct Envelope<'a, T: Serialize> {
    pub prefix: &'a str,
    pub events_kept: usize,
    pub audit_kept: usize,
    pub agent_calls_kept: usize,
    pub agent_calls_ttl_ms: u64,
    #[serde(flatten)]
    pub body: &'a T,
}

/// One queue a call may take an agent from, with the timings of that queue the
/// call keeps for the scripts ending its attempt.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry<'a> {
    pub queue: &'a str,
    /// `queue` for the call's own queue, `overflow` for a fallback queue.
    pub via: &'static str,
    pub reservation_ms: u64,
    pub wrap_up_ms: u64,
    pub delay_ms: u64,
    pub max_missed: u32,
    pub lease_ms: u64,
    pub affinity_ms: u64,
    /// What the call needs of an agent here, step by step; absent when any
    /// agent of the queue will do (lua/lib/needs.lua).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepRequest<'a>>>,
}

/// One step as the scripts take it: its expression (for the call's history),
/// its alternatives, and when it ends, in ms after the call's arrival (absent
/// for the last).
#[derive(Debug, Clone, Serialize)]
pub struct StepRequest<'a> {
    pub needs: &'a str,
    pub alts: &'a [Vec<Test>],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl<'a> StepRequest<'a> {
    /// `steps` as the scripts take them; `None` when they are only `any`.
    pub fn all(steps: &'a Steps) -> Option<Vec<StepRequest<'a>>> {
        if steps.is_any() {
            return None;
        }
        let mut until = 0u64;
        Some(
            steps
                .all()
                .iter()
                .map(|step| StepRequest {
                    needs: step.needs.text(),
                    alts: step.needs.alternatives(),
                    until_ms: step.for_ms.map(|ms| {
                        until = until.saturating_add(ms);
                        until
                    }),
                })
                .collect(),
        )
    }
}

impl<'a> PlanEntry<'a> {
    pub fn new(queue: &'a str, via: &'static str, s: &QueueSettings) -> PlanEntry<'a> {
        PlanEntry {
            queue,
            via,
            reservation_ms: s.reservation_ms(),
            wrap_up_ms: u64::from(s.wrap_up_secs) * 1000,
            delay_ms: u64::from(s.no_answer_delay_secs) * 1000,
            max_missed: s.max_missed_in_row,
            lease_ms: u64::from(s.max_call_secs) * 1000,
            affinity_ms: u64::from(s.affinity_days) * 86_400_000,
            steps: None,
        }
    }

    /// The entry of a call whose needs here are `steps`.
    pub fn with_steps(mut self, steps: &'a Steps) -> PlanEntry<'a> {
        self.steps = StepRequest::all(steps);
        self
    }
}

/// `route_call.lua` (and a Dial action's next step): everything to decide a call.
#[derive(Debug, Clone, Serialize)]
pub struct RouteRequest<'a> {
    pub sid: &'a str,
    /// The token a new reservation gets (random, unique).
    pub token: String,
    /// Another, for an agent this call finds free but a caller waiting ahead
    /// of it may take: that caller's reservation.
    pub spare_token: String,
    /// The caller affinity is kept under: '' for none.
    pub caller: &'a str,
    /// The webhook's `AccountSid` (a sub-account's for its numbers), kept with
    /// the call for the REST requests about it; '' keeps what the call had.
    pub account: &'a str,
    /// The call's own queue.
    pub home: &'a str,
    pub call_ttl_ms: u64,
    pub max_attempts: u32,
    /// The step taken when no queue of the plan has a free agent.
    pub step: String,
    pub plan: Vec<PlanEntry<'a>>,
    /// The call's own queue holds callers when no agent can take them.
    pub hold: Option<HoldRequest>,
    /// The call's priority in its line (0 to 100; 0: by arrival), kept with
    /// it at its first route.
    pub priority: u8,
    /// The call's own queue's service level threshold (`service_level_secs`),
    /// kept with the call for its queue's figures (lua/lib/stats.lua).
    pub sl_ms: u64,
}

/// What `route` needs of a queue's `[queues.hold]`.
#[derive(Debug, Clone, Serialize)]
pub struct HoldRequest {
    /// The queue's longest hold round (`Hold::round_ms`: `loop_secs`, or
    /// `music_secs` when longer): the heartbeat allows it and 15 s. The name
    /// stays `loop_ms` so replicas of both versions read each other's entries.
    pub loop_ms: u64,
    pub max_waiting: u32,
    pub join_when_no_agents: bool,
}

/// A queue that holds callers, as `hold_queues` keeps it for the scripts that
/// give freed agents to waiting callers (lua/lib/line.lua).
#[derive(Debug, Clone, Serialize)]
pub struct HoldQueueEntry<'a> {
    #[serde(flatten)]
    pub plan: PlanEntry<'a>,
    pub priority: i64,
    /// The queue's longest hold round (`Hold::round_ms`: `loop_secs`, or
    /// `music_secs` when longer): the heartbeat allows it and 15 s. The name
    /// stays `loop_ms` so replicas of both versions read each other's entries.
    pub loop_ms: u64,
    /// The most a caller's estimated wait may rise from one round to the next
    /// while no agent signed out (`Hold::estimate_max_rise_secs`).
    pub rise_ms: u64,
}

/// `wait.lua`: a waiting caller's fetch.
#[derive(Debug, Serialize)]
pub(super) struct WaitRequest<'a> {
    pub sid: &'a str,
    #[serde(flatten)]
    pub fetch: &'a super::calls::WaitFetch,
    pub tail_ms: u64,
}

/// `claim_connect.lua`: a step of one REST redirect.
#[derive(Debug, Serialize)]
pub(super) struct ClaimConnectRequest<'a> {
    pub sid: &'a str,
    /// 'claim', 'failed' or 'unknown'.
    pub step: &'static str,
    /// The claimed reservation a report is about.
    pub token: Option<&'a str>,
    /// For 'unknown': the freed agent's next reservation, if a caller waits.
    pub spare_token: Option<String>,
}

/// `due_reconciles.lua`: answered calls quiet for `quiet_ms`.
#[derive(Debug, Serialize)]
pub(super) struct ReconcileRequest {
    pub quiet_ms: u64,
    pub batch: usize,
}

/// `watch_lines.lua`: a read-only look at the lines (simulate's checks).
#[derive(Debug, Serialize)]
pub(super) struct WatchRequest {
    pub free_listed: usize,
}

/// `remove_waiting.lua`: the admin API takes a caller out of a line.
#[derive(Debug, Serialize)]
pub(super) struct RemoveWaitingRequest<'a> {
    pub sid: &'a str,
    pub queue: &'a str,
    pub step: String,
    /// Who asked (`Actor::label`).
    pub by: String,
}

/// `match_lines.lua`: one fresh token per caller it may match.
#[derive(Debug, Serialize)]
pub(super) struct MatchRequest {
    pub tokens: Vec<String>,
}

/// `relax_steps.lua`: how many due calls one run moves on at most.
#[derive(Debug, Serialize)]
pub(super) struct RelaxRequest {
    pub max: usize,
}

/// `publish_alts.lua`: the alternatives a routing file names, per queue, and
/// how long one nobody publishes again is kept.
#[derive(Debug, Serialize)]
pub(super) struct PublishAltsRequest<'a> {
    pub queues: Vec<QueueAlts<'a>>,
    pub stale_ms: u64,
}

/// One queue's named alternatives, each a list of tests.
#[derive(Debug, Serialize)]
pub struct QueueAlts<'a> {
    pub queue: &'a str,
    pub alts: Vec<&'a [Test]>,
}

/// `build_alt_lines.lua`: most free agents one run reads.
#[derive(Debug, Serialize)]
pub(super) struct BuildAltLinesRequest {
    pub max: usize,
}

/// One report of a dial attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRequest<'a> {
    pub sid: &'a str,
    pub agent: &'a str,
    pub token: &'a str,
    pub outcome: Outcome,
    pub confirm_ms: u64,
    /// The agent leg's own CallSid, when the report carries it: what the
    /// worker asks Twilio about when an answered call goes quiet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg: Option<&'a str>,
}

/// `settle_attempt.lua`: a report, and for a Dial action the call's next step.
#[derive(Debug, Serialize)]
pub(super) struct SettleRequest<'a> {
    pub tail_ms: u64,
    pub spare_token: String,
    pub settle: AttemptRequest<'a>,
    pub next: Option<RouteRequest<'a>>,
}

#[derive(Debug, Serialize)]
pub(super) struct EndCallRequest<'a> {
    pub sid: &'a str,
    pub tail_ms: u64,
    pub spare_token: String,
}

/// Timings for a deadline whose call hash is gone.
#[derive(Debug, Serialize)]
pub(super) struct SweepDefaults {
    pub wrap_up_ms: u64,
    pub delay_ms: u64,
    pub max_missed: u32,
}

#[derive(Debug, Serialize)]
pub(super) struct SweepRequest<'a> {
    pub member: &'a str,
    pub kind: &'a str,
    pub sid: &'a str,
    pub agent: &'a str,
    pub token: &'a str,
    pub tail_ms: u64,
    pub defaults: SweepDefaults,
    pub spare_token: String,
}

#[derive(Debug, Serialize)]
pub(super) struct LimitRequest {
    pub limit: usize,
}

#[derive(Debug, Serialize)]
pub(super) struct WrapUpsRequest {
    pub lease_ms: u64,
    pub limit: usize,
}

#[derive(Debug, Serialize)]
pub(super) struct UpsertAgentRequest<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub contact: &'a str,
    pub queues: &'a [String],
    /// `name:level,…` by name (`needs::encode_skills`); empty: none.
    pub skills: String,
    /// 0: the agent is not expected to send heartbeats.
    pub heartbeat_ms: u64,
    pub spare_token: String,
    pub by: String,
}

#[derive(Debug, Serialize)]
pub(super) struct SetStateRequest<'a> {
    pub state: &'a str,
    pub force: bool,
    /// The agent asked itself (an agent token): it counts as a heartbeat.
    pub seen: bool,
    pub spare_token: String,
    pub by: String,
    /// With `away` only: a reason of the routing file's `away_reasons`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

/// `set_wrap_up.lua`: an agent's wrap-up of a call it answered.
#[derive(Debug, Serialize)]
pub(super) struct WrapUpRequest<'a> {
    pub sid: &'a str,
    pub agent: &'a str,
    pub code: &'a str,
    pub note: &'a str,
    pub window_ms: u64,
    /// `None`: the code is valid whatever queue the call came through; else
    /// the queues whose list holds it.
    pub queues: Option<Vec<&'a str>>,
}

/// Most live tokens one agent keeps; issuing more drops the ones expiring first.
pub const MAX_LIVE_TOKENS: usize = 20;

#[derive(Debug, Serialize)]
pub(super) struct IssueTokenRequest<'a> {
    pub id: &'a str,
    /// The token's own id, the key it is found by.
    pub token_id: &'a str,
    /// Hex SHA-256 of the secret: the secret itself never reaches Redis.
    pub hash: &'a str,
    pub ttl_ms: u64,
    pub max_live: usize,
    pub by: String,
}

#[derive(Debug, Serialize)]
pub(super) struct RevokeTokensRequest<'a> {
    pub id: &'a str,
    pub by: String,
}

/// `issue_staff_token.lua`: a supervisor's or wallboard's token.
#[derive(Debug, Serialize)]
pub(super) struct IssueStaffTokenRequest<'a> {
    pub name: &'a str,
    /// 'supervisor' or 'wallboard'.
    pub role: &'static str,
    pub token_id: &'a str,
    /// Hex SHA-256 of the secret: the secret itself never reaches Redis.
    pub hash: &'a str,
    pub ttl_ms: u64,
    pub max_live: usize,
    pub by: String,
}

#[derive(Debug, Serialize)]
pub(super) struct RevokeStaffTokensRequest<'a> {
    pub name: &'a str,
    pub by: String,
}

#[derive(Debug, Serialize)]
pub(super) struct HeartbeatRequest {}

/// Most silent agents one `expire_presence` sets offline; the worker loops
/// while rounds are full.
pub const PRESENCE_BATCH: usize = 500;

#[derive(Debug, Serialize)]
pub(super) struct PresenceRequest {
    pub limit: usize,
}

#[derive(Debug, Serialize)]
pub(super) struct DeleteAgentRequest<'a> {
    pub id: &'a str,
    pub by: String,
}

#[derive(Debug, Serialize)]
pub(super) struct VoicemailRequest<'a> {
    pub recording_sid: &'a str,
    pub message: &'a serde_json::Value,
    pub keep: usize,
    pub tail_ms: u64,
}

/// `sample_waiting.lua`: nothing but the envelope.
#[derive(Debug, Serialize)]
pub struct SampleRequest {}

/// `request_callback.lua`: a waiting caller confirmed a number to call back.
#[derive(Debug, Serialize)]
pub(super) struct CallbackRequest<'a> {
    pub sid: &'a str,
    #[serde(flatten)]
    pub callback: super::callbacks::NewCallback<'a>,
}

/// `claim_callback.lua`: take a callback to dial, at the account's pace.
#[derive(Debug, Serialize)]
pub(super) struct ClaimCallbackRequest<'a> {
    pub sid: &'a str,
    pub cps: f64,
    pub dial_ms: u64,
    pub spare_token: String,
}

/// `callback_dialed.lua`, `callback_answer.lua`, `callback_connect.lua` and
/// `callback_status.lua`: a report about one try (`token`) of a callback.
#[derive(Debug, Serialize)]
pub(super) struct CallbackReportRequest<'a> {
    pub sid: &'a str,
    pub token: &'a str,
    /// The outbound call ('' when Twilio never placed it).
    pub call_sid: &'a str,
    /// callback_dialed: 'placed', 'busy' or 'refused'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// callback_answer: a machine or fax answered.
    pub machine: bool,
    /// callback_status: the outbound call's CallStatus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
    /// callback_status: the outbound call rings the agent first.
    pub agent_first: bool,
    /// callback_connect: an agent-first call the customer answered.
    pub bridged: bool,
    pub call_ttl_ms: u64,
    pub tail_ms: u64,
    pub spare_token: String,
}

/// `due_callbacks.lua`: callbacks whose next try is due.
#[derive(Debug, Serialize)]
pub(super) struct DueCallbacksRequest {
    pub batch: usize,
}

/// `cancel_callback.lua`: the API cancels a callback.
#[derive(Debug, Serialize)]
pub(super) struct CancelCallbackRequest<'a> {
    pub sid: &'a str,
    pub queue: &'a str,
    /// Who asked (`Actor::label`).
    pub by: String,
    pub spare_token: String,
}
