--[[ route_call: an incoming call: reserve the agent free the longest, or choose
the call's fallback step (see `route` in lib/calls.lua).

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; every other key is built from the
         prefix: the agents and `avail:<queue>` lines of the plan, `deadlines`,
         `counts`, `wrap_ups`, `affinity:<caller>`
ARGV[1]  JSON RouteRequest (src/store/requests.rs): {prefix, sid, token,
         spare_token (the reservation of a waiting caller given an agent this
         call found free but may not take), caller,
         account (the webhook's AccountSid, kept in the call hash; '' keeps
         what it had), home, call_ttl_ms, max_attempts, step, plan: [{queue, via, reservation_ms,
         wrap_up_ms, delay_ms, max_missed, lease_ms, affinity_ms, steps}],
         hold, priority (0 to 100, the call's in line), sl_ms}

Reply: {'dial', agent, contact, token, queue, via, attempt, fresh}
     | {'fallback', step, fresh} | {'ended'}
Each change is also appended as an event to `events` and, for a call, to
`call_events:<sid>` (both built from the prefix; `emit` in lib/common.lua).
]]
return route(req)
