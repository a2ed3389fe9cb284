-- Prepended to every script but the standalone ones (after pages.lua and index.lua).
-- ARGV[1] is the key prefix, which carries the app's hash tag (conveyor:{name}), so
-- every key a script touches lives in one Cluster slot.
-- A job's hash has no run_at when it equals created_at (a job due at once): read
-- run_at or created_at. Invariants kept by every script:
--   q:<queue>:due      PENDING jobs only, by priority then run_at (ms), paged (index.lua)
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

-- A job hash: fields at their default are not stored, and the fields written only at
-- enqueue have one-letter names (p: payload, c: created_at, m: max_retries), 30-40 bytes
-- a job; records an earlier version wrote keep the long names and read the same.
-- PLACE lists the fields a job's place in its queue is read from (place() takes them).
local PLACE = {"priority", "run_at", "c", "created_at"}
-- priority (5 when absent) and the time a job is due at (run_at, else created_at).
local function place(priority, run_at, c, created_at)
  return tonumber(priority or 5), tonumber(run_at or c or created_at)
end
local FINISHED = {SUCCESS = true, FAILURE = true, REVOKED = true}

local function count(queue, state, delta)
  redis.call("HINCRBY", K("counts"), queue .. "\0" .. state, delta)
end

-- cmd key args... with args in slices of 1,000 (Lua unpacks at most ~8,000 values at once).
local function batched(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end

-- Counter changes summed over a batch, written once per (queue, state) by flush_tally.
local tallies = {}
local function tally(queue, state, delta)
  local k = queue .. "\0" .. state
  tallies[k] = (tallies[k] or 0) + delta
end
local function flush_tally()
  for k, delta in pairs(tallies) do
    if delta ~= 0 then redis.call("HINCRBY", K("counts"), k, delta) end
  end
  tallies = {}
end

-- An event in the stream. The kind of a job's state change, most of them, is written ""
-- (read as "job.state"): 9 bytes of value an entry, 22 with the stream's 4 KB nodes then
-- holding more entries (measured: 134 -> 112 bytes an entry).
local function event(now, kind, id, queue, task, state)
  if kind == "job.state" then kind = "" end
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

-- Queue a job: into the due pages if it is due (PENDING), else the delayed set. run_at
-- must be the one its hash reads (run_at, or created_at when absent): see rd_member.
local function enqueue_waiting(id, queue, priority, run_at, now)
  if run_at <= now then
    rd_add(P, queue, priority, run_at, id)
    wake(queue)
  else
    redis.call("ZADD", K("q", queue, "delayed"), run_at, id)
  end
end

-- The attempt history (a JSON array) with this delivery's entry appended.
local function with_attempt(list, attempt, worker, started_at, state, now, brief)
  local entry = '{"attempt":' .. (attempt or "0") .. ',"worker":' .. jstr(worker) ..
    ',"started_at":' .. (started_at or "null") .. ',"finished_at":' .. now ..
    ',"state":"' .. state .. '","error":' .. (brief or "null") .. '}'
  if list == nil or list == false or list == "[]" then return "[" .. entry .. "]" end
  return string.sub(list, 1, -2) .. "," .. entry .. "]"
end

local function append_attempt(id, state, now, brief)
  local key = K("job", id)
  local f = redis.call("HMGET", key, "attempt", "worker", "started_at", "attempts")
  redis.call("HSET", key, "attempts", with_attempt(f[4], f[1], f[2], f[3], state, now, brief))
end

-- End a job (SUCCESS, FAILURE, REVOKED): out of every waiting or lease set.
local function finish(id, queue, task, old, new, now, keep_until, fields)
  local key = K("job", id)
  if #fields > 0 then redis.call("HSET", key, unpack(fields)) end
  redis.call("HSET", key, "finished_at", now, "keep_until", keep_until)
  redis.call("HDEL", key, "lease_token", "lease_until")
  redis.call("ZREM", K("leases"), id)
  if old == "PENDING" then
    local priority, at = place(unpack(redis.call("HMGET", key, unpack(PLACE))))
    rd_remove(P, queue, priority, at, id)
  end
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

-- A job back to its queue after a delivery (release, rescue): due at its run_at, or now
-- if that is later than now (another machine's clock), stored so (see rd_member).
local function requeue_due(id, queue, now)
  local key = K("job", id)
  local priority, at = place(unpack(redis.call("HMGET", key, unpack(PLACE))))
  if at > now then
    at = now
    redis.call("HSET", key, "run_at", num(now))
  end
  enqueue_waiting(id, queue, priority, at, now)
end
