--[[ revoke_staff_tokens: every token of one supervisor or wallboard name stops
working at once.

KEYS[1]  set  sb:{ns}:staff_tokens:<name>; each `staff_token:<token id>` is built
         from the prefix
ARGV[1]  JSON RevokeStaffTokensRequest (src/store/requests.rs): {prefix, name,
         by (who asked: `admin`)}

Reply: {'ok', revoked} (how many live tokens there were) | {'none'} (none: nothing
changed, no event).
A revocation is a `tokens_revoked` event ({holder 'supervisor:<name>', revoked,
by}) in `events` and `audit`, built from the prefix.
]]
local set, name = KEYS[1], req.name
local now = now_ms()
local revoked = 0
for _, token_id in ipairs(redis.call('SMEMBERS', set)) do
  local token = K.staff_token(token_id)
  local at = tonumber(redis.call('HGET', token, 'expires_at'))
  if at and at > now then
    revoked = revoked + 1
  end
  redis.call('DEL', token)
end
redis.call('DEL', set)
if revoked == 0 then
  return {'none'}
end
emit('tokens_revoked', {holder = 'supervisor:' .. name, revoked = revoked, by = req.by})
return {'ok', revoked}
