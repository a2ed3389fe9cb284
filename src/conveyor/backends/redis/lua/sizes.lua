-- The paged sets' sizes (before pages.lua and tail.lua in every script that has them):
-- a page holds at most IX_PAGE members (pages.lua), a tail is folded into its pages once
-- it holds IX_TAIL entries (tail.lua). Kept apart so that a script that only sometimes
-- folds (enqueue_one.lua) has them without making the fold's functions each call.
local IX_PAGE = 120
local IX_TAIL = 120
