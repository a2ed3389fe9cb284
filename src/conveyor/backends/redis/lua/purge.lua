-- ARGV: prefix, now, keep_until, queue, revoked error (JSON), batch size.
-- Revokes up to a batch of the queue's waiting jobs; returns how many.
local ids = {}
rd_fold(P, ARGV[4])  -- the jobs single enqueues left in its due tail (tail.lua)
if redis.call("EXISTS", K("q", ARGV[4], "ready")) == 1 then rd_migrate(P, ARGV[4], tonumber(ARGV[6])) end
for i, m in ipairs(pg_first(rd_dir(P, ARGV[4]), tonumber(ARGV[6]))) do ids[i] = string.sub(m, RD_DIGITS + 1) end
if #ids == 0 then ids = redis.call("ZRANGE", K("q", ARGV[4], "delayed"), 0, tonumber(ARGV[6]) - 1) end
for _, id in ipairs(ids) do
  local f = redis.call("HMGET", K("job", id), "state", "task")
  finish(id, ARGV[4], f[2], f[1], "REVOKED", ARGV[2], ARGV[3], {"error", ARGV[5], "revoke", "revoke"})
end
return #ids
