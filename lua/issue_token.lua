--[[ issue_token: stores an agent token: its id, and only the SHA-256 of its
secret, with its expiry.

KEYS[1]  agent hash  sb:{ns}:agent:<id>; `token:<token id>` and `tokens:<id>` are
         built from the prefix
ARGV[1]  JSON IssueTokenRequest (src/store/requests.rs): {prefix, id, token_id,
         hash (hex SHA-256 of the secret), ttl_ms, max_live, by (who asked)}

Reply: {'ok', expires_at_ms} | {'not_found'}.
The token's hash `token:<token id>` ({agent, expires_at, hash}) expires by
itself (PEXPIREAT); `tokens:<id>` lists the agent's token ids, so revoking and
deleting the agent find them. An agent keeps at most `max_live` live tokens:
past that, the ones expiring first are dropped.
The issue is a `token_issued` event ({holder 'agent:<id>', role 'agent',
expires_at, by}; never the token) in `events` and `audit`, built from the
prefix.
]]
local agent, id = KEYS[1], req.id
if redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1' then
  return {'not_found'}
end
local now = now_ms()
local expires = now + req.ttl_ms
local set = K.tokens(id)
local live = {}
for _, token_id in ipairs(redis.call('SMEMBERS', set)) do
  local at = tonumber(redis.call('HGET', K.token(token_id), 'expires_at'))
  if at and at > now then
    live[#live + 1] = {token_id, at}
  else
    redis.call('SREM', set, token_id)
  end
end
-- Expiring first goes first; same ms: the smaller id (a fixed order).
table.sort(live, function(a, b) return a[2] < b[2] or (a[2] == b[2] and a[1] < b[1]) end)
for i = 1, #live - req.max_live + 1 do
  redis.call('DEL', K.token(live[i][1]))
  redis.call('SREM', set, live[i][1])
end
local token = K.token(req.token_id)
redis.call('HSET', token, 'agent', id, 'expires_at', expires, 'hash', req.hash)
redis.call('PEXPIREAT', token, expires)
redis.call('SADD', set, req.token_id)
-- The list lives as long as its longest-lived token.
local left = redis.call('PTTL', set)
if left < req.ttl_ms then
  redis.call('PEXPIREAT', set, expires)
end
emit('token_issued', {holder = 'agent:' .. id, role = 'agent', expires_at = expires,
  by = req.by})
return {'ok', tostring(expires)}
