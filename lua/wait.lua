--[[ wait: a waiting caller's fetch of the wait URL, once a hold round (and the
action of its <Gather> when it pressed a key). It is the caller's heartbeat.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; its queue's `line:<queue>` and
         `deadlines` are built from the prefix
ARGV[1]  JSON WaitRequest (src/store/requests.rs): {prefix, sid, max_wait_ms,
         step (the chain's step for a wait that ran out), exit (a key the caller
         pressed that leaves the line), tail_ms}

Reply, like route's: {'waiting', position, since, 0, estimated wait ms or -1}
(another hold round; the
heartbeat is pushed back) | {'dial', ...} (an agent was reserved for this
caller: its <Dial> now) | {'fallback', step, 1} (max_wait passed: the caller
left the line, outcome 'timeout') | {'exit'} (the key pressed left the line,
outcome 'exit') | {'fallback', step, 0} | {'ended'} (not waiting: over) |
{'unknown'} (no such call: Redis lost it, or a forged fetch).
]]
local call = KEYS[1]
if redis.call('EXISTS', call) == 0 then
  return {'unknown'}
end
local c = redis.call('HMGET', call, 'status', 'queue', 'since', 'loop_ms')
if c[1] ~= 'waiting' then
  return decision(call, 0)
end
local now = now_ms()
if req.exit then
  leave_line(call, req.sid, 'exit')
  redis.call('HSET', call, 'status', 'ended', 'settled_at', now)
  redis.call('PEXPIRE', call, req.tail_ms)
  return {'exit'}
end
local since = tonumber(c[3]) or now
if req.max_wait_ms > 0 and now - since >= req.max_wait_ms then
  leave_line(call, req.sid, 'timeout')
  redis.call('HSET', call, 'status', 'fallback', 'step', req.step)
  return {'fallback', req.step, 1}
end
redis.call('ZADD', K.deadlines, now + (tonumber(c[4]) or 0) + WAIT_SLACK_MS, wait_member(req.sid))
return decision(call, 0)
