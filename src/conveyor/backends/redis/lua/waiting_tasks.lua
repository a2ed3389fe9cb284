-- ARGV: prefix, sample. Read only. Per queue, the tasks of its next `sample` ready jobs
-- and its `sample` delayed ones due first, as {queue, {task, ...}, ...}: one round trip
-- instead of one HGET per job (doctor's task check on a large backlog).
local sample = tonumber(ARGV[2])
local out = {}
for _, queue in ipairs(redis.call("SMEMBERS", K("queues"))) do
  local seen, tasks = {}, {}
  for _, set in ipairs({"ready", "delayed"}) do
    for _, id in ipairs(redis.call("ZRANGE", K("q", queue, set), 0, sample - 1)) do
      local task = redis.call("HGET", K("job", id), "task")
      if task and not seen[task] then
        seen[task] = true
        table.insert(tasks, task)
      end
    end
  end
  if #tasks > 0 then
    table.insert(out, queue)
    table.insert(out, tasks)
  end
end
return out
