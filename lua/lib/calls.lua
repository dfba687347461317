--[[ calls.lua: a call's two moves, shared by the scripts that make them.

`route(r)` reserves the agent free the longest for a call, or settles on its
fallback; `settle(s)` applies what Twilio reports about one dial attempt. The Dial
action needs both in one webhook (settle, then maybe route), and the number's
status callback needs settle, so they live here and every webhook stays one
script: one Redis round trip.

A call hash (`call:<CallSid>`) lives `call_ttl_ms` while the call may still be
routed, and only `tail_ms` (enough for late and replayed callbacks) once it ended.
]]

-- The decision already recorded in a call hash.
local function decision(call, fresh)
  local c = redis.call('HMGET', call, 'status', 'agent', 'contact', 'token', 'agent_queue',
    'via', 'attempt', 'step')
  if c[1] == 'ringing' or c[1] == 'on_call' then
    return {'dial', c[2], c[3], c[4], c[5], c[6], tonumber(c[7]), fresh}
  elseif c[1] == 'fallback' then
    return {'fallback', c[8], fresh}
  elseif c[1] == 'waiting' then
    local q = redis.call('HMGET', call, 'queue', 'sid', 'since')
    local position = position_of(call, q[2], q[1])
    return {'waiting', position, tonumber(q[3]) or 0, fresh,
      wait_estimate(call, q[2], q[1], position)}
  end
  return {'ended'}
end

-- A waiting caller's request (its wait fetch, its callback request) when an
-- agent may have been reserved for it. An agent reserved and not yet dialled
-- gets its <Dial> now (`connect` 'dialed'); while a REST redirect is on its
-- way ('sending') a request that is not the redirect's own (`connect`) gets
-- {'connecting'} (a short pause and another fetch), so the redirect never
-- cuts off a <Dial> in progress; a claim older than `redirect_ms` was made by
-- a replica that died or gave up without saying so, and dials. If the agent
-- no longer holds the call (forced free), or the reservation expired before
-- the caller was dialled ('retry'), the caller goes back to its place in line
-- (a round `loop_ms` for its heartbeat). Returns the reply to give now, or
-- nil and the call's status after.
local function settle_reserved(call, sid, now, connect, redirect_ms, loop_ms)
  local c = redis.call('HMGET', call, 'status', 'queue', 'since', 'connect', 'agent', 'token',
    'connect_at')
  local status = c[1]
  if status == 'ringing' and c[4] and c[4] ~= '' and c[4] ~= 'dialed' then
    if redis.call('HGET', K.agent(c[5]), 'token') ~= c[6] then
      redis.call('HSET', call, 'status', 'retry', 'token', '', 'connect', '')
      redis.call('ZREM', K.deadlines, deadline_member('reservation', sid, c[5], c[6]))
      status = 'retry'
    elseif c[4] == 'sending' and not connect
        and now - (tonumber(c[7]) or now) < redirect_ms then
      return {'connecting'}
    else
      redis.call('HSET', call, 'connect', 'dialed')
      return decision(call, 0)
    end
  end
  local since = tonumber(c[3])
  if status == 'retry' and since and c[2] then
    -- It waited, was offered an agent, and that attempt ended (an expired
    -- reservation, a forced agent): back in its place.
    join_line(call, sid, c[2], since, now, loop_ms)
    status = 'waiting'
  end
  return nil, status
end

