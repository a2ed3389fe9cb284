-- The id index's tail (after pages.lua, before index.lua and common.lua): `newids`, a
-- list the single enqueue appends each new id to. One RPUSH, where adding to a page took
-- a directory lookup, an insert that walks the page (a listpack: linear) and its count.
-- Folded into the pages once it holds IX_TAIL ids, and by every script that reads or
-- removes index entries (ids_list, prune, ids_forget) before it does: what they read is
-- the whole index. Generated ids grow with time, so a full tail usually sorts after the
-- last page's last id: sorted by Redis (a sorted set, byte order), it becomes the last
-- page as it is. Else (ids given by the caller, a short tail) each goes where it belongs.
local IX_TAIL = 120

-- a < b in byte order (Redis's order; Lua's own comparison follows the locale).
local function byte_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function ix_fold(P)
  local tail, dir = P .. ":newids", P .. ":ids"
  local ids = redis.call("LRANGE", tail, 0, -1)
  if #ids == 0 then return end
  redis.call("DEL", tail)
  if #ids >= IX_TAIL / 2 and #ids <= IX_PAGE then
    -- Newest first: a listpack insert walks from the front to the member's place, so the
    -- (mostly growing) ids each stop at the front instead of walking the whole page.
    local sorted, args = tail .. ":sorted", {}
    for i, id in ipairs(ids) do
      args[2 * (#ids - i) + 1] = 0
      args[2 * (#ids - i) + 2] = id
    end
    redis.call("ZADD", sorted, unpack(args))
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
