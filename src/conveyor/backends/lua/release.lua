-- ARGV: prefix, now, then id, token pairs. Claimed jobs that never started go back to
-- their queue at once, in their old place, and the claim does not count as an attempt.
local now = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local queue, task = leased(id, ARGV[i + 1])
  if queue then
    local key = K("job", id)
    redis.call("HINCRBY", key, "attempt", -1)
    redis.call("HDEL", key, "worker", "started_at", "lease_token", "lease_until")
    redis.call("ZREM", K("leases"), id)
    local f = redis.call("HMGET", key, "priority", "run_at")
    move(id, queue, task, "STARTED", "PENDING", ARGV[2])
    enqueue_waiting(id, queue, tonumber(f[1]), math.min(tonumber(f[2]), now), now)
  end
end
return 0
