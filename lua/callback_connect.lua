--[[ callback_connect: the customer of a callback pressed 1: the outbound call
takes the callback's reservation over and rings its agent. Or, `bridged`
(an agent-first callback), the customer answered the agent who called: the
agent's outbound call becomes the queue's answered call.

KEYS[1]  call hash  sb:{ns}:call:<CallSid> (the callback's); the outbound
         call's hash, the agent, `deadlines` and `callbacks:<queue>` are built
         from the prefix
ARGV[1]  JSON CallbackConnectRequest (src/store/requests.rs): {prefix, sid,
         token, call_sid (the outbound call), call_ttl_ms, tail_ms, bridged,
         spare_token}

The outbound call becomes an ordinary call of the queue (`call:<outbound
CallSid>`): the same agent, token and timings, `via` 'callback', its arrival
and place (`since`, `priority`) the waiting caller's, so if the agent does not
answer it goes back to the head of the line. The callback ends with the wait
outcome `callback_connected`; the outbound call records no second one.

Reply: the outbound call's decision, {'dial', agent, contact, token, queue,
via, attempt, fresh} | {'bridged', fresh} | {'retry'} or {'failed'} (the
agent was forced free: the try is over, not counted) | {'stale'} (about
another attempt, or the callback ended: hang up).
]]
local call = KEYS[1]
local now = now_ms()
local c = redis.call('HMGET', call, 'status', 'token', 'agent')
if c[1] == 'ended' and redis.call('HGET', call, 'callback_connected_sid') == req.call_sid then
  -- The same key again (a retried request): the same answer.
  if req.bridged then
    return {'bridged', 0}
  end
  return decision(K.call(req.call_sid), 0)
end
if c[1] ~= 'cb_answered' or c[2] ~= req.token then
  return {'stale'}
end
local id = c[3] or ''
local agent = K.agent(id)
if redis.call('HGET', agent, 'token') ~= req.token then
  -- The agent was forced free meanwhile: not the customer's fault, so the
  -- try is not counted; the callback waits for its next.
  return {callback_attempt_over(call, req.sid, req.token, 'agent_gone', now, false, false)
    or 'stale'}
end
local copied = {'queue', 'caller', 'account', 'arrived_at', 'since', 'priority', 'steps',
  'plan_steps', 'offered_at', 'sl_ms', 'agent', 'contact', 'token', 'agent_queue', 'attempt',
  'tried', 'wrap_up_ms', 'delay_ms', 'max_missed', 'lease_ms', 'affinity_ms', 'loop_ms',
  'callback_to'}
local values = redis.call('HMGET', call, unpack(copied))
local out = K.call(req.call_sid)
local fields = {}
for i, name in ipairs(copied) do
  if values[i] then
    fields[#fields + 1] = name
    fields[#fields + 1] = values[i]
  end
end
redis.call('HSET', out, unpack(fields))
redis.call('HSET', out, 'sid', req.call_sid, 'status', 'ringing', 'via', 'callback',
  'connect', 'dialed', 'reserved_at', now, 'callback_of', req.sid,
  'caller', values[23] or values[2] or '', 'wait_outcome', 'callback_connected',
  'stats_end', 'callback')
redis.call('PEXPIRE', out, req.call_ttl_ms)
redis.call('HSET', agent, 'call_sid', req.call_sid)
redis.call('ZREM', K.deadlines, deadline_member('reservation', req.sid, id, req.token))
if req.bridged then
  -- The agent and the customer talk: the call is answered, as `settle`
  -- makes one.
  redis.call('HSET', out, 'status', 'on_call', 'answered_at', now)
  stats_answered(out, now, now)
  local lease_ms = tonumber(redis.call('HGET', out, 'lease_ms')) or 3600000
  redis.call('ZADD', K.deadlines, now + lease_ms,
    deadline_member('lease', req.call_sid, id, req.token))
  redis.call('ZADD', K.reconcile, now, req.call_sid)
  set_state(agent, id, 'on_call', {'state_since', now, 'missed_in_row', 0})
else
  local reservation_ms = tonumber(redis.call('HGET', call, 'reservation_ms')) or 30000
  redis.call('ZADD', K.deadlines, now + reservation_ms,
    deadline_member('reservation', req.call_sid, id, req.token))
end
local queue = redis.call('HGET', call, 'queue') or ''
redis.call('SREM', K.callbacks(queue), req.sid)
record_outcome(call, 'callback_connected', now)
redis.call('HSET', call, 'status', 'ended', 'token', '', 'settled_at', now,
  'callback_connected_sid', req.call_sid)
redis.call('PEXPIRE', call, CALLBACK_TTL_MS)
emit_call('callback_connected', req.sid, {outbound = req.call_sid, agent = id})
emit_call('call_routed', req.call_sid, {via = 'callback', callback_of = req.sid})
if req.bridged then
  emit_call('call_connected', req.call_sid)
  return {'bridged', 1}
end
return decision(out, 1)
