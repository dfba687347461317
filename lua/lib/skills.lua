--[[ skills.lua: agents' skills against a call's needs, and the lines of free
agents kept for each alternative the routing file names (issue 21).

src/needs.rs parses an expression into alternatives, and a request carries
them as they are: a list of alternatives, each a list of tests {skill, min,
negated}; any one alternative whose tests all hold is enough, and an empty
alternative holds for every agent. An agent hash keeps its skills as
`skills` = "name:level,…".

Alternative lines. Walking a required skill's line for the few agents who
also have another skill costs milliseconds at 100,000 agents, so the
alternatives a routing file names (its queues' steps, with its numbers' and
menus' needs) each get a line of their own: `alt_avail:<queue>:<sha1 of
sig>`, the queue's free agents who satisfy it, scored as `avail:<queue>` (when
each became free). An alternative is named by its signature, its tests sorted,
each `skill>=min` or `!skill>=min`, joined by `&` ("billing>=3&es>=1"), which
is also how it is stored and read back (alt_tests). All keys are built from
the prefix:
- `alt_queues`: the queues that have published alternatives;
- `alts:<queue>`: sig -> when a replica last published it (ms): every
  replica's worker publishes its routing file's (publish_alts.lua), and one
  nobody published for a while is dropped with its line;
- `alts_by_skill:<queue>`: skill -> 'sig|sig|…', each alternative under its
  first required skill ('' when it requires none): the only ones an agent
  with other skills need be checked against;
- `alts_build:<queue>`: how far build_alt_lines.lua has read `avail:<queue>`;
- `alts_ready:<queue>`: the sigs whose line is whole.
From its publication on, every enqueue and dequeue keeps an alternative's
line; build_alt_lines.lua adds, in batches, the agents free before, then
lists it as ready. Only a ready line is read by routing and explain; until
then (or after Redis lost it) they walk the skill lines as before.
Alternatives that need no line of their own: `any` (the queue's line) and a
single skill at any level (that skill's line, `skill_avail`).
]]

-- "es:3,billing:5" (or false) -> {es = 3, billing = 5}.
local function parse_skills(stored)
  local skills = {}
  if stored then
    for name, level in string.gmatch(stored, '([^,:]+):(%d+)') do
      skills[name] = tonumber(level)
    end
  end
  return skills
end

-- True when every test of one alternative holds for `skills`.
local function holds(skills, tests)
  for _, t in ipairs(tests) do
    local has = (skills[t.skill] or 0) >= t.min
    if has == (t.negated == true) then
      return false
    end
  end
  return true
end

-- True when some alternative holds for `skills`.
local function satisfies(skills, alternatives)
  for _, tests in ipairs(alternatives) do
    if holds(skills, tests) then
      return true
    end
  end
  return false
end

-- True when `a` comes before `b` byte by byte, as Redis orders a sorted
-- set's members of equal score. Lua's `<` on strings follows the server's
-- locale (strcoll), which may ignore punctuation and case.
local function bytes_before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- An alternative's signature (see above), its tests in byte order: the same
-- under any locale.
local function alt_sig(tests)
  local parts = {}
  for i, t in ipairs(tests) do
    parts[i] = (t.negated == true and '!' or '') .. t.skill .. '>=' .. t.min
  end
  table.sort(parts, bytes_before)
  return table.concat(parts, '&')
end

-- A signature's tests, decoded once per script.
local decoded_sigs = {}
local function alt_tests(sig)
  local tests = decoded_sigs[sig]
  if not tests then
    tests = {}
    for neg, skill, min in string.gmatch(sig, '(!?)([^&!>]+)>=(%d+)') do
      tests[#tests + 1] = {skill = skill, min = tonumber(min), negated = neg == '!'}
    end
    decoded_sigs[sig] = tests
  end
  return tests
end

-- True when an alternative gets a line of its own: not `any`, and not one
-- skill at any level (its skill line is exactly its agents).
local function needs_alt_line(tests)
  if #tests == 0 then
    return false
  end
  local t = tests[1]
  return not (#tests == 1 and t.negated ~= true and t.min <= 1)
end

-- The skill an alternative is listed under in `alts_by_skill`: its first
-- required skill in signature order, '' when it requires none.
local function alt_index_skill(sig)
  for _, t in ipairs(alt_tests(sig)) do
    if not t.negated then
      return t.skill
    end
  end
  return ''
end

-- The published alternatives of `queue` an agent with `skills` may satisfy
-- (those listed under one of its skills, or under none): a list of sigs.
local function alts_to_check(queue, skills)
  local fields = {''}
  for name in pairs(skills) do
    fields[#fields + 1] = name
  end
  local sigs = {}
  for _, list in ipairs(redis.call('HMGET', K.alts_by_skill(queue), unpack(fields))) do
    if list then
      for sig in string.gmatch(list, '[^|]+') do
        sigs[#sigs + 1] = sig
      end
    end
  end
  return sigs
end

-- Puts agent `id` (with `skills`, free from `free_at`) in each of `queue`'s
-- alternative lines it satisfies.
local function alt_lines_add(queue, id, skills, free_at)
  for _, sig in ipairs(alts_to_check(queue, skills)) do
    if holds(skills, alt_tests(sig)) then
      redis.call('ZADD', K.alt_avail(queue, sig), free_at, id)
    end
  end
end

-- Takes agent `id` (with `skills`, as when it was added) out of `queue`'s
-- alternative lines.
local function alt_lines_remove(queue, id, skills)
  for _, sig in ipairs(alts_to_check(queue, skills)) do
    if holds(skills, alt_tests(sig)) then
      redis.call('ZREM', K.alt_avail(queue, sig), id)
    end
  end
end

-- The whole line of free agents of `queue` who satisfy `tests`, if it is
-- kept and ready; nil otherwise.
local function ready_alt_line(queue, tests)
  if not needs_alt_line(tests) then
    return nil
  end
  local sig = alt_sig(tests)
  if redis.call('SISMEMBER', K.alts_ready(queue), sig) == 1 then
    return K.alt_avail(queue, sig)
  end
  return nil
end
