-- Named queries for the SQLite backend. Each starts with "-- name: NAME".
-- Lists of queues arrive as one JSON array parameter, read with json_each.

-- name: insert
INSERT OR IGNORE INTO jobs (id, task, queue, priority, payload, state, run_at, created_at,
    max_retries, expires_at, parent_id, root_id, workflow_id, headers, error, finished_at, keep_until)
VALUES (:id, :task, :queue, :priority, :payload, :state, :run_at, :created_at,
    :max_retries, :expires_at, :parent_id, :root_id, :workflow_id, :headers, :error, :finished_at, :keep_until)

-- name: join
INSERT OR IGNORE INTO group_results (group_id, idx, result, keep_until)
VALUES (:group_id, :idx, :result, :keep_until)

-- name: group_results
SELECT result FROM group_results WHERE group_id = :group_id ORDER BY idx

-- name: prune_groups
DELETE FROM group_results WHERE keep_until <= :now

-- name: promote
-- Delayed jobs whose time has come become PENDING (read through jobs_delayed).
UPDATE jobs SET state = 'PENDING'
WHERE state IN ('SCHEDULED', 'RETRY') AND run_at <= :now

-- name: claim
-- Pick the best PENDING jobs and lease them, in one statement; each row gets its own
-- token (the claimer's lease_prefix, then random). The branches placeholder becomes one claim_branch per queue, so every queue's
-- jobs_pending index is read in order and no claim sorts the backlog.
UPDATE jobs
SET state = 'STARTED', worker = :worker, started_at = :now, lease_until = :lease_until,
    lease_token = :prefix || lower(hex(randomblob(8))), attempt = attempt + 1
WHERE id IN (
    SELECT id FROM ({branches}) ORDER BY priority DESC, run_at, seq LIMIT :limit
)
RETURNING {columns}

-- name: claim_branch
SELECT * FROM (
    SELECT id, priority, run_at, rowid AS seq FROM jobs
    WHERE state = 'PENDING' AND queue = :q{i}
      AND NOT EXISTS (SELECT 1 FROM paused_queues AS p WHERE p.queue = :q{i})
    ORDER BY priority DESC, run_at, rowid
    LIMIT :limit
)

-- name: leases_of
-- The deliveries of one claimer (its lease_prefix), read through the index of held
-- leases: as many rows as jobs run now, however large the store.
SELECT id, lease_token FROM jobs INDEXED BY jobs_leases
WHERE state = 'STARTED' AND substr(lease_token, 1, length(:prefix)) = :prefix

-- name: worker_leases
-- The deliveries one worker holds (a dead one's), through the same index of held leases.
SELECT id, lease_token FROM jobs INDEXED BY jobs_leases
WHERE state = 'STARTED' AND worker = :worker AND lease_token IS NOT NULL

-- name: renew
UPDATE jobs SET lease_until = :lease_until
WHERE id = :id AND state = 'STARTED' AND lease_token = :token
RETURNING revoke

-- name: finish
UPDATE jobs
SET state = :state, result = :result, error = :error, finished_at = :now, keep_until = :keep_until,
    lease_token = NULL, lease_until = NULL,
    attempts = json_insert(attempts, '$[#]', json_object('attempt', attempt, 'worker', worker,
        'started_at', started_at, 'finished_at', :now, 'state', :state, 'error', json(:brief)))
WHERE id = :id AND state = 'STARTED' AND lease_token = :token

-- name: snooze
UPDATE jobs
SET state = 'RETRY', error = :error, run_at = :run_at, lease_token = NULL, lease_until = NULL,
    attempts = json_insert(attempts, '$[#]', json_object('attempt', attempt, 'worker', worker,
        'started_at', started_at, 'finished_at', :now, 'state', 'RETRY', 'error', json(:brief)))
WHERE id = :id AND state = 'STARTED' AND lease_token = :token

-- name: release
UPDATE jobs
SET state = 'PENDING', attempt = attempt - 1, worker = NULL, started_at = NULL,
    lease_token = NULL, lease_until = NULL
WHERE id = :id AND state = 'STARTED' AND lease_token = :token

-- name: release_interrupted
-- Running jobs their worker stopped at shutdown: the attempt counts and is recorded.
UPDATE jobs
SET state = 'PENDING', worker = NULL, started_at = NULL, lease_token = NULL, lease_until = NULL,
    attempts = json_insert(attempts, '$[#]', json_object('attempt', attempt, 'worker', worker,
        'started_at', started_at, 'finished_at', :now, 'state', 'PENDING', 'error', json(:brief)))
WHERE id = :id AND state = 'STARTED' AND lease_token = :token

-- name: expire
UPDATE jobs SET lease_until = 0 WHERE id = :id AND state = 'STARTED' AND lease_token = :token

-- name: next_due
-- One seek per queue and branch, each in its index's order (indexes named: with a large
-- backlog in another queue the planner scanned the table; by jobs_delayed, run_at alone,
-- the delayed branch walked every delayed job of the other queues due before its own).
SELECT min(due) FROM (
    SELECT (SELECT run_at FROM jobs INDEXED BY jobs_pending WHERE state = 'PENDING' AND queue = q.value
            ORDER BY priority DESC, run_at LIMIT 1) AS due
    FROM json_each(:queues) AS q WHERE q.value NOT IN (SELECT queue FROM paused_queues)
    UNION ALL
    SELECT (SELECT run_at FROM jobs INDEXED BY jobs_delayed_queue
            WHERE state IN ('SCHEDULED', 'RETRY') AND queue = q.value ORDER BY run_at LIMIT 1)
    FROM json_each(:queues) AS q WHERE q.value NOT IN (SELECT queue FROM paused_queues)
)

-- name: set_progress
UPDATE jobs SET progress = :progress
WHERE id = :id AND state = 'STARTED' AND lease_token = :token

-- name: get_one
SELECT {columns} FROM jobs WHERE id = :id

-- name: cancel_find
-- The state a revoke finds (inside its write transaction, so nothing moves meanwhile).
SELECT state FROM jobs WHERE id = :id

-- name: cancel_waiting
UPDATE jobs
SET state = 'REVOKED', revoke = 'revoke', error = :error, finished_at = :now, keep_until = :keep_until
WHERE id = :id AND state IN ('PENDING', 'SCHEDULED', 'RETRY')

-- name: cancel_running
UPDATE jobs SET revoke = CASE WHEN :terminate THEN 'terminate' ELSE coalesce(revoke, 'revoke') END
WHERE id = :id AND state = 'STARTED'

-- name: cancel_late
-- The job had ended before the revoke came: its record says so (unless it was flagged
-- while running, which tells the same).
UPDATE jobs SET revoke = 'late' WHERE id = :id AND state IN ('SUCCESS', 'FAILURE') AND revoke IS NULL

-- name: revoked_terminate
-- Wakes the workers' revocation watches, which poll this counter (SQLite cannot push).
INSERT INTO counters (key, value) VALUES (:key, 1)
ON CONFLICT (key) DO UPDATE SET value = value + 1

-- name: counter
SELECT value FROM counters WHERE key = :key

-- name: expired_leases
SELECT id, revoke, lost_leases, json_extract(headers, '$.acks_late') = 0 AS acks_early, queue, started_at
FROM jobs WHERE state = 'STARTED' AND lease_until < :now

-- name: end_lost
UPDATE jobs
SET state = :state, error = :error, finished_at = :now, keep_until = :keep_until,
    lost_leases = lost_leases + 1, lease_token = NULL, lease_until = NULL,
    attempts = json_insert(attempts, '$[#]', json_object('attempt', attempt, 'worker', worker,
        'started_at', started_at, 'finished_at', :now, 'state', :state, 'error', json(:brief)))
WHERE id = :id AND state = 'STARTED' AND lease_until < :now

-- name: requeue_lost
UPDATE jobs
SET state = 'PENDING', worker = NULL, lease_token = NULL, lease_until = NULL,
    lost_leases = lost_leases + 1,
    attempts = json_insert(attempts, '$[#]', json_object('attempt', attempt, 'worker', worker,
        'started_at', started_at, 'finished_at', :now, 'state', 'PENDING', 'error', json(:brief)))
WHERE id = :id AND state = 'STARTED' AND lease_until < :now

-- name: prune_jobs
-- Only finished records carry a keep_until (see the PostgreSQL query): jobs_keep_until
-- alone names the candidates, and a batch reads no more of it than it deletes; the
-- state check keeps a job an older producer stored with a keep_until.
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_keep_until WHERE keep_until IS NOT NULL AND keep_until <= :now
    LIMIT :limit)
