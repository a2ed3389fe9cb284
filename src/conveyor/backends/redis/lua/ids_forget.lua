-- ARGV: prefix, id... Takes ids whose job is gone out of the id index (a listing found
-- them: pruned by a version that did not know the index).
for i = 2, #ARGV do ix_remove(ARGV[1], ARGV[i]) end
return 0
