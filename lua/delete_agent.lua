--[[ delete_agent: remove an agent; a call it holds ends normally.

KEYS[1]  agent hash  sb:{ns}:agent:<id>; `agents`, `counts`, `wrap_ups`,
         `presence`, its tokens (`tokens:<id>`, `token:<token id>`), its last
         calls (`agent_calls:<id>`) and its queues' `avail:<queue>` lines are
         built from the prefix
ARGV[1]  JSON DeleteAgentRequest (src/store/requests.rs): {prefix, id, by (who
         asked)}

Reply: 1 deleted, 0 no such agent. Its tokens stop working at once. The
deletion is an event (`agent_state`, state 'deleted', with `by`) in `events`
and `audit`, built from the prefix.
An agent holding a call keeps its hash, flagged `deleted` (and counted nowhere),
until that call is over, so the call's callbacks still find it; it is in no
queue meanwhile.
]]
local agent, id = KEYS[1], req.id

if redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1' then
  return 0
end
local queues = queues_of(agent)
dequeue(id, queues)
uncount(agent, queues)
redis.call('ZREM', K.wrap_ups, id)
redis.call('ZREM', K.presence, id)
redis.call('SREM', K.agents, id)
revoke_tokens(id)
-- A new agent of the same id starts without the old one's calls.
redis.call('DEL', K.agent_calls(id))
local state = redis.call('HGET', agent, 'state')
if state == 'reserved' or state == 'on_call' then
  redis.call('HSET', agent, 'deleted', '1')
else
  redis.call('DEL', agent)
end
emit('agent_state', {agent = id, state = 'deleted', previous = state or '', by = req.by})
return 1
