-- Leasing one claimed job (before everything else in the claim scripts: the idle claim's
-- fast path, claim_idle.lua, runs ahead of the prelude and uses it too). key: the job's
-- hash; the lease: worker, now, token, lease_until. Only a PENDING job is leased: an
-- entry whose job is gone or no longer waits (an earlier version's cancel or purge during
-- an upgrade removes it from its ready set only) is dropped, never run. Returns the
-- job's fields followed by those the claim changed, then its id (later pairs win), and
-- its task; nil when it was not leased.
local function take(key, id, worker, now_s, token, lease_s)
  local record = redis.call("HGETALL", key)
  local attempt, task, state = 1, "?", nil
  for f = 1, #record, 2 do
    if record[f] == "attempt" then attempt = tonumber(record[f + 1]) + 1
    elseif record[f] == "task" then task = record[f + 1]
    elseif record[f] == "state" then state = record[f + 1] end
  end
  if state ~= "PENDING" then return nil end
  local changed = {"state", "STARTED", "worker", worker, "started_at", now_s,
    "lease_token", token, "lease_until", lease_s, "attempt", tostring(attempt)}
  redis.call("HSET", key, unpack(changed))
  for _, x in ipairs(changed) do table.insert(record, x) end
  table.insert(record, "id")
  table.insert(record, id)
  return record, task
end

-- The claim's times (now, lease_until) as it stamps them. now "@<offset>" (lease_until
-- then the lease's length): the claim was pipelined behind a blocking wait, so it reads
-- the server's clock, shifted by <offset> to the caller's.
local function claim_clock(now_s, lease_s)
  if string.sub(now_s, 1, 1) ~= "@" then return now_s, lease_s end
  local t = redis.call("TIME")
  local at = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(string.sub(now_s, 2))
  return string.format("%.17g", at), string.format("%.17g", at + tonumber(lease_s))
end