AND state IN ('SUCCESS', 'FAILURE', 'REVOKED')

-- name: prune_events
DELETE FROM events WHERE seq <= (SELECT coalesce(max(seq), 0) FROM events) - :keep

-- name: requeue
UPDATE jobs
SET state = 'PENDING', run_at = :now, lost_leases = 0, worker = NULL, started_at = NULL,
    finished_at = NULL, keep_until = NULL, revoke = NULL, error = NULL, result = NULL,
    progress = NULL,
    attempts = json_insert(attempts, '$[#]', json_object('attempt', attempt, 'worker', NULL,
        'started_at', NULL, 'finished_at', :now, 'state', 'REQUEUED', 'error', NULL))
WHERE id = :id AND state IN ('FAILURE', 'REVOKED')

-- name: rerun
-- A workflow step stored as never run, just requeued in this transaction, takes its input.
UPDATE jobs SET payload = :payload, headers = :headers, expires_at = :expires_at, attempts = :attempts
WHERE id = :id AND state = 'PENDING'

-- name: purge_batch
-- Batches keep each write transaction short, so workers are never locked out for long.
UPDATE jobs
SET state = 'REVOKED', revoke = 'revoke', error = :error, finished_at = :now, keep_until = :keep_until
WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_pending WHERE queue = :queue AND state = 'PENDING' LIMIT 1000)
   OR id IN (
    SELECT id FROM jobs INDEXED BY jobs_delayed_queue
    WHERE queue = :queue AND state IN ('SCHEDULED', 'RETRY') LIMIT 1000
)

