-- ARGV: prefix, now, lease_until, worker, limit, tokens (JSON array), queue...
-- Promotes due delayed jobs, then leases the best PENDING jobs across the queues:
-- highest priority first, then oldest run_at, then id.
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[5])
local tokens = cjson.decode(ARGV[6])
local queues = {}
for i = 7, #ARGV do
  if redis.call("SISMEMBER", K("paused"), ARGV[i]) == 0 then table.insert(queues, ARGV[i]) end
end
for _, q in ipairs(queues) do
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", K("q", q, "delayed"), "-inf", ARGV[2], "LIMIT", 0, 1000)) do
    local f = redis.call("HMGET", K("job", id), "priority", "run_at", "state", "task")
    redis.call("ZREM", K("q", q, "delayed"), id)
    redis.call("ZADD", K("q", q, "ready"), (9 - tonumber(f[1])) * 4398046511104 + math.floor(tonumber(f[2]) * 1000), id)
    move(id, q, f[4], f[3], "PENDING", ARGV[2])
  end
end
local claimed = {}
while #claimed < limit do
  local best_q, best_id, best_score = nil, nil, nil
  for _, q in ipairs(queues) do
    local top = redis.call("ZRANGE", K("q", q, "ready"), 0, 0, "WITHSCORES")
    if top[1] then
      local score = tonumber(top[2])
      if best_score == nil or score < best_score or (score == best_score and top[1] < best_id) then
        best_q, best_id, best_score = q, top[1], score
      end
    end
  end
  if best_q == nil then break end
  local key = K("job", best_id)
  redis.call("ZREM", K("q", best_q, "ready"), best_id)
  redis.call("HSET", key, "worker", ARGV[4], "started_at", ARGV[2], "lease_token", tokens[#claimed + 1],
    "lease_until", ARGV[3])
  redis.call("HINCRBY", key, "attempt", 1)
  redis.call("ZADD", K("leases"), ARGV[3], best_id)
  move(best_id, best_q, redis.call("HGET", key, "task"), "PENDING", "STARTED", ARGV[2])
  local record = redis.call("HGETALL", key)
  table.insert(record, "id")
  table.insert(record, best_id)
  table.insert(claimed, record)
end
for _, q in ipairs(queues) do  -- work left: wake the next idle worker too
  if redis.call("ZCARD", K("q", q, "ready")) > 0 then wake(q) end
end
return claimed
