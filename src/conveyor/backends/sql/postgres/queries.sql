-- Named queries for the PostgreSQL backend. Each starts with "-- name: NAME".
-- {schema} is the backend's schema; {columns} the job columns a record is read from.

-- name: insert
-- One statement for any number of jobs (arrays, one element per job), so an enqueue is one
-- round trip and, outside a caller's transaction, commits on its own. ORDINALITY keeps
-- the batch's order in seq, which orders jobs of equal priority and run_at. Empty headers
-- come as NULL: a thousand '{}' cast to jsonb cost a third of the statement.
INSERT INTO {schema}.jobs (id, task, queue, priority, payload, state, run_at, created_at,
    max_retries, expires_at, parent_id, root_id, workflow_id, headers, error, finished_at, keep_until)
SELECT id, task, queue, priority, payload, state, run_at, created_at, max_retries, expires_at,
    parent_id, root_id, workflow_id, COALESCE(headers, '{}'), error, finished_at, keep_until
FROM unnest(%(id)b::text[], %(task)b::text[], %(queue)b::text[], %(priority)b::smallint[],
    %(payload)b::bytea[], %(state)b::text[], %(run_at)b::float8[], %(created_at)b::float8[],
    %(max_retries)b::int[], %(expires_at)b::float8[], %(parent_id)b::text[], %(root_id)b::text[],
    %(workflow_id)b::text[], %(headers)b::jsonb[], %(error)b::jsonb[], %(finished_at)b::float8[],
    %(keep_until)b::float8[])
    WITH ORDINALITY AS j(id, task, queue, priority, payload, state, run_at, created_at, max_retries,
        expires_at, parent_id, root_id, workflow_id, headers, error, finished_at, keep_until, n)
ORDER BY n
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: insert_one
-- The same for one job, without the arrays (cheaper to send).
INSERT INTO {schema}.jobs (id, task, queue, priority, payload, state, run_at, created_at,
    max_retries, expires_at, parent_id, root_id, workflow_id, headers, error, finished_at, keep_until)
VALUES (%(id)s, %(task)s, %(queue)s, %(priority)s, %(payload)s, %(state)s, %(run_at)s, %(created_at)s,
    %(max_retries)s, %(expires_at)s, %(parent_id)s, %(root_id)s, %(workflow_id)s, COALESCE(%(headers)s::jsonb, '{}'),
    %(error)s::jsonb, %(finished_at)s, %(keep_until)s)
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: get
SELECT {columns} FROM {schema}.jobs WHERE id = ANY(%(ids)s)

-- name: get_one
SELECT {columns} FROM {schema}.jobs WHERE id = %(id)s

-- name: promote
-- Delayed jobs whose time has come become PENDING; SKIP LOCKED keeps workers from queueing up.
UPDATE {schema}.jobs SET state = 'PENDING'
WHERE id IN (SELECT id FROM {schema}.jobs WHERE state IN ('SCHEDULED', 'RETRY') AND run_at <= %(now)s
             ORDER BY run_at LIMIT 1000 FOR UPDATE SKIP LOCKED)

-- name: claim
-- One statement: lock the best PENDING rows nobody else is locking, and lease them.
-- Each queue is read in its partial-index order by a LATERAL branch (LIMIT n, SKIP
-- LOCKED), so no claim sorts the backlog; the branches merge into the best n. A token
-- is the claimer's lease_prefix, then random.
UPDATE {schema}.jobs AS j
SET state = 'STARTED', worker = %(worker)s, started_at = %(now)s, lease_until = %(lease_until)s,
    lease_token = %(prefix)s || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16),
    attempt = j.attempt + 1
FROM (
    SELECT c.id FROM unnest(%(queues)s::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, priority, run_at, seq FROM {schema}.jobs
        WHERE state = 'PENDING' AND queue = q.name
        ORDER BY priority DESC, run_at, seq
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.paused_queues AS p WHERE p.queue = q.name)
    ORDER BY c.priority DESC, c.run_at, c.seq
    LIMIT %(limit)s
) AS picked
WHERE j.id = picked.id
RETURNING {jcolumns}

