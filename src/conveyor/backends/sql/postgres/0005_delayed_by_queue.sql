-- Migration 5: delayed jobs (SCHEDULED, RETRY) indexed by queue, then run_at, for
-- next_due's delayed branch. jobs_delayed (run_at alone) serves promotion across all
-- queues; read for one queue, it walked every delayed job of the other queues first
-- (a million waiting for tomorrow in another queue, on every idle worker's loop).
CREATE INDEX jobs_delayed_queue ON {schema}.jobs (queue, run_at) WHERE state IN ('SCHEDULED', 'RETRY');
