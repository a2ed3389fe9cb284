-- ARGV: prefix, group id, index, size, result (JSON), keep_until (ms since epoch, for
-- expiry). Records a member's result once; returns all results in order when complete.
local key = K("group", ARGV[2])
redis.call("HSETNX", key, ARGV[3], ARGV[5])
redis.call("PEXPIREAT", key, ARGV[6])
local size = tonumber(ARGV[4])
if redis.call("HLEN", key) < size then return nil end
local out = {}
for i = 0, size - 1 do out[i + 1] = redis.call("HGET", key, tostring(i)) end
return out
