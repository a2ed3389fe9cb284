-- Per-minute rollups of finished runs (backends/rollup.py): the runs that ended a job in
-- this call, summed per (queue, run-time bucket) and written once per script by
-- flush_runs into the minute's hash: field "<queue>\0<bucket>" counts them,
-- "<queue>\0<bucket>\0f" those that ended FAILURE. The hash expires after a day and a
-- minute (rollup.ROLLUP_KEPT), so nothing prunes it.
local runs = {}
local function run_bucket(seconds)
  if seconds < 1e-4 then return 0 end
  return math.min(160, 1 + math.floor(4 * math.log(seconds / 1e-4) / math.log(2)))
end
local function ran_job(queue, state, started_at, now)
  local k = queue .. "\0" .. run_bucket(math.max(0, now - (tonumber(started_at) or now)))
  runs[k] = (runs[k] or 0) + 1
  if state == "FAILURE" then runs[k .. "\0f"] = (runs[k .. "\0f"] or 0) + 1 end
end
local function flush_runs(now)
  if next(runs) == nil then return end
  local key = K("minute", string.format("%d", math.floor(now / 60) * 60))
  for k, n in pairs(runs) do redis.call("HINCRBY", key, k, n) end
  redis.call("EXPIRE", key, 86460)
  runs = {}
end
