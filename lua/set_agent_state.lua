--[[ set_agent_state: the admin API moves an agent to available, away or offline.

KEYS[1]  agent hash  sb:{ns}:agent:<id>; `counts`, `wrap_ups` and its queues'
         `avail:<queue>` lines are built from the prefix
ARGV[1]  JSON SetStateRequest (src/store/requests.rs): {prefix, state:
         'available' | 'away' | 'offline', force: bool (move an agent that holds
         a call), seen: bool (the agent itself asked: it counts as a
         heartbeat), spare_token (an agent set available is given at once to a
         waiting caller of its queues), by (who asked: `admin`,
         `supervisor:NAME`, `agent:ID`), reason (absent, or with 'away' only:
         an away reason of the routing file's list, checked by Rust)}

Reply: {'not_found'} | {'conflict', state} | agent_reply('ok').
`available` resets missed_in_row, and an agent with heartbeats on gets a
presence deadline (`presence`, built from the prefix) if none runs. An agent already free keeps its place in line;
one in wrap-up or no-answer delay becomes eligible now. Forcing an agent off a
call clears its token, so that call's late callbacks no longer touch it.
The move is an `agent_state` event carrying `by`, also when the state stays
the same (so it is in the audit list `audit`, built from the prefix). The
reason is kept as `away_reason`, cleared by any other move (`set_state` in
lib/agents.lua); away with a new reason is an `agent_state` event too.
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local agent, target = KEYS[1], req.state

if redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1' then
  return {'not_found'}
end
local state = redis.call('HGET', agent, 'state')
if (state == 'reserved' or state == 'on_call') and not req.force then
  return {'conflict', state}
end

local now = now_ms()
local id = redis.call('HGET', agent, 'id')
if req.seen then
  seen(agent, id, now)
end
local queues = queues_of(agent)
dequeue(id, queues)
local since = state ~= target and now or redis.call('HGET', agent, 'state_since')
if target == 'available' then
  local free_at = tonumber(redis.call('HGET', agent, 'free_at'))
  local free = state == 'available' or state == 'wrap_up'
  if not (free and free_at and free_at <= now) then
    free_at = now
  end
  set_state(agent, id, 'available', {'state_since', since, 'free_at', free_at,
    'missed_in_row', 0, 'call_sid', '', 'token', '', 'released_token', ''}, req.by)
  enqueue(id, queues, free_at)
  expect_heartbeat(agent, id, now)
  offer_if_free(agent, id, now)
else
  local reason = nil
  if target == 'away' and type(req.reason) == 'string' then
    reason = req.reason
  end
  set_state(agent, id, target, {'state_since', since, 'free_at', '', 'call_sid', '',
    'token', '', 'released_token', ''}, req.by, reason)
end
return agent_reply('ok', agent, now)
