--[[ prune_affinity: forget caller -> agent affinities older than affinity_days.

KEYS[1]   affinity hash          sb:{ns}:affinity (caller -> agent id)
KEYS[2]   affinity expiry zset   sb:{ns}:affinity_expiry (caller -> ms)
ARGV[1]   the most entries to forget in one run

Reply: how many were forgotten.
]]
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
for _, caller in ipairs(expired) do
  redis.call('HDEL', KEYS[1], caller)
  redis.call('ZREM', KEYS[2], caller)
end
return #expired
