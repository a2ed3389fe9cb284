-- ARGV: prefix, sample. Writes nothing but the fold of each queue's due tail (tail.lua).
-- Per queue, the tasks of its next `sample` due jobs
-- and its `sample` delayed ones due first, as {queue, {task, ...}, ...}: one round trip
-- instead of one HGET per job (doctor's task check on a large backlog).
local sample = tonumber(ARGV[2])
local out = {}
for _, queue in ipairs(redis.call("SMEMBERS", K("queues"))) do
  local seen, tasks = {}, {}
  local ids = {}
  rd_fold(P, queue)
  for i, m in ipairs(pg_first(rd_dir(P, queue), sample)) do ids[i] = string.sub(m, RD_DIGITS + 1) end
  for _, set in ipairs({"ready", "delayed"}) do  -- ready: an earlier version's, not migrated
    for _, id in ipairs(redis.call("ZRANGE", K("q", queue, set), 0, sample - 1)) do
      ids[#ids + 1] = id
    end
  end
  for _, id in ipairs(ids) do
    local task = redis.call("HGET", K("job", id), "task")
    if task and not seen[task] then
      seen[task] = true
      table.insert(tasks, task)
    end
  end
  if #tasks > 0 then
    table.insert(out, queue)
    table.insert(out, tasks)
  end
end
return out
