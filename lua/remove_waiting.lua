--[[ remove_waiting: the admin API takes a caller out of a queue's line; its next
wait fetch answers the queue's fallback chain (wait outcome 'removed').

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; the queue's `line:<queue>`,
         `deadlines` and `wait_events` are built from the prefix
ARGV[1]  JSON RemoveWaitingRequest (src/store/requests.rs): {prefix, sid, queue,
         step (the chain's step the caller gets)}

Reply: 1 removed, 0 that call is not waiting in that queue.
]]
local call = KEYS[1]
if redis.call('ZSCORE', K.line(req.queue), req.sid) == false
    or redis.call('HGET', call, 'status') ~= 'waiting' then
  return 0
end
leave_line(call, req.sid, 'removed')
redis.call('HSET', call, 'status', 'fallback', 'step', req.step)
return 1
