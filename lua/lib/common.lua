--[[ common.lua: what every script shares; prepended to each (src/store/scripts.rs),
the way BullMQ's "@include" works, so no helper is copied between scripts.

Arguments: every script takes ONE structured argument, ARGV[1], a JSON object
(decoded below as `req`) built from one Rust struct per script in
src/store/requests.rs, so no argument is a position counted in two languages.
It always holds `prefix`, the namespace's key prefix `sb:{ns}:`,
`events_kept`, the cap of the events stream, and `audit_kept`, the cap of the
audit list; a script that makes a change asked for through the API also holds
`by`, who asked (`admin`, `supervisor:NAME`, `agent:ID`; never a token). Scripts
that end a call also hold `agent_calls_kept` and `agent_calls_ttl_ms`, the cap
and lifetime of an agent's last calls.

Keys: KEYS[1] is one key of the namespace (each script's header says which), so
Redis Cluster sends the script to the namespace's slot. Every other key is built
from `prefix` by `K` below: all carry the `{ns}` hash tag, hence the same slot
(SPEC invariant 6), as BullMQ builds keys from its queue prefix.
]]
local req = cjson.decode(ARGV[1])
local P = req.prefix

-- Key names; src/store/keys.rs writes the same ones for reads from Rust.
local K = {
  agent = function(id) return P .. 'agent:' .. id end,
  agents = P .. 'agents',
  avail = function(queue) return P .. 'avail:' .. queue end,
  skill_avail = function(queue, skill) return P .. 'skill_avail:' .. queue .. ':' .. skill end,
  call = function(sid) return P .. 'call:' .. sid end,
  deadlines = P .. 'deadlines',
  counts = P .. 'counts',
  wrap_ups = P .. 'wrap_ups',
  affinity = function(caller) return P .. 'affinity:' .. caller end,
  voicemails = P .. 'voicemails',
  lease = function(name) return P .. 'lease:' .. name end,
  line = function(queue) return P .. 'line:' .. queue end,
  line_priority = function(queue) return P .. 'line_priority:' .. queue end,
  line_needs = function(queue) return P .. 'line_needs:' .. queue end,
  line_skills = function(queue) return P .. 'line_skills:' .. queue end,
  -- The waiting callers of a queue with the same steps (`stored`: as a call
  -- hash keeps them; '' for none), in serving order.
  line_by_needs = function(queue, stored)
    return P .. 'line_by_needs:' .. queue .. ':' .. redis.sha1hex(stored or '')
  end,
  -- The lines of free agents per alternative a routing file names
  -- (lib/skills.lua).
  alt_queues = P .. 'alt_queues',
  alts = function(queue) return P .. 'alts:' .. queue end,
  alts_by_skill = function(queue) return P .. 'alts_by_skill:' .. queue end,
  alts_build = function(queue) return P .. 'alts_build:' .. queue end,
  alts_ready = function(queue) return P .. 'alts_ready:' .. queue end,
  alt_avail = function(queue, sig)
    return P .. 'alt_avail:' .. queue .. ':' .. redis.sha1hex(sig)
  end,
  hold_queues = P .. 'hold_queues',
  forecast = function(queue) return P .. 'forecast:' .. queue end,
  -- Callbacks (lib/callbacks.lua): each queue's live ones, those given an
  -- agent and waiting to be dialled, those waiting for their next try, and
  -- the account's calls-per-second pace.
  callbacks = function(queue) return P .. 'callbacks:' .. queue end,
  callback_dials = P .. 'callback_dials',
  callbacks_retry = P .. 'callbacks_retry',
  cps = P .. 'cps',
  stats = function(queue) return P .. 'stats:' .. queue end,
  wait_events = P .. 'wait_events',
  step_events = P .. 'step_events',
  steps_due = P .. 'steps_due',
  connects = P .. 'connects',
  reconcile = P .. 'reconcile',
  token = function(hash) return P .. 'token:' .. hash end,
  tokens = function(id) return P .. 'tokens:' .. id end,
  presence = P .. 'presence',
  events = P .. 'events',
  call_events = function(sid) return P .. 'call_events:' .. sid end,
  audit = P .. 'audit',
  staff_token = function(token_id) return P .. 'staff_token:' .. token_id end,
  staff_tokens = function(name) return P .. 'staff_tokens:' .. name end,
  agent_calls = function(id) return P .. 'agent_calls:' .. id end,
}

-- Milliseconds since the epoch from the Redis clock, shared by every replica.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- "a,b,c" -> {'a', 'b', 'c'}; false or '' -> {}.
local function split(csv)
  local out = {}
  if not csv or csv == '' then
    return out
  end
  for item in string.gmatch(csv, '[^,]+') do
    out[#out + 1] = item
  end
  return out
end

--[[ Events: each change an operator watches is appended, by the script that
makes it, to the namespace's stream `events` (capped near `req.events_kept`;
what GET /v1/events serves) with its kind and a JSON `data`, so no event is lost
or invented by a process dying between two commands. A call's events also go to
its own list `call_events:<sid>` (GET /v1/calls/{sid}), which lives as long as
the call's hash, and at least an hour. An event that says who made the change
(`data.by`: a change asked for through the API) also goes, newest first, to the
capped list `audit` (GET /v1/audit). ]]
local function emit(kind, data)
  data.at = now_ms()
  local json = cjson.encode(data)
  local id = redis.call('XADD', K.events, 'MAXLEN', '~', req.events_kept, '*',
    'event', kind, 'data', json)
  if data.call_sid then
    local list = K.call_events(data.call_sid)
    redis.call('RPUSH', list, cjson.encode({id = id, event = kind, data = data}))
    redis.call('LTRIM', list, -100, -1)
    redis.call('PEXPIRE', list, math.max(redis.call('PTTL', K.call(data.call_sid)), 3600000))
  end
  if data.by then
    redis.call('LPUSH', K.audit, cjson.encode({id = id, event = kind, data = data}))
    redis.call('LTRIM', K.audit, 0, req.audit_kept - 1)
  end
end

--[[ A holder's tokens (an agent's, or a supervisor's or wallboard's name):
`set` lists its token ids, each a hash `key_of(token id)` that expires by
itself (PEXPIREAT). Storing a new one first drops the ids that expired and, past
`max_live` live tokens, the ones expiring first (same ms: the smaller id, a
fixed order); the set lives as long as its longest-lived token. `fields` are
the hash's fields besides `expires_at` ({name, value, ...}). ]]
local function store_token(set, key_of, token_id, fields, expires, ttl_ms, max_live, now)
  local live = {}
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local at = tonumber(redis.call('HGET', key_of(id), 'expires_at'))
    if at and at > now then
      live[#live + 1] = {id, at}
    else
      redis.call('SREM', set, id)
    end
  end
  table.sort(live, function(a, b) return a[2] < b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  for i = 1, #live - max_live + 1 do
    redis.call('DEL', key_of(live[i][1]))
    redis.call('SREM', set, live[i][1])
  end
  local token = key_of(token_id)
  redis.call('HSET', token, 'expires_at', expires, unpack(fields))
  redis.call('PEXPIREAT', token, expires)
  redis.call('SADD', set, token_id)
  if redis.call('PTTL', set) < ttl_ms then
    redis.call('PEXPIREAT', set, expires)
  end
end

-- A call's event, with what its hash says of it: its queue, caller and agent
-- (if any, unless `extra.agent` is false: the call holds none now), and the
-- `extra` fields.
local function emit_call(kind, sid, extra)
  local c = redis.call('HMGET', K.call(sid), 'queue', 'caller', 'agent', 'agent_queue')
  local data = extra or {}
  data.call_sid = sid
  data.queue = c[1] or ''
  if c[2] and c[2] ~= '' then
    data.from = c[2]
  end
  if data.agent == false then
    data.agent = nil
  elseif c[3] and c[3] ~= '' and kind ~= 'call_waiting' then
    data.agent = c[3]
    data.agent_queue = c[4]
  end
  emit(kind, data)
end

-- The deadlines zset member of a reservation or lease.
local function deadline_member(kind, sid, id, token)
  return kind .. '|' .. sid .. '|' .. id .. '|' .. token
end
