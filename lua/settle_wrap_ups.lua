--[[ settle_wrap_ups: agents whose wrap-up has ended become `available` in the
stored state too, so the per-queue counts catch up (wrap-up ends by time, with no
script of its own). One worker a sweep interval does it: the lease is taken in
this same script (`SET NX PX`, BullMQ's stalled-check pattern), and the others
skip.

KEYS[1]  wrap-ups zset  sb:{ns}:wrap_ups (id -> ms the wrap-up ends); the agent
         hashes, `counts` and `lease:wrap_ups` are built from the prefix
ARGV[1]  JSON WrapUpsRequest (src/store/requests.rs): {prefix, lease_ms, limit}

Reply: how many agents were settled, or -1 when another worker holds the lease
(taken only when some wrap-up is due, so an idle namespace writes nothing).
A full batch (`limit`) gives the lease back, so the same worker goes on at once.
An agent keeps its place in line and its `free_at`; only its state changes.
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, req.limit)
if #due == 0 then
  return 0
end
if not redis.call('SET', K.lease('wrap_ups'), '1', 'NX', 'PX', req.lease_ms) then
  return -1
end
for _, id in ipairs(due) do
  local agent = K.agent(id)
  if redis.call('HGET', agent, 'state') == 'wrap_up' then
    -- state_since becomes the end of the wrap-up, as the agent document shows it.
    set_state(agent, id, 'available', {'state_since', redis.call('HGET', agent, 'free_at')})
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
if #due >= req.limit then
  redis.call('DEL', K.lease('wrap_ups'))
end
return #due
