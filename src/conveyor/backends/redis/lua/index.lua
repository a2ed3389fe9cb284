-- The id index (prepended to the scripts that add, remove or list job ids): every job id
-- in lexical order, split into pages of at most IX_PAGE ids. `ids` is the directory, a
-- sorted set of each page's first id (the first page starts at ""); `ids:<start>` is a
-- page, a sorted set of ids (score 0, ordered by id). A page stays small enough for
-- Redis's compact listpack encoding (zset-max-listpack-entries, 128 by default): about
-- 40 bytes an id, where one sorted set of every id (a skiplist) took 145.
local IX_PAGE = 120

-- The start of the page whose range holds id (nil in an empty index).
local function ix_page(P, id)
  return redis.call("ZREVRANGEBYLEX", P .. ":ids", "[" .. id, "-", "LIMIT", 0, 1)[1]
end

local function ix_add(P, id)
  local dir = P .. ":ids"
  local start = ix_page(P, id)
  if start == nil then
    start = ""
    redis.call("ZADD", dir, 0, "")
  end
  local page = dir .. ":" .. start
  if redis.call("ZADD", page, 0, id) == 0 or redis.call("ZCARD", page) <= IX_PAGE then return end
  -- Full: a new last id starts a page of its own (ids that grow with time, as generated
  -- ones do, then fill every page to the brim); any other id splits the page in halves.
  local moved = redis.call("ZRANGE", page, -1, -1)
  if moved[1] ~= id then moved = redis.call("ZRANGE", page, IX_PAGE / 2, -1) end
  local args = {}
  for i, m in ipairs(moved) do
    args[2 * i - 1] = 0
    args[2 * i] = m
  end
  redis.call("ZADD", dir .. ":" .. moved[1], unpack(args))
  redis.call("ZREM", page, unpack(moved))
  redis.call("ZADD", dir, 0, moved[1])
end

-- Many new ids at once (a batch); lo and hi bound them, ordered byte-wise by the caller
-- (as Redis orders members: Lua's own comparison follows the server's locale). When all
-- fall in one page (generated ids, in the last page) one ZADD adds them, and the page is
-- cut into full pages: two directory commands a batch where ix_add takes two an id.
local function ix_add_many(P, ids, lo, hi)
  local dir = P .. ":ids"
  local start = ix_page(P, lo) or ""
  if #ids < 16 or redis.call("ZRANGEBYLEX", dir, "(" .. start, "[" .. hi, "LIMIT", 0, 1)[1] then
    for _, id in ipairs(ids) do ix_add(P, id) end
    return
  end
  redis.call("ZADD", dir, 0, start)  -- a no-op but in an empty index
  local page = dir .. ":" .. start
  for i = 1, #ids, 1000 do
    local args = {}
    for k = i, math.min(i + 999, #ids) do
      args[#args + 1] = 0
      args[#args + 1] = ids[k]
    end
    redis.call("ZADD", page, unpack(args))
  end
  if redis.call("ZCARD", page) <= IX_PAGE then return end
  -- Rewritten, not trimmed: past 128 members Redis made the page a skiplist, and a
  -- smaller one stays a skiplist; pages of IX_PAGE ids are listpacks again.
  local all = redis.call("ZRANGE", page, 0, -1)
  redis.call("DEL", page)
  for i = 1, #all, IX_PAGE do
    local args = {}
    for k = i, math.min(i + IX_PAGE - 1, #all) do
      args[#args + 1] = 0
      args[#args + 1] = all[k]
    end
    if i == 1 then
      redis.call("ZADD", page, unpack(args))
    else
      redis.call("ZADD", dir .. ":" .. all[i], unpack(args))
      redis.call("ZADD", dir, 0, all[i])
    end
  end
end

local function ix_remove(P, id)
  local start = ix_page(P, id)
  if start == nil then return end
  local page = P .. ":ids:" .. start
  -- An emptied page is gone (Redis deletes empty keys): so is its directory entry.
  if redis.call("ZREM", page, id) == 1 and start ~= "" and redis.call("EXISTS", page) == 0 then
    redis.call("ZREM", P .. ":ids", start)
  end
end

-- Ids indexed by an earlier version in one sorted set (`all`, every score 0, so in byte
-- order): the first `limit` of them move into the pages. Returns how many are left there.
local function ix_migrate(P, limit)
  local ids = redis.call("ZRANGE", P .. ":all", 0, limit - 1)
  if #ids == 0 then return 0 end
  ix_add_many(P, ids, ids[1], ids[#ids])
  redis.call("ZREM", P .. ":all", unpack(ids))
  return redis.call("ZCARD", P .. ":all")
end
