-- ARGV: prefix, name, owner, now, until, gc_ms. Take or extend a lock; 1 if held.
local key = K("lock", ARGV[2])
local f = redis.call("HMGET", key, "owner", "until")
if f[1] and f[1] ~= ARGV[3] and tonumber(f[2]) > tonumber(ARGV[4]) then return 0 end
redis.call("HSET", key, "owner", ARGV[3], "until", ARGV[5])
redis.call("PEXPIRE", key, ARGV[6])
return 1
