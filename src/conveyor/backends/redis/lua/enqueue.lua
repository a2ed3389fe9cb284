-- ARGV: prefix, now, the least and the greatest id (byte order), then each job as flat
-- arguments (no JSON to decode: with one EXISTS for the batch instead of a HSETNX a
-- job, about 3 µs a job less of redis-server CPU, of 15-16; docs/benchmarks.md): id,
-- task, queue, priority, payload, state, run_at, created_at, max_retries, the number of
-- optional fields' arguments n, then n arguments (name,
-- value pairs: expires_at, parent_id, root_id, workflow_id, headers; a finished job's
-- error, finished_at and keep_until, keep_until last).
-- Returns 1 per inserted job, 0 where the id existed (or came earlier in the batch).
local now, lo, hi = tonumber(ARGV[2]), ARGV[3], ARGV[4]
local out, seen, due, added, listed = {}, {}, {}, {}, {}
local ready = {}  -- queue -> {members, least score, greatest score}
local sets = {}  -- key -> {score, member, ...}, written by one ZADD per key at the end
local function zadd(key, score, member)
  local s = sets[key]
  if not s then s = {}; sets[key] = s end
  s[#s + 1] = score
  s[#s + 1] = member
end
local jobkey = P .. ":job:"
local events = K("events")
-- Where each job starts in ARGV, and whether any of the ids has a job already: one
-- EXISTS of every key (usually 0, new ids) spares each job its own.
local starts, keys, i = {}, {}, 5
while i <= #ARGV do
  starts[#starts + 1] = i
  keys[#keys + 1] = jobkey .. ARGV[i]
  i = i + 10 + tonumber(ARGV[i + 9])
end
local existing = 0
for k = 1, #keys, 1000 do
  existing = existing + redis.call("EXISTS", unpack(keys, k, math.min(k + 999, #keys)))
end
local head, head_of = nil, nil  -- the last due member's score as written, and its score
local micros, micros_of = nil, nil  -- the last event time in µs, and the created_at it is
for n, at in ipairs(starts) do
  local id, task, queue, priority, payload, state, run_at_s, created_at_s, max_retries =
    unpack(ARGV, at, at + 8)
  local key = keys[n]
  if seen[id] or (existing > 0 and redis.call("EXISTS", key) == 1) then
    out[n] = 0
  else
    seen[id] = true
    -- The compact form (common.lua): fields at their default (priority 5, attempt 0, no
    -- headers, ...) are not stored, run_at only when it differs from created_at (a job
    -- due at once), one-letter names for those only the enqueue scripts write.
    local fields = {"task", task, "queue", queue, "p", payload, "state", state,
      "c", created_at_s, "m", max_retries}
    if priority ~= "5" then
      fields[#fields + 1] = "priority"; fields[#fields + 1] = priority
    end
    if run_at_s ~= created_at_s then
      fields[#fields + 1] = "run_at"; fields[#fields + 1] = run_at_s
    end
    local extra = tonumber(ARGV[at + 9])
    for x = at + 10, at + 9 + extra do fields[#fields + 1] = ARGV[x] end
    if FINISHED[state] then  -- a workflow step that will never run, recorded as such
      zadd(K("finished"), ARGV[at + 9 + extra], id)  -- keep_until, the last value
    else
      local run_at = tonumber(run_at_s)
      if run_at <= now then
        local score = rd_score(tonumber(priority), run_at)
        local r = ready[queue]
        if not r then
          r = {{}, score, score}
          ready[queue] = r
        end
        if score ~= head_of then head, head_of = rd_head(score), score end  -- one a batch, usually
        local ms = r[1]
        ms[#ms + 1] = head .. id
        if score < r[2] then r[2] = score elseif score > r[3] then r[3] = score end
        due[queue] = true
      else
        zadd(K("q", queue, "delayed"), run_at, id)
      end
    end
    redis.call("HSET", key, unpack(fields))
    added[#added + 1] = id
    if not listed[queue] then
      listed[queue] = true
      redis.call("SADD", K("queues"), queue)
    end
    tally(queue, state, 1)
    -- As common.lua's event() writes a job state change (its kind "": job.state), but its
    -- time in whole µs as enqueue_one.lua writes it (an integer in the stream: 10 bytes
    -- an entry less); the stream trimmed once after the batch (below).
    if created_at_s ~= micros_of then
      micros, micros_of = string.format("%d", math.floor(tonumber(created_at_s) * 1e6 + 0.5)), created_at_s
    end
    redis.call("XADD", events, "*",
      "t", micros, "k", "", "j", id, "q", queue, "n", task, "s", state)
    out[n] = 1
  end
end
for key, args in pairs(sets) do batched("ZADD", key, args) end
-- Bounds by score alone: "<least>" sorts before every member, "<greatest>\255" after
-- (no id holds the byte 255, which UTF-8 never uses).
for q, r in pairs(ready) do pg_add_many(rd_dir(P, q), r[1], rd_head(r[2]), rd_head(r[3]) .. "\255") end
if #added > 0 then ix_add_many(P, added, lo, hi) end
if #added > 0 then redis.call("XTRIM", events, "MAXLEN", "~", "10000") end
flush_tally()
for q in pairs(due) do wake(q) end
return out
