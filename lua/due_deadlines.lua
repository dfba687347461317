--[[ due_deadlines: the reservations and leases whose deadline has passed.

KEYS[1]   deadlines zset   sb:{ns}:deadlines
ARGV[1]   the most members to return

Reply: members 'reservation|<CallSid>|<agent>|<token>' or 'lease|...', oldest
deadline first. Read-only; it is a script only to compare with the Redis clock.
]]
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