-- name: leases_of
-- The deliveries of one claimer (its lease_prefix), read through the partial index of
-- held leases: as many rows as jobs run now, however large the store.
SELECT id, lease_token FROM {schema}.jobs
WHERE state = 'STARTED' AND lease_until IS NOT NULL AND starts_with(lease_token, %(prefix)s)

-- name: worker_leases
-- The deliveries one worker holds (a dead one's), through the same partial index.
SELECT id, lease_token FROM {schema}.jobs
WHERE state = 'STARTED' AND lease_until IS NOT NULL AND worker = %(worker)s

-- name: renew
-- Every lease in one statement, sent with its Sync in one write and committed by the
-- server on its own (autocommit): a worker frozen at any instant (SIGSTOP, a paused VM)
-- leaves no transaction open. A pipeline of one UPDATE per lease did: frozen between its
-- results and its Sync, the session stayed 'active' (so no idle-in-transaction timeout)
-- holding the job rows, and the rescue, which skips locked rows, never freed the job.
-- Its commit waits for no WAL flush (docs/postgres.md, "Heartbeats"): a renewal lost in
-- a crash leaves the lease one heartbeat shorter, and a slow disk no longer makes a
-- renewal late enough to lose a live worker's lease.
UPDATE {schema}.jobs AS j SET lease_until = %(lease_until)s
FROM unnest(%(ids)s::text[], %(tokens)s::text[]) AS l(id, token)
WHERE j.id = l.id AND j.state = 'STARTED' AND j.lease_token = l.token
  AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
RETURNING j.id, j.revoke

-- name: settle
-- A batch of ended deliveries in one statement, whatever its size: the outcomes come as
-- arrays (one element per delivery), so the statement triggers run once per batch, not
-- once per job (one UPDATE per outcome fired them, and inserted a count delta, per job).
-- `ended`: SUCCESS, FAILURE, REVOKED; `snoozed`: RETRY (PENDING again when due at once).
-- A delivery whose lease is gone (the job is no longer STARTED with this token) matches
-- no row and is refused. `runs`: the ended runs' per-minute rollups (migration 6), in the
-- same statement, with rollup.bucket_of's arithmetic (as rollup.lua's). `id = ANY(ids)`
-- bounds the rows read by the batch: with the join alone the planner read every STARTED
-- row (jobs_state) and matched each against the arrays.
WITH ended AS (
    UPDATE {schema}.jobs AS j
    SET state = o.state, result = o.result, error = o.error, finished_at = %(now)s,
        keep_until = %(keep_until)s, lease_token = NULL, lease_until = NULL,
        attempts = j.attempts || jsonb_build_array(jsonb_build_object('attempt', j.attempt,
            'worker', j.worker, 'started_at', j.started_at, 'finished_at', %(now)s::float8,
            'state', o.state, 'error', o.brief))
    FROM unnest(%(ids)s::text[], %(tokens)s::text[], %(states)s::text[], %(results)s::jsonb[],
                %(errors)s::jsonb[], %(briefs)s::jsonb[]) AS o(id, token, state, result, error, brief)
    WHERE j.id = ANY(%(ids)s::text[]) AND j.id = o.id AND j.state = 'STARTED' AND j.lease_token = o.token
    RETURNING j.id, j.queue, j.state, j.started_at
), snoozed AS (
    UPDATE {schema}.jobs AS j
    SET state = CASE WHEN o.run_at <= %(now)s::float8 THEN 'PENDING' ELSE 'RETRY' END,
        error = o.error, run_at = o.run_at, lease_token = NULL, lease_until = NULL,
        attempts = j.attempts || jsonb_build_array(jsonb_build_object('attempt', j.attempt,
            'worker', j.worker, 'started_at', j.started_at, 'finished_at', %(now)s::float8,
            'state', 'RETRY', 'error', o.brief))
    FROM unnest(%(retry_ids)s::text[], %(retry_tokens)s::text[], %(run_ats)s::float8[],
                %(retry_errors)s::jsonb[], %(retry_briefs)s::jsonb[]) AS o(id, token, run_at, error, brief)
    WHERE j.id = ANY(%(retry_ids)s::text[]) AND j.id = o.id AND j.state = 'STARTED' AND j.lease_token = o.token
    RETURNING j.id
), runs AS (
    INSERT INTO {schema}.run_minute_deltas (minute, queue, bucket, finished, failed)
    SELECT floor(%(now)s::float8 / 60)::bigint * 60, queue, bucket, count(*),
           count(*) FILTER (WHERE state = 'FAILURE')
    FROM (SELECT queue, state,
                 CASE WHEN ran < 1e-4 THEN 0 ELSE least(160, 1 + floor(4 * ln(ran / 1e-4) / ln(2)))::int END
                 AS bucket
          FROM (SELECT queue, state, greatest(0, %(now)s::float8 - coalesce(started_at, %(now)s::float8)) AS ran
                FROM ended) AS r) AS b
    GROUP BY queue, bucket
)
SELECT id FROM ended UNION ALL SELECT id FROM snoozed

