-- ARGV: prefix, now, max_lost, keep_until, revoked error, not-redelivered error,
-- worker-lost error (JSON), causes (JSON: job id -> [its worker-lost error, its attempt
-- entry's error], for deaths the worker saw; common.lost_delivery_end in Python).
-- Jobs whose lease expired go back to their queue, or end.
local now = tonumber(ARGV[2])
local causes = cjson.decode(ARGV[8])
local touched = {}
for _, id in ipairs(redis.call("ZRANGEBYSCORE", K("leases"), "-inf", "(" .. ARGV[2], "LIMIT", 0, 1000)) do
  local key = K("job", id)
  local f = redis.call("HMGET", key, "state", "queue", "task", "revoke", "lost_leases", "headers")
  if f[1] ~= "STARTED" then
    redis.call("ZREM", K("leases"), id)
  else
    local lost = tonumber(f[5] or "0") + 1
    redis.call("HSET", key, "lost_leases", lost)
    local acks_early = string.find(f[6] or "", '"acks_late":false', 1, true) ~= nil
    local ending, err = nil, nil
    local cause = causes[id]
    if f[4] then ending, err = "REVOKED", ARGV[5]
    elseif acks_early then ending, err = "FAILURE", ARGV[6]
    elseif lost >= tonumber(ARGV[3]) then ending, err = "FAILURE", cause and cause[1] or ARGV[7] end
    if ending then
      local e = cjson.decode(err)
      append_attempt(id, ending, ARGV[2], cjson.encode({type = e.type, message = e.message}))
      finish(id, f[2], f[3], "STARTED", ending, ARGV[2], ARGV[4], {"error", err})
      ran_job(f[2], ending, redis.call("HGET", key, "started_at"), now)
    else
      append_attempt(id, "PENDING", ARGV[2], cause and cause[2] or '{"type":"LeaseExpired","message":null}')
      redis.call("HDEL", key, "worker", "lease_token", "lease_until")
      redis.call("ZREM", K("leases"), id)
      move(id, f[2], f[3], "STARTED", "PENDING", ARGV[2])
      requeue_due(id, f[2], now)
    end
    table.insert(touched, id)
  end
end
flush_runs(now)
return touched
