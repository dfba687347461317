--[[ relax_steps: waiting callers whose next step began: each moves on to the
step that holds now (more than one if a sweep came late), which is recorded in
the call's history (`step_relaxed`) and the step metrics, and its next step is
scheduled. Matching needs nothing from here (every script takes a caller's
current step from the time it has waited); match_lines.lua, run right after in
the same sweep, gives it an agent its new step accepts.

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
  local call = K.call(sid)
  local c = redis.call('HMGET', call, 'status', 'steps', 'arrived_at', 'queue', 'need_step',
    'since')
  -- A call no longer waiting (given an agent, gone) is dropped; it is
  -- scheduled again if it comes back to its place in line.
  if c[1] == 'waiting' and c[2] then
    local steps = decode_steps(c[2])
    -- Steps run from the call's arrival.
    local arrived = tonumber(c[3]) or tonumber(c[6]) or now
    local i, step = step_at(steps, now - arrived)
    local before = tonumber(c[5]) or 1
    if i ~= before then
      -- `starts_ms`: when the step began, after arrival; `waited_ms` past
      -- it is how late the sweep moved the call on.
      emit_call('step_relaxed', sid, {step = i, needs = step.needs, previous = before,
        waited_ms = now - arrived, starts_ms = step_starts(steps, i)})
      record_step(c[4] or '', 'relaxed', i, now - arrived)
    end
    schedule_step(call, sid, steps, i, arrived)
  end
end
return #due
