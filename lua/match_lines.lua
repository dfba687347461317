--[[ match_lines: agents that became free by time (a wrap-up or no-answer delay
ran out), and callers whose step relaxed, while callers wait: each waiting
caller, in order (the highest-priority queue first, then the longest waiting),
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
for _, entry in ipairs(entries) do
  local line = K.line(entry.queue)
  -- Steps nobody free satisfies (by current_step's key): agents only leave
  -- while this runs, so a step found unmatched stays so.
  local unmatched = {}
  local offset = 0
  local done = false
  while not done and used < #req.tokens do
    local sids = redis.call('ZRANGE', line, offset, offset + 63)
    if #sids == 0 then
      break
    end
    for _, sid in ipairs(sids) do
      if used >= #req.tokens then
        break
      end
      local c = redis.call('HMGET', K.call(sid), 'steps', 'since')
      local _, alternatives, key = current_step(c[1], c[2], now)
      local id = nil
      if not unmatched[key] then
        id = longest_idle_matching(entry.queue, alternatives, now, {})
      end
      if id then
        used = used + 1
        reserve_for(sid, K.agent(id), id, entry, req.tokens[used], now)
      else
        unmatched[key] = true
        offset = offset + 1
        -- Nobody free at all: nobody further in line can be matched either.
        if key == '' then
          done = true
          break
        end
      end
    end
  end
end
return used
