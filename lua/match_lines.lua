--[[ match_lines: agents that became free by time (a wrap-up or no-answer delay
ran out), and callers whose step relaxed, while callers wait: each waiting
caller, in serving order (the highest queue priority first; among queues of
equal priority, the calls with a priority first, then the longest waiting),
is given the agent free the longest among those its current step accepts, as
`offer` does for agents freed by a webhook. The worker runs it every sweep, so
nobody waits beside a free agent it may take for longer than one sweep
interval (invariant 7), and a step's relaxing takes effect within one.

KEYS[1]  hold queues hash  sb:{ns}:hold_queues; the lines, agents and their keys
         are built from the prefix
ARGV[1]  JSON MatchRequest (src/store/requests.rs): {prefix, tokens: [fresh
         reservation tokens, one per match at most]}

Reply: the number of callers matched (at most #tokens: the worker calls again
when it used them all).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local now = now_ms()
local entries = {}
-- HGETALL's reply is flat: name, JSON, name, JSON, ...
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local queue = flat[i]
  -- Only queues with callers and with an agent free now.
  if redis.call('ZCARD', K.line(queue)) > 0
      and redis.call('ZCOUNT', K.avail(queue), '-inf', now) > 0 then
    entries[#entries + 1] = {queue = queue, conf = cjson.decode(flat[i + 1])}
  end
end
table.sort(entries, function(a, b)
  return a.conf.priority > b.conf.priority
end)

local used = 0
-- Matches the callers of one group of queues of equal priority, merged in
-- serving order.
local function match_group(group)
  local walkers = {}
  for _, entry in ipairs(group) do
    local w = walker(entry.queue)
    w.entry = entry
    -- Steps nobody free satisfies (by current_step's key): agents only
    -- leave while this runs, so a step found unmatched stays so.
    w.unmatched = {}
    walkers[#walkers + 1] = w
  end
  while used < #req.tokens do
    local best, best_w = nil, nil
    for _, w in ipairs(walkers) do
      local c = not w.done and peek(w)
      if c and (not best or before(c, best)) then
        best, best_w = c, w
      end
    end
    if not best then
      return
    end
    local w = best_w
    local _, alternatives, key = current_step(best.steps, best.arrived, now)
    local id = nil
    if not w.unmatched[key] then
      id = longest_idle_matching(w.queue, alternatives, now, {})
    end
    if id then
      used = used + 1
      reserve_for(best.sid, K.agent(id), id, w.entry, req.tokens[used], now)
      advance(w, true)
    else
      w.unmatched[key] = true
      advance(w, false)
      -- Nobody free in this queue at all: nobody further in it can be
      -- matched either.
      if key == '' then
        w.done = true
      end
    end
  end
end

local group = {}
for n, entry in ipairs(entries) do
  group[#group + 1] = entry
  local next_entry = entries[n + 1]
  if not next_entry or next_entry.conf.priority < entry.conf.priority then
    match_group(group)
    group = {}
  end
end
return used
