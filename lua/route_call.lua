--[[ route_call: reserve the agent free the longest for a call, or choose its fallback.

KEYS[1]               call hash            sb:{ns}:call:<CallSid>
KEYS[2]               deadlines zset       sb:{ns}:deadlines
KEYS[3]               affinity hash        sb:{ns}:affinity (caller -> agent id)
KEYS[4]               affinity expiry zset sb:{ns}:affinity_expiry (caller -> ms)
KEYS[5 .. 4+Q]        avail zsets of the configured queues (see lib/common.lua)
KEYS[5+Q .. 4+Q+C]    agent hashes of the C candidates named in ARGV
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
then P entries of 8   queue name, reservation ms (ring timeout + grace), via,
                      and that queue's wrap-up ms, no-answer delay ms,
                      max missed in row, lease ms (max call), affinity ms

The plan lists the queues to try in order: the call's own queue (via 'queue'),
then the `queue:` steps of its fallback chain (via 'overflow'). On the first
attempt, the agent who last answered this caller is offered first if it is free
right now in the call's own queue (via 'affinity'). Otherwise, in each queue,
the agent whose score (the ms it became free) is lowest and not in the future is
taken, skipping agents this call already tried. The chosen queue's timings are
kept in the call hash for the scripts that end the attempt.

Reply:
  {'dial', agent, contact, token, queue, via, attempt, fresh}
  {'fallback', step, fresh}
  {'ended'}                  the call is over; nothing to dial
  {'missing', agent, ...}    the next agent in line is not among the candidates:
                             call again with these added (up to 64, in line
                             order; nothing was reserved)
`fresh` is 1 when this call made the decision and 0 when it repeats one already
made for this CallSid (a retried webhook), which reserves nobody new.
]]
local call, deadlines, affinity, affinity_expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local queues = queue_keys(5)
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
  candidates[ARGV[b + 8 + i]] = KEYS[4 + q + i]
end
local attempt = tonumber(redis.call('HGET', call, 'attempt')) or 0
local tried = {}
for _, id in ipairs(split(redis.call('HGET', call, 'tried'))) do
  tried[id] = true
end
local now = now_ms()

local ENTRY = 8
local MAX_MISSING = 64
local function entry(p)
  local e = b + 9 + nc + ENTRY * p
  return {
    queue = ARGV[e], reservation_ms = tonumber(ARGV[e + 1]), via = ARGV[e + 2],
    wrap_up_ms = ARGV[e + 3], delay_ms = ARGV[e + 4], max_missed = ARGV[e + 5],
    lease_ms = ARGV[e + 6], affinity_ms = tonumber(ARGV[e + 7]),
  }
end

local function reserve(id, agent, e, via)
  local contact = redis.call('HGET', agent, 'contact')
  redis.call('HSET', agent, 'state', 'reserved', 'state_since', now, 'free_at', '',
    'call_sid', sid, 'token', token, 'released_token', '')
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
    'agent_queue', e.queue, 'via', via, 'attempt', attempt, 'tried', tried_csv,
    'reserved_at', now, 'last_token', '', 'last_agent', '',
    'wrap_up_ms', e.wrap_up_ms, 'delay_ms', e.delay_ms, 'max_missed', e.max_missed,
    'lease_ms', e.lease_ms, 'affinity_ms', e.affinity_ms)
  redis.call('PEXPIRE', call, call_ttl)
  redis.call('ZADD', deadlines, now + e.reservation_ms,
    deadline_member('reservation', sid, id, token))
  return decision(1)
end

local function free_now(agent)
  local state = redis.call('HGET', agent, 'state')
  return (state == 'available' or state == 'wrap_up')
    and redis.call('HGET', agent, 'deleted') ~= '1'
end

-- Affinity: only on the first attempt, only if that agent is free right now.
local home_entry = entry(0)
if attempt == 0 and np > 0 and caller ~= '' and home_entry.affinity_ms > 0 then
  local preferred = redis.call('HGET', affinity, caller)
  local until_ms = tonumber(redis.call('ZSCORE', affinity_expiry, caller))
  local score = preferred and tonumber(redis.call('ZSCORE', queues[home_entry.queue], preferred))
  if until_ms and until_ms > now and score and score <= now then
    local agent = candidates[preferred]
    if not agent then
      return {'missing', preferred}
    end
    if free_now(agent) then
      return reserve(preferred, agent, home_entry, 'affinity')
    end
  end
end

if attempt < max_attempts then
  local page = 32
  for p = 0, np - 1 do
    local e = entry(p)
    local zset = queues[e.queue]
    local offset = 0
    -- Once one agent in line is not a candidate, nothing further down may be
    -- taken (that would skip it); the scan goes on only to name more missing
    -- agents, so the next round has the keys even if the head of the line moves.
    local missing = {'missing'}
    while zset and #missing <= MAX_MISSING do
      local ids = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', offset, page)
      if #ids == 0 then
        break
      end
      for _, id in ipairs(ids) do
        local agent = candidates[id]
        if tried[id] or #missing > 1 or not agent then
          if not tried[id] and not agent and #missing <= MAX_MISSING then
            missing[#missing + 1] = id
          end
          offset = offset + 1
        elseif free_now(agent) then
          return reserve(id, agent, e, e.via)
        else
          -- A member whose agent is gone or busy is a leftover: drop it.
          redis.call('ZREM', zset, id)
        end
      end
    end
    if #missing > 1 then
      return missing
    end
  end
end

redis.call('HSET', call, 'sid', sid, 'queue', home, 'caller', caller, 'status', 'fallback',
  'step', step, 'agent', '', 'token', '')
redis.call('PEXPIRE', call, call_ttl)
return decision(1)
