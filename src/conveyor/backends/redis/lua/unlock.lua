-- ARGV: prefix, name, owner. Release a lock held by owner; 1 if released.
local key = K("lock", ARGV[2])
if redis.call("HGET", key, "owner") ~= ARGV[3] then return 0 end
redis.call("DEL", key)
return 1
