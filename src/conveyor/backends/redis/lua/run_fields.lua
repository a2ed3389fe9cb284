-- ARGV: prefix, job id, ... Read only. Per job, its queue, task, state, started_at and
-- finished_at (nil for a field it lacks), flat: one round trip for the runs the client
-- has not read before (RedisBackend._recent_runs).
local out = {}
for i = 2, #ARGV do
  local f = redis.call("HMGET", K("job", ARGV[i]), "queue", "task", "state", "started_at", "finished_at")
  for j = 1, 5 do out[#out + 1] = f[j] end
end
return out
