-- ARGV: prefix, now, keep_until, outcomes (JSON array of {id, token, state, result,
-- error, brief, run_at}). Returns the ids whose lease was lost (outcome refused).
local now = tonumber(ARGV[2])
local rejected, unleased, ended, ran = {}, {}, {}, {}
for _, o in ipairs(cjson.decode(ARGV[4])) do
  local key = K("job", o.id)
  local f = redis.call("HMGET", key, "state", "lease_token", "queue", "task", "attempt", "worker",
    "started_at", "attempts", "priority")
  if f[1] ~= "STARTED" or f[2] ~= o.token then
    table.insert(rejected, o.id)
  else
    local queue, task = f[3], f[4]
    -- A run never ends before it started: its start may come from the server's clock
    -- shifted to the claimer's (a claim pipelined behind a wait), its end from the
    -- acknowledger's clock, and the shift is only as good as its round trip.
    local ended_at = ARGV[2]
    if f[7] and tonumber(f[7]) > now then ended_at = f[7] end
    local attempts = with_attempt(f[8], f[5], f[6], f[7], o.state, ended_at, o.brief)
    local new = o.state
    if o.state == "RETRY" then
      if tonumber(o.run_at) <= now then new = "PENDING" end
      redis.call("HSET", key, "state", new, "run_at", o.run_at, "error", o.error or "null", "attempts", attempts)
    else
      local fields = {"state", new, "error", o.error or "null", "attempts", attempts,
        "finished_at", ended_at, "keep_until", ARGV[3]}
      if o.state == "SUCCESS" then table.insert(fields, "result"); table.insert(fields, o.result) end
      redis.call("HSET", key, unpack(fields))
      table.insert(ended, ARGV[3]); table.insert(ended, o.id)
      table.insert(ran, ended_at); table.insert(ran, o.id)
      ran_job(queue, new, f[7], now)
    end
    redis.call("HDEL", key, "lease_token", "lease_until")
    table.insert(unleased, o.id)
    if o.state == "RETRY" then enqueue_waiting(o.id, queue, tonumber(f[9] or 5), tonumber(o.run_at), now) end
    tally(queue, "STARTED", -1)
    tally(queue, new, 1)
    event(ARGV[2], "job.state", o.id, queue, task, new)
  end
end
batched("ZREM", K("leases"), unleased)
batched("ZADD", K("finished"), ended)
batched("ZADD", K("done"), ran)
flush_tally()
flush_runs(now)
return rejected