--[[ route(r): r = {sid, token, caller, home, call_ttl_ms, max_attempts, step, plan,
hold, priority, sl_ms}
plan: the queues to try in order, each {queue, via, reservation_ms, wrap_up_ms,
delay_ms, max_missed, lease_ms, affinity_ms, steps (absent: any agent; see
lib/needs.lua)}: the call's own queue (via 'queue'),
then the `queue:` steps of its fallback chain (via 'overflow'). On the first
attempt the agent who last answered this caller is offered first if it is free
right now in the call's own queue (via 'affinity'). Otherwise, in each queue, the
agent whose score (the ms it became free) is lowest and not in the future is
taken, skipping agents this call already tried. The chosen queue's timings are
kept in the call hash for the scripts that end the attempt.

With `hold` ({loop_ms, max_waiting, join_when_no_agents}: the call's own queue
holds callers), a call that finds no agent waits in line instead, unless the line
is full (wait outcome 'full') or, without join_when_no_agents, nobody of the queue
is signed in ('no_agents'); a new call joins the line whenever others wait (never
overtaking them), and a call that waited and was not answered goes back to its
place (`max_attempts` does not end a wait).

Returns {'dial', agent, contact, token, queue, via, attempt, fresh} |
{'fallback', step, fresh} | {'waiting', position, since, fresh} | {'ended'};
`fresh` is 0 when this repeats a decision already made for the CallSid (a retried
webhook), which reserves nobody new.
]]
local function route(r)
  local call = K.call(r.sid)
  local status = redis.call('HGET', call, 'status')
  if status and status ~= 'retry' then
    return decision(call, 0)
  end
  -- The Twilio account (sub-account) the call belongs to, its webhook's
  -- AccountSid: the REST requests about it name that account. A request
  -- without one (a Dial action's, an older version's) keeps what the call had.
  if r.account and r.account ~= cjson.null and r.account ~= '' then
    redis.call('HSET', call, 'account', r.account)
  end
  local attempt = tonumber(redis.call('HGET', call, 'attempt')) or 0
  local tried_csv = redis.call('HGET', call, 'tried') or ''
  local tried = {}
  for _, id in ipairs(split(tried_csv)) do
    tried[id] = true
  end
  local now = now_ms()
  -- When the call first came in: the `started_at` of its agent's last calls,
  -- and the start of its steps.
  redis.call('HSETNX', call, 'arrived_at', now)
  local waited = now - tonumber(redis.call('HGET', call, 'arrived_at'))
  if not status then
    -- The first route of a new call: it is offered to its own queue, and
    -- keeps its priority in line (a menu's or a lookup's).
    stats_offered(call, r.home, now, tonumber(r.sl_ms) or 20000)
    if (tonumber(r.priority) or 0) > 0 then
      redis.call('HSET', call, 'priority', r.priority)
    end
  end
  local home = r.plan[1]
  -- A call's needs are fixed at its first route (a menu's choice is not sent
  -- again with a Dial action): each queue's steps are kept (`plan_steps`) and
  -- win over the request's; the own queue's also as `steps`, for the scripts
  -- that match the call while it waits.
  local kept = redis.call('HGET', call, 'plan_steps')
  if kept then
    local by_queue = cjson.decode(kept)
    for _, e in ipairs(r.plan) do
      e.steps = by_queue[e.queue]
    end
  else
    local by_queue, any = {}, false
    for _, e in ipairs(r.plan) do
      if e.steps and e.steps ~= cjson.null then
        by_queue[e.queue] = e.steps
        any = true
      end
    end
    if any then
      redis.call('HSET', call, 'plan_steps', cjson.encode(by_queue))
      if by_queue[r.home] then
        redis.call('HSET', call, 'steps', cjson.encode(by_queue[r.home]))
      end
    end
  end

  -- A plan entry's step now: its index (0 without steps), alternatives and
  -- expression.
  local function step_of(e)
    if not e.steps or e.steps == cjson.null then
      return 0, ANY, nil
    end
    local i, step = step_at(e.steps, waited)
    return i, step.alts, step.needs
  end

  -- `why`: {step, needs, looked, chosen}, how the agent was chosen, for the
  -- call's history (`GET /v1/calls/{sid}`).
  local function reserve(id, agent, e, via, why)
    dequeue(id, queues_of(agent))
    set_state(agent, id, 'reserved', {'state_since', now, 'free_at', '',
      'call_sid', r.sid, 'token', r.token, 'released_token', ''})
    attempt = attempt + 1
    tried_csv = tried_csv == '' and id or (tried_csv .. ',' .. id)
    redis.call('HSET', call, 'sid', r.sid, 'queue', r.home, 'caller', r.caller,
      'status', 'ringing', 'agent', id, 'contact', redis.call('HGET', agent, 'contact'),
      'token', r.token, 'agent_queue', e.queue, 'via', via, 'attempt', attempt,
      'tried', tried_csv, 'reserved_at', now, 'last_token', '', 'last_agent', '', 'leg_sid', '',
      'wrap_up_ms', e.wrap_up_ms, 'delay_ms', e.delay_ms, 'max_missed', e.max_missed,
      'lease_ms', e.lease_ms, 'affinity_ms', e.affinity_ms)
    redis.call('PEXPIRE', call, r.call_ttl_ms)
    redis.call('ZADD', K.deadlines, now + e.reservation_ms,
      deadline_member('reservation', r.sid, id, r.token))
    emit_call('call_routed', r.sid, {via = via, attempt = attempt,
      step = why.step > 0 and why.step or nil, needs = why.needs,
      looked = why.looked, matched = why.matched, matched_more = why.matched_more,
      chosen = why.chosen, waited_ms = waited})
    if why.step > 0 then
      record_step(e.queue, 'matched', why.step, waited)
    end
    return decision(call, 1)
  end

  -- The agent free the longest whom `e`'s step accepts, and why: nil when
  -- none. A call with steps also says among how many it was chosen (counted
  -- to MATCHED_CAP, reading at most MATCHED_LOOKED members: bounded work).
  local function candidate(e)
    local step, alternatives, needs = step_of(e)
    local id, _, looked = longest_idle_matching(e.queue, alternatives, now, tried)
    if not id then
      return nil
    end
    local why = {step = step, needs = needs, looked = looked, chosen = 'longest_idle'}
    if step > 0 then
      local counted = count_matching(e.queue, alternatives, now, MATCHED_CAP, 0,
        {left = MATCHED_LOOKED}, false)
      why.matched, why.matched_more = counted.matching, counted.more or nil
    end
    return id, why
  end

  local hold = r.hold
  if hold == cjson.null then
    hold = nil
  end
  local function wait(arrival, outcome_if_refused)
    if outcome_if_refused then
      redis.call('HSET', call, 'sid', r.sid, 'queue', r.home, 'caller', r.caller,
        'status', 'fallback', 'step', r.step, 'agent', '', 'token', '')
      record_outcome(call, outcome_if_refused, now)
      redis.call('PEXPIRE', call, r.call_ttl_ms)
      emit_call('fallback', r.sid, {step = r.step, reason = outcome_if_refused})
      return decision(call, 1)
    end
    redis.call('HSET', call, 'sid', r.sid, 'queue', r.home, 'caller', r.caller)
    join_line(call, r.sid, r.home, arrival, now, hold.loop_ms)
    redis.call('PEXPIRE', call, r.call_ttl_ms)
    return decision(call, 1)
  end
  -- Why a new caller may not join the line: nil when it may.
  local function refusal()
    if redis.call('ZCARD', K.line(r.home)) >= hold.max_waiting then
      return 'full'
    end
    if not hold.join_when_no_agents and forecast_staffed(r.home) == 0 then
      return 'no_agents'
    end
    return nil
  end
  if hold then
    local since = tonumber(redis.call('HGET', call, 'since'))
    if since then
      -- It waited, was offered an agent, and that attempt ended: back in place.
      return wait(since)
    end
    if redis.call('ZCARD', K.line(r.home)) > 0 then
      -- Others wait: a free agent goes to them first. This call takes one
      -- only if no waiting caller's current step accepts it (their needs
      -- differ); otherwise it joins the line behind them, and the agent goes
      -- to them (at once when freed by a webhook, else the next sweep).
      local id, why = nil, nil
      if attempt < r.max_attempts then
        id, why = candidate(home)
      end
      if id then
        local ahead = first_waiting_for(r.home, skills_of(id), now)
        local mine = tonumber(redis.call('HGET', call, 'priority')) or 0
        if not ahead or mine > ahead.priority then
          return reserve(id, K.agent(id), home, home.via, why)
        end
        -- The agent is the waiting caller's now, not idle until the sweep.
        local conf = redis.call('HGET', K.hold_queues, r.home)
        if conf and r.spare_token and r.spare_token ~= '' then
          reserve_for(ahead.sid, K.agent(id), id, {queue = r.home, conf = cjson.decode(conf)},
            r.spare_token, now)
        end
      end
      return wait(now, refusal())
    end
  end

  if attempt == 0 and home and r.caller ~= '' and home.affinity_ms > 0 then
    local preferred = redis.call('GET', K.affinity(r.caller))
    if preferred then
      local score = tonumber(redis.call('ZSCORE', K.avail(home.queue), preferred))
      local agent = K.agent(preferred)
      local step, alternatives, needs = step_of(home)
      if score and score <= now and is_free(agent)
          and satisfies(skills_of(preferred), alternatives) then
        return reserve(preferred, agent, home, 'affinity',
          {step = step, needs = needs, looked = 1, chosen = 'affinity'})
      end
    end
  end

  if attempt < r.max_attempts then
    for _, e in ipairs(r.plan) do
      local id, why = candidate(e)
      if id then
        return reserve(id, K.agent(id), e, e.via, why)
      end
    end
  end

  if hold then
    return wait(now, refusal())
  end

  redis.call('HSET', call, 'sid', r.sid, 'queue', r.home, 'caller', r.caller,
    'status', 'fallback', 'step', r.step, 'agent', '', 'token', '')
  redis.call('PEXPIRE', call, r.call_ttl_ms)
  -- Why: no free agent of any queue of the plan met its step then.
  local need_step, _, needs = step_of(home or {})
  emit_call('fallback', r.sid, {step = r.step, reason = 'no_agent',
    need_step = need_step > 0 and need_step or nil, needs = needs})
  return decision(call, 1)
