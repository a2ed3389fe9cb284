-- ARGV: prefix, queue, sample, now. Writes nothing but the fold of the queue's due tail
-- (tail.lua). Of the queue's next `sample` due jobs in claim order, how many have an
-- expires_at at or before now, and how many were read: {expired, read}. One field of each
-- job's hash, not the record (doctor's count on a backlog of large jobs). Bounded: no
-- set holds waiting jobs by expiry.
local queue, sample, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
rd_fold(P, queue)
local ids = {}
for i, m in ipairs(pg_first(rd_dir(P, queue), sample)) do ids[i] = string.sub(m, RD_DIGITS + 1) end
if #ids < sample then  -- an earlier version's ready set, not migrated
  for _, id in ipairs(redis.call("ZRANGE", K("q", queue, "ready"), 0, sample - #ids - 1)) do
    ids[#ids + 1] = id
  end
end
local expired = 0
for _, id in ipairs(ids) do
  local at = redis.call("HGET", K("job", id), "expires_at")
  if at and tonumber(at) <= now then expired = expired + 1 end
end
return {expired, #ids}
