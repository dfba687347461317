--[[ wait: a waiting caller's fetch of the wait URL, once a hold round (and the
action of its <Gather> when it pressed a key). It is the caller's heartbeat.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; its queue's `line:<queue>` and
         `deadlines` are built from the prefix
ARGV[1]  JSON WaitRequest (src/store/requests.rs): {prefix, sid, max_wait_ms,
         loop_ms (the longest hold round: loop_secs, or music_secs when
         longer; the heartbeat allows it and WAIT_SLACK_MS), step (the chain's step for a wait that ran out), exit (a key
         the caller pressed that leaves the line), connect (this fetch is the
         REST redirect's), redirect_ms (longest a REST redirect can take, its
         whole budget), tail_ms, call_ttl_ms}

A call given an agent (`connect` 'pending', or 'failed' after a REST redirect
that did not go through) gets its <Dial> now ('dialed'), unless a redirect is
being sent; a caller whose agent was forced free, or whose reservation expired,
goes back to its place in line (`settle_reserved` in lib/calls.lua).

Reply, like route's: {'waiting', position, since, 0, estimated wait ms or -1}
| {'connecting'} (another short round) (another hold round; the
heartbeat is pushed back) | {'dial', ...} (an agent was reserved for this
caller: its <Dial> now) | {'fallback', step, 1} (max_wait passed: the caller
left the line, outcome 'timeout') | {'exit'} (the key pressed left the line,
outcome 'exit') | {'fallback', step, 0} | {'ended'} (not waiting: over) |
{'unknown'} (no such call: Redis lost it, or a forged fetch).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local call = KEYS[1]
if redis.call('EXISTS', call) == 0 then
  return {'unknown'}
end
local since = tonumber(redis.call('HGET', call, 'since'))
local now = now_ms()
-- A waiting call's hash lives as long as its wait may still go on.
redis.call('PEXPIRE', call, req.call_ttl_ms)
local reply, status = settle_reserved(call, req.sid, now, req.connect, req.redirect_ms,
  req.loop_ms)
if reply then
  return reply
end
if status ~= 'waiting' then
  return decision(call, 0)
end
if req.exit then
  leave_line(call, req.sid, 'exit')
  redis.call('HSET', call, 'status', 'ended', 'settled_at', now)
  redis.call('PEXPIRE', call, req.tail_ms)
  emit_call('call_ended', req.sid, {reason = 'exit'})
  return {'exit'}
end
since = since or now
if req.max_wait_ms > 0 and now - since >= req.max_wait_ms then
  leave_line(call, req.sid, 'timeout')
  redis.call('HSET', call, 'status', 'fallback', 'step', req.step)
  emit_call('fallback', req.sid, {step = req.step, reason = 'max_wait'})
  return {'fallback', req.step, 1}
end
redis.call('HSET', call, 'loop_ms', req.loop_ms)
redis.call('ZADD', K.deadlines, now + req.loop_ms + WAIT_SLACK_MS, wait_member(req.sid))
return decision(call, 0)
