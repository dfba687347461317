--[[ settle_attempt: apply what Twilio reports about one dial attempt (see `settle`
in lib/calls.lua); for a Dial action, also the call's next step in the same
script, so the webhook is one round trip.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; every other key is built from the
         prefix: the agent, `deadlines`, `counts`, `wrap_ups`, `affinity:<caller>`,
         and for `next` whatever `route` touches
ARGV[1]  JSON SettleRequest (src/store/requests.rs): {prefix, tail_ms, settle:
         {sid, agent, token, outcome, confirm_ms}, next: RouteRequest or null,
         spare_token (the agent, if freed now, may be given to a waiting caller)}

With `next` (the Dial action): a call switchboard does not know (it never
came in through the voice webhook, its record expired, or Redis lost it) is hung
up and nothing is written: any TwiML in the Twilio account can name a Dial action
URL, and Twilio signs what it sends there, so an unknown call must not reserve an
agent. A call that ended, or whose report of a completed or hung-up call changed
nothing (a stale report must never ring another agent), is hung up; any other
call (ready for its next attempt, or a duplicate) gets `route`'s answer.

Reply: {code, queue, caller, agent_state, call_status} (see `settle`), followed
with `next` by route's reply or {'hangup'}.
An answered call that ends joins its agent's last calls (`agent_calls:<id>`,
built from the prefix; `log_agent_call` in lib/calls.lua).
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
local s = req.settle
local settled = settle(s, req.tail_ms)
local r = req.next
if r == nil or r == cjson.null then
  return settled
end
local code, call_status = settled[1], settled[5]
local applied = code == 'applied' or code == 'recovered'
local over = s.outcome == 'completed' or s.outcome == 'hangup'
local next_step
if code == 'unknown' or call_status == 'ended' or (over and not applied) then
  next_step = {'hangup'}
else
  next_step = route(r)
end
for _, v in ipairs(next_step) do
  settled[#settled + 1] = v
end
return settled
