-- Migration 7: only finished records carry a keep_until. Prune now reads jobs_keep_until
-- alone (no state condition), so an unfinished job stored with one by an older enqueue
-- (which kept whatever keep_until a caller gave) must lose it, or it would be deleted
-- unrun. Reads the partial index's entries once; changes no state (no event, no count).
UPDATE {schema}.jobs SET keep_until = NULL
WHERE keep_until IS NOT NULL AND state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED');
