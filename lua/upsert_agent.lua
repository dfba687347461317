--[[ upsert_agent: create an agent, or change its name, contact and queues.

KEYS[1]            agent hash          sb:{ns}:agent:<id>
KEYS[2]            agent index set     sb:{ns}:agents
KEYS[3 .. 2+Q]     avail zsets of the configured queues (see lib/common.lua)
ARGV[1]            Q
ARGV[2 .. 1+Q]     queue names
ARGV[Q+2]          id
ARGV[Q+3]          display name
ARGV[Q+4]          contact (already validated)
ARGV[Q+5]          queues the agent belongs to, comma separated (already validated)

Reply: agent_reply(code) with code 'created' or 'updated'.
A new agent starts offline. An agent who is free keeps its place in line: it is
re-offered in its new queues at the score it already had. An agent that was
deleted while on a call and is put back keeps its call.
]]
local agent = KEYS[1]
local queues = queue_keys(3)
local b = args_base()
local id, name, contact, member_of = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
local now = now_ms()

redis.call('SADD', KEYS[2], id)
if redis.call('EXISTS', agent) == 0 then
  redis.call('HSET', agent, 'id', id, 'name', name, 'contact', contact, 'queues', member_of,
    'state', 'offline', 'state_since', now, 'free_at', '', 'call_sid', '', 'token', '',
    'missed_in_row', 0)
  return agent_reply('created', agent, now)
end

redis.call('HSET', agent, 'name', name, 'contact', contact, 'queues', member_of)
redis.call('HDEL', agent, 'deleted')
local state = redis.call('HGET', agent, 'state')
if state == 'available' or state == 'wrap_up' then
  local free_at = tonumber(redis.call('HGET', agent, 'free_at')) or now
  dequeue(id, queues)
  enqueue(id, member_of, queues, free_at)
end
return agent_reply('updated', agent, now)
