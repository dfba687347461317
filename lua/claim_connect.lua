--[[ claim_connect: a replica is about to redirect a waiting caller who was given
an agent, with Twilio's REST API; or reports how that went. One redirect per
match at most, and never after the caller's own wait fetch already dialled.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; its line, its agent and the keys
         freeing that agent touches are built from the prefix
ARGV[1]  JSON ClaimConnectRequest (src/store/requests.rs): {prefix, sid, step:
         'claim' | 'failed' | 'unknown', token (the reservation the claim was
         for; for 'failed' and 'unknown'), spare_token (for 'unknown': a waiting
         caller the freed agent may be given to)}

Steps:
- 'claim': a 'pending' call becomes 'sending', with `connect_at` the claim's time
  (a replica that dies mid-redirect leaves a claim that wait.lua stops honouring
  once the REST budget is over). A call whose REST redirects Twilio did not know
  ('rest' 'off') is never claimed.
- 'failed': the claimed call goes back to 'failed', for its next wait fetch.
- 'unknown': Twilio has no such call in this account (404). The agent is freed
  without a miss and the caller goes back to its place in line, with its
  heartbeat, to be connected by its own wait fetches from now on ('rest' 'off'):
  if it is gone, the heartbeat runs out; if TWILIO_ACCOUNT_SID names another
  account, the freed agent, offered to the head of the line, is its again.
'failed' and 'unknown' act only on the claim of the reservation `token` names:
a report that comes after that claim was taken over and the caller matched
again changes nothing.

Reply: {'claimed', token, account} for a 'claim' that may send the redirect
(account: the call's AccountSid, '' when its webhook had none);
{'refused'} otherwise (and for the reports).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'connect', 'rest', 'agent', 'token', 'account')
local status, connect, id, token = c[1], c[2], c[4], c[5]
if req.step == 'claim' then
  if status == 'ringing' and connect == 'pending' and c[3] ~= 'off' then
    redis.call('HSET', call, 'connect', 'sending', 'connect_at', now_ms())
    return {'claimed', token, c[6] or ''}
  end
  return {'refused'}
end
if connect ~= 'sending' or status ~= 'ringing' or token ~= req.token then
  return {'refused'}
end
if req.step == 'failed' then
  redis.call('HSET', call, 'connect', 'failed')
elseif req.step == 'unknown' then
  local now = now_ms()
  local w = redis.call('HMGET', call, 'queue', 'since', 'loop_ms')
  redis.call('ZREM', K.deadlines, deadline_member('reservation', req.sid, id, token))
  redis.call('HSET', call, 'rest', 'off')
  if w[1] and tonumber(w[2]) then
    join_line(call, req.sid, w[1], tonumber(w[2]), now, tonumber(w[3]) or 0)
  else
    redis.call('HSET', call, 'status', 'retry', 'token', '', 'connect', '')
  end
  local agent = K.agent(id)
  local a = redis.call('HMGET', agent, 'token', 'state')
  if a[1] == token and a[2] == 'reserved' then
    release_agent(agent, id, 'free', now, {})
    offer_if_free(agent, id, now)
  end
end
return {'refused'}
