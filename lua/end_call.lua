--[[ end_call: the caller's call is over (a final status from the number's status
callback). Marks the call ended, so it gets no new attempt, and settles whatever
agent it still holds as a caller hang-up (see `settle` in lib/calls.lua), in one
script.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; the agent and other keys `settle`
         touches are built from the prefix
ARGV[1]  JSON EndCallRequest (src/store/requests.rs): {prefix, sid, tail_ms,
         spare_token (for a waiting caller the agent freed may be given to)}

A caller waiting in line leaves it (wait outcome 'abandoned'); one that asked
to be called back does not (lib/callbacks.lua); a caller not
yet answered counts as abandoned in its queue's figures (`stats:<queue>`,
built from the prefix; lib/stats.lua).

Reply: {previous status, settle code}: the status the call had ('none' when it
was never routed here), and what settling its agent did ('' when it held none).
An answered call that ends joins its agent's last calls (`agent_calls:<id>`,
built from the prefix; `log_agent_call` in lib/calls.lua).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'agent', 'token')
local status = c[1]
if status == 'ended' then
  return {'ended', ''}
end
if redis.call('HGET', call, 'callback') == '1' then
  -- A caller who asked to be called back hung up, as asked: its callback
  -- keeps its place (lib/callbacks.lua).
  return {status or 'none', ''}
end
if status == 'waiting' or (status == 'retry' and redis.call('HEXISTS', call, 'since') == 1) then
  -- The caller hung up while waiting in line (or between an unanswered agent
  -- and its return to the line).
  leave_line(call, req.sid, 'abandoned')
end
if status == 'retry' then
  -- Between two agents (no line): it hung up before anyone answered.
  stats_abandoned(call, now_ms())
end
if (status == 'ringing' or status == 'on_call') and c[2] and c[3] and c[3] ~= '' then
  local settled = settle({sid = req.sid, agent = c[2], token = c[3], outcome = 'hangup',
    confirm_ms = 0}, req.tail_ms)
  return {status, settled[1]}
end
redis.call('HSET', call, 'status', 'ended', 'token', '', 'settled_at', now_ms())
redis.call('PEXPIRE', call, req.tail_ms)
redis.call('ZREM', K.reconcile, req.sid)
if status then
  -- Waiting, between two agents, or in a fallback: it held no agent.
  emit_call('call_ended', req.sid, {reason = 'hangup', agent = false})
end
return {status or 'none', ''}
