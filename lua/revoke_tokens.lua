--[[ revoke_tokens: every token of one agent stops working at once.

KEYS[1]  agent hash  sb:{ns}:agent:<id>; `tokens:<id>` and each `token:<token id>`
         are built from the prefix
ARGV[1]  JSON RevokeTokensRequest (src/store/requests.rs): {prefix, id, by (who
         asked)}

Reply: {'ok', revoked} | {'not_found'} (no such agent and no tokens left).
A revocation is a `tokens_revoked` event ({holder 'agent:<id>', revoked, by})
in `events` and `audit`, built from the prefix.
]]
local agent, id = KEYS[1], req.id
local revoked = revoke_tokens(id)
if revoked == 0 and (redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1') then
  return {'not_found'}
end
emit('tokens_revoked', {holder = 'agent:' .. id, revoked = revoked, by = req.by})
return {'ok', revoked}
