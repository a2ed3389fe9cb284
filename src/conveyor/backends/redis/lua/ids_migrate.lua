-- ARGV: prefix, limit. Moves up to limit ids from an earlier version's `all` set into
-- the id index; returns how many are left there.
return ix_migrate(ARGV[1], tonumber(ARGV[2]))
