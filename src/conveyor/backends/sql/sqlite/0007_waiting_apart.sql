-- Migration 7: the state and queue filter indexes leave waiting (PENDING) jobs out, and
-- jobs_waiting holds those, by queue in id order. A single enqueue wrote its row into
-- the table and five indexes (primary key, jobs_pending, state, queue, task); now into
-- four (jobs_waiting in place of state and queue), each one a descent from the root,
-- four levels deep beside a million waiting. The job list reads a queue's jobs from
-- jobs_queue and jobs_waiting, the waiting ones of every queue from jobs_waiting, one
-- branch per queue that holds some (backends/listing.py); state is the last column of
-- both, so those reads stay in the index. A claim moves a job from jobs_waiting into
-- the state and queue indexes. PostgreSQL keeps its indexes whole.
DROP INDEX jobs_state;
DROP INDEX jobs_queue;
CREATE INDEX jobs_state ON jobs (state, id) WHERE state <> 'PENDING';
CREATE INDEX jobs_queue ON jobs (queue, id, state) WHERE state <> 'PENDING';
CREATE INDEX jobs_waiting ON jobs (queue, id, state) WHERE state = 'PENDING';
