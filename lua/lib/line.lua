--[[ line.lua: callers waiting in line (SPEC 1, "Callers wait in line").

`line:<queue>` is a sorted set of CallSids scored by arrival (ms), so nobody
overtakes: a caller whose agent did not answer goes back with its own arrival,
which puts it ahead of everyone who came later. `hold_queues` (queue -> JSON of
its plan entry, priority and hold settings) is published by every replica at
start and after Redis comes back (Store::publish_queues), so a script that frees
an agent knows which of its queues hold callers without being told every queue.

A waiting call's hash has status 'waiting', `since` (arrival) and `position`
(the last one announced, which never goes up). Its heartbeat is a deadlines
member 'wait|<CallSid>||', pushed back by every wait fetch to one round
(`loop_ms`: the queue's longest round, loop_secs or music_secs when longer,
Hold::round_ms) and WAIT_SLACK_MS from now; the sweep ends a call whose fetches
stopped (the caller hung up and the status callback was lost).

Matching: an agent that becomes free right now is given, in the same script, to
the longest-waiting caller of the highest-priority queue it serves (`offer`); an
agent that becomes free by time is matched by the worker (match_lines.lua). The
matched call is reserved exactly as a new call (`reserve_for`), with `connect`
set, and listed in `connects` ('sid|queue'): a replica pops it and redirects the
live call to its wait URL with Twilio's REST API, which answers the `<Dial>`;
without REST, the caller's next wait fetch does.
]]

local WAIT_SLACK_MS = 15000
-- Priorities are whole numbers up to 100: a span above any arrival in ms.
local PRIORITY_SPAN = 1e13

local function wait_member(sid)
  return deadline_member('wait', sid, '', '')
end

