--[[ cancel_callback: an admin or supervisor cancels a callback, wherever it is
(in line, given an agent, being dialled, waiting for its next try): its agent
is freed and it ends with the wait outcome `callback_cancelled`. A customer
already called then hears nothing more: the outbound call's next request is
stale and hangs up. Not while a try is being connected (`cb_answered`: the
customer hears the prompt to press 1, or an agent-first try's agent is on the
phone, dialling the customer): that try ends on its own within a minute, and a
cancel then would free an agent who is on the phone.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; the agent, lines and
         `callbacks:<queue>` are built from the prefix
ARGV[1]  JSON CancelCallbackRequest (src/store/requests.rs): {prefix, sid,
         queue, by, spare_token}

Reply: 1 when cancelled, 0 when `sid` is no live callback of `queue`, 2 while
a try is being connected.
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'queue', 'token', 'callback')
if c[4] ~= '1' or c[2] ~= req.queue or c[1] == 'ended' or not c[1] then
  return 0
end
if c[1] == 'cb_answered' then
  return 2
end
local now = now_ms()
if c[3] and c[3] ~= '' then
  callback_release(call, req.sid, c[3], now)
end
callback_end(call, req.sid, 'callback_cancelled', now)
emit('callback_cancelled', {call_sid = req.sid, queue = req.queue, by = req.by})
return 1
