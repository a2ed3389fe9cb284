-- ARGV: prefix, since, limit. Read only. The jobs that ran and finished at or after
-- `since`, newest first, at most `limit`, as {id, finished_at, ...}: the scores as Redis
-- wrote them, which RedisBackend._recent_runs uses as keys, not as numbers.
return redis.call("ZREVRANGEBYSCORE", K("done"), "+inf", ARGV[2], "WITHSCORES", "LIMIT", 0, ARGV[3])
