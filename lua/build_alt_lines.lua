--[[ build_alt_lines: adds to the lines of alternatives not yet ready
(lib/skills.lua) the agents who were free before they were published, a
batch at a time, reading each queue's `avail:<queue>` in order from where the
last run stopped; when a queue's line is read to its end, its alternatives
are ready. Every agent move since their publication kept their lines (enqueue
and dequeue), so an agent who moved is in, or out, rightly either way: this
only adds members still free when read, and adding one twice changes nothing.

KEYS[1]  alt_queues set  sb:{ns}:alt_queues; `alts:<queue>`,
         `alts_build:<queue>` (hash: score, member: the last one read),
         `alts_ready:<queue>`, `avail:<queue>`, the agents and the
         `alt_avail:<queue>:<sha1>` lines are built from the prefix
ARGV[1]  JSON BuildAltLinesRequest (src/store/requests.rs): {prefix, max: most
         free agents read in one run}

Reply: {read, pending}: free agents read, and queues whose alternatives are
still not ready (the worker calls again while any are).
]]
local budget, pending = req.max, 0

-- Where to go on reading `avail` from: a rank, and (when the last member
-- read has moved since) the score and id up to which members at that very
-- score were read already (equal scores are in id order).
local function resume(avail, build)
  local at = redis.call('HMGET', build, 'score', 'member')
  if not at[1] then
    return 0, nil, nil
  end
  local rank = redis.call('ZRANK', avail, at[2])
  if rank and tonumber(redis.call('ZSCORE', avail, at[2])) == tonumber(at[1]) then
    return rank + 1, nil, nil
  end
  return redis.call('ZCOUNT', avail, '-inf', '(' .. at[1]), tonumber(at[1]), at[2]
end

for _, queue in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local ready = K.alts_ready(queue)
  local unready, by_skill = {}, {}
  for _, sig in ipairs(redis.call('HKEYS', K.alts(queue))) do
    if redis.call('SISMEMBER', ready, sig) == 0 then
      unready[#unready + 1] = sig
      local skill = alt_index_skill(sig)
      by_skill[skill] = by_skill[skill] or {}
      table.insert(by_skill[skill], sig)
    end
  end
  if #unready > 0 and budget <= 0 then
    pending = pending + 1
  elseif #unready > 0 then
    local avail, build = K.avail(queue), K.alts_build(queue)
    local start, tie_score, tie_upto = resume(avail, build)
    local last_score, last_id
    local done = false
    while budget > 0 do
      local batch = redis.call('ZRANGE', avail, start, start + math.min(budget, 256) - 1,
        'WITHSCORES')
      if #batch == 0 then
        done = true
        break
      end
      start = start + #batch / 2
      for i = 1, #batch, 2 do
        local id, score = batch[i], batch[i + 1]
        if not (tie_score and tonumber(score) == tie_score
            and not bytes_before(tie_upto, id)) then
          budget = budget - 1
          local skills = parse_skills(redis.call('HGET', K.agent(id), 'skills'))
          local function add(sigs)
            for _, sig in ipairs(sigs or {}) do
              if holds(skills, alt_tests(sig)) then
                redis.call('ZADD', K.alt_avail(queue, sig), score, id)
              end
            end
          end
          add(by_skill[''])
          for skill in pairs(skills) do
            add(by_skill[skill])
          end
        end
        last_score, last_id = score, id
      end
    end
    if done then
      for _, sig in ipairs(unready) do
        redis.call('SADD', ready, sig)
      end
      redis.call('DEL', build)
    else
      if last_id then
        redis.call('HSET', build, 'score', last_score, 'member', last_id)
      end
      pending = pending + 1
    end
  end
end
return {req.max - budget, pending}
