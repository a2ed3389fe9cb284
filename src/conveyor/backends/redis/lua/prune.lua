-- ARGV: prefix, now, limit, trim ("1" or ""). Deletes finished jobs past keep_until
-- and, with trim, key-values past their ttl (up to limit of each); returns how many
-- jobs. The key-values here, not in the client: a value set again between its read as
-- expired and its delete was lost.
ix_fold(P)  -- a pruned id may be in the index's tail
-- A batch's deletes and count changes go in one command per key (batched, flush_tally,
-- ix_remove_many), not one a record: about 1 command a record where there were 8
-- (docs/benchmarks.md).
local ids = redis.call("ZRANGEBYSCORE", K("finished"), "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[3]))
local keys = {}
for i, id in ipairs(ids) do
  local key = K("job", id)
  keys[i] = key
  local f = redis.call("HMGET", key, "queue", "state")
  if f[1] then tally(f[1], f[2], -1) end
end
ix_remove_many(P, ids)
for i = 1, #keys, 1000 do redis.call("DEL", unpack(keys, i, math.min(i + 999, #keys))) end
batched("ZREM", K("finished"), ids)
batched("ZREM", K("done"), ids)
flush_tally()
local gone = ARGV[4] == "1" and redis.call("ZRANGEBYSCORE", K("kvx"), "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[3])) or {}
if #gone > 0 then
  batched("HDEL", K("kv"), gone)
  batched("ZREM", K("kvx"), gone)
end
return #ids
