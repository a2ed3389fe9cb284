-- ARGV: prefix, now, brief, then id, token pairs. Claimed jobs go back to their queue at
-- once, in their old place. brief "": they never started, and the claim does not count as
-- an attempt. Else they were running when their worker stopped them: the attempt counts
-- and is recorded, ending PENDING with this error.
local now = tonumber(ARGV[2])
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local queue, task = leased(id, ARGV[i + 1])
  if queue then
    local key = K("job", id)
    if ARGV[3] == "" then
      redis.call("HINCRBY", key, "attempt", -1)
    else
      append_attempt(id, "PENDING", ARGV[2], ARGV[3])
    end
    redis.call("HDEL", key, "worker", "started_at", "lease_token", "lease_until")
    redis.call("ZREM", K("leases"), id)
    move(id, queue, task, "STARTED", "PENDING", ARGV[2])
    requeue_due(id, queue, now)
  end
end
return 0
