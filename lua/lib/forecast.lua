--[[ forecast.lua: how long a waiting caller will wait until an agent answers
(docs/waiting-line.md, "Estimated wait").

A caller at position p leaves the line when the p-th agent of its queue frees
up (fewer, when some of those ahead leave first), and waits then for that agent
to answer. So the estimate is

  (1 + (p - 1) x (1 - left / 2)) / (staffed x served / per_agent_ms) + ring_ms

from the queue's agents who are signed in now (`counts`: available, reserved,
on_call, wrap_up) and what its recent takes, agent cycles and waits showed.
per_agent_ms is an agent's time per caller taken from this line:
take_agent_ms once FORECAST_MIN_TAKES takes were timed while the line was
backlogged and the last within TAKE_FRESH_MS, otherwise cycle_ms. A cycle
says how fast an agent frees up; the takes say how many of those agents' free
moments this line got, which an agent shared with other queues (or taken
first by a queue of higher priority) gives to them: a chaos run with agents
in two of four queues, two with priorities, had waits told 63 s too short
from the cycles alone (14.6 s with the takes).
The figures are kept in `forecast:<queue>` (built from the prefix), a hash of
moving averages that stays a few fields whatever the traffic:
  take_agent_ms  the time from a take after which callers still waited to
            the next take, times the agents signed in (the mean of then and
            now): agent time per take while the line was backlogged. Not
            timed across a stretch nobody worked the line: the line emptied,
            or nobody of the queue was signed in (backlog_at is dropped), or
            the agent taken had been free beside it (its callers' steps did
            not accept it) for over IDLE_SLACK_MS
  backlog_at, backlog_staffed  when the last take left callers waiting, and
            the agents signed in then, from which the next take is timed
  take_at   when the last take was timed
  cycle_ms  an agent's time per reservation, from reserved to free again:
            ringing, talk and wrap-up for an answered call; ringing and the
            no-answer delay for a miss
  served    the share of reservations that take a caller out of the line (an
            answered call, or a caller who hung up while the agent rang); a
            miss puts the caller back at the head
  ring_ms   reserved to answered, over answered calls
  left      the share of callers who left the line without an agent
            (abandoned, exit, timeout, removed), over those who left it; those
            ahead of a caller have already stayed a while, so half of it counts
  takes, cycles, waits  how many of each were averaged: a plain mean up to
            WINDOW, then a moving average over about the last WINDOW
A cycle counts in the queue the agent was reserved from (`agent_queue`).
]]

local FORECAST_WINDOW = 50
-- Too few cycles say nothing: no estimate until this many.
local FORECAST_MIN_CYCLES = 5
-- Takes timed in a backlog before they, not the cycles, set the pace.
local FORECAST_MIN_TAKES = 5
-- A pace last timed longer ago says little of today's sharing of agents.
local TAKE_FRESH_MS = 30 * 60000
-- An agent free longer than this beside a waiting line (several sweeps) was
-- not one the line waited for.
local IDLE_SLACK_MS = 5000
local STAFFED_STATES = {'available', 'reserved', 'on_call', 'wrap_up'}
local STAFFED = {}
for _, state in ipairs(STAFFED_STATES) do
  STAFFED[state] = true
end

