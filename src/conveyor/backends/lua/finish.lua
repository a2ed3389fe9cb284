-- ARGV: prefix, now, keep_until, outcomes (JSON array of {id, token, state, result,
-- error, brief, run_at}). Returns the ids whose lease was lost (outcome refused).
local now = tonumber(ARGV[2])
local rejected = {}
for _, o in ipairs(cjson.decode(ARGV[4])) do
  local queue, task = leased(o.id, o.token)
  if not queue then
    table.insert(rejected, o.id)
  elseif o.state == "RETRY" then
    local key = K("job", o.id)
    append_attempt(o.id, "RETRY", ARGV[2], o.brief)
    redis.call("HSET", key, "run_at", o.run_at, "error", o.error or "null")
    redis.call("HDEL", key, "lease_token", "lease_until")
    redis.call("ZREM", K("leases"), o.id)
    local priority = tonumber(redis.call("HGET", key, "priority"))
    if tonumber(o.run_at) <= now then
      move(o.id, queue, task, "STARTED", "PENDING", ARGV[2])
    else
      move(o.id, queue, task, "STARTED", "RETRY", ARGV[2])
    end
    enqueue_waiting(o.id, queue, priority, tonumber(o.run_at), now)
  else
    append_attempt(o.id, o.state, ARGV[2], o.brief)
    local fields = {"error", o.error or "null"}
    if o.state == "SUCCESS" then table.insert(fields, "result"); table.insert(fields, o.result) end
    finish(o.id, queue, task, "STARTED", o.state, ARGV[2], ARGV[3], fields)
  end
end
return rejected
