--[[ sweep_deadline: release one reservation or lease whose deadline has passed.

Any number of workers may sweep at once: the member is removed by the first, and
every change is fenced by the token, so an attempt already settled by a callback
is left alone.

KEYS[1]  deadlines zset  sb:{ns}:deadlines; the call and agent hashes and the
         keys an agent's release touches are built from the prefix
ARGV[1]  JSON SweepRequest (src/store/requests.rs): {prefix, member, kind, sid,
         agent, token, tail_ms, defaults: {wrap_up_ms, delay_ms, max_missed}}:
         the member is 'reservation|sid|id|token' or 'lease|sid|id|token', split
         by Rust (or 'wait|sid||', a waiting caller's heartbeat); `defaults`
         stand in for the call's timings if its hash is gone; `spare_token`
         reserves the freed agent for a waiting caller

Reply: {code, queue} ({code, queue, 'rejoined' | 'retry' | 'failed'} for
'expired_callback': where it left the callback)
  'expired_reservation'  the agent was released as a miss
  'expired_lease'        the agent was moved to wrap-up
  'abandoned'            a waiting caller's heartbeat ('wait|sid||') ran out:
                         it left the line
  'expired_callback'     a callback's reservation ran out (lib/callbacks.lua):
                         never claimed for dialling (its replica died), it went
                         back to its place; dialled, the try is over (no answer
                         and no status came) and its agent free, without a miss
  'stale'                the attempt had been settled; the member is dropped
  'not_due' | 'gone'     nothing to do (another worker was first, or not yet)
`queue` is the queue the agent was taken from ('' if unknown). A call ended by
its lease joins its agent's last calls (`agent_calls:<id>`, built from the prefix;
`log_agent_call` in lib/calls.lua).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local deadlines = KEYS[1]
local call, agent, id, token = K.call(req.sid), K.agent(req.agent), req.agent, req.token

local score = redis.call('ZSCORE', deadlines, req.member)
if not score then
  return {'gone', ''}
end
local now = now_ms()
if tonumber(score) > now then
  return {'not_due', ''}
end
redis.call('ZREM', deadlines, req.member)

if req.kind == 'wait' then
  -- A waiting caller's fetches stopped: it hung up and its status callback
  -- was lost.
  if redis.call('HGET', call, 'status') == 'waiting' then
    local queue = redis.call('HGET', call, 'queue') or ''
    leave_line(call, req.sid, 'abandoned')
    redis.call('HSET', call, 'status', 'ended', 'settled_at', now)
    redis.call('PEXPIRE', call, req.tail_ms)
    emit_call('call_ended', req.sid, {reason = 'abandoned'})
    return {'abandoned', queue}
  end
  return {'stale', ''}
end

local c = redis.call('HMGET', call, 'token', 'status', 'agent_queue', 'wrap_up_ms', 'delay_ms', 'max_missed')
local queue = c[3] or ''
local t = {
  wrap_up_ms = tonumber(c[4]) or req.defaults.wrap_up_ms,
  delay_ms = tonumber(c[5]) or req.defaults.delay_ms,
  max_missed = tonumber(c[6]) or req.defaults.max_missed,
}
local call_holds = c[1] == token
local a = redis.call('HMGET', agent, 'token', 'state')
local agent_holds = a[1] == token

if req.kind == 'reservation' and call_holds
    and (c[2] == 'cb_reserved' or c[2] == 'cb_dialing' or c[2] == 'cb_answered') then
  if c[2] == 'cb_reserved' then
    callback_release(call, req.sid, token, now)
    callback_rejoin(call, req.sid, now)
    return {'expired_callback', queue, 'rejoined'}
  end
  local done = callback_attempt_over(call, req.sid, token, 'lost', now, false, true)
  return {'expired_callback', queue, done or 'stale'}
end
if req.kind == 'reservation' then
  if call_holds and c[2] == 'ringing' then
    -- A late Dial action may still move the call on to its next agent, or, if
    -- the agent answered after all, take it back (`settle`).
    redis.call('HSET', call, 'status', 'retry', 'token', '', 'settled_at', now,
      'last_token', token, 'last_agent', id)
  end
  if agent_holds and a[2] == 'reserved' then
    release_agent(agent, id, 'miss', now, t)
    offer_if_free(agent, id, now)
    return {'expired_reservation', queue}
  end
else
  if call_holds and c[2] == 'on_call' then
    redis.call('HSET', call, 'status', 'ended', 'token', '', 'settled_at', now)
    redis.call('PEXPIRE', call, req.tail_ms)
    redis.call('ZREM', K.reconcile, req.sid)
    emit_call('call_ended', req.sid, {reason = 'max_call'})
    log_agent_call(req.sid, now)
    stats_handled(call, now, t.wrap_up_ms)
  end
  if agent_holds and a[2] == 'on_call' then
    release_agent(agent, id, 'wrap_up', now, t)
    offer_if_free(agent, id, now)
    return {'expired_lease', queue}
  end
end
return {'stale', queue}
