-- The tails (after pages.lua, before index.lua and common.lua): lists the single enqueue
-- appends to with one RPUSH each, where adding to a page took a directory lookup, an
-- insert that walks the page (a listpack: linear) and its count. Two kinds: the id
-- index's (`newids`, each new id) and each queue's due tail (`q:<queue>:newdue`, the due
-- member, see rd_member, of each new job due at once). A tail is folded into its pages
-- once it holds IX_TAIL entries, and by every script that reads or removes entries of
-- those pages before it does: what they read is the whole set. Generated ids and the due
-- members of jobs due at once grow with time, so a full tail usually sorts after the last
-- page's last member: sorted by Redis (a sorted set, byte order), it becomes the last page
-- as it is. Else each goes where it belongs (ids the caller gave, a short id tail; due
-- members of mixed priorities), or a due tail that falls in one page's range joins it.
-- IX_TAIL: layout.lua.

-- Every entry of the tail at key (nil when it is empty). The fold deletes the tail only
-- once its entries are in the pages: a script that fails in between (what a script
-- wrote stays: Redis has no rollback) leaves them in the tail,
-- and the next fold adds again what a page already holds as a no-op. Nothing is lost.
local function tl_read(key)
  local entries = redis.call("LRANGE", key, 0, -1)
  if #entries == 0 then return nil end
  return entries
end

-- a < b in byte order (Redis's order; Lua's own comparison follows the locale).
local function byte_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- ms into the sorted set at key (score 0: byte order), newest first: a listpack insert
-- walks from the front to the member's place, so the (mostly growing) members each stop
-- at the front instead of walking the whole set.
local function tl_add(key, ms)
  local args = {}
  for i, m in ipairs(ms) do
    args[2 * (#ms - i) + 1] = 0
    args[2 * (#ms - i) + 2] = m
  end
  redis.call("ZADD", key, unpack(args))
end

-- A new sorted set at key holding ms (at most 128 of them: a listpack), sorted by Redis:
-- a set, then ZUNIONSTORE, which sorts in a skiplist and writes the listpack in one pass
-- (measured: 120 members in about two thirds of tl_add's time, whose every insert also
-- searches the listpack for the member).
local function tl_sorted(key, ms)
  local set = key .. ":set"
  redis.call("SADD", set, unpack(ms))
  redis.call("ZUNIONSTORE", key, 1, set, "WEIGHTS", 0)  -- a set member scores 1: 0 here
  redis.call("DEL", set)
end

local function ix_place(tail, dir, ids)
  if #ids >= IX_TAIL / 2 and #ids <= IX_PAGE then
    local sorted = tail .. ":sorted"
    tl_sorted(sorted, ids)
    local lo = redis.call("ZRANGE", sorted, 0, 0)[1]
    local start = redis.call("ZRANGE", dir, -1, -1)[1]
    local last = start and redis.call("ZRANGE", dir .. ":" .. start, -1, -1)[1]
    if last == nil then
      start = ""  -- an empty index (its first page, "", may be gone)
    elseif byte_less(last, lo) then
      start = lo
    else
      start = nil
    end
    if start ~= nil then
      redis.call("RENAME", sorted, dir .. ":" .. start)
      redis.call("ZADD", dir, 0, start)
      return
    end
    redis.call("DEL", sorted)
  end
  for _, id in ipairs(ids) do pg_add(dir, id) end
end

local function ix_fold(P)
  local tail, dir = P .. ":newids", P .. ":ids"
  local ids = tl_read(tail)
  if not ids then return end
  ix_place(tail, dir, ids)
  redis.call("DEL", tail)
end

-- A queue's due tail's members ms into its due pages (dir: q:<queue>:due, index.lua's rd_*).
local function rd_place(tail, dir, ms)
  local last = redis.call("ZRANGE", dir, -1, -1)[1]  -- the last page's start
  if last == nil then  -- no page at all (a claim that keeps up): the tail is the first
    tl_add(dir .. ":", ms)
    redis.call("ZADD", dir, 0, "")
    if #ms > IX_PAGE then pg_cut(dir, "") end
    return
  end
  if #ms == 1 then
    pg_add(dir, ms[1])
    return
  end
  local sorted = tail .. ":sorted"
  tl_sorted(sorted, ms)
  local from = redis.call("ZRANGE", sorted, 0, 0)[1]
  if #ms >= IX_TAIL / 2
      and not redis.call("ZRANGEBYLEX", dir .. ":" .. last, "[" .. from, "+", "LIMIT", 0, 1)[1] then
    -- A full tail after the last page's last member: a page of its own, as it is.
    redis.call("RENAME", sorted, dir .. ":" .. from)
    redis.call("ZADD", dir, 0, from)
    if #ms > IX_PAGE then pg_cut(dir, from) end
    return
  end
  -- Page by page: the members in one page's range join it with one command (those before
  -- every page make a page of their own).
  while from do
    local start, after = pg_page(dir, from), nil  -- its page, and the next page's start
    if start then
      after = redis.call("ZRANGEBYLEX", dir, "(" .. start, "+", "LIMIT", 0, 1)[1]
    else
      after = redis.call("ZRANGE", dir, 0, 0)[1]
    end
    local run = redis.call("ZRANGEBYLEX", sorted, "[" .. from, after and "(" .. after or "+")
    if start == nil then
      start = from
      redis.call("ZADD", dir, 0, start)
    end
    tl_add(dir .. ":" .. start, run)
    pg_cut(dir, start)
    from = after and redis.call("ZRANGEBYLEX", sorted, "[" .. after, "+", "LIMIT", 0, 1)[1]
  end
  redis.call("DEL", sorted)
end

local function rd_fold(P, queue)
  local tail, dir = P .. ":q:" .. queue .. ":newdue", P .. ":q:" .. queue .. ":due"
  local ms = tl_read(tail)
  if not ms then return end
  rd_place(tail, dir, ms)
  redis.call("DEL", tail)
end
