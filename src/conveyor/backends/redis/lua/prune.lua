-- ARGV: prefix, now, limit. Deletes finished jobs past keep_until; returns how many.
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
return #ids
