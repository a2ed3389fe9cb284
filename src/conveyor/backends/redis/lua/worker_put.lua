-- ARGV: prefix, worker id, entry (JSON). A heartbeat's entry, unless the stored one is
-- marked stopped: a heartbeat landing after the worker's stop must not make it live again.
local key = K("workers")
local stored = redis.call("HGET", key, ARGV[2])
if stored and cjson.decode(stored).stopped_at ~= nil then return 0 end
redis.call("HSET", key, ARGV[2], ARGV[3])
return 1
