-- The paged sets' layout: what every script that reads or writes them must agree on, in
-- one place, ahead of everything else in each of them (the scripts that skip the prelude,
-- enqueue_one.lua and the idle claim's claim_idle.lua, too).
-- A page holds at most IX_PAGE members (pages.lua), a tail is folded into its pages once
-- it holds IX_TAIL entries (tail.lua).
local IX_PAGE = 120
local IX_TAIL = 120
-- A due member (each queue's due pages and due tail, index.lua's rd_member): the job's
-- ready score, (9 - priority) * RD_BAND + run_at in ms, written in RD_DIGITS digits,
-- zero-padded (RD_FORMAT), then its id: byte order is priority, then run_at, then id.
-- The score is a whole number far below 2^53, written as an integer (%d: the same digits
-- as %.0f without the float formatting's cost). Constants only: a function made here
-- would be made by every call of every script (the idle claim's fast path and the single
-- enqueue skip the prelude for that cost), a few thousand instructions each.
local RD_BAND = 4398046511104  -- 2^42
local RD_DIGITS = 15
local RD_FORMAT = "%015d"  -- RD_DIGITS wide (a test checks the two agree)
