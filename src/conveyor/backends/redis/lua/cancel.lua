-- ARGV: prefix, now, keep_until, id, terminate (1/0), revoked error (JSON).
-- Returns {the state the revoke found, the job's fields after the change}, or nil for an
-- unknown id.
local key = K("job", ARGV[4])
local f = redis.call("HMGET", key, "state", "queue", "task", "revoke")
if not f[1] then return nil end
if WAITING[f[1]] then
  finish(ARGV[4], f[2], f[3], f[1], "REVOKED", ARGV[2], ARGV[3], {"error", ARGV[6], "revoke", "revoke"})
elseif f[1] == "STARTED" then
  if ARGV[5] == "1" then
    redis.call("HSET", key, "revoke", "terminate")
    -- Wakes the workers' revocation watches; the field above stays the truth.
    redis.call("PUBLISH", K("revoked"), ARGV[4])
  elseif not f[4] then redis.call("HSET", key, "revoke", "revoke") end
elseif f[1] ~= "REVOKED" and not f[4] then
  -- It had ended before the revoke came: the record says so.
  redis.call("HSET", key, "revoke", "late")
end
return {f[1], redis.call("HGETALL", key)}