end

--[[ An answered call of agent `call.agent` ended at `now`: it goes first in the
agent's last calls (`agent_calls:<id>`, a list of JSON entries capped at
`req.agent_calls_kept`, living `req.agent_calls_ttl_ms` from its last write), with
the wrap-up (disposition) given so far; set_wrap_up.lua updates the entry of a
later one. The call is marked `logged`, which set_wrap_up.lua takes as proof it
was answered (`answered_at` is missing when its answered callback was lost). An
agent deleted meanwhile gets no entry. ]]
local function log_agent_call(sid, now)
  local call = K.call(sid)
  local c = redis.call('HMGET', call, 'agent', 'caller', 'agent_queue', 'arrived_at',
    'reserved_at', 'answered_at', 'wrap_up_code', 'wrap_up_note', 'wrap_up_at')
  local id = c[1]
  if not id or id == '' then
    return
  end
  local agent = K.agent(id)
  if redis.call('EXISTS', agent) == 0 or redis.call('HGET', agent, 'deleted') == '1' then
    return
  end
  local entry = {call_sid = sid, queue = c[3] or '',
    started_at = tonumber(c[4]) or tonumber(c[5]) or now,
    answered_at = tonumber(c[6]), ended_at = now}
  if c[2] and c[2] ~= '' then
    entry.from = c[2]
  end
  if c[7] then
    entry.wrap_up = {code = c[7], note = c[8] or '', at = tonumber(c[9])}
  end
  local list = K.agent_calls(id)
  redis.call('LPUSH', list, cjson.encode(entry))
  redis.call('LTRIM', list, 0, req.agent_calls_kept - 1)
  redis.call('PEXPIRE', list, req.agent_calls_ttl_ms)
  redis.call('HSET', call, 'logged', '1')
