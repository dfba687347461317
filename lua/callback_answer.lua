--[[ callback_answer: the customer of a callback answered (Twilio fetches the
outbound call's Url); with answering machine detection, `machine` says a
machine or fax did.

KEYS[1]  call hash  sb:{ns}:call:<CallSid> (the callback's: the waiting
         caller's CallSid); the agent is built from the prefix
ARGV[1]  JSON CallbackAnswerRequest (src/store/requests.rs): {prefix, sid,
         token, call_sid (the outbound call), machine, spare_token}

For an agent-first callback the agent's phone is called first: its answer
is this one, and the customer is dialled from it (the reply's numbers).

Reply: {'prompt', queue, to (the customer), from (the number that calls
back)} (ask the customer to press 1, or dial the customer) | {'retry'} |
{'failed'} (a machine answered, or the agent was forced free meanwhile: the
try is over) | {'stale'} (about another attempt: hang up).
]]
local call = KEYS[1]
local now = now_ms()
local c = redis.call('HMGET', call, 'status', 'token', 'agent', 'queue', 'callback_to',
  'callback_from')
if c[1] ~= 'cb_dialing' or c[2] ~= req.token then
  return {'stale'}
end
if req.machine then
  return {callback_attempt_over(call, req.sid, req.token, 'voicemail', now, false, true)}
end
if redis.call('HGET', K.agent(c[3] or ''), 'token') ~= req.token then
  -- The agent was forced free meanwhile: this try ends, not the customer's
  -- fault, so it is not counted.
  return {callback_attempt_over(call, req.sid, req.token, 'agent_gone', now, false, false)
    or 'stale'}
end
redis.call('HSET', call, 'status', 'cb_answered', 'callback_sid', req.call_sid,
  'answered_by_customer_at', now)
emit_call('callback_answered', req.sid, {outbound = req.call_sid})
return {'prompt', c[4] or '', c[5] or '', c[6] or ''}
