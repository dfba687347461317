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
  local offset = 0
  while used < #req.tokens do
    local ids = redis.call('ZRANGEBYSCORE', K.avail(entry.queue), '-inf', now, 'LIMIT', offset, 16)
    if #ids == 0 then
      break
    end
    local matched_any = false
    for _, id in ipairs(ids) do
      local agent = K.agent(id)
      if used >= #req.tokens then
        break
      end
      if is_free(agent) then
        local sid = head_for(entry.queue, id)
        if sid then
          used = used + 1
          reserve_for(sid, agent, id, entry, req.tokens[used], now)
          matched_any = true
          if redis.call('ZCARD', K.line(entry.queue)) == 0 then
            break
          end
        else
          offset = offset + 1
        end
      else
        redis.call('ZREM', K.avail(entry.queue), id)
      end
    end
    if redis.call('ZCARD', K.line(entry.queue)) == 0 or not matched_any and #ids < 16 then
      break
    end
  end
end
return used
