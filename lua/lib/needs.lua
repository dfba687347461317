--[[ needs.lua: a call's needs against agents' skills (issue 21). src/needs.rs
parses an expression into alternatives, and a request carries them as they
are: a list of alternatives, each a list of tests {skill, min, negated}; any
one alternative whose tests all hold is enough, and an empty alternative holds
for every agent.

An agent hash keeps its skills as `skills` = "name:level,…". A free agent is in
`avail:<queue>` and, for each of its skills, in `skill_avail:<queue>:<skill>`
(lib/agents.lua's enqueue), both scored by when it became free. So the
longest-idle agent who satisfies an alternative is found by walking the
smallest line the alternative requires (its rarest required skill), not every
free agent; or, for an alternative the routing file names, by reading its own
line (lib/skills.lua), once that line is ready.
]]

-- The line an alternative is walked by in `queue`: its required skill with the
-- fewest free agents, or the queue's whole line when it requires none.
local function line_for(queue, tests)
  local line, size = K.avail(queue), nil
  for _, t in ipairs(tests) do
    if not t.negated then
      local key = K.skill_avail(queue, t.skill)
      local n = redis.call('ZCARD', key)
      if not size or n < size then
        line, size = key, n
      end
    end
  end
  return line
end

-- The lines of `queue`'s free agents with each skill `tests` requires.
local function required_lines(queue, tests)
  local lines = {}
  for _, t in ipairs(tests) do
    if not t.negated then
      lines[#lines + 1] = K.skill_avail(queue, t.skill)
    end
  end
  return lines
end

-- The members of every one of `lines`, the longest idle first, with their
-- scores (flat: id, score, ...). An agent's lines all carry the same score.
local function intersect(lines)
  local args = {'ZINTER', #lines}
  for _, line in ipairs(lines) do
    args[#args + 1] = line
  end
  args[#args + 1] = 'AGGREGATE'
  args[#args + 1] = 'MAX'
  args[#args + 1] = 'WITHSCORES'
  return redis.call(unpack(args))
end

-- How many free agents of an alternative's rarest line are read, one by one,
-- before its required lines are intersected instead.
local WALK_BEFORE_INTERSECT = 64

-- The free agent of `queue` who has been free longest (lowest score, at most
-- `now`) and satisfies `alternatives` (ANY: every agent), skipping ids in
-- `skip` (a set; may be empty): returns its id
-- and score, or nil, and how many free agents were looked at (for the
-- decision's explanation). A member whose agent is no longer free is a
-- leftover and is dropped from the line it was found in.
local function longest_idle_matching(queue, alternatives, now, skip)
  local best_id, best_score
  local looked = 0
  -- Looks at one free agent in line order: true when the walk is over (found,
  -- or nobody further can have waited longer).
  local function consider(line, id, score, tests)
    if best_score and score >= best_score then
      return true, false
    end
    local agent = K.agent(id)
    looked = looked + 1
    if skip[id] then
      return false, false
    elseif not is_free(agent) then
      redis.call('ZREM', line, id)
      return false, true
    elseif #tests == 0 or holds(parse_skills(redis.call('HGET', agent, 'skills')), tests) then
      best_id, best_score = id, score
      return true, false
    end
    return false, false
  end
  for _, tests in ipairs(alternatives) do
    -- Its own line, whole: every member satisfies it (the first free one
    -- is the answer), and nothing is intersected.
    local own = ready_alt_line(queue, tests)
    local line = own or line_for(queue, tests)
    local required = own and {} or required_lines(queue, tests)
    local offset, walked = 0, 0
    local done = false
    while not done do
      -- Two required skills or more, and the rarest one's free agents mostly
      -- lack the others: their lines are intersected in Redis instead (all
      -- of an agent's lines carry the same score).
      if #required > 1 and walked >= WALK_BEFORE_INTERSECT then
        local both = intersect(required)
        for i = 1, #both, 2 do
          local score = tonumber(both[i + 1])
          if score > now then
            break
          end
          if consider(line, both[i], score, tests) then
            break
          end
        end
        break
      end
      local batch = redis.call('ZRANGEBYSCORE', line, '-inf', now, 'WITHSCORES',
        'LIMIT', offset, 32)
      if #batch == 0 then
        break
      end
      for i = 1, #batch, 2 do
        local over, removed = consider(line, batch[i], tonumber(batch[i + 1]), tests)
        if over then
          done = true
          break
        end
        if not removed then
          offset = offset + 1
        end
        walked = walked + 1
      end
    end
  end
  return best_id, best_score, looked
end

--[[ Steps. A call with needs carries its steps (a plan entry's `steps`, kept
in the call hash as `steps`, JSON): {{needs = text, alts = alternatives,
until_ms = ms after arrival it ends (absent for the last)}, ...}. A call
without them takes any agent of the queue, as before steps existed. ]]

-- Any agent: one alternative with no tests.
local ANY = {{}}
-- How far a routing decision counts the agents its step accepted (the call's
-- history says "the longest idle of N"): bounded, so a large roster costs no
-- more (reading 200 cost about 1.3 ms a decision at 100,000 agents).
local MATCHED_CAP = 20
local MATCHED_LOOKED = 64

-- The step that holds `waited` ms after arrival: its index (1-based) and it.
local function step_at(steps, waited)
  for i, s in ipairs(steps) do
    if not s.until_ms or waited < s.until_ms then
      return i, s
    end
  end
  return #steps, steps[#steps]
end

-- When step `i` of `steps` begins, in ms after the call's arrival.
local function step_starts(steps, i)
  return (steps[i - 1] or {}).until_ms or 0
end

-- A call hash's `steps` decoded, once per script for each distinct text (the
-- callers of one queue and number share theirs).
local decoded_steps = {}
local function decode_steps(text)
  local steps = decoded_steps[text]
  if not steps then
    steps = cjson.decode(text)
    decoded_steps[text] = steps
  end
  return steps
end

-- A waiting call's current step from its hash's `steps` and `since`: its
-- index, alternatives, and a key naming that step of those steps (for a
-- script's memo of what it found for it), and its expression. A call
-- without steps: 0, ANY, '', nil.
local function current_step(stored, since, now)
  if not stored then
    return 0, ANY, '', nil
  end
  local i, step = step_at(decode_steps(stored), now - (tonumber(since) or now))
  return i, step.alts, i .. '#' .. stored, step.needs
end

-- Records, for the step metrics, that a call of `queue` was matched at (or
-- relaxed to) step `step` after waiting `waited` ms: 'queue|kind|step|ms' in
-- `step_events`, which a worker drains (capped, as `wait_events`).
local function record_step(queue, kind, step, waited)
  redis.call('LPUSH', K.step_events, queue .. '|' .. kind .. '|' .. step .. '|' .. waited)
  redis.call('LTRIM', K.step_events, 0, 9999)
end

-- A waiting call's step is now `i` of `steps` (it arrived at `since`): kept
-- as `need_step`, and the start of its next step (if any) in `steps_due`,
-- where relax_steps.lua finds it on time.
local function schedule_step(call, sid, steps, i, since)
  redis.call('HSET', call, 'need_step', i)
  local ends = steps[i].until_ms
  if ends then
    redis.call('ZADD', K.steps_due, since + ends, sid)
  else
    redis.call('ZREM', K.steps_due, sid)
  end
end

-- The free agents of `queue` (free by `now`) whom `alternatives` accept:
-- each alternative's line is read from its longest idle up to `cap` matches,
-- the whole within `budget.left` line members (a table the caller shares
-- between calls, so one request's reads are bounded however many steps it
-- asks about); then the matches are merged. {matching (counted up to `cap`),
-- more (counting stopped early), agents ('id,id': the first `shown`, the
-- longest idle first), first (the longest idle's id)}. With `exact`, an
-- alternative that requires two skills or more is counted from its lines'
-- intersection (whole, in Redis: about a millisecond for two lines of 10,000);
-- without, by walking its rarest line within the budget. An alternative
-- with a ready line of its own (lib/skills.lua) is counted from that line's
-- size, and only the agents shown (or merged with other alternatives') are
-- read. Reads only: a leftover member is skipped, not dropped.
local function count_matching(queue, alternatives, now, cap, shown, budget, exact)
  local found, seen = {}, {}
  local more = false
  -- Matches counted from an alternative's own line but not read.
  local unread = 0
  for _, tests in ipairs(alternatives) do
    local own = ready_alt_line(queue, tests)
    local line = own or line_for(queue, tests)
    local required = own and {} or required_lines(queue, tests)
    -- Two required skills or more: their lines intersected in Redis, once.
    local both = exact and #required > 1 and intersect(required)
    local offset, mine = 0, 0
    if own then
      -- Every member satisfies it (the line is kept as agents move): the
      -- count is the line's, and only those shown or merged are read.
      local n = redis.call('ZCOUNT', own, '-inf', now)
      more = more or n > cap
      -- Alone, only those shown are read; beside other alternatives, up to
      -- `cap`, to merge.
      local single = #alternatives == 1
      local want = math.max(0, math.min(single and shown or cap, budget.left))
      if want > 0 then
        local batch = redis.call('ZRANGEBYSCORE', own, '-inf', now, 'WITHSCORES',
          'LIMIT', 0, want)
        budget.left = budget.left - #batch / 2
        for i = 1, #batch, 2 do
          if not seen[batch[i]] then
            seen[batch[i]] = true
            found[#found + 1] = {id = batch[i], score = tonumber(batch[i + 1])}
          end
        end
        -- Beside other alternatives, members it has but the budget did not
        -- read are not in the merged count: it may be more.
        if not single and #batch / 2 < math.min(n, cap) then
          more = true
        end
      end
      if single then
        unread = math.max(0, math.min(n, cap) - #found)
      end
      mine = cap
    end
    while mine < cap and budget.left > 0 do
      local batch
      if both then
        batch = {}
        for i = offset * 2 + 1, math.min(#both, (offset + 64) * 2), 2 do
          if tonumber(both[i + 1]) > now then
            break
          end
          batch[#batch + 1], batch[#batch + 2] = both[i], both[i + 1]
        end
      else
        batch = redis.call('ZRANGEBYSCORE', line, '-inf', now, 'WITHSCORES',
          'LIMIT', offset, math.min(64, budget.left))
      end
      if #batch == 0 then
        break
      end
      offset = offset + #batch / 2
      for i = 1, #batch, 2 do
        local id = batch[i]
        budget.left = budget.left - 1
        local agent = K.agent(id)
        if is_free(agent) and (#tests == 0
            or holds(parse_skills(redis.call('HGET', agent, 'skills')), tests)) then
          mine = mine + 1
          if not seen[id] then
            seen[id] = true
            found[#found + 1] = {id = id, score = tonumber(batch[i + 1])}
          end
          if mine >= cap then
            break
          end
        end
      end
    end
    more = more or (not own and (mine >= cap or budget.left <= 0))
  end
  table.sort(found, function(a, b)
    return a.score < b.score or (a.score == b.score and a.id < b.id)
  end)
  local ids = {}
  for i = 1, math.min(#found, shown) do
    ids[i] = found[i].id
  end
  -- Comma separated (ids have no commas): cjson writes an empty list as {}.
  return {matching = math.min(#found + unread, cap), more = more or #found > cap,
    agents = table.concat(ids, ','), first = ids[1]}
end

-- The skills of agent `id`, parsed.
local function skills_of(id)
  return parse_skills(redis.call('HGET', K.agent(id), 'skills'))
end
