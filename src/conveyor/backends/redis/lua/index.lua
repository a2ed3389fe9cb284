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

local function ix_remove(P, id)
  local start = ix_page(P, id)
  if start == nil then return end
  local page = P .. ":ids:" .. start
  -- An emptied page is gone (Redis deletes empty keys): so is its directory entry.
  if redis.call("ZREM", page, id) == 1 and start ~= "" and redis.call("EXISTS", page) == 0 then
    redis.call("ZREM", P .. ":ids", start)
  end
end

-- Ids indexed by an earlier version in one sorted set (`all`): up to `limit` of them move
-- into the pages. Returns how many are left there.
local function ix_migrate(P, limit)
  local ids = redis.call("ZRANGE", P .. ":all", 0, limit - 1)
  for _, id in ipairs(ids) do ix_add(P, id) end
  if #ids > 0 then redis.call("ZREM", P .. ":all", unpack(ids)) end
  return redis.call("ZCARD", P .. ":all")
end
