-- finish.lua then claim.lua in one call (``Backend.ack_and_claim``): the connection
-- module wraps each as a function of its own ARGV (finish_part, claim_part) ahead of
-- this. ARGV: prefix, now, keep_until, outcomes (JSON), lease_until, worker, limit,
-- tokens (JSON), queue... Returns {refused ids, claimed records}.
local A = ARGV
local refused = finish_part({A[1], A[2], A[3], A[4]})
local claim_args = {A[1], A[2], A[5], A[6], A[7], A[8]}
for i = 9, #A do table.insert(claim_args, A[i]) end
return {refused, claim_part(claim_args)}
