-- ARGV: prefix, now, id, token, progress (JSON). 1 if stored, 0 if the lease was lost.
local queue, task = leased(ARGV[3], ARGV[4])
if not queue then return 0 end
redis.call("HSET", K("job", ARGV[3]), "progress", ARGV[5])
event(ARGV[2], "job.progress", ARGV[3], queue, task, "STARTED")
return 1
