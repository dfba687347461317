--[[ remove_waiting: the admin API takes a caller out of a queue's line; its next
wait fetch answers the queue's fallback chain (wait outcome 'removed').

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; the queue's `line:<queue>`,
         `deadlines` and `wait_events` are built from the prefix
ARGV[1]  JSON RemoveWaitingRequest (src/store/requests.rs): {prefix, sid, queue,
         step (the chain's step the caller gets), by (who asked: `admin`,
         `supervisor:NAME`)}

Reply: 1 removed, 0 that call is not waiting in that queue.
The removal is a `fallback` event (reason 'removed', with `by`), so it is in
the call's history and in the audit list `audit` (built from the prefix).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local call = KEYS[1]
if redis.call('ZSCORE', K.line(req.queue), req.sid) == false
    or redis.call('HGET', call, 'status') ~= 'waiting' then
  return 0
end
leave_line(call, req.sid, 'removed')
redis.call('HSET', call, 'status', 'fallback', 'step', req.step)
emit_call('fallback', req.sid, {step = req.step, reason = 'removed', by = req.by})
return 1
