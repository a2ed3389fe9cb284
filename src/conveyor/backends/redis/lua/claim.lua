-- ARGV: prefix, now, lease_until, worker, limit, tokens (JSON array), queue...
-- now "@<offset>" (lease_until then the lease's length): the claim was pipelined behind
-- a blocking wait, so it reads the server's clock, shifted by <offset> to the caller's.
-- Promotes due delayed jobs, then leases the best PENDING jobs across the queues:
-- highest priority first, then oldest run_at, then id. Each returned record is the
-- job's fields followed by the fields the claim changed (later pairs win).
local now_s, lease_s, limit = ARGV[2], ARGV[3], tonumber(ARGV[5])
if string.sub(now_s, 1, 1) == "@" then
  local t = redis.call("TIME")
  local at = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(string.sub(now_s, 2))
  now_s, lease_s = num(at), num(at + tonumber(lease_s))
end
local tokens = cjson.decode(ARGV[6])
local queues = {}
for i = 7, #ARGV do
  if redis.call("SISMEMBER", K("paused"), ARGV[i]) == 0 then table.insert(queues, ARGV[i]) end
end
for _, q in ipairs(queues) do
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", K("q", q, "delayed"), "-inf", now_s, "LIMIT", 0, 1000)) do
    local f = redis.call("HMGET", K("job", id), "priority", "run_at", "state", "task", "created_at")
    redis.call("ZREM", K("q", q, "delayed"), id)
    redis.call("ZADD", K("q", q, "ready"), (9 - tonumber(f[1])) * 4398046511104 + math.floor(tonumber(f[2] or f[5]) * 1000), id)
    move(id, q, f[4], f[3], "PENDING", now_s)
  end
end
-- The best `limit` of each queue, merged (a ready score orders priority, then run_at).
local picks = {}
for _, q in ipairs(queues) do
  local top = redis.call("ZRANGE", K("q", q, "ready"), 0, limit - 1, "WITHSCORES")
  for i = 1, #top, 2 do table.insert(picks, {tonumber(top[i + 1]), top[i], q}) end
end
if #queues > 1 then
  table.sort(picks, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
end
local claimed, leases, taken = {}, {}, {}
for i = 1, math.min(limit, #picks) do
  local id, q = picks[i][2], picks[i][3]
  local key = K("job", id)
  local record = redis.call("HGETALL", key)
  local attempt, task = 1, "?"
  for f = 1, #record, 2 do
    if record[f] == "attempt" then attempt = tonumber(record[f + 1]) + 1
    elseif record[f] == "task" then task = record[f + 1] end
  end
  local changed = {"state", "STARTED", "worker", ARGV[4], "started_at", now_s,
    "lease_token", tokens[i], "lease_until", lease_s, "attempt", tostring(attempt)}
  redis.call("HSET", key, unpack(changed))
  for _, x in ipairs(changed) do table.insert(record, x) end
  table.insert(record, "id")
  table.insert(record, id)
  table.insert(claimed, record)
  table.insert(leases, lease_s)
  table.insert(leases, id)
  taken[q] = taken[q] or {}
  table.insert(taken[q], id)
  tally(q, "PENDING", -1)
  tally(q, "STARTED", 1)
  event(now_s, "job.state", id, q, task, "STARTED")
end
batched("ZADD", K("leases"), leases)
for q, ids in pairs(taken) do batched("ZREM", K("q", q, "ready"), ids) end
flush_tally()
for _, q in ipairs(queues) do  -- work left: wake the next idle worker too
  if redis.call("ZCARD", K("q", q, "ready")) > 0 then wake(q) end
end
return claimed
