-- Migration 1: jobs, queues, workers, coordination and the event stream.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    task        TEXT NOT NULL,
    queue       TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    state       TEXT NOT NULL,
    run_at      REAL NOT NULL,
    created_at  REAL NOT NULL,
    max_retries INTEGER NOT NULL DEFAULT 0,
    expires_at  REAL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    lost_leases INTEGER NOT NULL DEFAULT 0,
    started_at  REAL,
    finished_at REAL,
    worker      TEXT,
    lease_token TEXT,
    lease_until REAL,
    revoke      TEXT,
    progress    TEXT,
    result      TEXT,
    error       TEXT,
    attempts    TEXT NOT NULL DEFAULT '[]',
    parent_id   TEXT,
    root_id     TEXT,
    workflow_id TEXT,
    headers     TEXT NOT NULL DEFAULT '{}',
    keep_until  REAL
);
-- Claims read this index in order: due jobs by queue, priority, then age.
CREATE INDEX jobs_pending ON jobs (queue, priority DESC, run_at) WHERE state = 'PENDING';
-- Delayed jobs by due time: each claim promotes the due ones to PENDING first.
CREATE INDEX jobs_delayed ON jobs (run_at) WHERE state IN ('SCHEDULED', 'RETRY');
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'STARTED';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_keep_until ON jobs (keep_until) WHERE keep_until IS NOT NULL;
CREATE INDEX jobs_queue_state ON jobs (queue, state);

CREATE TABLE paused_queues (queue TEXT PRIMARY KEY);
CREATE TABLE workers (id TEXT PRIMARY KEY, last_seen REAL NOT NULL, info TEXT NOT NULL);
CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);
CREATE TABLE counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, until REAL);
CREATE TABLE group_results (
    group_id   TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    result     TEXT NOT NULL,
    keep_until REAL NOT NULL,
    PRIMARY KEY (group_id, idx)
);
CREATE TABLE schedules (name TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL DEFAULT '{}');
CREATE TABLE events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    time   REAL NOT NULL,
    kind   TEXT NOT NULL,
    job_id TEXT NOT NULL,
    queue  TEXT NOT NULL,
    task   TEXT NOT NULL,
    state  TEXT NOT NULL
);
-- Events are written by triggers, so a change and its event commit together.
CREATE TRIGGER jobs_event_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO events (time, kind, job_id, queue, task, state)
    VALUES (NEW.created_at, 'job.state', NEW.id, NEW.queue, NEW.task, NEW.state);
END;
CREATE TRIGGER jobs_event_state AFTER UPDATE OF state ON jobs WHEN NEW.state IS NOT OLD.state BEGIN
    INSERT INTO events (time, kind, job_id, queue, task, state)
    VALUES ((julianday('now') - 2440587.5) * 86400.0, 'job.state', NEW.id, NEW.queue, NEW.task, NEW.state);
END;
CREATE TRIGGER jobs_event_progress AFTER UPDATE OF progress ON jobs BEGIN
    INSERT INTO events (time, kind, job_id, queue, task, state)
    VALUES ((julianday('now') - 2440587.5) * 86400.0, 'job.progress', NEW.id, NEW.queue, NEW.task, NEW.state);
END;
