-- ARGV: prefix, n, field 1..n, job id, ... Read only. The n fields of each job (nil for
-- a field it lacks), flat: one round trip, where a pipeline of one HMGET per job cost
-- the client more than Redis (RedisBackend._fields).
local n = tonumber(ARGV[2])
local names = {}
for i = 1, n do names[i] = ARGV[2 + i] end
local out = {}
for i = 3 + n, #ARGV do
  local f = redis.call("HMGET", K("job", ARGV[i]), unpack(names))
  for j = 1, n do out[#out + 1] = f[j] end
end
return out
