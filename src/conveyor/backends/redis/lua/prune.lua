-- ARGV: prefix, now, limit, trim ("1" or ""). Deletes finished jobs past keep_until
-- and, with trim, key-values past their ttl (up to limit of each); returns how many
-- jobs. The key-values here, not in the client: a value set again between its read as
-- expired and its delete was lost.
ix_fold(P)  -- a pruned id may be in the index's tail
local ids = redis.call("ZRANGEBYSCORE", K("finished"), "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local f = redis.call("HMGET", K("job", id), "queue", "state")
  if f[1] then count(f[1], f[2], -1) end
  redis.call("DEL", K("job", id))
  redis.call("ZREM", K("finished"), id)
  redis.call("ZREM", K("done"), id)
  ix_remove(P, id)
end
local gone = ARGV[4] == "1" and redis.call("ZRANGEBYSCORE", K("kvx"), "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[3])) or {}
if #gone > 0 then
  batched("HDEL", K("kv"), gone)
  batched("ZREM", K("kvx"), gone)
end
return #ids