end

--[[ settle(s, tail_ms): s = {sid, agent, token, outcome, confirm_ms}
Acts only when the token is the one the call holds now, so a late, duplicated or
reordered callback changes nothing. Outcomes:
  'answered'   the agent picked up: reserved -> on_call, the reservation becomes
               a lease of the call's lease_ms
  'completed'  the call is over: the agent goes to wrap-up
  'miss'       no-answer, busy or failed: the agent is released as a miss and
               the call may try its next agent
  'hangup'     the caller hung up: a ringing agent is free at once (no miss); an
               answered call goes to wrap-up
  'picked_up'  a confirm attempt's phone picked up: the agent has not accepted
               yet, so it stays reserved, its deadline moved to now + confirm_ms
  'ended'      a confirm attempt's leg ended: wrap-up if the agent had accepted
               (on_call), else a miss (its voicemail or a phone nobody attended)
A report of an attempt the worker already released as expired (the call waits
for its next attempt: `last_token`) is not lost: 'answered' takes the agent back
on the call and 'completed' ends the call in wrap-up, provided the agent did
nothing since (its `released_token` is still this token).

Returns {code, queue, caller, agent_state, call_status}:
  code         'applied' | 'recovered' (a late report of an expired attempt:
               answered or completed after all, or a caller hang-up that takes
               back the miss charged meanwhile) | 'duplicate' (the answer of a
               call already on_call, again) | 'stale' (not the current attempt,
               or already settled)
               | 'unknown' (no such call)
  queue        the call's own queue; caller: its From
  agent_state  what the agent became ('' when untouched)
  call_status  the call's status afterwards: 'on_call', 'retry' (ready for its
               next attempt), 'ended', ...
]]
local function settle(s, tail_ms)
  local call, agent, id, token, outcome = K.call(s.sid), K.agent(s.agent), s.agent, s.token, s.outcome
  if redis.call('EXISTS', call) == 0 then
    return {'unknown', '', '', '', ''}
  end
  local c = redis.call('HMGET', call, 'status', 'token', 'agent', 'queue', 'caller',
    'wrap_up_ms', 'delay_ms', 'max_missed', 'lease_ms', 'affinity_ms', 'last_token', 'last_agent')
  local status, held, holder, home, caller = c[1], c[2], c[3], c[4] or '', c[5] or ''
  local t = {
    wrap_up_ms = tonumber(c[6]) or 0, delay_ms = tonumber(c[7]) or 0,
    max_missed = tonumber(c[8]) or 1, lease_ms = tonumber(c[9]) or 0,
  }
  local affinity_ms = tonumber(c[10]) or 0
  local now = now_ms()
  local reservation = deadline_member('reservation', s.sid, id, token)
  local lease = deadline_member('lease', s.sid, id, token)

  local function reply(code, agent_state)
    return {code, home, caller, agent_state or '', redis.call('HGET', call, 'status') or ''}
  end
  -- `talked`: the call was answered, so it joins its agent's last calls.
  local function end_call(fields, talked)
    redis.call('HSET', call, 'status', 'ended', 'settled_at', now, unpack(fields))
    redis.call('PEXPIRE', call, tail_ms)
    redis.call('ZREM', K.reconcile, s.sid)
    emit_call('call_ended', s.sid, {reason = outcome})
    if talked then
      log_agent_call(s.sid, now)
    end
  end
  local function remember_affinity()
    if affinity_ms > 0 and caller ~= '' then
      redis.call('SET', K.affinity(caller), id, 'PX', affinity_ms)
    end
  end

  local current = held == token and holder == id and (status == 'ringing' or status == 'on_call')
  local released = status == 'retry' and c[11] == token and c[12] == id
  local untouched = released and redis.call('HGET', agent, 'released_token') == token
    and redis.call('HGET', agent, 'token') == ''
  if released and outcome == 'hangup' then
    -- The caller hung up while the agent rang, but the agent leg's own
    -- `no-answer` (or the sweep) came first and charged a miss: a caller who
    -- hangs up costs the agent nothing, so the miss is taken back.
    stats_abandoned(call, now)
    end_call({'last_token', '', 'last_agent', ''})
    local agent_state = nil
    if untouched then
      local missed = tonumber(redis.call('HGET', agent, 'missed_in_row')) or 1
      local queues = queues_of(agent)
      set_state(agent, id, 'available', {'state_since', now, 'free_at', now,
        'missed_in_row', math.max(missed - 1, 0)})
      enqueue(id, queues, now)
      agent_state = 'available'
      offer_if_free(agent, id, now)
    end
    return reply('recovered', agent_state)
  end
  local late = released and (outcome == 'answered' or outcome == 'completed')
  if late then
    -- The worker released this attempt as unanswered, but the agent did answer.
    local agent_state = nil
    remember_affinity()
    if redis.call('HEXISTS', call, 'since') == 1 then
      record_outcome(call, 'answered', now)
    end
    -- A late 'completed' does not say when the agent answered: at the latest
    -- when it was rung.
    stats_answered(call, outcome == 'answered' and now
      or (tonumber(redis.call('HGET', call, 'reserved_at')) or now), now)
    if outcome == 'answered' then
      redis.call('HSET', call, 'status', 'on_call', 'token', token, 'answered_at', now,
        'last_token', '', 'last_agent', '')
      emit_call('call_connected', s.sid)
      if s.leg then
        redis.call('HSET', call, 'leg_sid', s.leg)
      end
      redis.call('ZADD', K.reconcile, now, s.sid)
      redis.call('ZADD', K.deadlines, now + t.lease_ms, lease)
      if untouched then
        dequeue(id, queues_of(agent))
        set_state(agent, id, 'on_call', {'state_since', now, 'free_at', '', 'call_sid', s.sid,
          'token', token, 'released_token', '', 'missed_in_row', 0})
        agent_state = 'on_call'
      end
    else
      end_call({'last_token', '', 'last_agent', ''}, true)
      if untouched then
        agent_state = release_agent(agent, id, 'wrap_up', now, t)
        offer_if_free(agent, id, now)
      end
    end
    return reply('recovered', agent_state)
  end
  if not current then
    return reply('stale')
  end
  if s.leg then
    redis.call('HSET', call, 'leg_sid', s.leg)
  end

  -- The agent may have been forced free meanwhile: then only the call is settled.
  local agent_holds = redis.call('HGET', agent, 'token') == token

  if outcome == 'answered' then
    if status == 'on_call' then
      -- The same answer again (a retried callback, or the agent's 1 resent).
      return reply('duplicate', agent_holds and 'on_call' or nil)
    end
    redis.call('HSET', call, 'status', 'on_call', 'answered_at', now)
    emit_call('call_connected', s.sid)
    stats_answered(call, now, now)
    if redis.call('HEXISTS', call, 'since') == 1 then
      record_outcome(call, 'answered', now)
    end
    redis.call('ZREM', K.deadlines, reservation)
    redis.call('ZADD', K.deadlines, now + t.lease_ms, lease)
    -- Answered calls are listed by their last report: one that goes quiet for
    -- long is looked up at Twilio by the worker (due_reconciles).
    redis.call('ZADD', K.reconcile, now, s.sid)
    remember_affinity()
    if agent_holds then
      set_state(agent, id, 'on_call', {'state_since', now, 'missed_in_row', 0})
      return reply('applied', 'on_call')
    end
    return reply('applied')
  end

  if outcome == 'picked_up' then
    if status ~= 'ringing' then
      return reply('stale')
    end
    -- Same member, later score: the sweep now waits for the agent's key press.
    redis.call('ZADD', K.deadlines, now + s.confirm_ms, reservation)
    return reply('applied', agent_holds and 'reserved' or nil)
  end

  -- Every other outcome ends this attempt.
  redis.call('ZREM', K.deadlines, reservation, lease)
  local how = 'free'
  if status == 'on_call' or outcome == 'completed' then
    -- A call that was answered ends in wrap-up, whatever callback reports its end;
    -- 'completed' while still ringing means the answered callback was lost.
    how = 'wrap_up'
    if status == 'ringing' then
      remember_affinity()
      -- Answered (its answer report was lost) at the latest when it was rung.
      stats_answered(call, tonumber(redis.call('HGET', call, 'reserved_at')) or now, now)
    end
    stats_handled(call, now, t.wrap_up_ms)
  elseif outcome == 'miss' or outcome == 'ended' then
    how = 'miss'
  end
  local agent_state = nil
  if agent_holds then
    agent_state = release_agent(agent, id, how, now, t)
  end
  if how == 'miss' then
    -- Marked first, so the agent just freed is never offered this call again.
    redis.call('HSET', call, 'status', 'retry')
  end
  if agent_holds then
    offer_if_free(agent, id, now)
  end
  if how == 'miss' then
    redis.call('HSET', call, 'status', 'retry', 'token', '', 'settled_at', now,
      'last_token', token, 'last_agent', id)
  else
    if outcome == 'hangup' and status == 'ringing' then
      -- The caller hung up before its agent answered.
      stats_abandoned(call, now)
      if redis.call('HEXISTS', call, 'since') == 1 then
        -- Given an agent from the line.
        record_outcome(call, 'abandoned', now)
      end
    end
    end_call({'token', ''}, how == 'wrap_up')
  end
  return reply('applied', agent_state)
end
