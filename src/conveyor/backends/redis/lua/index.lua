-- The rest of the paged sets (after pages.lua and tail.lua, before common.lua): removing,
-- reading the front, batches, the id index and each queue's due jobs.
-- An emptied page is gone (Redis deletes empty keys): so is its directory entry (but the
-- first page's, "", when keep_first).
local function pg_remove(dir, m, keep_first)
  local start = pg_page(dir, m)
  if start == nil then return end
  local page = dir .. ":" .. start
  if redis.call("ZREM", page, m) == 1 and redis.call("EXISTS", page) == 0
      and not (keep_first and start == "") then
    redis.call("ZREM", dir, start)
  end
end

-- Up to n members from the front, in order, page after page.
local function pg_first(dir, n)
  local out = {}
  local start = redis.call("ZRANGE", dir, 0, 0)[1]
  while start ~= nil and #out < n do
    for _, m in ipairs(redis.call("ZRANGE", dir .. ":" .. start, 0, n - #out - 1)) do
      out[#out + 1] = m
    end
    start = redis.call("ZRANGEBYLEX", dir, "(" .. start, "+", "LIMIT", 0, 1)[1]
  end
  return out
end

-- Removes the first n members (those pg_first returned), emptied pages with them.
local function pg_drop_first(dir, n)
  while n > 0 do
    local start = redis.call("ZRANGE", dir, 0, 0)[1]
    if start == nil then return end
    local page = dir .. ":" .. start
    local size = redis.call("ZCARD", page)
    if size <= n then
      redis.call("DEL", page)
      redis.call("ZREM", dir, start)
    else
      redis.call("ZREMRANGEBYRANK", page, 0, n - 1)
    end
    n = n - size
  end
end

-- The id index: every job id.
local function ix_page(P, id) return pg_page(P .. ":ids", id) end
local function ix_add(P, id) pg_add(P .. ":ids", id) end

-- Members ms in the caller's order as new pages after the set's last member, while they
-- come in byte order after it: full pages of IX_PAGE but the last (pages of fewer take
-- more bytes a member: Redis allocates a listpack in steps of 1 KB at these sizes), each
-- written newest first (a listpack insert walks from the front to the member's
-- place: each stops at the front) with no sort of the batch as a whole. The order is the
-- caller's word, checked by Redis: each page's first and last members, as Redis sorted
-- them, must be the chunk's first and last, and after the page before, else the chunk is
-- taken out again (ZREM) before the page's directory entry is written. Returns the index
-- of the first member not written (nil when all were).
local function pg_append(dir, ms)
  local start = redis.call("ZRANGE", dir, -1, -1)[1]
  local prev = start and redis.call("ZRANGE", dir .. ":" .. start, -1, -1)[1]
  -- A last page named but gone (the id index keeps "" when its first page empties, and
  -- then "" is the only page; anything else is a store a failed write left): the general
  -- way, which fills the page named.
  if start and start ~= "" and not prev then return 1 end
  for i = 1, #ms, IX_PAGE do
    local last = math.min(i + IX_PAGE - 1, #ms)
    if prev and not byte_less(prev, ms[i]) then return i end
    local first = prev and ms[i] or ""  -- the first page of an empty set starts at ""
    local page, args = dir .. ":" .. first, {}
    for k = last, i, -1 do
      args[#args + 1] = 0
      args[#args + 1] = ms[k]
    end
    if redis.call("ZADD", page, unpack(args)) ~= last - i + 1
        or redis.call("ZRANGE", page, 0, 0)[1] ~= ms[i]
        or redis.call("ZRANGE", page, -1, -1)[1] ~= ms[last] then
      -- Only what this call added (the key is new but for a leftover of a failed write).
      local added = {}
      for k = 2, #args, 2 do added[#added + 1] = args[k] end
      redis.call("ZREM", page, unpack(added))
      return i
    end
    redis.call("ZADD", dir, 0, first)
    prev = ms[last]
  end
  return nil
end

-- Many new members at once (a batch) into the set at dir; lo <= every member <= hi (in
-- byte order, as Redis orders members: Lua's own comparison follows the server's
-- locale, so the caller bounds them). At least IX_PAGE / 2 that come in byte order after
-- every member the set holds (generated ids, and the due members of new jobs of one
-- priority due at once, from one producer) become pages of their own (pg_append: no
-- sort, about half the Redis time the cut below took). Else, when all fall in one
-- page (the last, usually) one ZADD adds them, and the page is cut into full pages: two
-- directory commands a batch where pg_add takes two a member.
local function pg_add_many(dir, ms, lo, hi)
  if #ms >= IX_PAGE / 2 then
    local from = pg_append(dir, ms)
    if from == nil then return end
    if from > 1 then
      local rest = {}
      for k = from, #ms do rest[#rest + 1] = ms[k] end
      ms = rest  -- lo still bounds them: the pages written hold members after it
    end
  end
  local start = pg_page(dir, lo) or ""
  if #ms < 16 or redis.call("ZRANGEBYLEX", dir, "(" .. start, "[" .. hi, "LIMIT", 0, 1)[1] then
    for _, m in ipairs(ms) do pg_add(dir, m) end
    return
  end
  redis.call("ZADD", dir, 0, start)  -- a no-op but in an empty set
  local page = dir .. ":" .. start
  for i = 1, #ms, 1000 do
    local args = {}
    for k = i, math.min(i + 999, #ms) do
      args[#args + 1] = 0
      args[#args + 1] = ms[k]
    end
    redis.call("ZADD", page, unpack(args))
  end
  pg_cut(dir, start)
end

local function ix_add_many(P, ids, lo, hi) pg_add_many(P .. ":ids", ids, lo, hi) end

local function ix_remove(P, id) pg_remove(P .. ":ids", id, true) end

-- Members ms, in any order, out of the paged set: one ZREM (and one EXISTS) a page they
-- fall in, not pg_remove's three commands a member. Redis, not Lua, sorts them and finds
-- each one's page: the batch goes into a sorted set of its own (score 0: byte order, as
-- the pages), and each page takes the members below the next page's start with one
-- ZRANGEBYLEX, as rd_place does. Lua cannot compare members itself: its `<` follows the
-- server's locale, and byte_less, a Lua loop over the bytes of the long prefix a batch's
-- ids share, took a third of a prune's time in Redis (docs/benchmarks.md).
local function pg_remove_many(dir, ms, keep_first)
  if #ms == 0 then return end
  local sorted = dir .. "-gone"  -- beside the pages (dir:<start>), never one of them
  redis.call("DEL", sorted, sorted .. ":set")  -- leftovers of a call that failed midway
  for i = 1, #ms, 1000 do  -- a batch may be 16 times prune_batch: past unpack's limit
    redis.call("SADD", sorted .. ":set", unpack(ms, i, math.min(i + 999, #ms)))
  end
  redis.call("ZUNIONSTORE", sorted, 1, sorted .. ":set", "WEIGHTS", 0)
  redis.call("DEL", sorted .. ":set")
  local from = redis.call("ZRANGE", sorted, 0, 0)[1]
  while from do
    local start, after = pg_page(dir, from), nil  -- its page, and the next page's start
    if start then
      after = redis.call("ZRANGEBYLEX", dir, "(" .. start, "+", "LIMIT", 0, 1)[1]
    else
      after = redis.call("ZRANGE", dir, 0, 0)[1]  -- before every page: in none
    end
    local upto = after and "(" .. after or "+"
    if start then
      local page, gone, run = dir .. ":" .. start, 0, redis.call("ZRANGEBYLEX", sorted, "-", upto)
      for i = 1, #run, 1000 do
        gone = gone + redis.call("ZREM", page, unpack(run, i, math.min(i + 999, #run)))
      end
      if gone > 0 and redis.call("EXISTS", page) == 0 and not (keep_first and start == "") then
        redis.call("ZREM", dir, start)
      end
    end
    redis.call("ZREMRANGEBYLEX", sorted, "-", upto)  -- the last takes the key with it
    from = after and redis.call("ZRANGE", sorted, 0, 0)[1]
  end
end

local function ix_remove_many(P, ids) pg_remove_many(P .. ":ids", ids, true) end

-- Ids indexed by an earlier version in one sorted set (`all`, every score 0, so in byte
-- order): the first `limit` of them move into the pages. Returns how many are left there.
local function ix_migrate(P, limit)
  local ids = redis.call("ZRANGE", P .. ":all", 0, limit - 1)
  if #ids == 0 then return 0 end
  ix_add_many(P, ids, ids[1], ids[#ids])
  redis.call("ZREM", P .. ":all", unpack(ids))
  return redis.call("ZCARD", P .. ":all")
end

-- Each queue's due jobs (PENDING), in claim order. A member (layout.lua's rd_member) is
-- the job's ready score then its id: byte order is priority, then run_at, then id, as the
-- sorted set an earlier version kept (`q:<queue>:ready`, scored by the same number;
-- rd_migrate empties it). Removing a job needs its member, so its hash's priority and
-- run_at (or created_at) must be those it was added with: every script that queues a job
-- stores the run_at it queued it at.
local function rd_dir(P, queue) return P .. ":q:" .. queue .. ":due" end
local function rd_score(priority, run_at) return (9 - priority) * RD_BAND + math.floor(run_at * 1000) end
local function rd_head(score) return string.format(RD_FORMAT, score) end
local function rd_member(priority, run_at, id) return rd_head(rd_score(priority, run_at)) .. id end
local function rd_add(P, queue, priority, run_at, id)
  pg_add(rd_dir(P, queue), rd_member(priority, run_at, id))
end
local function rd_remove(P, queue, priority, run_at, id)
  rd_fold(P, queue)  -- its member may be in the queue's due tail (tail.lua)
  pg_remove(rd_dir(P, queue), rd_member(priority, run_at, id), false)
  redis.call("ZREM", P .. ":q:" .. queue .. ":ready", id)  -- not migrated yet
end

-- The first n jobs of an earlier version's ready set move into the pages (its best ones:
-- with them moved, the pages' first n are the queue's first n). Returns how many are
-- left there.
local function rd_migrate(P, queue, n)
  local legacy = P .. ":q:" .. queue .. ":ready"
  local got = redis.call("ZRANGE", legacy, 0, n - 1, "WITHSCORES")
  local dir, ids = rd_dir(P, queue), {}
  for i = 1, #got, 2 do
    pg_add(dir, rd_head(tonumber(got[i + 1])) .. got[i])
    ids[#ids + 1] = got[i]
  end
  for i = 1, #ids, 1000 do
    redis.call("ZREM", legacy, unpack(ids, i, math.min(i + 999, #ids)))
  end
  return redis.call("ZCARD", legacy)
end
