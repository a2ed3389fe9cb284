-- The idle claim's fast path, ahead of the prelude (pages.lua ... common.lua, then
-- claim.lua), whose definitions it skips by returning first: they cost a call ~15 µs.
-- An idle worker's claim, pipelined behind its wait, is on the way from a delay() to
-- the task starting (the reply to the wait goes out only after it), and finds the usual
-- case: one queue, not paused, no delayed job due, no due pages, and one job, the one
-- just queued, in the queue's due tail (tail.lua). Then the tail is the whole of the
-- queue's due set, and this takes its one job as claim.lua would (the same lease, record,
-- counters and event), in 12 commands where the general claim took 23. Any other
-- case goes on to the general claim, which reads nothing this wrote.
do
  local P, Q, limit = ARGV[1], ARGV[1] .. ":q:" .. ARGV[7], tonumber(ARGV[5])
  local tail = Q .. ":newdue"
  if #ARGV == 7 and limit >= 1 and redis.call("LLEN", tail) == 1
      and redis.call("EXISTS", Q .. ":due", Q .. ":ready") == 0
      and redis.call("SISMEMBER", P .. ":paused", ARGV[7]) == 0 then
    local now_s, lease_s = claim_clock(ARGV[2], ARGV[3])
    if not redis.call("ZRANGEBYSCORE", Q .. ":delayed", "-inf", now_s, "LIMIT", 0, 1)[1] then
      local id = string.sub(redis.call("LPOP", tail), RD_DIGITS + 1)  -- its due member
      local token = cjson.decode(ARGV[6])[1]
      local record, task = take(P .. ":job:" .. id, id, ARGV[4], now_s, token, lease_s)
      if not record then return {} end  -- dropped, as the general claim drops it
      redis.call("ZADD", P .. ":leases", lease_s, id)
      redis.call("HINCRBY", P .. ":counts", ARGV[7] .. "\0PENDING", -1)
      redis.call("HINCRBY", P .. ":counts", ARGV[7] .. "\0STARTED", 1)
      redis.call("XADD", P .. ":events", "MAXLEN", "~", "10000", "*",
        "t", now_s, "k", "", "j", id, "q", ARGV[7], "n", task, "s", "STARTED")
      return {record}
    end
  end
end
