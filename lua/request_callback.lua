--[[ request_callback: a waiting caller confirmed a number to be called back on
(docs/callbacks.md): it keeps its place in line as a callback
(lib/callbacks.lua) and may hang up.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; its queue's line, `callbacks:<queue>`
         and `deadlines` are built from the prefix
ARGV[1]  JSON CallbackRequest (src/store/requests.rs): {prefix, sid, to (the
         customer's number), from (the number that calls back), max_tries
         (1 + the queue's callback_retries), retry_ms, redirect_ms and
         loop_ms (as wait's)}

Reply: {'requested', position} (a callback now, or already: a request sent
again changes nothing) | the call's decision otherwise, as wait gives it: an
agent reserved while the caller keyed its number is dialled now ({'dial',
...}, or {'connecting'} while its REST redirect is on its way:
`settle_reserved` in lib/calls.lua), a call no longer waiting is {'ended'} or
{'fallback', ...}.
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'queue', 'position')
if c[1] == 'callback' then
  return {'requested', tonumber(c[3]) or 0}
end
local now = now_ms()
local reply, status = settle_reserved(call, req.sid, now, false, req.redirect_ms, req.loop_ms)
if reply then
  return reply
end
if status ~= 'waiting' then
  return decision(call, 0)
end
redis.call('HSET', call, 'status', 'callback', 'callback', '1', 'callback_to', req.to,
  'callback_from', req.from, 'callback_tries', 0, 'callback_max_tries', req.max_tries,
  'callback_retry_ms', req.retry_ms)
-- The caller hangs up now: no heartbeat; the hash outlives its call, and
-- does not expire while the callback is live (lib/callbacks.lua).
redis.call('ZREM', K.deadlines, deadline_member('wait', req.sid, '', ''))
redis.call('PERSIST', call)
redis.call('SADD', K.callbacks(c[2]), req.sid)
local position = position_of(call, req.sid, c[2])
emit_call('callback_requested', req.sid, {to = req.to, position = position})
return {'requested', position}
