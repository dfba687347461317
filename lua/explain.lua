--[[ explain: which free agents a call would reach now, step by step, in each
queue of its plan, without reserving anyone or changing anything (POST
/v1/routing/explain). Reads only: a line's leftover members (agents no longer
free) are skipped, not dropped.

KEYS[1]  the call's own queue's line  sb:{ns}:line:<queue>; the queues' lines
         of free agents, the agents and the waiting calls are built from the
         prefix
ARGV[1]  JSON ExplainRequest (src/store/requests.rs): {prefix, plan: [{queue,
         steps: [{alts}]}], home_step (the current step of plan[1], 1-based),
         cap (most matches counted per step), shown (most ids listed),
         max_looked (most line members read per step)}

Reply: JSON {now, waiting (callers in KEYS[1]), plan: [{free (agents of the
queue free now, leftovers included), steps: [{matching, more (counting
stopped at cap or max_looked), agents: 'id,id' (the longest idle first)}]}],
first_waiting (the CallSid of the waiting caller who would be given the first
agent of plan[1]'s current step before this call, or '')}.
]]
local now = now_ms()

-- The free agents of `queue` whom `alternatives` accept, the longest idle
-- first: {matching, more, agents}.
local function matching(queue, alternatives)
  local found, seen = {}, {}
  local looked, more = 0, false
  for _, tests in ipairs(alternatives) do
    local line = line_for(queue, tests)
    local offset = 0
    while #found < req.cap and looked < req.max_looked do
      local batch = redis.call('ZRANGEBYSCORE', line, '-inf', now, 'WITHSCORES',
        'LIMIT', offset, 64)
      if #batch == 0 then
        break
      end
      offset = offset + #batch / 2
      for i = 1, #batch, 2 do
        local id = batch[i]
        looked = looked + 1
        if not seen[id] then
          local agent = K.agent(id)
          if is_free(agent) and (#tests == 0
              or holds(parse_skills(redis.call('HGET', agent, 'skills')), tests)) then
            seen[id] = true
            found[#found + 1] = {id = id, score = tonumber(batch[i + 1])}
            if #found >= req.cap then
              break
            end
          end
        end
      end
    end
    more = more or #found >= req.cap or looked >= req.max_looked
  end
  table.sort(found, function(a, b)
    return a.score < b.score or (a.score == b.score and a.id < b.id)
  end)
  local ids = {}
  for i = 1, math.min(#found, req.shown) do
    ids[i] = found[i].id
  end
  -- Comma separated (ids have no commas): cjson writes an empty list as {}.
  return {matching = #found, more = more, agents = table.concat(ids, ','), first = ids[1]}
end

local plan = {}
local first_waiting = ''
for n, e in ipairs(req.plan) do
  local steps = {}
  for i, step in ipairs(e.steps) do
    steps[i] = matching(e.queue, step.alts)
  end
  plan[n] = {free = redis.call('ZCOUNT', K.avail(e.queue), '-inf', now), steps = steps}
  if n == 1 then
    local first = (steps[req.home_step] or {}).first
    if first and redis.call('ZCARD', KEYS[1]) > 0 then
      local c = first_waiting_for(e.queue, skills_of(first), now)
      first_waiting = c and c.sid or ''
    end
  end
end
for _, entry in ipairs(plan) do
  for _, step in ipairs(entry.steps) do
    step.first = nil
  end
end
return cjson.encode({now = now, waiting = redis.call('ZCARD', KEYS[1]), plan = plan,
  first_waiting = first_waiting})
