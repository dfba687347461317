--[[ delete_agent: remove an agent; a call it holds ends normally.

KEYS[1]            agent hash          sb:{ns}:agent:<id>
KEYS[2]            agent index set     sb:{ns}:agents
KEYS[3 .. 2+Q]     avail zsets of the configured queues (see lib/common.lua)
ARGV[1]            Q
ARGV[2 .. 1+Q]     queue names
ARGV[Q+2]          id

Reply: 1 deleted, 0 no such agent.
An agent holding a call keeps its hash, flagged `deleted`, until that call is
over, so the call's callbacks still find it; it is in no queue meanwhile.
]]
local agent = KEYS[1]
local queues = queue_keys(3)
local id = ARGV[args_base()]

if redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1' then
  return 0
end
dequeue(id, queues)
redis.call('SREM', KEYS[2], id)
local state = redis.call('HGET', agent, 'state')
if state == 'reserved' or state == 'on_call' then
  redis.call('HSET', agent, 'deleted', '1')
else
  redis.call('DEL', agent)
end
return 1
