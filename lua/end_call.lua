--[[ end_call: the caller's call is over (a final status from the number's status
callback, or a Dial action for a call that hung up). Marks the call ended, so
it gets no new attempt; whatever agent it still holds is settled by
settle_attempt ('hangup'), called with the token this script returns.

KEYS[1]   call hash   sb:{ns}:call:<CallSid>
ARGV[1]   ms the call hash lives if this creates it (a call we never routed)

Reply: {previous status, agent id, token}: agent and token are '' when the call
holds no agent. A call already ended answers {'ended', '', ''}.
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'agent', 'token')
local status = c[1]
if status == 'ended' then
  return {'ended', '', ''}
end
if status == 'ringing' or status == 'on_call' then
  -- settle_attempt ends it, releasing the agent in the same way as any callback.
  return {status, c[2] or '', c[3] or ''}
end
redis.call('HSET', call, 'status', 'ended', 'token', '', 'settled_at', now_ms())
if not status then
  redis.call('PEXPIRE', call, ARGV[1])
end
return {status or 'none', '', ''}
