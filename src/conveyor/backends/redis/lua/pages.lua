-- Paged ordered sets (prepended, after layout.lua, to every script but the standalone
-- ones, and to those that need it; index.lua adds the rest): members in byte order, split into pages of at most IX_PAGE. `<dir>` is the
-- directory, a sorted set of each page's first member (the first page starts at "");
-- `<dir>:<start>` is a page, a sorted set (score 0, ordered by member). A page stays
-- small enough for Redis's compact listpack encoding (zset-max-listpack-entries, 128 by
-- default): about 40 bytes an id, where one sorted set of every id (a skiplist) took 145.
-- Two are kept: the id index (`ids`, every job id) and each queue's due jobs
-- (`q:<queue>:due`, see rd_member). IX_PAGE: layout.lua.

-- The start of the page whose range holds member m (nil when no page's does).
local function pg_page(dir, m)
  return redis.call("ZREVRANGEBYLEX", dir, "[" .. m, "-", "LIMIT", 0, 1)[1]
end

-- Returns whether a page held m's place already (else the set's first page was made).
local function pg_add(dir, m)
  local start = pg_page(dir, m)
  local known = start ~= nil
  if not known then
    start = ""
    redis.call("ZADD", dir, 0, "")
  end
  local page = dir .. ":" .. start
  if redis.call("ZADD", page, 0, m) == 0 or redis.call("ZCARD", page) <= IX_PAGE then
    return known
  end
  -- Full: a new last member starts a page of its own (members that grow with time, as
  -- generated ids do, then fill every page to the brim); any other splits the page.
  local moved = redis.call("ZRANGE", page, -1, -1)
  if moved[1] ~= m then moved = redis.call("ZRANGE", page, IX_PAGE / 2, -1) end
  local args = {}
  for i, x in ipairs(moved) do
    args[2 * i - 1] = 0
    args[2 * i] = x
  end
  -- The new page and its directory entry before the old page lets go (ZREM, which Redis
  -- never refuses): a script that fails partway leaves the moved members in a page.
  redis.call("ZADD", dir .. ":" .. moved[1], unpack(args))
  redis.call("ZADD", dir, 0, moved[1])
  redis.call("ZREM", page, unpack(moved))
  return known
end

-- A page past IX_PAGE members, rewritten as full pages: past 128 members Redis made it a
-- skiplist, and a smaller one stays a skiplist; pages of IX_PAGE members are listpacks.
-- Each is written newest first: a listpack insert walks from the front to the member's
-- place, so each stops at the front instead of walking the whole page. The pages after
-- the first are written before the first is replaced, by a RENAME: a script that fails
-- partway (what it wrote stays: Redis has no rollback) leaves
-- each member in a page, some in two (claims and folds take that), never in none.
local function pg_cut(dir, start)
  local page = dir .. ":" .. start
  if redis.call("ZCARD", page) <= IX_PAGE then return end
  local all, first = redis.call("ZRANGE", page, 0, -1), nil
  for i = 1, #all, IX_PAGE do
    local last, args = math.min(i + IX_PAGE - 1, #all), {}
    for k = last, i, -1 do
      args[#args + 1] = 0
      args[#args + 1] = all[k]
    end
    if i == 1 then
      first = args
    else
      redis.call("ZADD", dir .. ":" .. all[i], unpack(args))
      redis.call("ZADD", dir, 0, all[i])
    end
  end
  redis.call("ZADD", dir .. "~cut", unpack(first))
  redis.call("RENAME", dir .. "~cut", page)
end
