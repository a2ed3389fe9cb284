-- ARGV: prefix, worker id. Returns id, token pairs: the deliveries that worker holds (a
-- dead one's), read from the leases index, so as many jobs as are held now.
local want, found = ARGV[2], {}
for _, id in ipairs(redis.call("ZRANGE", K("leases"), 0, -1)) do
  local f = redis.call("HMGET", K("job", id), "state", "worker", "lease_token")
  if f[1] == "STARTED" and f[2] == want and f[3] then
    table.insert(found, id)
    table.insert(found, f[3])
  end
end
return found
