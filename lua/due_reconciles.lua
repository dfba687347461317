--[[ due_reconciles: answered calls with no report for `quiet_ms`, for the worker
to look up at Twilio (SPEC 1: with REST credentials, an agent `on_call` without
any callback for SWITCHBOARD_RECONCILE_AFTER_SECS). Each one returned is pushed
back by `quiet_ms`, which is its claim: another worker does not ask about it
again before then.

KEYS[1]  reconcile zset  sb:{ns}:reconcile (CallSid of an answered call,
         scored by its answer or this script's last claim, ms; the scripts that
         end a call remove it); the call hashes are built from the prefix
ARGV[1]  JSON ReconcileRequest (src/store/requests.rs): {prefix, quiet_ms,
         batch}

A member whose call is no longer on a call is dropped; one whose agent leg's
CallSid was never reported is pushed back (nothing to ask Twilio about; the
lease still ends it at max_call_secs).

Reply: flat {CallSid, agent leg CallSid, agent, token, account, ...} (account:
the call's AccountSid, '' when its webhook had none).
]]
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - req.quiet_ms, 'LIMIT', 0, req.batch)
local reply = {}
for _, sid in ipairs(due) do
  local c = redis.call('HMGET', K.call(sid), 'status', 'leg_sid', 'agent', 'token', 'account')
  if c[1] ~= 'on_call' then
    redis.call('ZREM', KEYS[1], sid)
  else
    redis.call('ZADD', KEYS[1], now, sid)
    if c[2] and c[2] ~= '' then
      reply[#reply + 1] = sid
      reply[#reply + 1] = c[2]
      reply[#reply + 1] = c[3] or ''
      reply[#reply + 1] = c[4] or ''
      reply[#reply + 1] = c[5] or ''
    end
  end
end
return reply
