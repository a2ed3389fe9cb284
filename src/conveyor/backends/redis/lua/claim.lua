-- ARGV: prefix, now, lease_until, worker, limit, tokens (JSON array), queue...
-- (now and lease_until: see claim_clock in take.lua, which goes before this, as does
-- claim_idle.lua in the claim script: the idle claim's fast path.)
-- Promotes due delayed jobs, then leases the best PENDING jobs across the queues:
-- highest priority first, then oldest run_at, then id. Each returned record is the
-- job's fields followed by the fields the claim changed (later pairs win).
local now_s, lease_s = claim_clock(ARGV[2], ARGV[3])
local limit = tonumber(ARGV[5])
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
      local s, id = tonumber(string.sub(m, 1, RD_DIGITS)), string.sub(m, RD_DIGITS + 1)
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
  local record, task = take(K("job", id), id, ARGV[4], now_s, tokens[i], lease_s)
  taken[q] = (taken[q] or 0) + 1  -- its entry leaves the pages, claimed or not
  if record then
    table.insert(claimed, record)
    table.insert(leases, lease_s)
    table.insert(leases, id)
    tally(q, "PENDING", -1)
    tally(q, "STARTED", 1)
    event(now_s, "job.state", id, q, task, "STARTED")
  end
end
-- Every lease of a claim has the same score, so they sort by id; ids grow with time, so
-- a FIFO claim's picks come in ascending order. A small sorted set (up to 128 members,
-- the server's default) is a listpack, into which ZADD inserts each member by walking
-- from its head and parsing each score it passes: in ascending order every member walks
-- the whole batch (a claim of 128 spent ~600 µs in this one command). Newest first,
-- each stops at the head.
local newest = {}
for i = #leases - 1, 1, -2 do
  table.insert(newest, leases[i])
  table.insert(newest, leases[i + 1])
end
batched("ZADD", K("leases"), newest)
for q, n in pairs(taken) do pg_drop_first(rd_dir(P, q), n) end
flush_tally()
for _, q in ipairs(queues) do  -- work left: wake the next idle worker too (in the due
  -- pages, or still in a ready set an earlier version's producer fills during an upgrade)
  if redis.call("EXISTS", rd_dir(P, q), K("q", q, "ready")) > 0 then wake(q) end
end
return claimed
