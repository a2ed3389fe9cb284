-- The paged sets' layout: what every script that reads or writes them must agree on, in
-- one place, ahead of everything else in each of them (the scripts that skip the prelude,
-- enqueue_one.lua and the idle claim's claim_idle.lua, too).
-- A page holds at most IX_PAGE members (pages.lua), a tail is folded into its pages once
-- it holds IX_TAIL entries (tail.lua).
local IX_PAGE = 120
local IX_TAIL = 120
-- A due member (each queue's due pages and due tail, index.lua): the job's ready score,
-- (9 - priority) * RD_BAND + run_at in ms, written in RD_DIGITS digits, zero-padded, then
-- its id: byte order is priority, then run_at, then id. The score is a whole number far
-- below 2^53, written as an integer (%d: the same digits as %.0f, without the float
-- formatting's cost, about a microsecond of a single enqueue's).
local RD_BAND = 4398046511104  -- 2^42
local RD_DIGITS = 15
local RD_FORMAT = "%0" .. RD_DIGITS .. "d"
local function rd_score(priority, run_at) return (9 - priority) * RD_BAND + math.floor(run_at * 1000) end
local function rd_head(score) return string.format(RD_FORMAT, score) end
local function rd_member(priority, run_at, id) return rd_head(rd_score(priority, run_at)) .. id end
