-- ARGV: prefix, now, jobs (JSON array). Returns 1 per inserted job, 0 where the id existed.
local now = tonumber(ARGV[2])
local out = {}
for i, j in ipairs(cjson.decode(ARGV[3])) do
  local key = K("job", j.id)
  if redis.call("EXISTS", key) == 1 then
    out[i] = 0
  else
    -- Fields at their default (attempt 0, no headers, ...) are not stored: memory per job.
    redis.call("HSET", key, "task", j.task, "queue", j.queue, "priority", j.priority, "payload", j.payload,
      "state", j.state, "run_at", j.run_at_s, "created_at", j.created_at_s, "max_retries", j.max_retries)
    for _, name in ipairs({"expires_at", "parent_id", "root_id", "workflow_id", "headers"}) do
      if j[name] then redis.call("HSET", key, name, j[name]) end
    end
    redis.call("ZADD", K("all"), 0, j.id)
    redis.call("SADD", K("queues"), j.queue)
    if FINISHED[j.state] then  -- a workflow step that will never run, recorded as such
      redis.call("HSET", key, "error", j.error, "finished_at", j.finished_at_s, "keep_until", j.keep_until_s)
      redis.call("ZADD", K("finished"), j.keep_until_s, j.id)
    else
      enqueue_waiting(j.id, j.queue, j.priority, tonumber(j.run_at_s), now)
    end
    count(j.queue, j.state, 1)
    event(j.created_at_s, "job.state", j.id, j.queue, j.task, j.state)
    out[i] = 1
  end
end
return out
