-- ARGV: prefix, worker id, now. Move the worker's entry from workers to workers:stopped,
-- marked stopped, in one step: no heartbeat falls between reading it and writing it back,
-- and a reader of live workers reads workers alone. A second stop keeps the first time.
-- The entry is a JSON object without stopped_at (unset fields are left out): the field
-- is appended as text, since cjson would re-encode the rest (an empty list as an object,
-- numbers to 14 digits).
local live = K("workers")
local stored = redis.call("HGET", live, ARGV[2])
if not stored then return 0 end
redis.call("HDEL", live, ARGV[2])
if cjson.decode(stored).stopped_at == nil then
  stored = string.sub(stored, 1, -2) .. ',"stopped_at":' .. ARGV[3] .. "}"
end
redis.call("HSET", K("workers", "stopped"), ARGV[2], stored)
return 1
