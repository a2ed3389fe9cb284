-- Migration 4: the audit trail of changes made through the API (who, what, when, how it
-- ended), kept to its newest entries by prune; read newest first, or about one target.
CREATE TABLE {schema}.audit (
    seq      BIGSERIAL PRIMARY KEY,
    time     DOUBLE PRECISION NOT NULL,
    actor    TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    status   INTEGER NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX audit_target ON {schema}.audit (target, seq);
