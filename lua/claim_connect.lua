--[[ claim_connect: a replica is about to redirect a waiting caller who was given
an agent, with Twilio's REST API; or reports how that went. One redirect per
match at most, and never after the caller's own wait fetch already dialled.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>
ARGV[1]  JSON ClaimConnectRequest (src/store/requests.rs): {prefix, step:
         'claim' | 'failed' | 'sent'}

Reply: 1 when `claim` may send the redirect (the call was 'pending', now
'sending', with `connect_at` the claim's time: a replica that dies mid-redirect
leaves a claim that wait.lua stops honouring once the REST budget is over); 0
otherwise (already dialled by a wait fetch, or over). `failed`
puts a 'sending' call back for its next wait fetch; `sent` changes nothing (the
redirect's own fetch marks it 'dialed').
]]
local call = KEYS[1]
local connect = redis.call('HGET', call, 'connect')
if req.step == 'claim' then
  if redis.call('HGET', call, 'status') == 'ringing' and connect == 'pending' then
    redis.call('HSET', call, 'connect', 'sending', 'connect_at', now_ms())
    return 1
  end
  return 0
end
if req.step == 'failed' and connect == 'sending' then
  redis.call('HSET', call, 'connect', 'failed')
end
return 0
