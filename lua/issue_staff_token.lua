--[[ issue_staff_token: stores a supervisor's or a wallboard's token: its id, its
role, and only the SHA-256 of its secret, with its expiry.

KEYS[1]  set  sb:{ns}:staff_tokens:<name> (the name's token ids);
         `staff_token:<token id>` is built from the prefix
ARGV[1]  JSON IssueStaffTokenRequest (src/store/requests.rs): {prefix, name,
         role ('supervisor' | 'wallboard'), token_id, hash (hex SHA-256 of the
         secret), ttl_ms, max_live, by (who asked: `admin`)}

Reply: {'ok', expires_at_ms}.
The token's hash `staff_token:<token id>` ({name, role, expires_at, hash})
expires by itself (PEXPIREAT); the set lists the name's token ids, so revoking
finds them, and lives as long as its longest-lived token. A name keeps at most
`max_live` live tokens: past that, the ones expiring first are dropped.
The issue is a `token_issued` event ({holder 'supervisor:<name>', role,
expires_at, by}; never the token) in `events` and `audit`, built from the
prefix.
]]
local set, name = KEYS[1], req.name
local now = now_ms()
local expires = now + req.ttl_ms
local live = {}
for _, token_id in ipairs(redis.call('SMEMBERS', set)) do
  local at = tonumber(redis.call('HGET', K.staff_token(token_id), 'expires_at'))
  if at and at > now then
    live[#live + 1] = {token_id, at}
  else
    redis.call('SREM', set, token_id)
  end
end
-- Expiring first goes first; same ms: the smaller id (a fixed order).
table.sort(live, function(a, b) return a[2] < b[2] or (a[2] == b[2] and a[1] < b[1]) end)
for i = 1, #live - req.max_live + 1 do
  redis.call('DEL', K.staff_token(live[i][1]))
  redis.call('SREM', set, live[i][1])
end
local token = K.staff_token(req.token_id)
redis.call('HSET', token, 'name', name, 'role', req.role, 'expires_at', expires,
  'hash', req.hash)
redis.call('PEXPIREAT', token, expires)
redis.call('SADD', set, req.token_id)
if redis.call('PTTL', set) < req.ttl_ms then
  redis.call('PEXPIREAT', set, expires)
end
emit('token_issued', {holder = 'supervisor:' .. name, role = req.role,
  expires_at = expires, by = req.by})
return {'ok', tostring(expires)}
