--[[ publish_alts: the alternatives a replica's routing file names, per queue,
so that every agent move keeps a line of free agents for each
(lib/skills.lua); and drops those no replica has published for `stale_ms`,
with their lines (a routing file changed, or a queue was removed).

KEYS[1]  alt_queues set  sb:{ns}:alt_queues; `alts:<queue>`,
         `alts_by_skill:<queue>`, `alts_build:<queue>`, `alts_ready:<queue>`
         and the `alt_avail:<queue>:<sha1>` lines are built from the prefix
ARGV[1]  JSON PublishAltsRequest (src/store/requests.rs): {prefix, queues:
         [{queue, alts: a list of alternatives, each a list of tests {skill,
         min, negated}}], stale_ms}

Reply: {published (new alternatives), dropped (stale ones)}.
A new alternative restarts its queue's build (build_alt_lines.lua), which
covers every alternative not yet ready; its line is kept from now on.
]]
local now = now_ms()
local added, dropped = 0, 0

-- `sig` listed under its index skill in `alts_by_skill:<queue>`, or not.
local function list(queue, sig, listed)
  local key, skill = K.alts_by_skill(queue), alt_index_skill(sig)
  local kept = {}
  for other in string.gmatch(redis.call('HGET', key, skill) or '', '[^|]+') do
    if other ~= sig then
      kept[#kept + 1] = other
    end
  end
  if listed then
    kept[#kept + 1] = sig
  end
  if #kept == 0 then
    redis.call('HDEL', key, skill)
  else
    redis.call('HSET', key, skill, table.concat(kept, '|'))
  end
end

for _, q in ipairs(req.queues) do
  local known = K.alts(q.queue)
  for _, tests in ipairs(q.alts) do
    if needs_alt_line(tests) then
      local sig = alt_sig(tests)
      if redis.call('HSET', known, sig, now) == 1 then
        list(q.queue, sig, true)
        redis.call('DEL', K.alts_build(q.queue))
        added = added + 1
      end
    end
  end
  if redis.call('EXISTS', known) == 1 then
    redis.call('SADD', KEYS[1], q.queue)
  end
end

for _, queue in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local known = K.alts(queue)
  local flat = redis.call('HGETALL', known)
  for i = 1, #flat, 2 do
    local sig = flat[i]
    if tonumber(flat[i + 1]) < now - req.stale_ms then
      redis.call('HDEL', known, sig)
      list(queue, sig, false)
      redis.call('SREM', K.alts_ready(queue), sig)
      redis.call('DEL', K.alt_avail(queue, sig))
      dropped = dropped + 1
    end
  end
  if redis.call('EXISTS', known) == 0 then
    redis.call('SREM', KEYS[1], queue)
    redis.call('DEL', K.alts_by_skill(queue), K.alts_build(queue), K.alts_ready(queue))
  end
end
return {added, dropped}
