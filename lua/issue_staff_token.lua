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
store_token(set, K.staff_token, req.token_id,
  {'name', name, 'role', req.role, 'hash', req.hash}, expires, req.ttl_ms, req.max_live, now)
emit('token_issued', {holder = 'supervisor:' .. name, role = req.role,
  expires_at = expires, by = req.by})
return {'ok', tostring(expires)}
