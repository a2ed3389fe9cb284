-- ARGV: prefix, lease_until, then id, token pairs. Returns {terminate ids, lost ids}.
local terminate, lost = {}, {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if leased(id, token) then
    redis.call("HSET", K("job", id), "lease_until", ARGV[2])
    redis.call("ZADD", K("leases"), ARGV[2], id)
    if redis.call("HGET", K("job", id), "revoke") == "terminate" then table.insert(terminate, id) end
  else
    table.insert(lost, id)
  end
end
return {terminate, lost}
