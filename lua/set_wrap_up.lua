--[[ set_wrap_up: an agent gives the wrap-up of a call it answered: a
disposition code and a note, kept with the call. Given again, it replaces the
one before (the reply and the event say so).

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; the agent's last calls
         `agent_calls:<id>`, `events` and `call_events:<sid>` are built from the
         prefix
ARGV[1]  JSON WrapUpRequest (src/store/requests.rs): {prefix, sid, agent, code,
         note, window_ms (how long after the call ended it may still be given),
         queues (null: the code is valid in every queue; else the queues whose
         list holds it, checked against the queue the agent took the call
         through, `agent_queue`)}

Only the call's agent, once it answered (`answered_at`, or `logged`: the call
ended in its wrap-up, see `log_agent_call` in lib/calls.lua), while the call
lasts or up to window_ms after it ended (`settled_at`). Stored in the call's
hash (`wrap_up_code`, `wrap_up_note`, `wrap_up_at`), so it lives as long as the
call's record; the agent's entry in `agent_calls:<id>` (at most 20 entries, read
whole) gets it too. Emitted as a `wrap_up` event (code, note, replaced) to
`events` and `call_events:<sid>` (`emit` in lib/common.lua).

Reply: {'stored' | 'replaced', queue} | {'unknown'} (no record of the call) |
{'not_yours'} (another agent's call) | {'not_answered'} (it rings, or was
never answered by this agent) | {'too_late', ms since it ended} |
{'bad_code', queue} (the code is not in that queue's list)
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'agent', 'answered_at', 'logged', 'settled_at',
  'agent_queue', 'wrap_up_code')
local status, holder, queue = c[1], c[2], c[6] or ''
if not status then
  return {'unknown'}
end
if holder ~= req.agent then
  return {'not_yours'}
end
if not c[3] and not c[4] then
  return {'not_answered'}
end
local now = now_ms()
if status == 'ended' then
  local since = now - (tonumber(c[5]) or 0)
  if since > req.window_ms then
    return {'too_late', tostring(since)}
  end
elseif status ~= 'on_call' then
  return {'not_answered'}
end
if type(req.queues) == 'table' then
  local allowed = false
  for _, q in ipairs(req.queues) do
    if q == queue then
      allowed = true
    end
  end
  if not allowed then
    return {'bad_code', queue}
  end
end

local replaced = c[7] and true or false
redis.call('HSET', call, 'wrap_up_code', req.code, 'wrap_up_note', req.note, 'wrap_up_at', now)
local wrap_up = {code = req.code, note = req.note, at = now}
local list = K.agent_calls(req.agent)
for i, json in ipairs(redis.call('LRANGE', list, 0, -1)) do
  local entry = cjson.decode(json)
  if entry.call_sid == req.sid then
    entry.wrap_up = wrap_up
    redis.call('LSET', list, i - 1, cjson.encode(entry))
    break
  end
end
emit_call('wrap_up', req.sid, {code = req.code, note = req.note, replaced = replaced})
return {replaced and 'replaced' or 'stored', queue}
