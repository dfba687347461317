--[[ common.lua: helpers shared by every script.

src/store/scripts.rs prepends this file to each script in lua/ before loading it,
the way bullmq's "@include" does, so no helper is copied between scripts. It
defines functions only and touches no key.

Every script that moves an agent in or out of queues follows one convention so
`queue_keys` can map queue names to keys without building a key in Lua
(Redis Cluster needs every key in KEYS):
  ARGV[1]                 Q, the number of configured queues
  ARGV[2 .. 1+Q]          their names
  KEYS[first .. first+Q-1] their `avail` sorted sets, in the same order
Script-specific ARGV start at ARGV[Q + 2].
]]

-- Milliseconds since the epoch from the Redis clock, shared by every replica.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Queue name -> avail zset key, for the Q keys starting at KEYS[first].
local function queue_keys(first)
  local map = {}
  for i = 0, tonumber(ARGV[1]) - 1 do
    map[ARGV[2 + i]] = KEYS[first + i]
  end
  return map
end

-- Index of the first script-specific ARGV.
local function args_base()
  return tonumber(ARGV[1]) + 2
end

-- "a,b,c" -> {'a', 'b', 'c'}; false or '' -> {}.
local function split(csv)
  local out = {}
  if not csv or csv == '' then
    return out
  end
  for item in string.gmatch(csv, '[^,]+') do
    out[#out + 1] = item
  end
  return out
end

-- Offers the agent in every configured queue it belongs to, eligible from free_at.
local function enqueue(id, queues_csv, queues, free_at)
  for _, name in ipairs(split(queues_csv)) do
    local key = queues[name]
    if key then
      redis.call('ZADD', key, free_at, id)
    end
  end
end

-- Takes the agent out of every configured queue, including ones it has since left.
local function dequeue(id, queues)
  for _, key in pairs(queues) do
    redis.call('ZREM', key, id)
  end
end

-- {code, now, field, value, ...}: a script's reply carrying the agent's new state,
-- so the caller needs no second round trip to show it.
local function agent_reply(code, agent_key, now)
  local reply = {code, tostring(now)}
  for _, v in ipairs(redis.call('HGETALL', agent_key)) do
    reply[#reply + 1] = v
  end
  return reply
end

-- Frees an agent whose attempt is over, and returns its new state:
--   how = 'wrap_up'  the call happened: eligible again at now + wrap_up_ms
--   how = 'miss'     no answer, busy, failed or expired: skipped for delay_ms,
--                    set away after max_missed misses in a row
--   how = 'free'     the caller hung up while it rang: eligible at once
-- An agent deleted while it held the call is removed now ('deleted').
-- The agent keeps the attempt's token as `released_token` until its next
-- reservation or admin change, so a late report of that very attempt (answered
-- after all) can take it back: see settle_attempt.lua.
local function release_agent(agent, id, queues, how, now, wrap_up_ms, delay_ms, max_missed)
  dequeue(id, queues)
  if redis.call('HGET', agent, 'deleted') == '1' then
    redis.call('DEL', agent)
    return 'deleted'
  end
  redis.call('HSET', agent, 'released_token', redis.call('HGET', agent, 'token') or '')
  local member_of = redis.call('HGET', agent, 'queues')
  if how == 'wrap_up' then
    local free_at = now + wrap_up_ms
    redis.call('HSET', agent, 'state', 'wrap_up', 'state_since', now, 'free_at', free_at,
      'call_sid', '', 'token', '', 'missed_in_row', 0)
    enqueue(id, member_of, queues, free_at)
    return 'wrap_up'
  end
  if how == 'miss' then
    local missed = redis.call('HINCRBY', agent, 'missed_in_row', 1)
    if missed >= max_missed then
      redis.call('HSET', agent, 'state', 'away', 'state_since', now, 'free_at', '',
        'call_sid', '', 'token', '')
      return 'away'
    end
    local free_at = now + delay_ms
    redis.call('HSET', agent, 'state', 'available', 'state_since', now, 'free_at', free_at,
      'call_sid', '', 'token', '')
    enqueue(id, member_of, queues, free_at)
    return 'available'
  end
  redis.call('HSET', agent, 'state', 'available', 'state_since', now, 'free_at', now,
    'call_sid', '', 'token', '')
  enqueue(id, member_of, queues, now)
  return 'available'
end

-- The deadlines zset member of a reservation or lease.
local function deadline_member(kind, sid, id, token)
  return kind .. '|' .. sid .. '|' .. id .. '|' .. token
end
