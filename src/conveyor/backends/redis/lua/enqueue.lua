-- ARGV: prefix, now, jobs (JSON array), the least and the greatest id (byte order).
-- Returns 1 per inserted job, 0 where the id existed.
local now = tonumber(ARGV[2])
local out, seen, due, added = {}, {}, {}, {}
local ready = {}  -- queue -> {members, least score, greatest score}
local sets = {}  -- key -> {score, member, ...}, written by one ZADD per key at the end
local function zadd(key, score, member)
  if not sets[key] then sets[key] = {} end
  table.insert(sets[key], score)
  table.insert(sets[key], member)
end
for i, j in ipairs(cjson.decode(ARGV[3])) do
  local key = K("job", j.id)
  if redis.call("HSETNX", key, "task", j.task) == 0 then  -- every stored job has a task
    out[i] = 0
  else
    -- Fields at their default (attempt 0, no headers, ...) are not stored; run_at only
    -- when it differs from created_at (a job due at once): 49 bytes a job. The long
    -- names and the priority are written although every reader of this version takes
    -- `p`, `c`, `m` and a missing priority (common.lua, codec.SHORT): an earlier
    -- version's scripts read only these, with no fallback, and run beside this one
    -- during a rolling upgrade (docs/redis.md). The next version writes the short form.
    local fields = {"queue", j.queue, "payload", j.payload, "state", j.state,
      "created_at", j.created_at_s, "max_retries", j.max_retries, "priority", j.priority}
    if j.run_at_s ~= j.created_at_s then
      table.insert(fields, "run_at"); table.insert(fields, j.run_at_s)
    end
    for _, name in ipairs({"expires_at", "parent_id", "root_id", "workflow_id", "headers"}) do
      if j[name] then table.insert(fields, name); table.insert(fields, j[name]) end
    end
    if FINISHED[j.state] then  -- a workflow step that will never run, recorded as such
      for _, x in ipairs({"error", j.error, "finished_at", j.finished_at_s, "keep_until", j.keep_until_s}) do
        table.insert(fields, x)
      end
      zadd(K("finished"), j.keep_until_s, j.id)
    else
      local run_at = tonumber(j.run_at_s)
      if run_at <= now then
        local score = (9 - j.priority) * RD_BAND + math.floor(run_at * 1000)
        local r = ready[j.queue]
        if not r then
          r = {{}, score, score}
          ready[j.queue] = r
        end
        table.insert(r[1], rd_head(score) .. j.id)
        r[2], r[3] = math.min(r[2], score), math.max(r[3], score)
        due[j.queue] = true
      else
        zadd(K("q", j.queue, "delayed"), run_at, j.id)
      end
    end
    redis.call("HSET", key, unpack(fields))
    added[#added + 1] = j.id
    if not seen[j.queue] then
      seen[j.queue] = true
      redis.call("SADD", K("queues"), j.queue)
    end
    tally(j.queue, j.state, 1)
    event(j.created_at_s, "job.state", j.id, j.queue, j.task, j.state)
    out[i] = 1
  end
end
for key, args in pairs(sets) do batched("ZADD", key, args) end
-- Bounds by score alone: "<least>" sorts before every member, "<greatest>\255" after
-- (no id holds the byte 255, which UTF-8 never uses).
for q, r in pairs(ready) do pg_add_many(rd_dir(P, q), r[1], rd_head(r[2]), rd_head(r[3]) .. "\255") end
if #added > 0 then ix_add_many(P, added, ARGV[4], ARGV[5]) end
flush_tally()
for q in pairs(due) do wake(q) end
return out
