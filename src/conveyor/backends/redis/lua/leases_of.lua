-- ARGV: prefix, token prefix. Returns id, token pairs: the deliveries whose lease token
-- begins with it (one claimer's), read from the leases index, so as many jobs as are
-- held now, however large the store.
local want, found = ARGV[2], {}
for _, id in ipairs(redis.call("ZRANGE", K("leases"), 0, -1)) do
  local f = redis.call("HMGET", K("job", id), "state", "lease_token")
  if f[1] == "STARTED" and f[2] and string.sub(f[2], 1, #want) == want then
    table.insert(found, id)
    table.insert(found, f[2])
  end
end
return found
