-- ARGV: prefix, worker id, now. Mark the worker's entry stopped in one step, so no
-- heartbeat falls between reading it and writing it back; a second stop keeps the first
-- time. The entry is a JSON object without stopped_at (unset fields are left out): the
-- field is appended as text, since cjson would re-encode the rest (an empty list as an
-- object, numbers to 14 digits).
local key = K("workers")
local stored = redis.call("HGET", key, ARGV[2])
if not stored or cjson.decode(stored).stopped_at ~= nil then return 0 end
redis.call("HSET", key, ARGV[2], string.sub(stored, 1, -2) .. ',"stopped_at":' .. ARGV[3] .. "}")
return 1
