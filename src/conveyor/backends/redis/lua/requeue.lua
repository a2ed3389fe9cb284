-- ARGV: prefix, now, id. A FAILURE or REVOKED job runs again, its history kept.
-- Returns {1 if changed else 0, fields} or nil for an unknown id.
local id, now = ARGV[3], tonumber(ARGV[2])
local key = K("job", id)
local f = redis.call("HMGET", key, "state", "queue", "task", "priority", "attempt", "attempts")
if not f[1] then return nil end
if f[1] ~= "FAILURE" and f[1] ~= "REVOKED" then return {0, redis.call("HGETALL", key)} end
local entry = '{"attempt":' .. (f[5] or "0") .. ',"worker":null,"started_at":null,"finished_at":' .. ARGV[2] ..
  ',"state":"REQUEUED","error":null}'
local list = f[6] or "[]"
if list == "[]" then list = "[" .. entry .. "]" else list = string.sub(list, 1, -2) .. "," .. entry .. "]" end
redis.call("HSET", key, "attempts", list, "run_at", ARGV[2], "lost_leases", 0)
redis.call("HDEL", key, "worker", "started_at", "finished_at", "keep_until", "revoke", "error", "result", "progress")
redis.call("ZREM", K("finished"), id)
redis.call("ZREM", K("done"), id)
move(id, f[2], f[3], f[1], "PENDING", ARGV[2])
enqueue_waiting(id, f[2], tonumber(f[4] or 5), now, now)
return {1, redis.call("HGETALL", key)}
