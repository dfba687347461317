--[[ settle_attempt: apply what Twilio reports about one dial attempt.

Called by the Dial action, the agent leg's statusCallback and the number's call
status callback. Acts only when the token is the one the call holds now, so a
late, duplicated or reordered callback changes nothing.

KEYS[1]            call hash              sb:{ns}:call:<CallSid>
KEYS[2]            agent hash             sb:{ns}:agent:<id>
KEYS[3]            deadlines zset         sb:{ns}:deadlines
KEYS[4]            affinity hash          sb:{ns}:affinity
KEYS[5]            affinity expiry zset   sb:{ns}:affinity_expiry
KEYS[6 .. 5+Q]     avail zsets of the configured queues (see lib/common.lua)
ARGV[1]            Q
ARGV[2 .. 1+Q]     queue names
ARGV[Q+2]          token of the attempt
ARGV[Q+3]          outcome:
                     'answered'   the agent picked up: reserved -> on_call, the
                                  reservation becomes a lease of lease_ms
                     'completed'  the call is over: the agent goes to wrap-up
                     'miss'       no-answer, busy or failed: the agent is released
                                  as a miss and the call may try the next agent
                     'hangup'     the caller hung up: a ringing agent is free at
                                  once (no miss); an answered call goes to wrap-up
                     'picked_up'  a confirm attempt's phone picked up: the agent
                                  has not accepted yet, so it stays reserved, with
                                  its deadline moved to now + ARGV[Q+5]
                     'ended'      a confirm attempt's leg ended: wrap-up if the
                                  agent had accepted (on_call), else a miss (its
                                  voicemail or an unattended phone picked up)
ARGV[Q+4]          agent id
ARGV[Q+5]          ms a picked-up confirm attempt has left to accept

A report of an attempt the worker already released as expired (the call is
waiting for its next attempt, `last_token`) is not lost: 'answered' takes the
agent back on the call and 'completed' ends the call in wrap-up, provided the
agent has done nothing since (its `released_token` is still this token).

Reply: {code, queue, caller, agent_state, call_status}
  code         'applied' | 'recovered' (a late report of an expired attempt)
               | 'stale' (not the current attempt, or already settled)
               | 'unknown' (no such call)
  queue        the call's own queue; caller: its From
  agent_state  what the agent became ('' when untouched)
  call_status  the call's status afterwards: 'on_call', 'retry' (ready for its
               next attempt), 'ended', ...
]]
local call, agent, deadlines, affinity, affinity_expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local queues = queue_keys(6)
local b = args_base()
local token, outcome, id, confirm_ms = ARGV[b], ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3])

if redis.call('EXISTS', call) == 0 then
  return {'unknown', '', '', '', ''}
end
local c = redis.call('HMGET', call, 'status', 'token', 'agent', 'queue', 'caller', 'sid',
  'wrap_up_ms', 'delay_ms', 'max_missed', 'lease_ms', 'affinity_ms', 'last_token', 'last_agent')
local status, held, holder, home, caller, sid = c[1], c[2], c[3], c[4] or '', c[5] or '', c[6]
local function reply(code, agent_state)
  return {code, home, caller, agent_state or '', redis.call('HGET', call, 'status') or ''}
end
local wrap_up_ms, delay_ms = tonumber(c[7]) or 0, tonumber(c[8]) or 0
local max_missed, lease_ms, affinity_ms = tonumber(c[9]) or 1, tonumber(c[10]) or 0, tonumber(c[11]) or 0
local now = now_ms()
local reservation = deadline_member('reservation', sid, id, token)
local lease = deadline_member('lease', sid, id, token)

local function remember_affinity()
  if affinity_ms > 0 and caller ~= '' then
    redis.call('HSET', affinity, caller, id)
    redis.call('ZADD', affinity_expiry, now + affinity_ms, caller)
  end
end

local current = held == token and holder == id and (status == 'ringing' or status == 'on_call')
local late = status == 'retry' and c[12] == token and c[13] == id
  and (outcome == 'answered' or outcome == 'completed')
if late then
  -- The worker released this attempt as unanswered, but the agent did answer.
  local untouched = redis.call('HGET', agent, 'released_token') == token
    and redis.call('HGET', agent, 'token') == ''
  local agent_state = nil
  remember_affinity()
  if outcome == 'answered' then
    redis.call('HSET', call, 'status', 'on_call', 'token', token, 'answered_at', now,
      'last_token', '', 'last_agent', '')
    redis.call('ZADD', deadlines, now + lease_ms, lease)
    if untouched then
      dequeue(id, queues)
      redis.call('HSET', agent, 'state', 'on_call', 'state_since', now, 'free_at', '',
        'call_sid', sid, 'token', token, 'released_token', '', 'missed_in_row', 0)
      agent_state = 'on_call'
    end
  else
    redis.call('HSET', call, 'status', 'ended', 'settled_at', now, 'last_token', '', 'last_agent', '')
    if untouched then
      agent_state = release_agent(agent, id, queues, 'wrap_up', now, wrap_up_ms, delay_ms, max_missed)
    end
  end
  return reply('recovered', agent_state)
end
if not current then
  return reply('stale')
end

-- The agent may have been forced free meanwhile: then only the call is settled.
local agent_holds = redis.call('HGET', agent, 'token') == token

if outcome == 'answered' then
  if status == 'on_call' then
    return reply('stale')
  end
  redis.call('HSET', call, 'status', 'on_call', 'answered_at', now)
  redis.call('ZREM', deadlines, reservation)
  redis.call('ZADD', deadlines, now + lease_ms, lease)
  remember_affinity()
  if agent_holds then
    redis.call('HSET', agent, 'state', 'on_call', 'state_since', now, 'missed_in_row', 0)
    return reply('applied', 'on_call')
  end
  return reply('applied')
end

if outcome == 'picked_up' then
  if status ~= 'ringing' then
    return reply('stale')
  end
  -- Same member, later score: the sweep now waits for the agent's key press.
  redis.call('ZADD', deadlines, now + confirm_ms, reservation)
  return reply('applied', agent_holds and 'reserved' or nil)
end

-- Every other outcome ends this attempt.
redis.call('ZREM', deadlines, reservation, lease)
local how = 'free'
if status == 'on_call' or outcome == 'completed' then
  -- A call that was answered ends in wrap-up, whatever callback reports its end;
  -- 'completed' while still ringing means the answered callback was lost.
  how = 'wrap_up'
  if status == 'ringing' then
    remember_affinity()
  end
elseif outcome == 'miss' or outcome == 'ended' then
  how = 'miss'
end
local agent_state = nil
if agent_holds then
  agent_state = release_agent(agent, id, queues, how, now, wrap_up_ms, delay_ms, max_missed)
end
if how == 'miss' then
  redis.call('HSET', call, 'status', 'retry', 'token', '', 'settled_at', now,
    'last_token', token, 'last_agent', id)
else
  redis.call('HSET', call, 'status', 'ended', 'token', '', 'settled_at', now)
end
return reply('applied', agent_state)
