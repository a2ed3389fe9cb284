-- ARGV: prefix, then id, token pairs: these deliveries died; their leases end now.
for i = 2, #ARGV, 2 do
  if leased(ARGV[i], ARGV[i + 1]) then
    redis.call("HSET", K("job", ARGV[i]), "lease_until", 0)
    redis.call("ZADD", K("leases"), 0, ARGV[i])
  end
end
return 0
