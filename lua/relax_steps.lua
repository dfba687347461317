--[[ relax_steps: waiting callers whose next step began: each moves on to the
step that holds now (more than one if a sweep came late), which is recorded in
the call's history (`step_relaxed`) and the step metrics, and its next step is
scheduled (relax_to_now in lib/line.lua). The worker runs it every sweep
interval on a ticker of its own, so a slow round does not delay it. Matching
needs nothing from here (every script takes a caller's current step from the
time it has waited), and a caller given an agent before this ran is moved on
by the reservation itself.

KEYS[1]  steps_due zset  sb:{ns}:steps_due (CallSid -> when its next step
         begins, ms); the calls and `step_events` are built from the prefix
ARGV[1]  JSON RelaxRequest (src/store/requests.rs): {prefix, max: most calls
         moved on in one run}

Reply: how many due members were taken (the worker calls again at `max`).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, req.max)
for _, sid in ipairs(due) do
  redis.call('ZREM', KEYS[1], sid)
  relax_to_now(K.call(sid), sid, now)
end
return #due
