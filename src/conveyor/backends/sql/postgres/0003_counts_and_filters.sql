-- Migration 3: jobs counted per queue and state, and indexes for the job list's filters.
-- Counts are kept as deltas: the statement triggers insert one row per (queue, state) a
-- statement changed, in the same transaction, and never update a shared row, so two
-- workers acknowledging at once never wait on each other's commit. Prune folds the
-- deltas into one row per (queue, state); an overview sums a few rows, never the jobs.
CREATE TABLE {schema}.job_counts (queue TEXT NOT NULL, state TEXT NOT NULL, n BIGINT NOT NULL);
INSERT INTO {schema}.job_counts (queue, state, n)
SELECT queue, state, count(*) FROM {schema}.jobs GROUP BY queue, state;

CREATE OR REPLACE FUNCTION {schema}.jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    woken TEXT;
BEGIN
    INSERT INTO {schema}.events (time, kind, job_id, queue, task, state)
    SELECT extract(epoch FROM clock_timestamp()), 'job.state', id, queue, task, state
    FROM new_rows ORDER BY seq;
    INSERT INTO {schema}.job_counts (queue, state, n)
    SELECT queue, state, count(*) FROM new_rows GROUP BY queue, state;
    FOR woken IN SELECT DISTINCT queue FROM new_rows WHERE state = 'PENDING' LOOP
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.jobs', woken);
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {schema}.jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    woken TEXT;
BEGIN
    INSERT INTO {schema}.events (time, kind, job_id, queue, task, state)
    SELECT extract(epoch FROM clock_timestamp()),
           CASE WHEN n.state IS DISTINCT FROM o.state THEN 'job.state' ELSE 'job.progress' END,
           n.id, n.queue, n.task, n.state
    FROM new_rows n JOIN old_rows o ON o.seq = n.seq
    WHERE n.state IS DISTINCT FROM o.state OR n.progress IS DISTINCT FROM o.progress
    ORDER BY n.seq;
    INSERT INTO {schema}.job_counts (queue, state, n)
    SELECT queue, state, sum(d) FROM (
        SELECT n.queue, n.state, 1 AS d, o.state AS was FROM new_rows n JOIN old_rows o ON o.seq = n.seq
        UNION ALL
        SELECT o.queue, o.state, -1, n.state FROM new_rows n JOIN old_rows o ON o.seq = n.seq
    ) AS moved WHERE state IS DISTINCT FROM was GROUP BY queue, state HAVING sum(d) <> 0;
    FOR woken IN
        SELECT DISTINCT n.queue FROM new_rows n JOIN old_rows o ON o.seq = n.seq
        WHERE n.state = 'PENDING' AND o.state IS DISTINCT FROM 'PENDING'
    LOOP
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.jobs', woken);
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.jobs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_counts (queue, state, n)
    SELECT queue, state, -count(*) FROM old_rows GROUP BY queue, state;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_deleted AFTER DELETE ON {schema}.jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_deleted();

-- (queue, state) served counts; the counters do now, and these serve the filters.
DROP INDEX {schema}.jobs_queue_state;
CREATE INDEX jobs_state ON {schema}.jobs (state, id);
CREATE INDEX jobs_queue ON {schema}.jobs (queue, id);
CREATE INDEX jobs_task ON {schema}.jobs (task, id);
CREATE INDEX jobs_worker ON {schema}.jobs (worker, id) WHERE worker IS NOT NULL;
