-- One new waiting job, from flat arguments (no JSON to decode, no prelude): the single
-- delay() path. Writes what enqueue.lua writes for such a job, and nothing more.
-- layout.lua goes before it, and paged(), which makes pages.lua's and tail.lua's
-- functions and returns the two folds: called only by the call that folds (one in 120),
-- as making those functions each call cost about 1.5 µs of Redis's CPU, a tenth of the
-- script's.
-- ARGV: prefix, the job's due member when it is due now (index.lua's rd_member, made by
-- the producer, codec.due_member: no number is parsed or formatted here), else "", id,
-- task, queue, priority, payload, state, run_at, created_at, max_retries, the event's
-- time (whole µs), then name, value pairs of the optional fields that are set.
-- Returns 1 when inserted, 0 when a job with that id existed (left as it is).
local P, id, queue, state = ARGV[1], ARGV[3], ARGV[5], ARGV[8]
local key = P .. ":job:" .. id
if redis.call("EXISTS", key) == 1 then return 0 end
-- The record as enqueue.lua writes it: the compact form (common.lua), no priority 5 and
-- no run_at equal to created_at (a job due at once).
local fields = {"task", ARGV[4], "queue", queue, "p", ARGV[7], "state", state, "c", ARGV[10],
  "m", ARGV[11]}
if ARGV[6] ~= "5" then
  fields[#fields + 1] = "priority"
  fields[#fields + 1] = ARGV[6]
end
if ARGV[9] ~= ARGV[10] then
  fields[#fields + 1] = "run_at"
  fields[#fields + 1] = ARGV[9]
end
for i = 13, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call("HSET", key, unpack(fields))
local known = false  -- the queue is in `queues` (its due tail held jobs, all queued so)
if ARGV[2] ~= "" then
  -- Its due member joins the queue's due tail (tail.lua): one command where a page took
  -- three; every reader of the due pages, the claim first, folds the tail in first.
  local n = redis.call("RPUSH", P .. ":q:" .. queue .. ":newdue", ARGV[2])
  if n >= IX_TAIL then
    local rd_fold = paged()
    rd_fold(P, queue)
  end
  known = n > 1
  local wake = P .. ":q:" .. queue .. ":wake"
  if redis.call("LLEN", wake) == 0 then redis.call("LPUSH", wake, "1") end
else
  redis.call("ZADD", P .. ":q:" .. queue .. ":delayed", ARGV[9], id)
end
-- The id joins the index's tail (tail.lua): one command where a page took three. Every
-- call pushes there, so its length counts the calls since the tail was last emptied: the
-- event stream is trimmed by the first of them (below).
local ids = redis.call("RPUSH", P .. ":newids", id)
if ids >= IX_TAIL then
  local _, ix_fold = paged()
  ix_fold(P)
end
if not known then redis.call("SADD", P .. ":queues", queue) end
redis.call("HINCRBY", P .. ":counts", queue .. "\0" .. state, "1")
-- The event: its time as a whole number of µs (an integer in the stream's listpack, 10
-- bytes where the seconds' text took 19-20), and no trim of the stream at each entry
-- (XADD's MAXLEN ~ rewrote its arguments for replication at every call, about a µs):
-- the call that starts the id tail trims it, so at most IX_TAIL entries come in between.
local events = P .. ":events"
redis.call("XADD", events, "*", "t", ARGV[12], "k", "", "j", id, "q", queue, "n", ARGV[4],
  "s", state)
if ids == 1 then redis.call("XTRIM", events, "MAXLEN", "~", "10000") end
return 1
