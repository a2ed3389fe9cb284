-- ARGV: prefix, "1" for newest first (else oldest first), lower ("-" or "(<id>"), upper
-- ("+" or "(<id>"), n. Up to n job ids between the bounds from the id index, in order.
-- Ids left in `all` by an earlier version move into the index first, 1,000 a call, and
-- the index's tail (tail.lua) is folded in.
local P, desc, lower, upper, n = ARGV[1], ARGV[2] == "1", ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call("EXISTS", P .. ":all") == 1 then ix_migrate(P, 1000) end
ix_fold(P)  -- the ids single enqueues appended since the last fold
local dir = P .. ":ids"
local out = {}
local start, stop, step, range
if desc then
  if upper == "+" then start = redis.call("ZREVRANGE", dir, 0, 0)[1] else start = ix_page(P, string.sub(upper, 2)) end
  if lower ~= "-" then stop = ix_page(P, string.sub(lower, 2)) end
else
  if lower == "-" then start = redis.call("ZRANGE", dir, 0, 0)[1] else start = ix_page(P, string.sub(lower, 2)) end
  if upper ~= "+" then stop = ix_page(P, string.sub(upper, 2)) end
end
while start ~= nil and #out < n do
  local got
  if desc then
    got = redis.call("ZREVRANGEBYLEX", dir .. ":" .. start, upper, lower, "LIMIT", 0, n - #out)
  else
    got = redis.call("ZRANGEBYLEX", dir .. ":" .. start, lower, upper, "LIMIT", 0, n - #out)
  end
  for _, id in ipairs(got) do out[#out + 1] = id end
  if start == stop then break end
  if desc then
    start = redis.call("ZREVRANGEBYLEX", dir, "(" .. start, "-", "LIMIT", 0, 1)[1]
  else
    start = redis.call("ZRANGEBYLEX", dir, "(" .. start, "+", "LIMIT", 0, 1)[1]
  end
end
return out
