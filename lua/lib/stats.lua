--[[ stats.lua: each queue's figures in time buckets, written by the scripts
where the facts happen, for the service level windows, today's tiles and the
last hour's trend of GET /v1/queues (src/stats.rs reads them; docs/console.md
says what each figure counts).

`stats:<queue>` (built from the prefix, so in the namespace's `{ns}` slot) is a
hash of two rings of slots, each slot one field:
  'm<i>', i = minute mod STATS_MINUTES        one minute
  'q<i>', i = quarter hour mod STATS_QUARTERS one quarter of an hour
whose value is "<bucket>,o,a,w,x,s,aw,h,ht,pk": the bucket's number (minutes or
quarter hours since the epoch), then offered, answered, answered within the
service level, abandoned, short-abandoned (within SHORT_ABANDON_MS), the sum of
answered waits (ms), handled, the sum of handle times (ms), and the most callers
seen waiting. A slot holding an older bucket is stale: the next write resets
it and readers skip it. So the hash never holds more than STATS_MINUTES +
STATS_QUARTERS fields whatever the traffic, and it expires STATS_TTL_MS after
the first write of its latest minute (a queue gone from the routing file leaves
nothing behind).

Quarter hours rather than days: a script does not know the queue's time zone,
and every zone's offset from UTC is a whole number of quarter hours, so any
local day is a run of whole quarter hours the reader sums from the local
midnight (up to 100 of them: a day of 25 hours when clocks fall back).

A call counts in its own queue (the one its number belongs to), whichever
queue's agent answers it: offered once, at its first route; then answered or
abandoned at most once (`stats_end` in the call hash); handled once, when an
answered call ends.
]]

local STATS_MINUTES = 64
local STATS_QUARTERS = 112
local STATS_TTL_MS = 2 * 86400000
local SHORT_ABANDON_MS = 5000
local STAT_NAMES = {'o', 'a', 'w', 'x', 's', 'aw', 'h', 'ht', 'pk'}

-- One slot's new value: `cur` (nil when the field is missing) with `add`
-- added and the peak raised, reset first if it holds another bucket. Second
-- return: true when it was reset (a new bucket begins).
local function stats_slot(cur, bucket, add, peak)
  local v = {}
  if cur then
    for n in string.gmatch(cur, '[^,]+') do
      v[#v + 1] = tonumber(n)
    end
  end
  local fresh = v[1] ~= bucket or #v ~= #STAT_NAMES + 1
  if fresh then
    v = {bucket}
    for i = 1, #STAT_NAMES do
      v[i + 1] = 0
    end
  end
  for i, name in ipairs(STAT_NAMES) do
    if add[name] then
      v[i + 1] = v[i + 1] + add[name]
    end
  end
  if peak and peak > v[#v] then
    v[#v] = peak
  end
  -- Whole numbers only, so "%d" never meets a fraction.
  for i = 1, #v do
    v[i] = string.format('%d', v[i])
  end
  return table.concat(v, ','), fresh
end

-- Adds `add` ({name = n}) to the queue's current minute and quarter hour, and
-- raises their peak of waiting callers to `peak` (if given). Both slots are
-- read in one HMGET and written in one HSET; the expiry is pushed back only
-- when the minute slot begins a new bucket (at most once a minute, far inside
-- STATS_TTL_MS), not on every call.
local function stats_add(queue, now, add, peak)
  if not queue or queue == '' then
    return
  end
  local key = K.stats(queue)
  local minute = math.floor(now / 60000)
  local quarter = math.floor(now / 900000)
  local m_field = 'm' .. (minute % STATS_MINUTES)
  local q_field = 'q' .. (quarter % STATS_QUARTERS)
  local cur = redis.call('HMGET', key, m_field, q_field)
  local m_value, new_minute = stats_slot(cur[1] or nil, minute, add, peak)
  local q_value = stats_slot(cur[2] or nil, quarter, add, peak)
  redis.call('HSET', key, m_field, m_value, q_field, q_value)
  if new_minute then
    redis.call('PEXPIRE', key, STATS_TTL_MS)
  end
end

-- A new call offered to its queue `queue`; `sl_ms` is that queue's service
-- level threshold, kept with the call for the moment it is answered.
local function stats_offered(call, queue, now, sl_ms)
  redis.call('HSET', call, 'offered_at', now, 'sl_ms', sl_ms)
  stats_add(queue, now, {o = 1})
end

-- How long the call had waited at `at`, and its queue; nil for a call routed
-- before these figures existed (it was never counted as offered).
local function stats_waited(call, at)
  local c = redis.call('HMGET', call, 'queue', 'offered_at', 'sl_ms')
  local offered = tonumber(c[2])
  if not offered then
    return nil
  end
  return math.max(at - offered, 0), c[1], tonumber(c[3]) or 0
end

-- The call was answered at `at` (counted at `now`).
local function stats_answered(call, at, now)
  local waited, queue, sl_ms = stats_waited(call, at)
  if not waited or redis.call('HSETNX', call, 'stats_end', 'answered') == 0 then
    return
  end
  stats_add(queue, now, {a = 1, aw = waited, w = (waited <= sl_ms) and 1 or 0})
end

-- The caller hung up (or stopped fetching its hold music) before an agent
-- answered; one who waited under SHORT_ABANDON_MS counts as short-abandoned.
local function stats_abandoned(call, now)
  local waited, queue = stats_waited(call, now)
  if not waited or redis.call('HSETNX', call, 'stats_end', 'abandoned') == 0 then
    return
  end
  if waited < SHORT_ABANDON_MS then
    stats_add(queue, now, {s = 1})
  else
    stats_add(queue, now, {x = 1})
  end
end

-- An answered call is over: its handle time is the talk (from its answer to
-- now) and the wrap-up that follows (`wrap_up_ms`, which ends by time).
local function stats_handled(call, now, wrap_up_ms)
  local c = redis.call('HMGET', call, 'queue', 'answered_at', 'offered_at')
  local answered = tonumber(c[2])
  if not answered or not c[3] or redis.call('HSETNX', call, 'stats_handled', '1') == 0 then
    return
  end
  stats_add(c[1], now, {h = 1, ht = math.max(now - answered, 0) + (wrap_up_ms or 0)})
end

-- The queue's line holds `n` callers now: the current minute's peak.
local function stats_waiting(queue, now, n)
  stats_add(queue, now, {}, n)
end
