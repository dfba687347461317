--[[ agents.lua: an agent's moves, shared by every script that changes one.

An agent hash (`agent:<id>`) knows its queues (`queues`, comma separated), so a
move touches only those queues' keys, never the whole routing table.

Per-queue counts: the `counts` hash holds `<queue>|<state>` -> agents, changed by
`set_state` in the same script as the move itself, so the gauges and queue
documents read O(queues) instead of every agent. A deleted agent that still holds
a call (`deleted` = 1) is counted nowhere.

Wrap-up ends by time, without a script: `wrap_ups` (id -> the ms it ends) lets a
worker turn ended wrap-ups into `available` once a sweep (settle_wrap_ups.lua),
so the counts catch up within one sweep interval.
]]

local function count(queues, state, by)
  for _, queue in ipairs(queues) do
    local field = queue .. '|' .. state
    -- A field that reaches 0 is dropped: the hash holds only what exists.
    if redis.call('HINCRBY', K.counts, field, by) <= 0 then
      redis.call('HDEL', K.counts, field)
      forecast_state_emptied(queue, state)
    end
  end
end

-- Moves an agent to `state` and sets the other `fields` ({name, value, ...}).
-- Every change of an agent's `state` goes through here. `by` (optional): who
-- asked for the move through the API; then the event is emitted even when the
-- state stays the same (the audit trail records every such request), and names
-- the call the agent held before, if the move took it off one (a forced move).
-- `reason` (an away reason, checked by Rust against the routing file's list)
-- is kept as `away_reason`; any move without one clears it, so a reason never
-- outlives the away it was given with. A new reason is an event even in the
-- same state.
local function set_state(agent, id, state, fields, by, reason)
  local a = redis.call('HMGET', agent, 'state', 'queues', 'deleted', 'call_sid', 'away_reason')
  local old = a[1]
  local old_reason = a[5] or nil
  if reason then
    redis.call('HSET', agent, 'away_reason', reason)
  elseif old_reason then
    redis.call('HDEL', agent, 'away_reason')
  end
  if old ~= state and a[3] ~= '1' then
    local queues = split(a[2])
    -- The new state first: between the two, the agent is not taken for
    -- signed out (lib/forecast.lua forecast_state_emptied).
    count(queues, state, 1)
    if old then
      count(queues, old, -1)
    end
  end
  if old == 'wrap_up' and state ~= 'wrap_up' then
    redis.call('ZREM', K.wrap_ups, id)
  end
  redis.call('HSET', agent, 'state', state, unpack(fields or {}))
  if old ~= state or by or old_reason ~= reason then
    local a2 = redis.call('HMGET', agent, 'call_sid', 'free_at', 'missed_in_row')
    local call_sid = a2[1]
    if by and (not call_sid or call_sid == '') then
      call_sid = a[4]
    end
    -- When a free agent is next offered a call (the no-answer delay or the
    -- end of wrap-up): a console shows "missed — free in 23 s", not a bare
    -- "available" beside waiting callers.
    local free_at = tonumber(a2[2])
    if free_at and free_at <= now_ms() then
      free_at = nil
    end
    emit('agent_state', {agent = id, state = state, previous = old or '',
      call_sid = (call_sid and call_sid ~= '' and call_sid) or nil, by = by,
      away_reason = reason, available_at = free_at, missed_in_row = tonumber(a2[3]) or 0})
  end
end

-- Takes a whole agent out of the counts (deleted, or leaving queues).
local function uncount(agent, queues)
  local a = redis.call('HMGET', agent, 'state', 'deleted')
  if a[1] and a[2] ~= '1' then
    count(queues, a[1], -1)
  end
end

-- Offers the agent in each of `queues`, eligible from `free_at`: in the
-- queue's line of free agents, in its line of free agents with each of its
-- skills (`skill_avail:<queue>:<skill>`, the index a call's needs are walked
-- by, rarest skill first, instead of every free agent), and in the lines of
-- the queue's published alternatives it satisfies (lib/skills.lua).
local function enqueue(id, queues, free_at)
  local skills = parse_skills(redis.call('HGET', K.agent(id), 'skills'))
  for _, queue in ipairs(queues) do
    redis.call('ZADD', K.avail(queue), free_at, id)
    for skill in pairs(skills) do
      redis.call('ZADD', K.skill_avail(queue, skill), free_at, id)
    end
    alt_lines_add(queue, id, skills, free_at)
  end
end

-- Takes the agent out of each of `queues`, with the skills it has now (a
-- change of skills dequeues before it is stored).
local function dequeue(id, queues)
  local skills = parse_skills(redis.call('HGET', K.agent(id), 'skills'))
  for _, queue in ipairs(queues) do
    redis.call('ZREM', K.avail(queue), id)
    for skill in pairs(skills) do
      redis.call('ZREM', K.skill_avail(queue, skill), id)
    end
    alt_lines_remove(queue, id, skills)
  end
end

local function queues_of(agent)
  return split(redis.call('HGET', agent, 'queues'))
end

-- Free right now: in line and not deleted.
local function is_free(agent)
  local a = redis.call('HMGET', agent, 'state', 'deleted')
  return (a[1] == 'available' or a[1] == 'wrap_up') and a[2] ~= '1'
end

-- {code, now, field, value, ...}: a script's reply carrying the agent's new state,
-- so the caller needs no second round trip to show it.
local function agent_reply(code, agent, now)
  local reply = {code, tostring(now)}
  for _, v in ipairs(redis.call('HGETALL', agent)) do
    reply[#reply + 1] = v
  end
  return reply
end

-- Frees an agent whose attempt is over, and returns its new state:
--   how = 'wrap_up'  the call happened: eligible again at now + t.wrap_up_ms
--   how = 'miss'     no answer, busy, failed or expired: skipped for
--                    t.delay_ms, set away after t.max_missed misses in a row
--   how = 'free'     the caller hung up while it rang: eligible at once
-- `t` holds the call's timings. An agent deleted while it held the call is
-- removed now ('deleted'). The agent keeps the attempt's token as
-- `released_token` until its next reservation or admin change, so a late report
-- of that very attempt (answered after all) can take it back (settle).
local function release_agent(agent, id, how, now, t)
  local queues = queues_of(agent)
  local sid = redis.call('HGET', agent, 'call_sid')
  if sid and sid ~= '' then
    -- When it is next offered a call: the end of its wrap-up or no-answer
    -- delay (an agent set away after too many misses: now).
    local free_at = now
    if how == 'wrap_up' then
      free_at = now + t.wrap_up_ms
    elseif how == 'miss' then
      free_at = now + (t.delay_ms or 0)
    end
    forecast_cycle(K.call(sid), how, free_at)
  end
  dequeue(id, queues)
  if redis.call('HGET', agent, 'deleted') == '1' then
    redis.call('DEL', agent)
    return 'deleted'
  end
  local released = redis.call('HGET', agent, 'token') or ''
  if how == 'wrap_up' then
    local free_at = now + t.wrap_up_ms
    set_state(agent, id, 'wrap_up', {'state_since', now, 'free_at', free_at,
      'call_sid', '', 'token', '', 'released_token', released, 'missed_in_row', 0})
    redis.call('ZADD', K.wrap_ups, free_at, id)
    enqueue(id, queues, free_at)
    return 'wrap_up'
  end
  if how == 'miss' then
    local missed = redis.call('HINCRBY', agent, 'missed_in_row', 1)
    if missed >= t.max_missed then
      set_state(agent, id, 'away', {'state_since', now, 'free_at', '',
        'call_sid', '', 'token', '', 'released_token', released})
      return 'away'
    end
    local free_at = now + t.delay_ms
    set_state(agent, id, 'available', {'state_since', now, 'free_at', free_at,
      'call_sid', '', 'token', '', 'released_token', released})
    enqueue(id, queues, free_at)
    return 'available'
  end
  set_state(agent, id, 'available', {'state_since', now, 'free_at', now,
    'call_sid', '', 'token', '', 'released_token', released})
  enqueue(id, queues, now)
  return 'available'
end

-- Drops every token of agent `id`; returns how many there were.
local function revoke_tokens(id)
  local set = K.tokens(id)
  local ids = redis.call('SMEMBERS', set)
  for _, token_id in ipairs(ids) do
    redis.call('DEL', K.token(token_id))
  end
  redis.call('DEL', set)
  return #ids
end

-- The agent was heard from at `now`: with heartbeats on (`heartbeat_ms` > 0),
-- its presence deadline moves to now + 2 × heartbeat_ms.
local function seen(agent, id, now)
  redis.call('HSET', agent, 'seen_at', now)
  local every = tonumber(redis.call('HGET', agent, 'heartbeat_ms')) or 0
  if every > 0 then
    redis.call('ZADD', K.presence, now + 2 * every, id)
  end
end

-- A free agent with heartbeats on must be heard from within 2 × heartbeat_ms
-- of `now`, or sooner if a deadline already runs (LT: a shorter interval set
-- since takes effect); without heartbeats it has none.
local function expect_heartbeat(agent, id, now)
  local every = tonumber(redis.call('HGET', agent, 'heartbeat_ms')) or 0
  if every > 0 then
    redis.call('ZADD', K.presence, 'LT', now + 2 * every, id)
  else
    redis.call('ZREM', K.presence, id)
  end
end
