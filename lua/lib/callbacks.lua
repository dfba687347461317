--[[ callbacks.lua: a waiting caller who asked to be called back keeps its
place in line (docs/callbacks.md).

The call hash stays in `line:<queue>` with its arrival and priority, status
'callback', without a heartbeat (nobody fetches: the caller hung up), and is
listed in `callbacks:<queue>` until it ends. Its fields: `callback` '1',
`callback_to` (the customer's number), `callback_from` (the number it called,
which calls back), `callback_tries` (dial attempts so far), `callback_max_tries`,
`callback_retry_ms`, `callback_sid` (the current attempt's outbound CallSid).

Its statuses, each move one script:
  callback     in line, at its place
  cb_reserved  an agent was reserved for it (lib/line.lua reserve_for), as for
               a call, and it is listed in `callback_dials`
  cb_dialing   a replica claimed it (claim_callback.lua, which also keeps the
               account's calls-per-second pace in `cps`) and asks Twilio to
               call the customer
  cb_answered  the customer answered and hears the prompt to press 1
  cb_retry     an attempt failed: in `callbacks_retry` until its next try,
               then back at its place (due_callbacks.lua)
  ended        connected (the customer pressed 1: the outbound call takes
               the reservation over, callback_connect.lua), failed (no try
               left, or Twilio refused the number) or cancelled; its wait
               outcome says which: callback_connected, callback_failed,
               callback_cancelled.
Every move of an attempt names its token (the agent's reservation): a report
about an earlier attempt changes nothing, so one callback is never dialled
twice at once.
]]

-- A callback's hash outlives the caller's call. While the callback is live
-- (in line, tried, waiting for its next try) it does not expire at all: it
-- keeps its place through a weekend without agents, or a long
-- `callback_retry_secs`, until it ends (or the API cancels it). Once ended,
-- its history is kept a day.
local CALLBACK_TTL_MS = 86400000

-- Ends callback `sid` for good with `outcome`, wherever it is.
local function callback_end(call, sid, outcome, now)
  local queue = redis.call('HGET', call, 'queue') or ''
  out_of_line(call, sid, queue)
  redis.call('ZREM', K.callbacks_retry, sid)
  redis.call('SREM', K.callbacks(queue), sid)
  record_outcome(call, outcome, now)
  redis.call('HSET', call, 'status', 'ended', 'token', '', 'settled_at', now)
  redis.call('PEXPIRE', call, CALLBACK_TTL_MS)
  emit_call('callback_ended', sid, {outcome = outcome})
end

-- Puts callback `sid` back at its place in line (its arrival and priority).
local function callback_rejoin(call, sid, now)
  local c = redis.call('HMGET', call, 'queue', 'since', 'loop_ms')
  join_line(call, sid, c[1], tonumber(c[2]) or now, now, tonumber(c[3]) or 20000)
  -- Nobody fetches: no heartbeat.
  redis.call('ZREM', K.deadlines, deadline_member('wait', sid, '', ''))
  redis.call('HSET', call, 'status', 'callback', 'token', '', 'agent', '', 'callback_sid', '')
  redis.call('PERSIST', call)
end

-- Frees the agent reserved for the callback's attempt `token`, if it still
-- holds it, and offers it at once to a waiting caller (with the request's
-- spare token): not a miss (the customer, not the agent, did not answer),
-- unless `missed` (an agent-first try whose agent did not answer).
local function callback_release(call, sid, token, now, missed)
  local c = redis.call('HMGET', call, 'agent', 'delay_ms', 'max_missed')
  local id = c[1] or ''
  redis.call('ZREM', K.deadlines, deadline_member('reservation', sid, id, token))
  if id == '' then
    return
  end
  local agent = K.agent(id)
  if redis.call('HGET', agent, 'token') == token then
    release_agent(agent, id, missed and 'miss' or 'free', now,
      {delay_ms = tonumber(c[2]) or 0, max_missed = tonumber(c[3]) or 3})
    offer_if_free(agent, id, now)
  end
end

-- The callback's attempt `token` is over without a connection (`why`:
-- no_answer, busy, failed, canceled, voicemail, not_confirmed, lost): its
-- agent is freed, and it waits for its next try, or ends (`callback_failed`)
-- when it had its last or `final` (Twilio refused the number). `counted`
-- false: the customer was never called (Twilio was too busy to take the
-- call, or an agent-first try's agent did not answer), so the try is not
-- counted; `missed`: its agent did not answer (an agent-first try). Returns
-- 'retry', 'failed' or nil for a report about another attempt.
local function callback_attempt_over(call, sid, token, why, now, final, counted, missed)
  local c = redis.call('HMGET', call, 'status', 'token', 'callback_tries', 'callback_max_tries',
    'callback_retry_ms')
  local live = c[1] == 'cb_reserved' or c[1] == 'cb_dialing' or c[1] == 'cb_answered'
  if not live or c[2] ~= token then
    return nil
  end
  callback_release(call, sid, token, now, missed)
  local tries = tonumber(c[3]) or 0
  -- A try counts from its claim (cb_dialing on): one not the customer's
  -- fault is taken back.
  if counted == false and c[1] ~= 'cb_reserved' then
    tries = math.max(tries - 1, 0)
  end
  redis.call('HSET', call, 'token', '', 'agent', '', 'last_token', token,
    'callback_tries', tries)
  emit_call('callback_attempt', sid, {attempt = tries, outcome = why})
  if final or tries >= (tonumber(c[4]) or 1) then
    callback_end(call, sid, 'callback_failed', now)
    return 'failed'
  end
  -- A try Twilio never placed comes again soon; one the customer missed
  -- after the queue's wait.
  local after = counted == false and 5000 or (tonumber(c[5]) or 300000)
  redis.call('HSET', call, 'status', 'cb_retry', 'callback_next_at', now + after)
  redis.call('ZADD', K.callbacks_retry, now + after, sid)
  redis.call('PERSIST', call)
  return 'retry'
end
