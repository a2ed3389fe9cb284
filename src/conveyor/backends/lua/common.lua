-- Prepended to every script. ARGV[1] is the key prefix, which carries the app's hash
-- tag (conveyor:{name}), so every key a script touches lives in one Cluster slot.
-- Invariants kept by every script:
--   q:<queue>:ready    PENDING jobs only, scored by priority then run_at (ms)
--   q:<queue>:delayed  SCHEDULED and RETRY jobs, scored by run_at
--   leases             STARTED jobs, scored by lease_until
--   finished           finished jobs, scored by keep_until (for pruning)
--   done               finished jobs that ran, scored by finished_at (for statistics)
--   counts             "<queue>\0<state>" -> number of jobs
local P = ARGV[1]
local function K(...) return P .. ":" .. table.concat({...}, ":") end
local function num(x) return string.format("%.17g", x) end
local function jstr(s) if s == nil or s == false then return "null" end return cjson.encode(s) end
local WAITING = {PENDING = true, SCHEDULED = true, RETRY = true}
local FINISHED = {SUCCESS = true, FAILURE = true, REVOKED = true}

local function count(queue, state, delta)
  redis.call("HINCRBY", K("counts"), queue .. "\0" .. state, delta)
end

local function event(now, kind, id, queue, task, state)
  redis.call("XADD", K("events"), "MAXLEN", "~", "10000", "*",
    "t", now, "k", kind, "j", id, "q", queue, "n", task, "s", state)
end

-- Change a job's state, with its counters and its event.
local function move(id, queue, task, old, new, now)
  redis.call("HSET", K("job", id), "state", new)
  count(queue, old, -1)
  count(queue, new, 1)
  event(now, "job.state", id, queue, task, new)
end

local function wake(queue)
  redis.call("LPUSH", K("q", queue, "wake"), "1")
  redis.call("LTRIM", K("q", queue, "wake"), 0, 0)
end

-- Queue a job: into the ready set if it is due (PENDING), else the delayed set.
local function enqueue_waiting(id, queue, priority, run_at, now)
  if run_at <= now then
    redis.call("ZADD", K("q", queue, "ready"), (9 - priority) * 4398046511104 + math.floor(run_at * 1000), id)
    wake(queue)
  else
    redis.call("ZADD", K("q", queue, "delayed"), run_at, id)
  end
end

local function append_attempt(id, state, now, brief)
  local key = K("job", id)
  local f = redis.call("HMGET", key, "attempt", "worker", "started_at", "attempts")
  local entry = '{"attempt":' .. (f[1] or "0") .. ',"worker":' .. jstr(f[2]) ..
    ',"started_at":' .. (f[3] or "null") .. ',"finished_at":' .. now ..
    ',"state":' .. cjson.encode(state) .. ',"error":' .. (brief or "null") .. '}'
  local list = f[4] or "[]"
  if list == "[]" then list = "[" .. entry .. "]" else list = string.sub(list, 1, -2) .. "," .. entry .. "]" end
  redis.call("HSET", key, "attempts", list)
end

-- End a job (SUCCESS, FAILURE, REVOKED): out of every waiting or lease set.
local function finish(id, queue, task, old, new, now, keep_until, fields)
  local key = K("job", id)
  if #fields > 0 then redis.call("HSET", key, unpack(fields)) end
  redis.call("HSET", key, "finished_at", now, "keep_until", keep_until)
  redis.call("HDEL", key, "lease_token", "lease_until")
  redis.call("ZREM", K("leases"), id)
  redis.call("ZREM", K("q", queue, "ready"), id)
  redis.call("ZREM", K("q", queue, "delayed"), id)
  redis.call("ZADD", K("finished"), keep_until, id)
  if redis.call("HEXISTS", key, "started_at") == 1 then redis.call("ZADD", K("done"), now, id) end
  move(id, queue, task, old, new, now)
end

-- The job, if this lease (id, token) still holds it: {queue, task}.
local function leased(id, token)
  local f = redis.call("HMGET", K("job", id), "state", "lease_token", "queue", "task")
  if f[1] == "STARTED" and f[2] == token then return f[3], f[4] end
  return nil
end
