--[[ sweep_deadline: release one reservation or lease whose deadline has passed.

Any number of workers may sweep at once: the member is removed by the first, and
every change is fenced by the token, so an attempt already settled by a callback
is left alone.

KEYS[1]            deadlines zset    sb:{ns}:deadlines
KEYS[2]            call hash         sb:{ns}:call:<CallSid>
KEYS[3]            agent hash        sb:{ns}:agent:<id>
KEYS[4 .. 3+Q]     avail zsets of the configured queues (see lib/common.lua)
ARGV[1]            Q
ARGV[2 .. 1+Q]     queue names
ARGV[Q+2]          the member ('reservation|sid|id|token' or 'lease|sid|id|token')
ARGV[Q+3]          kind: 'reservation' or 'lease'
ARGV[Q+4]          agent id
ARGV[Q+5]          token
ARGV[Q+6 .. Q+8]   wrap-up ms, no-answer delay ms, max missed in row: used when
                   the call hash is gone (its own values are used otherwise)

Reply: {code, queue}
  'expired_reservation'  the agent was released as a miss
  'expired_lease'        the agent was moved to wrap-up
  'stale'                the attempt had been settled; the member is dropped
  'not_due' | 'gone'     nothing to do (another worker was first, or not yet)
`queue` is the queue the agent was taken from ('' if unknown).
]]
local deadlines, call, agent = KEYS[1], KEYS[2], KEYS[3]
local queues = queue_keys(4)
local b = args_base()
local member, kind, id, token = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]

local score = redis.call('ZSCORE', deadlines, member)
if not score then
  return {'gone', ''}
end
local now = now_ms()
if tonumber(score) > now then
  return {'not_due', ''}
end
redis.call('ZREM', deadlines, member)

local c = redis.call('HMGET', call, 'token', 'status', 'agent_queue', 'wrap_up_ms', 'delay_ms', 'max_missed')
local queue = c[3] or ''
local wrap_up_ms = tonumber(c[4]) or tonumber(ARGV[b + 4])
local delay_ms = tonumber(c[5]) or tonumber(ARGV[b + 5])
local max_missed = tonumber(c[6]) or tonumber(ARGV[b + 6])
local call_holds = c[1] == token
local a = redis.call('HMGET', agent, 'token', 'state')
local agent_holds = a[1] == token

if kind == 'reservation' then
  if call_holds and c[2] == 'ringing' then
    -- A late Dial action may still move the call on to its next agent, or, if
    -- the agent answered after all, take it back (settle_attempt.lua).
    redis.call('HSET', call, 'status', 'retry', 'token', '', 'settled_at', now,
      'last_token', token, 'last_agent', id)
  end
  if agent_holds and a[2] == 'reserved' then
    release_agent(agent, id, queues, 'miss', now, wrap_up_ms, delay_ms, max_missed)
    return {'expired_reservation', queue}
  end
else
  if call_holds and c[2] == 'on_call' then
    redis.call('HSET', call, 'status', 'ended', 'token', '', 'settled_at', now)
  end
  if agent_holds and a[2] == 'on_call' then
    release_agent(agent, id, queues, 'wrap_up', now, wrap_up_ms, delay_ms, max_missed)
    return {'expired_lease', queue}
  end
end
return {'stale', queue}
