-- ARGV: prefix, queue... Per queue, the oldest run_at (ms) among the first due job of
-- each priority (each is the oldest of its priority), or "" for none. Writes nothing but
-- the fold of each queue's due tail (tail.lua).
local out = {}
for i = 2, #ARGV do
  local dir, oldest = rd_dir(ARGV[1], ARGV[i]), nil
  rd_fold(ARGV[1], ARGV[i])
  for rank = 0, 9 do
    local lo = rd_head(rank * RD_BAND)
    -- The first member from lo on: in lo's page, else the first of a later page.
    local start = pg_page(dir, lo) or redis.call("ZRANGE", dir, 0, 0)[1]
    local m
    while start ~= nil and m == nil do
      m = redis.call("ZRANGEBYLEX", dir .. ":" .. start, "[" .. lo, "+", "LIMIT", 0, 1)[1]
      start = redis.call("ZRANGEBYLEX", dir, "(" .. start, "+", "LIMIT", 0, 1)[1]
    end
    if m == nil then break end
    local score = tonumber(string.sub(m, 1, RD_DIGITS))
    if score < (rank + 1) * RD_BAND then
      local ms = score - rank * RD_BAND
      if oldest == nil or ms < oldest then oldest = ms end
    end
  end
  out[#out + 1] = oldest and string.format("%.0f", oldest) or ""
end
return out
