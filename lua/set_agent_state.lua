--[[ set_agent_state: the admin API moves an agent to available, away or offline.

KEYS[1]            agent hash          sb:{ns}:agent:<id>
KEYS[2 .. 1+Q]     avail zsets of the configured queues (see lib/common.lua)
ARGV[1]            Q
ARGV[2 .. 1+Q]     queue names
ARGV[Q+2]          target state: 'available' | 'away' | 'offline'
ARGV[Q+3]          force: '1' to move an agent that holds a call, else '0'

Reply: {'not_found'} | {'conflict', state} | agent_reply('ok').
`available` resets missed_in_row. An agent already free keeps its place in line;
one in wrap-up or no-answer delay becomes eligible now. Forcing an agent off a
call clears its token, so that call's late callbacks no longer touch it.
]]
local agent = KEYS[1]
local queues = queue_keys(2)
local b = args_base()
local target, force = ARGV[b], ARGV[b + 1]

if redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1' then
  return {'not_found'}
end
local state = redis.call('HGET', agent, 'state')
if (state == 'reserved' or state == 'on_call') and force ~= '1' then
  return {'conflict', state}
end

local now = now_ms()
local id = redis.call('HGET', agent, 'id')
dequeue(id, queues)
if target == 'available' then
  local free_at = tonumber(redis.call('HGET', agent, 'free_at'))
  local free = state == 'available' or state == 'wrap_up'
  if not (free and free_at and free_at <= now) then
    free_at = now
  end
  if state ~= 'available' then
    redis.call('HSET', agent, 'state_since', now)
  end
  redis.call('HSET', agent, 'state', 'available', 'free_at', free_at, 'missed_in_row', 0,
    'call_sid', '', 'token', '', 'released_token', '')
  enqueue(id, redis.call('HGET', agent, 'queues'), queues, free_at)
else
  if state ~= target then
    redis.call('HSET', agent, 'state_since', now)
  end
  redis.call('HSET', agent, 'state', target, 'free_at', '', 'call_sid', '', 'token', '',
    'released_token', '')
end
return agent_reply('ok', agent, now)
