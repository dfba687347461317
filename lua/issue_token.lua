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
store_token(K.tokens(id), K.token, req.token_id, {'agent', id, 'hash', req.hash},
  expires, req.ttl_ms, req.max_live, now)
emit('token_issued', {holder = 'agent:' .. id, role = 'agent', expires_at = expires,
  by = req.by})
return {'ok', tostring(expires)}
