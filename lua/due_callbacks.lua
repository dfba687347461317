--[[ due_callbacks: callbacks whose next try is due go back to their place in
line (lib/callbacks.lua), where the worker's matching gives them an agent.

KEYS[1]  callbacks_retry zset  sb:{ns}:callbacks_retry; the call hashes and
         lines are built from the prefix
ARGV[1]  JSON DueCallbacksRequest (src/store/requests.rs): {prefix, batch}

Reply: how many went back (the worker calls again when it was a whole batch).
]]
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, req.batch)
for _, sid in ipairs(due) do
  redis.call('ZREM', KEYS[1], sid)
  local call = K.call(sid)
  if redis.call('HGET', call, 'status') == 'cb_retry' then
    callback_rejoin(call, sid, now)
  end
end
return #due
