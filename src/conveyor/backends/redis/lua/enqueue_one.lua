-- One new waiting job, from flat arguments (no JSON to decode, no prelude): the single
-- delay() path. Writes what enqueue.lua writes for such a job, and nothing more (its due
-- member is index.lua's rd_member). sizes.lua goes before it, and paged(), which makes
-- pages.lua's and tail.lua's functions and returns the two folds: called only by the
-- call that folds (one in 120), as making those functions each call cost about 1.5 µs
-- of Redis's CPU, a tenth of the script's.
-- ARGV: prefix, now, id, task, queue, priority, payload, state, run_at, created_at,
-- max_retries, then name, value pairs of the optional fields that are set.
-- Returns 1 when inserted, 0 when a job with that id existed (left as it is).
local P, id, queue, state = ARGV[1], ARGV[3], ARGV[5], ARGV[8]
local key = P .. ":job:" .. id
if redis.call("EXISTS", key) == 1 then return 0 end
-- The record as enqueue.lua writes it: a run_at equal to created_at (a job due at once)
-- is not stored; the long names and the priority are (see enqueue.lua: an earlier
-- version's scripts read only these during a rolling upgrade).
local fields = {"task", ARGV[4], "queue", queue, "payload", ARGV[7], "state", state,
  "created_at", ARGV[10], "max_retries", ARGV[11], "priority", ARGV[6]}
if ARGV[9] ~= ARGV[10] then
  fields[#fields + 1] = "run_at"
  fields[#fields + 1] = ARGV[9]
end
for i = 12, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call("HSET", key, unpack(fields))
local run_at = tonumber(ARGV[9])
local known = false  -- the queue is in `queues` (its due tail held jobs, all queued so)
if run_at <= tonumber(ARGV[2]) then
  -- Its due member joins the queue's due tail (tail.lua): one command where a page took
  -- three; every reader of the due pages, the claim first, folds the tail in first.
  local n = redis.call("RPUSH", P .. ":q:" .. queue .. ":newdue", string.format("%015.0f",
    (9 - tonumber(ARGV[6])) * 4398046511104 + math.floor(run_at * 1000)) .. id)
  if n >= IX_TAIL then
    local rd_fold = paged()
    rd_fold(P, queue)
  end
  known = n > 1
  local wake = P .. ":q:" .. queue .. ":wake"
  if redis.call("LLEN", wake) == 0 then redis.call("LPUSH", wake, "1") end
else
  redis.call("ZADD", P .. ":q:" .. queue .. ":delayed", run_at, id)
end
-- The id joins the index's tail (tail.lua): one command where a page took three.
if redis.call("RPUSH", P .. ":newids", id) >= IX_TAIL then
  local _, ix_fold = paged()
  ix_fold(P)
end
if not known then redis.call("SADD", P .. ":queues", queue) end
redis.call("HINCRBY", P .. ":counts", queue .. "\0" .. state, 1)
redis.call("XADD", P .. ":events", "MAXLEN", "~", "10000", "*",
  "t", ARGV[10], "k", "", "j", id, "q", queue, "n", ARGV[4], "s", state)
return 1
