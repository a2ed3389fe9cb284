-- Migration 1: jobs, queues, workers, coordination and the event stream.
-- {schema} is replaced by the backend's schema (quoted); times are POSIX seconds.
CREATE TABLE {schema}.jobs (
    seq         BIGSERIAL,
    id          TEXT PRIMARY KEY,
    task        TEXT NOT NULL,
    queue       TEXT NOT NULL,
    priority    SMALLINT NOT NULL,
    payload     BYTEA NOT NULL,
    state       TEXT NOT NULL,
    run_at      DOUBLE PRECISION NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    max_retries INTEGER NOT NULL DEFAULT 0,
    expires_at  DOUBLE PRECISION,
    attempt     INTEGER NOT NULL DEFAULT 0,
    lost_leases INTEGER NOT NULL DEFAULT 0,
    started_at  DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    worker      TEXT,
    lease_token TEXT,
    lease_until DOUBLE PRECISION,
    revoke      TEXT,
    progress    JSONB,
    result      JSONB,
    error       JSONB,
    attempts    JSONB NOT NULL DEFAULT '[]',
    parent_id   TEXT,
    root_id     TEXT,
    workflow_id TEXT,
    headers     JSONB NOT NULL DEFAULT '{}',
    keep_until  DOUBLE PRECISION
);
-- Claims read this partial index in order; it stays small however many rows finished.
CREATE INDEX jobs_pending ON {schema}.jobs (queue, priority DESC, run_at, seq) WHERE state = 'PENDING';
CREATE INDEX jobs_delayed ON {schema}.jobs (run_at) WHERE state IN ('SCHEDULED', 'RETRY');
CREATE INDEX jobs_leases ON {schema}.jobs (lease_until) WHERE state = 'STARTED';
CREATE INDEX jobs_finished ON {schema}.jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_keep_until ON {schema}.jobs (keep_until) WHERE keep_until IS NOT NULL;
CREATE INDEX jobs_queue_state ON {schema}.jobs (queue, state);

CREATE TABLE {schema}.paused_queues (queue TEXT PRIMARY KEY);
CREATE TABLE {schema}.workers (id TEXT PRIMARY KEY, last_seen DOUBLE PRECISION NOT NULL, info JSONB NOT NULL);
CREATE TABLE {schema}.locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until DOUBLE PRECISION NOT NULL);
CREATE TABLE {schema}.counters (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE {schema}.kv (key TEXT PRIMARY KEY, value JSONB NOT NULL, until DOUBLE PRECISION);
CREATE TABLE {schema}.group_results (
    group_id   TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    result     JSONB NOT NULL,
    keep_until DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (group_id, idx)
);
CREATE TABLE {schema}.schedules (name TEXT PRIMARY KEY, spec JSONB NOT NULL, state JSONB NOT NULL DEFAULT '{}');
CREATE TABLE {schema}.events (
    seq    BIGSERIAL PRIMARY KEY,
    time   DOUBLE PRECISION NOT NULL,
    kind   TEXT NOT NULL,
    job_id TEXT NOT NULL,
    queue  TEXT NOT NULL,
    task   TEXT NOT NULL,
    state  TEXT NOT NULL
);

-- Events are written by a trigger, in the same transaction as the change. A job that
-- becomes PENDING also sends a NOTIFY on the schema's channel: idle workers LISTEN there.
CREATE FUNCTION {schema}.job_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO {schema}.events (time, kind, job_id, queue, task, state)
        VALUES (extract(epoch FROM clock_timestamp()), 'job.state', NEW.id, NEW.queue, NEW.task, NEW.state);
        IF NEW.state = 'PENDING' THEN
            PERFORM pg_notify(TG_TABLE_SCHEMA || '.jobs', NEW.queue);
        END IF;
    ELSIF NEW.progress IS DISTINCT FROM OLD.progress THEN
        INSERT INTO {schema}.events (time, kind, job_id, queue, task, state)
        VALUES (extract(epoch FROM clock_timestamp()), 'job.progress', NEW.id, NEW.queue, NEW.task, NEW.state);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER jobs_events AFTER INSERT OR UPDATE ON {schema}.jobs
    FOR EACH ROW EXECUTE FUNCTION {schema}.job_event();
