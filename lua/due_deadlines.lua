--[[ due_deadlines: the reservations and leases whose deadline has passed.

KEYS[1]  deadlines zset  sb:{ns}:deadlines
ARGV[1]  JSON DueRequest (src/store/requests.rs): {prefix, limit}

Reply: members 'reservation|<CallSid>|<agent>|<token>' or 'lease|...', oldest
deadline first, at most `limit`. Read-only; a script only to compare with the
Redis clock.
]]
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, req.limit)
