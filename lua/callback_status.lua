--[[ callback_status: Twilio's status callback of a callback's outbound call
(StatusCallbackEvent initiated, ringing, answered, completed).

KEYS[1]  call hash  sb:{ns}:call:<CallSid> (the callback's); the agent and the
         keys a release touches are built from the prefix
ARGV[1]  JSON CallbackReportRequest (src/store/requests.rs): {prefix, sid,
         token, call_sid (the outbound call), status (its CallStatus),
         agent_first (the outbound call rings the agent first), spare_token}

An agent-first try whose agent's phone ends before it answered is over
without the customer having been called (not counted), and is the agent's
miss. Before the customer pressed 1, a final status ends the try: busy,
no-answer, failed, canceled, or completed (answered, but no 1: a person who
hung up, or a machine that answering machine detection did not catch).
After, the outbound call is an ordinary call: its final status ends it as the
number's status callback would (Rust then runs end_call for it).

Reply: {'noted'} | {'retry'} | {'failed'} (the try is over) | {'handed_over'}
(the status is the connected outbound call's) | {'stale'}.
]]
local call = KEYS[1]
local now = now_ms()
local final = req.status == 'completed' or req.status == 'busy' or req.status == 'no-answer'
  or req.status == 'failed' or req.status == 'canceled'
local c = redis.call('HMGET', call, 'status', 'token', 'callback_sid', 'callback_connected_sid')
if c[4] == req.call_sid then
  return {final and 'handed_over' or 'noted'}
end
if (c[1] ~= 'cb_dialing' and c[1] ~= 'cb_answered') or c[2] ~= req.token then
  return {'stale'}
end
if not final then
  if not c[3] or c[3] == '' then
    redis.call('HSET', call, 'callback_sid', req.call_sid)
  end
  return {'noted'}
end
if req.agent_first and c[1] == 'cb_dialing' then
  return {callback_attempt_over(call, req.sid, req.token, 'agent_missed', now, false, false,
    true) or 'stale'}
end
local why = ({completed = 'not_confirmed', busy = 'busy', ['no-answer'] = 'no_answer',
  failed = 'failed', canceled = 'canceled'})[req.status]
return {callback_attempt_over(call, req.sid, req.token, why, now, false, true) or 'stale'}
