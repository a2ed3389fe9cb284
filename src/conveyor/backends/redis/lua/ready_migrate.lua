-- ARGV: prefix, queue, limit. Moves up to limit jobs from an earlier version's ready set
-- of the queue into its due pages; returns how many are left there.
return rd_migrate(ARGV[1], ARGV[2], tonumber(ARGV[3]))
