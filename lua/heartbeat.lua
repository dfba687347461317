--[[ heartbeat: an agent's console or softphone says it is still there.

KEYS[1]  agent hash  sb:{ns}:agent:<id>; `presence` is built from the prefix
ARGV[1]  JSON HeartbeatRequest (src/store/requests.rs): {prefix}

Reply: {'ok'} | {'not_found'}.
Records `seen_at`; an agent with `heartbeat_ms` > 0 gets a new presence
deadline, 2 × heartbeat_ms from now (expire_presence.lua sets it offline past
it).
]]
local agent = KEYS[1]
if redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1' then
  return {'not_found'}
end
seen(agent, redis.call('HGET', agent, 'id'), now_ms())
return {'ok'}
