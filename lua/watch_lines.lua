--[[ watch_lines: a read-only look at every line, so that `switchboard simulate
--watch-redis` can check invariant 7 from outside the servers: who waits in each
line, and which agents of that queue are free right now beside them. It changes
nothing; no replica runs it.

KEYS[1]  hold queues hash  sb:{ns}:hold_queues; the lines, free lists and agents
         are built from the prefix
ARGV[1]  JSON WatchRequest (src/store/requests.rs): {prefix, free_listed (most
         free agents listed per queue)}

Reply, flat: {now, queues, then per queue: name, loop_ms (its longest round), n, the n CallSids in
line (head first), m, the m free agents as 'id|free since (ms)'}. Free: available
or in a wrap-up that has ended, not deleted, listed in the queue's free list
(`avail:<queue>`) with a score that is not in the future, and one a caller
waiting there could take at its current step (skills; `first_waiting_for` in
lib/line.lua); listed only for a queue with somebody in line. Free since: the
later of when it became free and when the step that accepts it began.
]]
local now = now_ms()
local flat = redis.call('HGETALL', KEYS[1])
local reply = {now, #flat / 2}
for i = 1, #flat, 2 do
  local queue = flat[i]
  local conf = cjson.decode(flat[i + 1])
  local line = redis.call('ZRANGE', K.line(queue), 0, -1)
  reply[#reply + 1] = queue
  reply[#reply + 1] = conf.loop_ms
  reply[#reply + 1] = #line
  for _, sid in ipairs(line) do
    reply[#reply + 1] = sid
  end
  local free = {}
  if #line > 0 then
    local ids = redis.call('ZRANGEBYSCORE', K.avail(queue), '-inf', now, 'LIMIT', 0,
      req.free_listed)
    for _, id in ipairs(ids) do
      local a = redis.call('HMGET', K.agent(id), 'state', 'deleted', 'free_at', 'state_since')
      local freed = (a[1] == 'available' or a[1] == 'wrap_up') and a[2] ~= '1'
      local free_at = tonumber(a[3]) or 0
      local taker = freed and free_at <= now and first_waiting_for(queue, skills_of(id), now)
      if taker then
        -- Free since its state began or its wrap-up ended, whichever was
        -- later (settling the wrap-up later moves `state_since` to `free_at`,
        -- which does not end the stretch), or since the step of the caller
        -- who could take it began.
        local step_began = 0
        if taker.steps then
          local steps = decode_steps(taker.steps)
          local i = step_at(steps, now - taker.arrived)
          step_began = taker.arrived + step_starts(steps, i)
        end
        free[#free + 1] = id .. '|' .. math.max(free_at, tonumber(a[4]) or 0, step_began)
      end
    end
  end
  reply[#reply + 1] = #free
  for _, entry in ipairs(free) do
    reply[#reply + 1] = entry
  end
end
return reply