-- name: release
-- One statement for every lease, as renew (and for the same reason).
UPDATE {schema}.jobs AS j
SET state = 'PENDING', attempt = j.attempt - 1, worker = NULL, started_at = NULL,
    lease_token = NULL, lease_until = NULL
FROM unnest(%(ids)s::text[], %(tokens)s::text[]) AS l(id, token)
WHERE j.id = l.id AND j.state = 'STARTED' AND j.lease_token = l.token

-- name: release_interrupted
-- Running jobs their worker stopped at shutdown: the attempt counts and is recorded.
UPDATE {schema}.jobs AS j
SET state = 'PENDING', worker = NULL, started_at = NULL, lease_token = NULL, lease_until = NULL,
    attempts = j.attempts || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'worker', j.worker,
        'started_at', j.started_at, 'finished_at', %(now)s::float8, 'state', 'PENDING', 'error', %(brief)s::jsonb))
FROM unnest(%(ids)s::text[], %(tokens)s::text[]) AS l(id, token)
WHERE j.id = l.id AND j.state = 'STARTED' AND j.lease_token = l.token

-- name: expire
UPDATE {schema}.jobs AS j SET lease_until = 0
FROM unnest(%(ids)s::text[], %(tokens)s::text[]) AS l(id, token)
WHERE j.id = l.id AND j.state = 'STARTED' AND j.lease_token = l.token

