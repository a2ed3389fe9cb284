-- Migration 3: the audit trail of changes made through the API (who, what, when, how it
-- ended), kept to its newest entries by prune; read newest first, or about one target.
CREATE TABLE audit (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    time     REAL NOT NULL,
    actor    TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    status   INTEGER NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX audit_target ON audit (target, seq);
