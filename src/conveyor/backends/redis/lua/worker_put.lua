-- ARGV: prefix, worker id, entry (JSON). A heartbeat's entry, unless the worker was
-- stopped: a heartbeat landing after the stop must not make it live again.
if redis.call("HEXISTS", K("workers", "stopped"), ARGV[2]) == 1 then return 0 end
redis.call("HSET", K("workers"), ARGV[2], ARGV[3])
return 1
