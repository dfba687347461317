--[[ expire_presence: agents whose heartbeats stopped are set offline, so a
closed console or softphone is never rung. Any number of workers may run it at
once: each due agent is handled by one script, atomically.

KEYS[1]  presence zset  sb:{ns}:presence (id -> ms its presence deadline
         passes); the agent hashes, `counts`, `wrap_ups` and the agents' queues'
         `avail:<queue>` lines are built from the prefix
ARGV[1]  JSON PresenceRequest (src/store/requests.rs): {prefix, limit}

Reply: the ids set offline.
A silent agent that is `available` or in wrap-up goes offline. One that holds a
call (`reserved`, `on_call`) is never touched: it is looked at again after its
heartbeat interval. One already offline or away, deleted, or without
heartbeats leaves the set.
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, req.limit)
local offline = {}
for _, id in ipairs(due) do
  local agent = K.agent(id)
  local a = redis.call('HMGET', agent, 'state', 'deleted', 'heartbeat_ms')
  local every = tonumber(a[3]) or 0
  if not a[1] or a[2] == '1' or every <= 0 then
    redis.call('ZREM', KEYS[1], id)
  elseif a[1] == 'available' or a[1] == 'wrap_up' then
    dequeue(id, queues_of(agent))
    set_state(agent, id, 'offline', {'state_since', now, 'free_at', '', 'call_sid', '',
      'token', '', 'released_token', ''})
    redis.call('ZREM', KEYS[1], id)
    offline[#offline + 1] = id
  elseif a[1] == 'reserved' or a[1] == 'on_call' then
    redis.call('ZADD', KEYS[1], now + every, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return offline
