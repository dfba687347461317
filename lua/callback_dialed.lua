--[[ callback_dialed: what Twilio answered a replica's request to call a
callback's customer (POST .../Calls.json).

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; the agent and the keys a release
         touches are built from the prefix
ARGV[1]  JSON CallbackDialedRequest (src/store/requests.rs): {prefix, sid,
         token (the attempt's), outcome: 'placed' (Twilio took it: `call_sid`
         is the outbound call) | 'busy' (Twilio asked to try later: 429, 20429,
         21611, 22005; the customer was not called, so the try does not count)
         | 'refused' (Twilio refused the request: a number it cannot call; the
         callback fails) | 'not_placed' (refused for another reason, such as
         the account's credentials: the try counts, the next comes after
         retry_ms), spare_token}

Reply: {'placed'} | {'retry'} | {'failed'} | {'stale'} (about another attempt).
]]
local call = KEYS[1]
local now = now_ms()
if req.outcome == 'placed' then
  local c = redis.call('HMGET', call, 'status', 'token', 'callback_sid')
  if c[1] ~= 'cb_dialing' and c[1] ~= 'cb_answered' or c[2] ~= req.token then
    return {'stale'}
  end
  if not c[3] or c[3] == '' then
    redis.call('HSET', call, 'callback_sid', req.call_sid)
  end
  emit_call('callback_placed', req.sid, {outbound = req.call_sid})
  return {'placed'}
end
local why = ({busy = 'twilio_busy', refused = 'refused', not_placed = 'not_placed'})[req.outcome]
if not why then
  return redis.error_reply('callback_dialed: unknown outcome ' .. tostring(req.outcome))
end
local done = callback_attempt_over(call, req.sid, req.token, why, now, req.outcome == 'refused',
  req.outcome ~= 'busy')
return {done or 'stale'}
