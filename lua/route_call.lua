--[[ route_call: reserve the agent free the longest for a call, or choose its fallback.

KEYS[1]               call hash            sb:{ns}:call:<CallSid>
KEYS[2]               deadlines zset       sb:{ns}:deadlines
KEYS[3 .. 2+Q]        avail zsets of the configured queues (see lib/common.lua)
KEYS[3+Q .. 2+Q+C]    agent hashes of the C candidates named in ARGV
ARGV[1]               Q
ARGV[2 .. 1+Q]        queue names
ARGV[b]   (b = Q+2)   CallSid
ARGV[b+1]             token for a new reservation (random, unique)
ARGV[b+2]             caller (From), kept for affinity and logs
ARGV[b+3]             queue the number belongs to
ARGV[b+4]             ms the call hash lives
ARGV[b+5]             max_attempts of the call's queue
ARGV[b+6]             fallback step taken when no queue of the plan has an agent
ARGV[b+7]             C, the number of candidate agents
ARGV[b+8]             P, the number of plan entries
ARGV[b+9 .. b+8+C]    candidate agent ids, in the order of their KEYS
then P triples        queue name, reservation ms (ring timeout + grace), via

The plan lists the queues to try in order: the call's own queue (via 'queue'),
then the `queue:` steps of its fallback chain (via 'overflow'). In each, the
agent whose score (the ms it became free) is lowest and not in the future is
taken, skipping agents this call already tried.

Reply:
  {'dial', agent, contact, token, queue, via, attempt, fresh}
  {'fallback', step, fresh}
  {'ended'}                  the call is over; nothing to dial
  {'missing', agent}         the next agent in line is not among the candidates:
                             call again with it added (nothing was reserved)
`fresh` is 1 when this call made the decision and 0 when it repeats one already
made for this CallSid (a retried webhook), which reserves nobody new.
]]
local call, deadlines = KEYS[1], KEYS[2]
local queues = queue_keys(3)
local q = tonumber(ARGV[1])
local b = args_base()
local sid, token, caller, home = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
local call_ttl, max_attempts, step = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), ARGV[b + 6]
local nc, np = tonumber(ARGV[b + 7]), tonumber(ARGV[b + 8])

local function decision(fresh)
  local c = redis.call('HMGET', call, 'status', 'agent', 'contact', 'token', 'agent_queue',
    'via', 'attempt', 'step')
  if c[1] == 'ringing' or c[1] == 'on_call' then
    return {'dial', c[2], c[3], c[4], c[5], c[6], tonumber(c[7]), fresh}
  elseif c[1] == 'fallback' then
    return {'fallback', c[8], fresh}
  end
  return {'ended'}
end

local status = redis.call('HGET', call, 'status')
if status and status ~= 'retry' then
  return decision(0)
end

local candidates = {}
for i = 1, nc do
  candidates[ARGV[b + 8 + i]] = KEYS[2 + q + i]
end
local attempt = tonumber(redis.call('HGET', call, 'attempt')) or 0
local tried = {}
for _, id in ipairs(split(redis.call('HGET', call, 'tried'))) do
  tried[id] = true
end
local now = now_ms()

local function reserve(id, agent, queue, reservation_ms, via)
  local contact = redis.call('HGET', agent, 'contact')
  redis.call('HSET', agent, 'state', 'reserved', 'state_since', now, 'free_at', '',
    'call_sid', sid, 'token', token)
  dequeue(id, queues)
  attempt = attempt + 1
  local tried_csv = redis.call('HGET', call, 'tried')
  if tried_csv and tried_csv ~= '' then
    tried_csv = tried_csv .. ',' .. id
  else
    tried_csv = id
  end
  redis.call('HSET', call, 'sid', sid, 'queue', home, 'caller', caller, 'status', 'ringing',
    'agent', id, 'contact', contact, 'token', token,
    'agent_queue', queue, 'via', via, 'attempt', attempt, 'tried', tried_csv,
    'reserved_at', now)
  redis.call('PEXPIRE', call, call_ttl)
  redis.call('ZADD', deadlines, now + reservation_ms,
    'reservation|' .. sid .. '|' .. id .. '|' .. token)
  return decision(1)
end

if attempt < max_attempts then
  local page = 16
  for p = 0, np - 1 do
    local e = b + 9 + nc + 3 * p
    local queue, reservation_ms, via = ARGV[e], tonumber(ARGV[e + 1]), ARGV[e + 2]
    local zset = queues[queue]
    local offset = 0
    while zset do
      local ids = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', offset, page)
      if #ids == 0 then
        break
      end
      for _, id in ipairs(ids) do
        if tried[id] then
          offset = offset + 1
        else
          local agent = candidates[id]
          if not agent then
            return {'missing', id}
          end
          local state = redis.call('HGET', agent, 'state')
          if (state == 'available' or state == 'wrap_up')
              and redis.call('HGET', agent, 'deleted') ~= '1' then
            return reserve(id, agent, queue, reservation_ms, via)
          end
          -- A member whose agent is gone or busy is a leftover: drop it.
          redis.call('ZREM', zset, id)
        end
      end
    end
  end
end

redis.call('HSET', call, 'sid', sid, 'queue', home, 'caller', caller, 'status', 'fallback',
  'step', step, 'agent', '', 'token', '')
redis.call('PEXPIRE', call, call_ttl)
return decision(1)
