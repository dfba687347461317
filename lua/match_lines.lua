--[[ match_lines: agents that became free by time (a wrap-up or no-answer delay
ran out) while callers wait: each is given to the longest-waiting caller of the
highest-priority queue it serves, as `offer` does for agents freed by a webhook.
The worker runs it every sweep, so nobody waits beside a free agent for longer
than one sweep interval (invariant 7).

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
  if redis.call('ZCARD', K.line(flat[i])) > 0 then
    entries[#entries + 1] = {queue = flat[i], conf = cjson.decode(flat[i + 1])}
  end
end
table.sort(entries, function(a, b)
  return a.conf.priority > b.conf.priority
end)
local used = 0
for _, entry in ipairs(entries) do
  local line, avail = K.line(entry.queue), K.avail(entry.queue)
  while used < #req.tokens do
    local head = redis.call('ZRANGE', line, 0, 0)[1]
    local id = redis.call('ZRANGEBYSCORE', avail, '-inf', now, 'LIMIT', 0, 1)[1]
    if not head or not id then
      break
    end
    local agent = K.agent(id)
    if is_free(agent) then
      used = used + 1
      reserve_for(head, agent, id, entry, req.tokens[used], now)
    else
      -- A member whose agent is gone or busy is a leftover: drop it.
      redis.call('ZREM', avail, id)
    end
  end
end
return used