-- The hold queue entries of `queues` that have callers waiting, highest
-- priority first: {queue = name, conf = decoded JSON}.
local function waiting_queues(queues)
  local found = {}
  if #queues == 0 then
    return found
  end
  local confs = redis.call('HMGET', K.hold_queues, unpack(queues))
  for i, queue in ipairs(queues) do
    if confs[i] and redis.call('ZCARD', K.line(queue)) > 0 then
      found[#found + 1] = {queue = queue, conf = cjson.decode(confs[i])}
    end
  end
  table.sort(found, function(a, b)
    return a.conf.priority > b.conf.priority
  end)
  return found
end

-- Adds `by` to a count field of hash `key`; a field that reaches 0 is
-- dropped (the hash holds only what exists).
local function add_count(key, field, by)
  if redis.call('HINCRBY', key, field, by) <= 0 then
    redis.call('HDEL', key, field)
  end
end

-- `line_needs:<queue>`: the steps (as stored) of the queue's waiting callers
-- -> how many have them ('' for callers without steps), so a script can tell
-- from a few fields that no caller waiting could ever take an agent, without
-- reading the line. `line_skills:<queue>`: for each skill, how many waiting
-- callers have an alternative, at some step, listed under it (its first
-- required skill in signature order, as lib/skills.lua lists alternatives;
-- '' for one that requires no skill, and for callers without steps), and
-- under '#' how many callers it counts: an agent with none of the skills
-- listed can take none of them, told by one read.
local function count_needs(queue, stored, by)
  add_count(K.line_needs(queue), stored or '', by)
  local listed = {}
  if not stored then
    listed[''] = true
  else
    for _, step in ipairs(decode_steps(stored)) do
      for _, tests in ipairs(step.alts) do
        listed[alt_index_skill(alt_sig(tests))] = true
      end
    end
  end
  local key = K.line_skills(queue)
  for skill in pairs(listed) do
    add_count(key, skill, by)
  end
  add_count(key, '#', by)
end

-- False when no caller waiting in `queue` (counted in `line_skills`) has an
-- alternative that an agent with `skills` could meet; true when one may (or
-- the counts are not whole: callers who joined before they were kept).
local function may_take_any(queue, skills)
  local fields = {'#', ''}
  for name in pairs(skills) do
    fields[#fields + 1] = name
  end
  local got = redis.call('HMGET', K.line_skills(queue), unpack(fields))
  if tonumber(got[1]) ~= redis.call('ZCARD', K.line(queue)) then
    return true
  end
  for i = 2, #fields do
    if got[i] then
      return true
    end
  end
  return false
end

-- Takes `sid` out of `queue`'s lines, if it is there.
local function out_of_line(call, sid, queue)
  if redis.call('ZREM', K.line(queue), sid) == 1 then
    local stored = redis.call('HGET', call, 'steps')
    count_needs(queue, stored, -1)
    redis.call('ZREM', K.line_by_needs(queue, stored), sid)
    -- Once nobody waits, the next take is not timed from the last.
    if redis.call('ZCARD', K.line(queue)) == 0 then
      forecast_pause(queue)
    end
  end
  redis.call('ZREM', K.line_priority(queue), sid)
end

-- Puts a call in `queue`'s line at `arrival` (and, with a priority, in its
-- priority line) and (re)starts its heartbeat.
local function join_line(call, sid, queue, arrival, now, loop_ms)
  local priority = tonumber(redis.call('HGET', call, 'priority')) or 0
  if redis.call('ZADD', K.line(queue), arrival, sid) == 1 then
    -- Counted, and in the line of the callers with the same steps, in
    -- serving order (as the priority line scores them).
    local stored = redis.call('HGET', call, 'steps')
    count_needs(queue, stored, 1)
    redis.call('ZADD', K.line_by_needs(queue, stored), arrival - priority * PRIORITY_SPAN, sid)
  end
  if priority > 0 then
    redis.call('ZADD', K.line_priority(queue), arrival - priority * PRIORITY_SPAN, sid)
  end
  stats_waiting(queue, now, redis.call('ZCARD', K.line(queue)))
  redis.call('HSET', call, 'status', 'waiting', 'since', arrival, 'token', '', 'agent', '',
    'connect', '', 'loop_ms', loop_ms)
  redis.call('ZADD', K.deadlines, now + loop_ms + WAIT_SLACK_MS, wait_member(sid))
  local stored = redis.call('HGET', call, 'steps')
  -- Steps run from the call's arrival, not from when it joined the line
  -- (it may have rung an agent first).
  local arrived = tonumber(redis.call('HGET', call, 'arrived_at')) or arrival
  local step, _, _, needs = current_step(stored, arrived, now)
  if step > 0 then
    schedule_step(call, sid, decode_steps(stored), step, arrived)
  end
  emit_call('call_waiting', sid, {since = arrival, step = step > 0 and step or nil,
    needs = needs})
end

-- Records how a call's wait ended, once: in its hash, and as an event
-- 'queue|outcome|waited ms' in `wait_events`, which a worker drains into the
-- wait metrics (so each outcome is counted once across every replica). The
-- list is capped: without a worker it cannot grow without bound.
local function record_outcome(call, outcome, now)
  if outcome == 'abandoned' then
    stats_abandoned(call, now)
  end
  if redis.call('HSETNX', call, 'wait_outcome', outcome) == 0 then
    return
  end
  local c = redis.call('HMGET', call, 'queue', 'since', 'estimate_first_ms')
  local waited = now - (tonumber(c[2]) or now)
  if c[1] then
    forecast_left(c[1], outcome)
  end
  -- The first estimate the caller heard, for the metric of how far off it was.
  local event = (c[1] or '') .. '|' .. outcome .. '|' .. waited
  if c[3] then
    event = event .. '|' .. c[3]
  end
  redis.call('LPUSH', K.wait_events, event)
  redis.call('LTRIM', K.wait_events, 0, 9999)
end

-- Takes a call out of its line for good, with the outcome of its wait.
local function leave_line(call, sid, outcome)
  local queue = redis.call('HGET', call, 'queue')
  if queue then
    out_of_line(call, sid, queue)
  end
  redis.call('ZREM', K.deadlines, wait_member(sid))
  record_outcome(call, outcome, now_ms())
end

-- Moves a waiting call on to the step that holds now, if its next step
-- began (more than one if late): recorded in its history (`step_relaxed`)
-- and the step metrics, and its next step scheduled in `steps_due`. Run by
-- relax_steps.lua when a step is due, and before a waiting call is given an
-- agent, so its history says it moved on whichever comes first. A call no
-- longer waiting (given an agent, gone) is left alone; it is scheduled again
-- if it comes back to its place in line.
local function relax_to_now(call, sid, now)
  local c = redis.call('HMGET', call, 'status', 'steps', 'arrived_at', 'queue', 'need_step',
    'since')
  if (c[1] ~= 'waiting' and c[1] ~= 'callback') or not c[2] then
    return
  end
  local steps = decode_steps(c[2])
  -- Steps run from the call's arrival.
  local arrived = tonumber(c[3]) or tonumber(c[6]) or now
  local i, step = step_at(steps, now - arrived)
  local before = tonumber(c[5]) or 1
  if i ~= before then
    -- `starts_ms`: when the step began, after arrival; `waited_ms` past it
    -- is how late the call was moved on.
    emit_call('step_relaxed', sid, {step = i, needs = step.needs, previous = before,
      waited_ms = now - arrived, starts_ms = step_starts(steps, i)})
    record_step(c[4] or '', 'relaxed', i, now - arrived)
  end
  schedule_step(call, sid, steps, i, arrived)
end

-- A callback given an agent must be claimed for dialling within this (its
-- entry in `callback_dials` is lost with a replica that dies holding it;
-- then the callback goes back to its place).
local CALLBACK_CLAIM_MS = 30000

-- Reserves the free agent `id` for the waiting call `sid` of `entry` (a
-- hold_queues entry), as a new call is reserved. A callback (lib/callbacks.lua)
-- is listed in `callback_dials` for a replica to dial the customer.
local function reserve_for(sid, agent, id, entry, token, now)
  local call = K.call(sid)
  local e = entry.conf
  relax_to_now(call, sid, now)
  forecast_take(entry.queue, now, tonumber(redis.call('ZSCORE', K.avail(entry.queue), id)))
  dequeue(id, queues_of(agent))
  set_state(agent, id, 'reserved', {'state_since', now, 'free_at', '',
    'call_sid', sid, 'token', token, 'released_token', ''})
  out_of_line(call, sid, entry.queue)
  redis.call('ZREM', K.deadlines, wait_member(sid))
  if redis.call('HGET', call, 'status') == 'callback' then
    redis.call('HSET', call, 'status', 'cb_reserved', 'agent', id,
      'contact', redis.call('HGET', agent, 'contact'), 'token', token,
      'agent_queue', entry.queue, 'via', 'callback', 'reserved_at', now,
      'attempt', (tonumber(redis.call('HGET', call, 'attempt')) or 0) + 1,
      'wrap_up_ms', e.wrap_up_ms, 'delay_ms', e.delay_ms, 'max_missed', e.max_missed,
      'lease_ms', e.lease_ms, 'affinity_ms', e.affinity_ms, 'reservation_ms', e.reservation_ms)
    redis.call('ZADD', K.deadlines, now + CALLBACK_CLAIM_MS + e.reservation_ms,
      deadline_member('reservation', sid, id, token))
    emit_call('call_routed', sid, {via = 'callback',
      waited_ms = now - (tonumber(redis.call('HGET', call, 'since')) or now)})
    redis.call('LPUSH', K.callback_dials, sid .. '|' .. entry.queue .. '|' .. now)
    redis.call('LTRIM', K.callback_dials, 0, 9999)
    return
  end
  local tried = redis.call('HGET', call, 'tried') or ''
  tried = tried == '' and id or (tried .. ',' .. id)
  redis.call('HSET', call, 'status', 'ringing', 'agent', id,
    'contact', redis.call('HGET', agent, 'contact'), 'token', token,
    'agent_queue', entry.queue, 'via', 'line',
    'attempt', (tonumber(redis.call('HGET', call, 'attempt')) or 0) + 1,
    'tried', tried, 'reserved_at', now, 'connect', 'pending',
    'last_token', '', 'last_agent', '', 'leg_sid', '',
    'wrap_up_ms', e.wrap_up_ms, 'delay_ms', e.delay_ms, 'max_missed', e.max_missed,
    'lease_ms', e.lease_ms, 'affinity_ms', e.affinity_ms)
  -- Ringing starts only when the caller's next fetch (or the REST redirect)
  -- answers the <Dial>: up to one hold round (and its announcement) later.
  redis.call('ZADD', K.deadlines, now + e.reservation_ms + e.loop_ms + WAIT_SLACK_MS,
    deadline_member('reservation', sid, id, token))
  -- Why this agent: the caller's step then, and its needs.
  local w = redis.call('HMGET', call, 'steps', 'arrived_at', 'attempt', 'since')
  local arrived = tonumber(w[2]) or tonumber(w[4]) or now
  local step, _, _, needs = current_step(w[1], arrived, now)
  local waited = now - arrived
  emit_call('call_routed', sid, {via = 'line', attempt = tonumber(w[3]),
    step = step > 0 and step or nil, needs = needs, waited_ms = waited})
  if step > 0 then
    record_step(entry.queue, 'matched', step, waited)
  end
  -- For the replica that connects the caller at once with Twilio's REST API
  -- (capped: with no REST credentials nobody needs more than the newest);
  -- not for a caller Twilio's REST API said it did not know.
  if redis.call('HGET', call, 'rest') ~= 'off' then
    redis.call('LPUSH', K.connects, sid .. '|' .. entry.queue .. '|' .. now)
    redis.call('LTRIM', K.connects, 0, 9999)
  end
end

--[[ The order callers are served in. A call with a priority (a lookup's or a
menu's, `priority` in its hash) is also in `line_priority:<queue>`, scored
by arrival less priority x PRIORITY_SPAN, so the highest priority comes
first, then the longest waiting; those calls go before every call without
one, which are served by arrival (`line:<queue>`, which keeps everyone, for
positions and the longest wait). A walker reads one queue's callers in that
order, a batch at a time. ]]

local function walker(queue)
  return {queue = queue, keys = {K.line_priority(queue), K.line(queue)}, src = 1,
    offset = 0, batch = {}, i = 1, head = nil}
end

-- The walker's next caller, {sid, priority, since, steps (as stored)}, or nil
-- when the line is done.
local function peek(w)
  while not w.head do
    if w.i > #w.batch then
      if w.src > 2 then
        return nil
      end
      w.batch = redis.call('ZRANGE', w.keys[w.src], w.offset, w.offset + 63)
      w.i = 1
      if #w.batch == 0 then
        w.src, w.offset = w.src + 1, 0
      else
        w.offset = w.offset + #w.batch
      end
    else
      local sid = w.batch[w.i]
      w.i = w.i + 1
      local c = redis.call('HMGET', K.call(sid), 'steps', 'since', 'priority', 'arrived_at')
      local priority = tonumber(c[3]) or 0
      -- A call with a priority was met in the first key already.
      if w.src == 1 or priority <= 0 then
        local since = tonumber(c[2]) or 0
        -- `arrived`: what its steps are timed from.
        w.head = {sid = sid, priority = priority, since = since, steps = c[1],
          arrived = tonumber(c[4]) or since, src = w.src}
      end
    end
  end
  return w.head
end

-- Moves past the walker's caller; `taken`: it left the line (both keys), so
-- the next batch of its key starts one member earlier.
local function advance(w, taken)
  if taken and w.head.src == w.src then
    w.offset = w.offset - 1
  end
  w.head = nil
end

-- True when caller `a` is served before caller `b` (of any queues).
local function before(a, b)
  if a.priority ~= b.priority then
    return a.priority > b.priority
  end
  if a.since ~= b.since then
    return a.since < b.since
  end
  return a.sid < b.sid
end

-- The first caller of `queue`, in serving order, whose current step an agent
-- with `skills` satisfies ({sid, priority, since, ...}), or nil. A caller
-- without steps takes any agent, so in a queue without needs this is the head.
-- Even an agent that missed this caller before gets it: skipping it would let
-- later callers overtake, or leave the agent idle beside it; the agent's
-- no-answer delay keeps it away a while.
local function first_waiting_for(queue, skills, now)
  if not may_take_any(queue, skills) then
    return nil
  end
  -- The callers are counted and kept in lines by their steps: only the lines
  -- of steps the agent meets at some step are read, each from its head (in
  -- serving order) to its first caller whose current step the agent meets,
  -- and the first of those wins. Counts that do not add up to the line
  -- (callers who joined before they were kept) are not trusted: the whole
  -- line is read.
  local flat = redis.call('HGETALL', K.line_needs(queue))
  local could, counted = {}, 0
  for i = 1, #flat, 2 do
    counted = counted + tonumber(flat[i + 1])
    local stored = flat[i]
    if stored == '' then
      could[#could + 1] = stored
    else
      for _, step in ipairs(decode_steps(stored)) do
        if satisfies(skills, step.alts) then
          could[#could + 1] = stored
          break
        end
      end
    end
  end
  if counted == redis.call('ZCARD', K.line(queue)) then
    local best = nil
    for _, stored in ipairs(could) do
      local line = K.line_by_needs(queue, stored)
      local offset = 0
      local found = nil
      while not found do
        local sids = redis.call('ZRANGE', line, offset, offset + 63)
        if #sids == 0 then
          break
        end
        offset = offset + #sids
        for _, sid in ipairs(sids) do
          local c = redis.call('HMGET', K.call(sid), 'since', 'priority', 'arrived_at')
          local since = tonumber(c[1]) or 0
          local caller = {sid = sid, priority = tonumber(c[2]) or 0, since = since,
            steps = stored ~= '' and stored or nil, arrived = tonumber(c[3]) or since}
          if stored == '' then
            found = caller
            break
          end
          local _, alternatives = current_step(stored, caller.arrived, now)
          if satisfies(skills, alternatives) then
            found = caller
            break
          end
        end
      end
      if found and (not best or before(found, best)) then
        best = found
      end
    end
    return best
  end
  local w = walker(queue)
  local verdicts = {}
  while true do
    local c = peek(w)
    if not c or not c.steps then
      return c
    end
    local _, alternatives, key = current_step(c.steps, c.arrived, now)
    local ok = verdicts[key]
    if ok == nil then
      ok = satisfies(skills, alternatives)
      verdicts[key] = ok
    end
    if ok then
      return c
    end
    advance(w, false)
  end
end

-- Gives the agent, free right now, to the first caller in serving order
-- whose current step it satisfies, across the queues it serves: the highest
-- queue priority first, and among queues of equal priority whoever comes
-- first (waiting_queues lists only queues whose line is not empty).
local function offer(agent, id, token, now)
  if not token or token == '' then
    return
  end
  local entries = waiting_queues(queues_of(agent))
  local skills = #entries > 0 and parse_skills(redis.call('HGET', agent, 'skills')) or {}
  local best, best_entry = nil, nil
  for n, entry in ipairs(entries) do
    local c = first_waiting_for(entry.queue, skills, now)
    if c and (not best or before(c, best)) then
      best, best_entry = c, entry
    end
    local next_entry = entries[n + 1]
    -- The end of a group of equal priority: the best of it, if any, wins.
    if best and (not next_entry or next_entry.conf.priority < entry.conf.priority) then
      reserve_for(best.sid, agent, id, best_entry, token, now)
      return
    end
  end
end

-- After a move that may have freed the agent: if it is free right now, offer it
-- to a waiting caller (with the request's spare token).
local function offer_if_free(agent, id, now)
  local a = redis.call('HMGET', agent, 'state', 'free_at', 'deleted')
  local free = (a[1] == 'available' or a[1] == 'wrap_up') and a[3] ~= '1'
  if free and (tonumber(a[2]) or 0) <= now then
    offer(agent, id, req.spare_token, now)
  end
end

-- How much an estimate may rise from one round to the next without a reason
-- (a queue published by a replica of an earlier version has no setting).
local DEFAULT_RISE_MS = 60000

-- The estimated wait (ms) of the caller at `position` now, announced this
-- round, or -1 for none (lib/forecast.lua). Never more than the queue's
-- `rise_ms` above the last one announced, unless fewer agents are signed in
-- than then: a caller who heard "about 2 minutes" is not told 5 because the
-- figures wobbled. Kept in the call hash: `estimate_ms` and `estimate_at`,
-- the agents signed in then (`estimate_staffed`), and the first one heard
-- (`estimate_first_ms`, also an event), which the wait's outcome is judged by.
local function wait_estimate(call, sid, queue, position)
  local est, staffed = forecast_wait(queue, position)
  if not est then
    return -1
  end
  local c = redis.call('HMGET', call, 'estimate_ms', 'estimate_staffed')
  local last = tonumber(c[1])
  local now = now_ms()
  if last then
    local conf = redis.call('HGET', K.hold_queues, queue)
    local rise = conf and tonumber(cjson.decode(conf).rise_ms) or DEFAULT_RISE_MS
    if est > last + rise and staffed >= (tonumber(c[2]) or 0) then
      est = last + rise
    end
  else
    redis.call('HSET', call, 'estimate_first_ms', est)
    emit_call('wait_estimated', sid, {estimated_wait_ms = est, position = position,
      staffed = staffed})
  end
  redis.call('HSET', call, 'estimate_ms', est, 'estimate_at', now, 'estimate_staffed', staffed)
  return est
end

-- A waiting call's position: its rank in line (a call with a priority: in
-- the priority line), never more than announced before.
local function position_of(call, sid, queue)
  local position
  local rank = redis.call('ZRANK', K.line_priority(queue), sid)
  if rank then
    position = rank + 1
  else
    rank = redis.call('ZRANK', K.line(queue), sid)
    if not rank then
      return 0
    end
    position = rank + 1
    -- Callers with a priority who came later are served first too (the
    -- first 64 of them are counted: a few, in practice).
    local line = K.line(queue)
    local mine = tonumber(redis.call('ZSCORE', line, sid))
    for _, other in ipairs(redis.call('ZRANGE', K.line_priority(queue), 0, 63)) do
      if (tonumber(redis.call('ZSCORE', line, other)) or 0) > mine then
        position = position + 1
      end
    end
  end
  local before = tonumber(redis.call('HGET', call, 'position'))
  if before and before < position then
    position = before
  end
  redis.call('HSET', call, 'position', position)
  return position
end
