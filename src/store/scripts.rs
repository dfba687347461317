//! The Lua scripts of `lua/`, each with the shared `lua/lib/` files in front
//! (common, stats, skills, agents, needs, line, calls: each uses the ones
//! before), built once.
//! `redis::Script` sends EVALSHA and, on NOSCRIPT (a restarted Redis has an empty
//! script cache), loads the script and retries, so routing survives a restart.

use std::sync::LazyLock;

use redis::Script;

/// `lua/lib/`, in the order each file needs the ones before it.
const LIB: [&str; 9] = [
    include_str!("../../lua/lib/common.lua"),
    include_str!("../../lua/lib/stats.lua"),
    include_str!("../../lua/lib/forecast.lua"),
    include_str!("../../lua/lib/skills.lua"),
    include_str!("../../lua/lib/agents.lua"),
    include_str!("../../lua/lib/needs.lua"),
    include_str!("../../lua/lib/line.lua"),
    include_str!("../../lua/lib/calls.lua"),
    include_str!("../../lua/lib/callbacks.lua"),
];

/// One script: its name (the `script` metric label) and the loaded code.
pub struct Lua {
    pub name: &'static str,
    /// `lua/lib/` and the script's own file, as Redis runs it.
    pub source: LazyLock<String>,
    pub script: LazyLock<Script>,
}

macro_rules! lua {
    ($static:ident, $file:literal) => {
        pub static $static: Lua = Lua {
            name: $file,
            source: LazyLock::new(|| {
                format!(
                    "{}\n{}",
                    LIB.join("\n"),
                    include_str!(concat!("../../lua/", $file, ".lua"))
                )
            }),
            script: LazyLock::new(|| Script::new(&$static.source)),
        };
    };
}

lua!(UPSERT_AGENT, "upsert_agent");
lua!(SET_AGENT_STATE, "set_agent_state");
lua!(DELETE_AGENT, "delete_agent");
lua!(ROUTE_CALL, "route_call");
lua!(RECORD_VOICEMAIL, "record_voicemail");
lua!(SETTLE_ATTEMPT, "settle_attempt");
lua!(END_CALL, "end_call");
lua!(DUE_DEADLINES, "due_deadlines");
lua!(SWEEP_DEADLINE, "sweep_deadline");
lua!(SETTLE_WRAP_UPS, "settle_wrap_ups");
lua!(WAIT, "wait");
lua!(MATCH_LINES, "match_lines");
lua!(RELAX_STEPS, "relax_steps");
lua!(EXPLAIN, "explain");
lua!(REMOVE_WAITING, "remove_waiting");
lua!(CLAIM_CONNECT, "claim_connect");
lua!(DUE_RECONCILES, "due_reconciles");
lua!(ISSUE_TOKEN, "issue_token");
lua!(REVOKE_TOKENS, "revoke_tokens");
lua!(ISSUE_STAFF_TOKEN, "issue_staff_token");
lua!(REVOKE_STAFF_TOKENS, "revoke_staff_tokens");
lua!(HEARTBEAT, "heartbeat");
lua!(EXPIRE_PRESENCE, "expire_presence");
lua!(SET_WRAP_UP, "set_wrap_up");
lua!(SAMPLE_WAITING, "sample_waiting");
lua!(PUBLISH_ALTS, "publish_alts");
lua!(BUILD_ALT_LINES, "build_alt_lines");
lua!(REQUEST_CALLBACK, "request_callback");
lua!(CLAIM_CALLBACK, "claim_callback");
lua!(CALLBACK_DIALED, "callback_dialed");
lua!(CALLBACK_ANSWER, "callback_answer");
lua!(CALLBACK_CONNECT, "callback_connect");
lua!(CALLBACK_STATUS, "callback_status");
lua!(DUE_CALLBACKS, "due_callbacks");
lua!(CANCEL_CALLBACK, "cancel_callback");
// Read-only and run by `simulate --watch-redis` only, so not in `all()`: a
// replica neither loads nor needs it.
lua!(WATCH_LINES, "watch_lines");

/// Every script, to load them all at start and check they are loaded for `/readyz`.
pub fn all() -> [&'static Lua; 35] {
    [
        &UPSERT_AGENT,
        &SET_AGENT_STATE,
        &DELETE_AGENT,
        &ROUTE_CALL,
        &RECORD_VOICEMAIL,
        &SETTLE_ATTEMPT,
        &END_CALL,
        &DUE_DEADLINES,
        &SWEEP_DEADLINE,
        &SETTLE_WRAP_UPS,
        &WAIT,
        &MATCH_LINES,
        &RELAX_STEPS,
        &EXPLAIN,
        &REMOVE_WAITING,
        &CLAIM_CONNECT,
        &DUE_RECONCILES,
        &ISSUE_TOKEN,
        &REVOKE_TOKENS,
        &ISSUE_STAFF_TOKEN,
        &REVOKE_STAFF_TOKENS,
        &HEARTBEAT,
        &EXPIRE_PRESENCE,
        &SET_WRAP_UP,
        &SAMPLE_WAITING,
        &PUBLISH_ALTS,
        &BUILD_ALT_LINES,
        &REQUEST_CALLBACK,
        &CLAIM_CALLBACK,
        &CALLBACK_DIALED,
        &CALLBACK_ANSWER,
        &CALLBACK_CONNECT,
        &CALLBACK_STATUS,
        &DUE_CALLBACKS,
        &CANCEL_CALLBACK,
    ]
}
