-- Migration 5: per-minute rollups of finished runs (backends/rollup.py), written with
-- the outcomes, so charts and queue windows read a few rows a minute instead of the
-- hour's runs. Ordered by minute first: a window reads a range, prune deletes one.
CREATE TABLE run_minutes (
    minute   INTEGER NOT NULL,
    queue    TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    failed   INTEGER NOT NULL,
    PRIMARY KEY (minute, queue, bucket)
) WITHOUT ROWID;
-- The last hour's runs, so the charts do not start empty at the upgrade (the run-time
-- bucket is conveyor_bucket, rollup.bucket_of, defined on each of Conveyor's connections).
INSERT INTO run_minutes (minute, queue, bucket, finished, failed)
SELECT CAST(finished_at / 60 AS INTEGER) * 60, queue, conveyor_bucket(finished_at - started_at),
       count(*), sum(state = 'FAILURE')
FROM jobs
WHERE finished_at >= CAST(strftime('%s', 'now') AS INTEGER) - 3600 AND started_at IS NOT NULL
GROUP BY 1, 2, 3;
