--[[ explain: which free agents a call would reach now, step by step, in each
queue of its plan, without reserving anyone or changing anything (POST
/v1/routing/explain). Reads only: a line's leftover members (agents no longer
free) are skipped, not dropped.

KEYS[1]  the call's own queue's line  sb:{ns}:line:<queue>; the queues' lines
         of free agents, the agents and the waiting calls are built from the
         prefix
ARGV[1]  JSON ExplainRequest (src/store/explain.rs): {prefix, plan: [{queue,
         steps: [{alts}]}], home_step (the current step of plan[1], 1-based),
         cap (most matches counted per step), shown (most ids listed),
         max_looked (most line members read by the whole request)}

Reply: JSON {now, waiting (callers in KEYS[1]), plan: [{free (agents of the
queue free now, leftovers included), steps: [{matching, more (counting
stopped at cap or max_looked), agents: 'id,id' (the longest idle first)}]}],
first_waiting (the CallSid of the waiting caller who would be given the first
agent of plan[1]'s current step before this call, or '')}.
]]
local now = now_ms()

-- One budget of line reads for the whole request, however many steps and
-- queues it asks about: its cost to Redis stays bounded.
local budget = {left = req.max_looked}
local plan = {}
local first_waiting = ''
for n, e in ipairs(req.plan) do
  local steps = {}
  for i, step in ipairs(e.steps) do
    steps[i] = count_matching(e.queue, step.alts, now, req.cap, req.shown, budget, true)
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
