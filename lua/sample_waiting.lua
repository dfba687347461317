--[[ sample_waiting: the callers waiting in each queue's line now, as the
current minute's peak in the queue's figures (lib/stats.lua), so the trend
shows a line that stays full through minutes in which nobody joins it (each
join raises the peak itself). Every replica's worker runs it now and then: a
peak only ever goes up within its minute, so more samples change nothing but
its accuracy, and no lease is needed.

KEYS[1]  hold queues hash  sb:{ns}:hold_queues (queue -> its hold entry); the
         lines `line:<queue>` and figures `stats:<queue>` are built from the
         prefix
ARGV[1]  JSON SampleRequest (src/store/requests.rs): {prefix}

Reply: how many queues had callers waiting (and were written to); an empty
line writes nothing, so an idle namespace stays untouched.
]]
local now = now_ms()
local sampled = 0
for _, queue in ipairs(redis.call('HKEYS', KEYS[1])) do
  local n = redis.call('ZCARD', K.line(queue))
  if n > 0 then
    stats_waiting(queue, now, n)
    sampled = sampled + 1
  end
end
return sampled