-- name: next_due
-- One LATERAL branch per queue, each read in its index's order (as the claim is): a
-- prepared statement's generic plan cannot see which queues the array names, and the
-- unordered LIMIT 1 this replaces went to a sequential scan that read a whole backlog
-- waiting in another queue (188 ms with a million rows) on every idle worker's loop.
-- The delayed branch reads jobs_delayed_queue (queue, run_at): by jobs_delayed (run_at
-- alone) it walked every delayed job of the other queues due before this queue's first.
-- Read as "the first delayed row from this queue on, in (queue, run_at) order, if it is
-- this queue's": only that index gives the order. With `queue = q.name ORDER BY run_at`
-- the planner (guessing a queue's share of the rows, the name unknown) chose jobs_delayed.
SELECT min(due.run_at) FROM unnest(%(queues)s::text[]) AS q(name)
CROSS JOIN LATERAL (
    (SELECT run_at FROM {schema}.jobs WHERE state = 'PENDING' AND queue = q.name
     ORDER BY priority DESC, run_at, seq LIMIT 1)
    UNION ALL
    (SELECT first.run_at FROM (
        SELECT queue, run_at FROM {schema}.jobs WHERE state IN ('SCHEDULED', 'RETRY') AND queue >= q.name
        ORDER BY queue, run_at LIMIT 1) AS first
     WHERE first.queue = q.name)
) AS due
WHERE NOT EXISTS (SELECT 1 FROM {schema}.paused_queues AS p WHERE p.queue = q.name)

-- name: set_progress
UPDATE {schema}.jobs SET progress = %(progress)s::jsonb
WHERE id = %(id)s AND state = 'STARTED' AND lease_token = %(token)s

-- name: cancel_find
-- The state a revoke finds, locked until its transaction ends.
SELECT state FROM {schema}.jobs WHERE id = %(id)s FOR UPDATE

-- name: cancel_waiting
UPDATE {schema}.jobs
SET state = 'REVOKED', revoke = 'revoke', error = %(error)s::jsonb, finished_at = %(now)s, keep_until = %(keep_until)s
WHERE id = %(id)s AND state IN ('PENDING', 'SCHEDULED', 'RETRY')

-- name: cancel_running
UPDATE {schema}.jobs SET revoke = CASE WHEN %(terminate)s THEN 'terminate' ELSE coalesce(revoke, 'revoke') END
WHERE id = %(id)s AND state = 'STARTED'

-- name: revoked_terminate
-- Wakes the workers' revocation watches (LISTEN), at commit: once the flag is durable.
SELECT pg_notify(%(channel)s, %(id)s)

-- name: cancel_late
-- The job had ended before the revoke came: its record says so (unless it was flagged
-- while running, which tells the same).
UPDATE {schema}.jobs SET revoke = 'late'
WHERE id = %(id)s AND state IN ('SUCCESS', 'FAILURE') AND revoke IS NULL

-- name: expired_leases
SELECT id, revoke, lost_leases, coalesce((headers ->> 'acks_late') = 'false', false) AS acks_early,
       queue, started_at
FROM {schema}.jobs WHERE state = 'STARTED' AND lease_until < %(now)s
ORDER BY lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED

-- name: end_lost
UPDATE {schema}.jobs
SET state = %(state)s, error = %(error)s::jsonb, finished_at = %(now)s, keep_until = %(keep_until)s,
    lost_leases = lost_leases + 1, lease_token = NULL, lease_until = NULL,
    attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt, 'worker', worker,
        'started_at', started_at, 'finished_at', %(now)s::float8, 'state', %(state)s::text, 'error', %(brief)s::jsonb))
WHERE id = %(id)s AND state = 'STARTED' AND lease_until < %(now)s

-- name: requeue_lost
UPDATE {schema}.jobs
SET state = 'PENDING', worker = NULL, lease_token = NULL, lease_until = NULL, lost_leases = lost_leases + 1,
    attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt, 'worker', worker,
        'started_at', started_at, 'finished_at', %(now)s::float8, 'state', 'PENDING',
        'error', %(brief)s::jsonb))
WHERE id = %(id)s AND state = 'STARTED' AND lease_until < %(now)s

-- name: requeue
UPDATE {schema}.jobs
SET state = 'PENDING', run_at = %(now)s, lost_leases = 0, worker = NULL, started_at = NULL,
    finished_at = NULL, keep_until = NULL, revoke = NULL, error = NULL, result = NULL, progress = NULL,
    attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt, 'worker', NULL,
        'started_at', NULL, 'finished_at', %(now)s::float8, 'state', 'REQUEUED', 'error', NULL))
WHERE id = %(id)s AND state IN ('FAILURE', 'REVOKED')

-- name: rerun
-- A workflow step stored as never run, just requeued in this transaction, takes its input.
UPDATE {schema}.jobs
SET payload = %(payload)s, headers = %(headers)s::jsonb, expires_at = %(expires_at)s, attempts = %(attempts)s::jsonb
WHERE id = %(id)s AND state = 'PENDING'

-- name: purge_batch
-- Batches keep each transaction short: no long locks on a big queue.
UPDATE {schema}.jobs
SET state = 'REVOKED', revoke = 'revoke', error = %(error)s::jsonb, finished_at = %(now)s, keep_until = %(keep_until)s
WHERE id IN (SELECT id FROM {schema}.jobs WHERE queue = %(queue)s AND state IN ('PENDING', 'SCHEDULED', 'RETRY')
             LIMIT 1000 FOR UPDATE SKIP LOCKED)