-- name: recent_runs
SELECT queue, task, state, started_at, finished_at FROM jobs
WHERE finished_at >= :since AND started_at IS NOT NULL
ORDER BY finished_at DESC LIMIT :limit

-- name: waiting_queues
-- The queues holding PENDING jobs: a skip scan of jobs_pending, one seek per queue.
WITH RECURSIVE q(queue) AS (
    SELECT (SELECT min(queue) FROM jobs INDEXED BY jobs_pending WHERE state = 'PENDING')
    UNION ALL
    SELECT (SELECT min(queue) FROM jobs INDEXED BY jobs_pending WHERE state = 'PENDING' AND queue > q.queue)
    FROM q WHERE q.queue IS NOT NULL
)
SELECT queue FROM q WHERE queue IS NOT NULL

-- name: oldest_pending
-- A queue's longest-waiting PENDING job: one seek of jobs_pending per priority.
SELECT min((SELECT run_at FROM jobs INDEXED BY jobs_pending
            WHERE state = 'PENDING' AND queue = :queue AND priority = p.value
            ORDER BY run_at LIMIT 1))
FROM json_each(:priorities) AS p

-- name: oldest_due_delayed
-- Delayed jobs already due but not yet promoted (the next claim promotes them): few.
-- (Named, or the planner walks a whole index for the GROUP BY.)
SELECT queue, min(run_at) FROM jobs INDEXED BY jobs_delayed
WHERE state IN ('SCHEDULED', 'RETRY') AND run_at <= :now GROUP BY queue

-- name: next_tasks
-- The tasks of a queue's next :sample jobs, in claim order.
SELECT DISTINCT task FROM (
    SELECT task FROM jobs INDEXED BY jobs_pending WHERE state = 'PENDING' AND queue = :queue
    ORDER BY priority DESC, run_at LIMIT :sample
)

-- name: expired_waiting
-- Of a queue's next :sample PENDING jobs in claim order, those whose expiry has passed,
-- and how many were read: the expiry column of each row, no record decoded. Bounded: no
-- index holds waiting jobs by expiry (one would cost every enqueue that sets expires).
SELECT count(CASE WHEN expires_at <= :now THEN 1 END), count(*) FROM (
    SELECT expires_at FROM jobs INDEXED BY jobs_pending WHERE state = 'PENDING' AND queue = :queue
    ORDER BY priority DESC, run_at LIMIT :sample
)

-- name: next_delayed_tasks
SELECT DISTINCT queue, task FROM (
    SELECT queue, task FROM jobs WHERE state IN ('SCHEDULED', 'RETRY') ORDER BY run_at LIMIT :sample
)

-- name: counts
-- Kept by the jobs_count_* triggers.
SELECT queue, state, n FROM job_counts WHERE n > 0

-- name: pause
INSERT OR IGNORE INTO paused_queues (queue) VALUES (:queue)

-- name: resume
DELETE FROM paused_queues WHERE queue = :queue

-- name: paused
SELECT queue FROM paused_queues

-- name: worker_put
-- A heartbeat; never over an entry marked stopped (a heartbeat landing after the stop).
INSERT INTO workers (id, last_seen, info) VALUES (:id, :last_seen, :info)
ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, info = excluded.info
WHERE json_extract(workers.info, '$.stopped_at') IS NULL

