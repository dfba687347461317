--[[ upsert_agent: create an agent, or change its name, contact and queues.

KEYS[1]  agent hash  sb:{ns}:agent:<id>; `agents`, `counts`, `presence`, the
         `avail:<queue>` lines of its old and new queues and their
         `skill_avail:<queue>:<skill>` lines are built from the prefix
ARGV[1]  JSON UpsertAgentRequest (src/store/requests.rs): {prefix, id, name,
         contact, queues: [names], skills ('name:level,…' by name; '' none),
         heartbeat_ms (0: no heartbeats expected),
         spare_token, by (who asked: `admin`, or `import` for `agents
         import`)} (already validated); a free agent joining a queue where
         callers wait is given to one at once

Reply: agent_reply(code) with code 'created' or 'updated'.
A new agent starts offline. An agent who is free keeps its place in line: it is
re-offered in its new queues, with its new skills, at the score it already had. An agent that was
deleted while on a call and is put back keeps its call.
The creation or update is an `agent_state` event carrying `by` (so also in
the audit list `audit`, built from the prefix).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local agent, id = KEYS[1], req.id
local member_of = table.concat(req.queues, ',')
local now = now_ms()

redis.call('SADD', K.agents, id)
if redis.call('EXISTS', agent) == 0 then
  redis.call('HSET', agent, 'id', id, 'name', req.name, 'contact', req.contact,
    'queues', member_of, 'free_at', '', 'call_sid', '', 'token', '', 'missed_in_row', 0,
    'heartbeat_ms', req.heartbeat_ms, 'skills', req.skills)
  set_state(agent, id, 'offline', {'state_since', now}, req.by)
  return agent_reply('created', agent, now)
end

-- Out of the old queues' lines and counts, into the new ones'.
local old_queues = queues_of(agent)
dequeue(id, old_queues)
uncount(agent, old_queues)
redis.call('HSET', agent, 'name', req.name, 'contact', req.contact, 'queues', member_of,
  'heartbeat_ms', req.heartbeat_ms, 'skills', req.skills)
redis.call('HDEL', agent, 'deleted')
local state = redis.call('HGET', agent, 'state')
count(req.queues, state, 1)
if state == 'available' or state == 'wrap_up' then
  enqueue(id, req.queues, tonumber(redis.call('HGET', agent, 'free_at')) or now)
  expect_heartbeat(agent, id, now)
  offer_if_free(agent, id, now)
end
-- Its name, contact or queues changed: the same state, for those who show it.
local after = redis.call('HGET', agent, 'state')
emit('agent_state', {agent = id, state = after, previous = after, by = req.by})
return agent_reply('updated', agent, now)
