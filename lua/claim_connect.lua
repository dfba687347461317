--[[ claim_connect: a replica is about to redirect a waiting caller who was given
an agent, with Twilio's REST API; or reports how that went. One redirect per
match at most, and never after the caller's own wait fetch already dialled.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; its agent and the keys freeing it
         touches are built from the prefix
ARGV[1]  JSON ClaimConnectRequest (src/store/requests.rs): {prefix, step:
         'claim' | 'failed' | 'unknown', spare_token (for a waiting caller the
         agent an 'unknown' frees may be given to)}

Steps:
- 'claim': the call was 'pending': it is now 'sending', with `connect_at` the
  claim's time (a replica that dies mid-redirect leaves a claim that wait.lua
  stops honouring once the REST budget is over). A call whose REST redirects
  Twilio did not know ('rest' 'off') is never claimed.
- 'failed': a 'sending' call goes back to 'failed', for its next wait fetch.
- 'unknown': Twilio has no such call in this account (404). The agent is freed
  without a miss (token-fenced), the caller goes back to its place ('retry', as
  after an expired reservation) and is connected only by its own wait fetches
  from now on ('rest' 'off'): if it is gone, its heartbeat runs out; if
  TWILIO_ACCOUNT_SID is wrong, it is still connected, a round later.

Reply: 1 when `claim` may send the redirect; 0 otherwise.
]]
local call = KEYS[1]
local c = redis.call('HMGET', call, 'status', 'connect', 'rest', 'agent', 'token')
local status, connect = c[1], c[2]
if req.step == 'claim' then
  if status == 'ringing' and connect == 'pending' and c[3] ~= 'off' then
    redis.call('HSET', call, 'connect', 'sending', 'connect_at', now_ms())
    return 1
  end
  return 0
end
if req.step == 'failed' and connect == 'sending' then
  redis.call('HSET', call, 'connect', 'failed')
elseif req.step == 'unknown' and status == 'ringing' and connect == 'sending' then
  local id, token = c[4], c[5]
  local agent = K.agent(id)
  local now = now_ms()
  redis.call('HSET', call, 'status', 'retry', 'token', '', 'connect', '', 'rest', 'off')
  redis.call('ZREM', K.deadlines, deadline_member('reservation', req.sid, id, token))
  local a = redis.call('HMGET', agent, 'token', 'state')
  if a[1] == token and a[2] == 'reserved' then
    release_agent(agent, id, 'free', now, {})
    offer_if_free(agent, id, now)
  end
end
return 0
