-- ARGV: prefix, id... Takes ids whose job is gone out of the id index (a listing found
-- them: pruned by a version that did not know the index). An id whose job exists again
-- (enqueued anew with the same id since the listing read it) stays.
ix_fold(ARGV[1])
for i = 2, #ARGV do
  if redis.call("EXISTS", ARGV[1] .. ":job:" .. ARGV[i]) == 0 then ix_remove(ARGV[1], ARGV[i]) end
end
return 0
