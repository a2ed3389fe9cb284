-- ARGV: prefix, name, state (JSON). Only for a schedule that exists.
if redis.call("HEXISTS", K("schedules"), ARGV[2]) == 0 then return 0 end
redis.call("HSET", K("schedule_states"), ARGV[2], ARGV[3])
return 1