-- Adds `x` to the moving average `field` of `forecast:<queue>`, counted in
-- `n_field`.
local function forecast_add(queue, n_field, fields)
  local key = K.forecast(queue)
  local names = {n_field}
  for name in pairs(fields) do
    names[#names + 1] = name
  end
  local got = redis.call('HMGET', key, unpack(names))
  local n = math.min((tonumber(got[1]) or 0) + 1, FORECAST_WINDOW)
  local set = {n_field, n}
  for i = 2, #names do
    local avg = tonumber(got[i]) or 0
    set[#set + 1] = names[i]
    set[#set + 1] = avg + (fields[names[i]] - avg) / n
  end
  redis.call('HSET', key, unpack(set))
end

-- An agent reserved for `call` is free again at `free_at` (`how`: 'wrap_up'
-- after an answered call, 'free' when the caller hung up while it rang,
-- 'miss'). A call without `reserved_at` (from before these figures) counts
-- nowhere.
local function forecast_cycle(call, how, free_at)
  local c = redis.call('HMGET', call, 'agent_queue', 'reserved_at', 'answered_at')
  local reserved = tonumber(c[2])
  if not c[1] or c[1] == '' or not reserved then
    return
  end
  forecast_add(c[1], 'cycles', {cycle_ms = math.max(free_at - reserved, 0),
    served = how == 'miss' and 0 or 1})
  local answered = tonumber(c[3])
  if how == 'wrap_up' and answered then
    forecast_add(c[1], 'answers', {ring_ms = math.max(answered - reserved, 0)})
  end
end

-- A caller left `queue`'s line with `outcome` (lib/line.lua record_outcome):
-- answered (a callback connected is one too: it took an agent), or left
-- without an agent. Outcomes of callers who never joined the line (full,
-- closed, no_agents) say nothing of those ahead.
local function forecast_left(queue, outcome)
  if outcome == 'full' or outcome == 'closed' or outcome == 'no_agents' then
    return
  end
  local served = outcome == 'answered' or outcome == 'callback_connected'
  forecast_add(queue, 'waits', {left = served and 0 or 1})
end

-- The queue's agents signed in now (not offline, not away).
local function forecast_staffed(queue)
  local fields = {}
  for i, state in ipairs(STAFFED_STATES) do
    fields[i] = queue .. '|' .. state
  end
  local staffed = 0
  for _, n in ipairs(redis.call('HMGET', K.counts, unpack(fields))) do
    staffed = staffed + (tonumber(n) or 0)
  end
  return staffed
end

-- A waiting caller of `queue` is given an agent free since `free_since`
-- (before the caller leaves the line, whose emptying drops `backlog_at`:
-- lib/line.lua out_of_line): the time since the last take is an interval between
-- takes while callers waited, unless the agent had stood free beside them.
local function forecast_take(queue, now, free_since)
  local key = K.forecast(queue)
  local f = redis.call('HMGET', key, 'backlog_at', 'backlog_staffed')
  local since, staffed = tonumber(f[1]), forecast_staffed(queue)
  local set = {'backlog_at', now, 'backlog_staffed', staffed}
  if since and now - (free_since or now) <= IDLE_SLACK_MS then
    local mean_staffed = (staffed + (tonumber(f[2]) or staffed)) / 2
    forecast_add(queue, 'takes', {take_agent_ms = math.max(now - since, 0) * mean_staffed})
    set[#set + 1], set[#set + 2] = 'take_at', now
  end
  redis.call('HSET', key, unpack(set))
end

-- Stops timing the line from its last take: nobody works it now (its line
-- emptied, or nobody of the queue is signed in).
local function forecast_pause(queue)
  redis.call('HDEL', K.forecast(queue), 'backlog_at', 'backlog_staffed')
end

-- An agent of `queue` left `state` and no agent is left in it
-- (lib/agents.lua count): once nobody of the queue is signed in, the line's
-- next take is not timed from before.
local function forecast_state_emptied(queue, state)
  if STAFFED[state] and forecast_staffed(queue) == 0 then
    forecast_pause(queue)
  end
end

-- The estimated wait (ms) of the caller at `position` in `queue`'s line, and
-- the agents signed in it was made with; nil while nobody is signed in or too
-- few cycles were seen.
local function forecast_wait(queue, position)
  local staffed = forecast_staffed(queue)
  local f = redis.call('HMGET', K.forecast(queue), 'cycles', 'cycle_ms', 'served', 'ring_ms',
    'left', 'takes', 'take_agent_ms', 'take_at')
  local cycles, cycle_ms, served = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0
  if staffed == 0 or cycles < FORECAST_MIN_CYCLES or cycle_ms <= 0 or served <= 0 then
    return nil, staffed
  end
  local per_agent_ms = cycle_ms
  local take_agent_ms = tonumber(f[7]) or 0
  if (tonumber(f[6]) or 0) >= FORECAST_MIN_TAKES and take_agent_ms > 0
      and now_ms() - (tonumber(f[8]) or 0) <= TAKE_FRESH_MS then
    per_agent_ms = take_agent_ms
  end
  local ahead = math.max(position - 1, 0) * (1 - (tonumber(f[5]) or 0) / 2)
  local per_ms = staffed * served / per_agent_ms
  return math.floor((1 + ahead) / per_ms + (tonumber(f[4]) or 0)), staffed
end
