--[[ claim_callback: a replica takes a callback given an agent (`cb_reserved`,
listed in `callback_dials`) to dial the customer, at the account's pace.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; the agent, `cps` and `deadlines`
         are built from the prefix
ARGV[1]  JSON ClaimCallbackRequest (src/store/requests.rs): {prefix, sid,
         cps (calls a second every replica together may place), dial_ms
         (longest a placed call takes to be answered and confirmed),
         spare_token (for a waiting caller the freed agent may be given to)}

Twilio queues calls placed faster than the account's calls per second (CPS)
and places them later: a customer would be called late while an agent waits.
So calls are paced here: `cps` holds the earliest time (ms) the next call may
be placed (a GCRA with no burst: one every 1000/cps ms, however many replicas).

Reply: {'claimed', token, to, from, account, queue, attempt, contact (the
agent's, for an agent-first callback)} (dial now: the
reservation's deadline is moved to dial_ms from now) | {'wait', ms} (the pace
allows no call before then) | {'stale'} (not reserved for dialling: claimed
by another replica, or ended; an agent forced free meanwhile sends the
callback back to its place).
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'token', 'agent', 'callback_to', 'callback_from',
  'account', 'queue', 'callback_tries', 'reservation_ms', 'contact')
if c[1] ~= 'cb_reserved' then
  return {'stale'}
end
local now = now_ms()
local id = c[3] or ''
if redis.call('HGET', K.agent(id), 'token') ~= c[2] then
  redis.call('ZREM', K.deadlines, deadline_member('reservation', req.sid, id, c[2]))
  callback_rejoin(call, req.sid, now)
  return {'stale'}
end
local every = 1000 / req.cps
local next_at = tonumber(redis.call('GET', K.cps)) or 0
if next_at > now then
  return {'wait', math.ceil(next_at - now)}
end
redis.call('SET', K.cps, math.max(next_at, now) + every, 'PX', math.ceil(every) + 1000)
local tries = (tonumber(c[8]) or 0) + 1
redis.call('HSET', call, 'status', 'cb_dialing', 'callback_tries', tries, 'dialed_at', now,
  'callback_sid', '')
redis.call('ZADD', K.deadlines, now + req.dial_ms + (tonumber(c[9]) or 0),
  deadline_member('reservation', req.sid, id, c[2]))
emit_call('callback_dialing', req.sid, {attempt = tries})
return {'claimed', c[2], c[4] or '', c[5] or '', c[6] or '', c[7] or '', tries, c[10] or ''}
