-- ARGV: prefix, now, lease_until, worker, limit, tokens (JSON array), queue...
-- now "@<offset>" (lease_until then the lease's length): the claim was pipelined behind
-- a blocking wait, so it reads the server's clock, shifted by <offset> to the caller's.
-- Promotes due delayed jobs, then leases the best PENDING jobs across the queues:
-- highest priority first, then oldest run_at, then id. Each returned record is the
-- job's fields followed by the fields the claim changed (later pairs win).
local now_s, lease_s, limit = ARGV[2], ARGV[3], tonumber(ARGV[5])
if string.sub(now_s, 1, 1) == "@" then
  local t = redis.call("TIME")
  local at = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(string.sub(now_s, 2))
  now_s, lease_s = num(at), num(at + tonumber(lease_s))
end
local tokens = cjson.decode(ARGV[6])
local queues = {}
for i = 7, #ARGV do
  if redis.call("SISMEMBER", K("paused"), ARGV[i]) == 0 then table.insert(queues, ARGV[i]) end
end
for _, q in ipairs(queues) do
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", K("q", q, "delayed"), "-inf", now_s, "LIMIT", 0, 1000)) do
    local f = redis.call("HMGET", K("job", id), "state", "task", unpack(PLACE))
    redis.call("ZREM", K("q", q, "delayed"), id)
    local priority, at = place(f[3], f[4], f[5], f[6])
    rd_add(P, q, priority, at, id)
    move(id, q, f[2], f[1], "PENDING", now_s)
  end
end
-- The best `limit` of each queue (a member orders priority, then run_at, then id), then
-- merged: heads compared by score, then id; each queue's picks stay in its own order, so
-- what is taken from a queue is the front of its pages.
local fronts = {}
for i, q in ipairs(queues) do
  rd_fold(P, q)  -- the jobs single enqueues left in the queue's due tail (tail.lua)
  if redis.call("EXISTS", K("q", q, "ready")) == 1 then rd_migrate(P, q, math.max(limit, 200)) end
  fronts[i] = pg_first(rd_dir(P, q), limit)
end
local picks, heads = {}, {}
for i = 1, #queues do heads[i] = 1 end
while #picks < limit do
  local best, bs, bid
  for i, q in ipairs(queues) do
    local m = fronts[i][heads[i]]
    if m then
      local s, id = tonumber(string.sub(m, 1, 15)), string.sub(m, 16)
      if best == nil or s < bs or (s == bs and id < bid) then best, bs, bid = i, s, id end
    end
  end
  if best == nil then break end
  heads[best] = heads[best] + 1
  table.insert(picks, {bs, bid, queues[best]})
end
local claimed, leases, taken = {}, {}, {}
for i = 1, #picks do
  local id, q = picks[i][2], picks[i][3]
  local key = K("job", id)
  local record = redis.call("HGETALL", key)
  local attempt, task, state = 1, "?", nil
  for f = 1, #record, 2 do
    if record[f] == "attempt" then attempt = tonumber(record[f + 1]) + 1
    elseif record[f] == "task" then task = record[f + 1]
    elseif record[f] == "state" then state = record[f + 1] end
  end
  taken[q] = (taken[q] or 0) + 1  -- its entry leaves the pages, claimed or not
  -- Only a PENDING job is claimed: an entry whose job is gone or no longer waits (an
  -- earlier version's cancel or purge during an upgrade removes it from its ready set
  -- only) is dropped, never run.
  if state == "PENDING" then
    local changed = {"state", "STARTED", "worker", ARGV[4], "started_at", now_s,
      "lease_token", tokens[i], "lease_until", lease_s, "attempt", tostring(attempt)}
    redis.call("HSET", key, unpack(changed))
    for _, x in ipairs(changed) do table.insert(record, x) end
    table.insert(record, "id")
    table.insert(record, id)
    table.insert(claimed, record)
    table.insert(leases, lease_s)
    table.insert(leases, id)
    tally(q, "PENDING", -1)
    tally(q, "STARTED", 1)
    event(now_s, "job.state", id, q, task, "STARTED")
  end
end
batched("ZADD", K("leases"), leases)
for q, n in pairs(taken) do pg_drop_first(rd_dir(P, q), n) end
flush_tally()
for _, q in ipairs(queues) do  -- work left: wake the next idle worker too (in the due
  -- pages, or still in a ready set an earlier version's producer fills during an upgrade)
  if redis.call("EXISTS", rd_dir(P, q), K("q", q, "ready")) > 0 then wake(q) end
end
return claimed
