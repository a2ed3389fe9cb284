-- ARGV: prefix, now, limit. Deletes finished jobs past keep_until and key-values past
-- their ttl (up to limit of each); returns how many jobs. The key-values here, not in
-- the client: a value set again between its read as expired and its delete was lost.
-- And every batch, not once an interval with the trims: a workflow's spec is one, so
-- they expire as fast as workflows end, and at most limit an interval piled them up
-- (one lookup in kvx when none expired).
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
local gone = redis.call("ZRANGEBYSCORE", K("kvx"), "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[3]))
if #gone > 0 then
  batched("HDEL", K("kv"), gone)
  batched("ZREM", K("kvx"), gone)
end
return #ids