-- name: recent_runs
SELECT queue, task, state, started_at, finished_at FROM {schema}.jobs
WHERE finished_at >= %(since)s AND started_at IS NOT NULL
ORDER BY finished_at DESC LIMIT %(limit)s

-- name: waiting_queues
-- The queues holding PENDING jobs: a skip scan of jobs_pending, one seek per queue.
WITH RECURSIVE q(queue) AS (
    SELECT (SELECT min(queue) FROM {schema}.jobs WHERE state = 'PENDING')
    UNION ALL
    SELECT (SELECT min(queue) FROM {schema}.jobs WHERE state = 'PENDING' AND queue > q.queue)
    FROM q WHERE q.queue IS NOT NULL
)
SELECT queue FROM q WHERE queue IS NOT NULL

-- name: oldest_pending
-- A queue's longest-waiting PENDING job: one seek of jobs_pending per priority.
SELECT min((SELECT run_at FROM {schema}.jobs
            WHERE state = 'PENDING' AND queue = %(queue)s AND priority = p
            ORDER BY run_at LIMIT 1))
FROM unnest(%(priorities)s::int[]) AS p

-- name: oldest_due_delayed
-- Delayed jobs already due but not yet promoted (the next claim promotes them): few.
SELECT queue, min(run_at) FROM {schema}.jobs
WHERE state IN ('SCHEDULED', 'RETRY') AND run_at <= %(now)s GROUP BY queue

-- name: next_tasks
-- The tasks of a queue's next %(sample)s jobs, in claim order.
SELECT DISTINCT task FROM (
    SELECT task FROM {schema}.jobs WHERE state = 'PENDING' AND queue = %(queue)s
    ORDER BY priority DESC, run_at, seq LIMIT %(sample)s
) AS next

-- name: expired_waiting
-- Of a queue's next %(sample)s PENDING jobs in claim order, those whose expiry has passed,
-- and how many were read: the expiry column of each row (the payload is not read, nor
-- detoasted). Bounded: no index holds waiting jobs by expiry.
SELECT count(*) FILTER (WHERE expires_at <= %(now)s), count(*) FROM (
    SELECT expires_at FROM {schema}.jobs WHERE state = 'PENDING' AND queue = %(queue)s
    ORDER BY priority DESC, run_at, seq LIMIT %(sample)s
) AS next

-- name: next_delayed_tasks
SELECT DISTINCT queue, task FROM (
    SELECT queue, task FROM {schema}.jobs WHERE state IN ('SCHEDULED', 'RETRY')
    ORDER BY run_at LIMIT %(sample)s
) AS next

-- name: fold_counts
-- The count deltas folded into one row per (queue, state), by one session at a time
-- (concurrent folds could deadlock): whoever gets the advisory lock first folds, the
-- others fold nothing. One statement, committed by the server on its own: the lock
-- lasts the statement, so a process frozen mid-fold holds nothing.
WITH folder AS (SELECT pg_try_advisory_xact_lock(hashtext(%(lock)s)) AS folds),
gone AS (DELETE FROM {schema}.job_counts WHERE (SELECT folds FROM folder) RETURNING queue, state, n)
INSERT INTO {schema}.job_counts (queue, state, n)
SELECT queue, state, sum(n) FROM gone GROUP BY queue, state HAVING sum(n) <> 0