-- name: worker_stop
-- One statement, so no heartbeat falls between reading the entry and marking it. :now
-- is text (repr), read by json(): a bound REAL would be written with 15 digits only.
UPDATE workers SET info = json_set(info, '$.stopped_at', json(:now))
WHERE id = :id AND json_extract(info, '$.stopped_at') IS NULL

-- name: worker_delete
DELETE FROM workers WHERE id = :id

-- name: stale_workers
SELECT info FROM workers WHERE last_seen < :before

-- name: live_workers
-- The stopped entries kept a day are filtered here, not parsed by the caller.
SELECT info FROM workers WHERE last_seen >= :since AND json_extract(info, '$.stopped_at') IS NULL

-- name: worker_entries
SELECT info FROM workers WHERE id IN (SELECT value FROM json_each(:ids))

-- name: events
SELECT seq, time, kind, job_id, queue, task, state FROM events WHERE seq > :after ORDER BY seq LIMIT :limit

-- name: lock
INSERT INTO locks (name, owner, until) VALUES (:name, :owner, :until)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
WHERE locks.owner = excluded.owner OR locks.until <= :now

-- name: unlock
DELETE FROM locks WHERE name = :name AND owner = :owner

-- name: lock_holder
SELECT owner, until FROM locks WHERE name = :name

-- name: kv_set
INSERT INTO kv (key, value, until) VALUES (:key, :value, :until)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, until = excluded.until

-- name: kv_get
SELECT value FROM kv WHERE key = :key AND (until IS NULL OR until > :now)

-- name: kv_delete
DELETE FROM kv WHERE key = :key

-- name: prune_kv
DELETE FROM kv WHERE until IS NOT NULL AND until <= :now

-- name: schedule_put
INSERT INTO schedules (name, spec) VALUES (:name, :spec)
ON CONFLICT (name) DO UPDATE SET spec = excluded.spec

-- name: schedule_state
UPDATE schedules SET state = :state WHERE name = :name

-- name: schedules
SELECT name, spec, state FROM schedules ORDER BY name

-- name: schedule_delete
DELETE FROM schedules WHERE name = :name

-- name: incr
INSERT INTO counters (key, value) VALUES (:key, :amount)
ON CONFLICT (key) DO UPDATE SET value = value + excluded.value
RETURNING value

-- name: event_put
INSERT INTO events (time, kind, job_id, queue, task, state) VALUES (:time, :kind, :subject, :queue, '', '')

-- name: audit_put
INSERT INTO audit (time, actor, actor_id, action, target, outcome, status, detail)
VALUES (:time, :actor, :actor_id, :action, :target, :outcome, :status, :detail)

-- name: audit_read
SELECT seq, time, actor, actor_id, action, target, outcome, status, detail FROM audit
WHERE (:before IS NULL OR seq < :before) AND (:target IS NULL OR target = :target)
ORDER BY seq DESC LIMIT :limit

-- name: prune_audit
DELETE FROM audit WHERE seq <= (SELECT coalesce(max(seq), 0) FROM audit) - :keep

-- name: rollup_add
-- One acknowledged batch's increments (rollup.tally), as a JSON array of
-- [minute, queue, bucket, finished, failed]: one statement per batch.
INSERT INTO run_minutes (minute, queue, bucket, finished, failed)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(:rows) WHERE true
ON CONFLICT (minute, queue, bucket) DO UPDATE
SET finished = finished + excluded.finished, failed = failed + excluded.failed

-- name: rollup_finished
-- The rollups of the jobs one acknowledged batch ended (their ids, a JSON array): one
-- statement per batch. conveyor_bucket is rollup.bucket_of, defined on each connection.
INSERT INTO run_minutes (minute, queue, bucket, finished, failed)
SELECT :minute, queue, conveyor_bucket(:now - coalesce(started_at, :now)), count(*), sum(state = 'FAILURE')
FROM jobs WHERE id IN (SELECT value FROM json_each(:ids))
GROUP BY queue, conveyor_bucket(:now - coalesce(started_at, :now))
ON CONFLICT (minute, queue, bucket) DO UPDATE
SET finished = finished + excluded.finished, failed = failed + excluded.failed

-- name: run_rollup
SELECT queue, minute, bucket, finished, failed FROM run_minutes WHERE minute >= :since

-- name: prune_run_minutes
DELETE FROM run_minutes WHERE minute < :horizon
