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