-- name: prune_jobs
-- In batches: deleting a million finished rows never holds one long lock. Only finished
-- records carry a keep_until (enqueue drops one given with an unfinished job; a requeue
-- clears it; migration 7 cleared older stores), so the candidates are read from
-- jobs_keep_until alone, in its order (ORDER BY: the planner then takes that index scan
-- with or without statistics, never a sequential scan that reads past kept records),
-- and a batch stops after its first `limit` rows whatever the expired backlog. A state
-- condition too made the planner AND two bitmap scans, each reading the whole backlog's
-- index entries (docs/benchmarks.md, "Pruning that keeps up"). The outer state check
-- costs one filter on each row it deletes (still read by the primary key): a job an
-- older producer stored with a keep_until after the migration is never deleted unrun.
DELETE FROM {schema}.jobs WHERE id IN (
    SELECT id FROM {schema}.jobs WHERE keep_until IS NOT NULL AND keep_until <= %(now)s
    ORDER BY keep_until LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
AND state IN ('SUCCESS', 'FAILURE', 'REVOKED')
-- Its commit waits for no WAL flush (docs/postgres.md, "Pruning"). This comment comes
-- after the DELETE: pg_stat_activity keeps a query's first 1,024 bytes, and the frozen
-- client test finds the statement by them.
AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'

-- name: prune_events
-- The newest %(keep)s events stay. Bounded below by the oldest event left, so the scan
-- starts there and not at the table's first key: deleted rows stay in the index until a
-- VACUUM, and a range from the first key read all of them on every call (18-29 ms a
-- batch after 200,000 events, docs/benchmarks.md); min(seq) skips them in the index.
DELETE FROM {schema}.events
WHERE seq >= (SELECT min(seq) FROM {schema}.events)
  AND seq <= (SELECT coalesce(max(seq), 0) FROM {schema}.events) - %(keep)s
  -- Its commit waits for no WAL flush, as prune_jobs's.
  AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'

-- name: prune_kv
DELETE FROM {schema}.kv WHERE until IS NOT NULL AND until <= %(now)s

-- name: prune_groups
DELETE FROM {schema}.group_results WHERE keep_until <= %(now)s

-- name: counts
-- Kept by the statement triggers as deltas (see migration 3).
SELECT queue, state, sum(n), count(*) FROM {schema}.job_counts GROUP BY queue, state

-- name: pause
INSERT INTO {schema}.paused_queues (queue) VALUES (%(queue)s) ON CONFLICT DO NOTHING

-- name: resume
DELETE FROM {schema}.paused_queues WHERE queue = %(queue)s

-- name: paused
SELECT queue FROM {schema}.paused_queues

-- name: worker_put
-- A heartbeat; never over an entry marked stopped (a heartbeat landing after the stop).
-- Its commit waits for no WAL flush, as renew's (a crash can only lose a last_seen).
INSERT INTO {schema}.workers (id, last_seen, info)
SELECT %(id)s, %(last_seen)s, %(info)s::jsonb
WHERE (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, info = excluded.info
WHERE NOT {schema}.workers.info ? 'stopped_at'

-- name: worker_stop
-- One statement, so no heartbeat falls between reading the entry and marking it.
UPDATE {schema}.workers SET info = info || jsonb_build_object('stopped_at', %(now)s::float8)
WHERE id = %(id)s AND NOT info ? 'stopped_at'

-- name: worker_delete
DELETE FROM {schema}.workers WHERE id = %(id)s

-- name: stale_workers
SELECT info FROM {schema}.workers WHERE last_seen < %(before)s

-- name: live_workers
-- The stopped entries kept a day are filtered here, not sent to the caller.
SELECT info FROM {schema}.workers WHERE last_seen >= %(since)s AND NOT info ? 'stopped_at'

-- name: worker_entries
SELECT info FROM {schema}.workers WHERE id = ANY(%(ids)s::text[])

-- name: events
SELECT seq, time, kind, job_id, queue, task, state FROM {schema}.events
WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s

-- name: lock
INSERT INTO {schema}.locks (name, owner, until) VALUES (%(name)s, %(owner)s, %(until)s)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
WHERE locks.owner = excluded.owner OR locks.until <= %(now)s
RETURNING name

-- name: unlock
DELETE FROM {schema}.locks WHERE name = %(name)s AND owner = %(owner)s

-- name: lock_holder
SELECT owner, until FROM {schema}.locks WHERE name = %(name)s

-- name: incr
INSERT INTO {schema}.counters (key, value) VALUES (%(key)s, %(amount)s)
ON CONFLICT (key) DO UPDATE SET value = counters.value + excluded.value
RETURNING value

-- name: kv_set
INSERT INTO {schema}.kv (key, value, until) VALUES (%(key)s, %(value)s::jsonb, %(until)s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, until = excluded.until

-- name: kv_get
SELECT value FROM {schema}.kv WHERE key = %(key)s AND (until IS NULL OR until > %(now)s)

-- name: kv_delete
DELETE FROM {schema}.kv WHERE key = %(key)s

-- name: join
INSERT INTO {schema}.group_results (group_id, idx, result, keep_until)
VALUES (%(group_id)s, %(idx)s, %(result)s::jsonb, %(keep_until)s) ON CONFLICT DO NOTHING

-- name: group_results
SELECT result FROM {schema}.group_results WHERE group_id = %(group_id)s ORDER BY idx

-- name: schedule_put
INSERT INTO {schema}.schedules (name, spec) VALUES (%(name)s, %(spec)s::jsonb)
ON CONFLICT (name) DO UPDATE SET spec = excluded.spec

-- name: schedule_state
UPDATE {schema}.schedules SET state = %(state)s::jsonb WHERE name = %(name)s

-- name: schedules
SELECT name, spec, state FROM {schema}.schedules ORDER BY name

-- name: schedule_delete
DELETE FROM {schema}.schedules WHERE name = %(name)s

-- name: join_lock
-- Joins of one group run one at a time, so the member that completes it sees every row.
SELECT pg_advisory_xact_lock(hashtext(%(group_id)s))

-- name: event_put
INSERT INTO {schema}.events (time, kind, job_id, queue, task, state)
VALUES (%(time)s, %(kind)s, %(subject)s, %(queue)s, '', '')

-- name: audit_put
INSERT INTO {schema}.audit (time, actor, actor_id, action, target, outcome, status, detail)
VALUES (%(time)s, %(actor)s, %(actor_id)s, %(action)s, %(target)s, %(outcome)s, %(status)s, %(detail)s)
RETURNING seq

-- name: audit_read
SELECT seq, time, actor, actor_id, action, target, outcome, status, detail FROM {schema}.audit
WHERE (%(before)s::bigint IS NULL OR seq < %(before)s::bigint)
  AND (%(target)s::text IS NULL OR target = %(target)s::text)
ORDER BY seq DESC LIMIT %(limit)s

-- name: prune_audit
DELETE FROM {schema}.audit WHERE seq <= (SELECT coalesce(max(seq), 0) FROM {schema}.audit) - %(keep)s

-- name: rollup_add
-- One acknowledged batch's increments (rollup.tally), as a JSON array of
-- [minute, queue, bucket, finished, failed]: inserted as deltas (see migration 6).
INSERT INTO {schema}.run_minute_deltas (minute, queue, bucket, finished, failed)
SELECT (r ->> 0)::bigint, r ->> 1, (r ->> 2)::int, (r ->> 3)::bigint, (r ->> 4)::bigint
FROM jsonb_array_elements(%(rows)s::jsonb) AS r

-- name: run_rollup
SELECT queue, minute, bucket, finished, failed FROM {schema}.run_minutes WHERE minute >= %(since)s
UNION ALL
SELECT queue, minute, bucket, finished, failed FROM {schema}.run_minute_deltas WHERE minute >= %(since)s

-- name: fold_run_minutes
-- The deltas folded into run_minutes by one session at a time (as fold_counts), in one
-- statement committed on its own.
WITH folder AS (SELECT pg_try_advisory_xact_lock(hashtext(%(lock)s)) AS folds),
gone AS (DELETE FROM {schema}.run_minute_deltas WHERE (SELECT folds FROM folder)
         RETURNING minute, queue, bucket, finished, failed)
INSERT INTO {schema}.run_minutes (minute, queue, bucket, finished, failed)
SELECT minute, queue, bucket, sum(finished), sum(failed) FROM gone GROUP BY minute, queue, bucket
ON CONFLICT (minute, queue, bucket) DO UPDATE
SET finished = {schema}.run_minutes.finished + excluded.finished,
    failed = {schema}.run_minutes.failed + excluded.failed

-- name: prune_run_minutes
DELETE FROM {schema}.run_minutes WHERE minute < %(horizon)s
