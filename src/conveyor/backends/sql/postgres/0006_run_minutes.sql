-- Migration 6: per-minute rollups of finished runs (backends/rollup.py). An
-- acknowledgement inserts its batch's increments into run_minute_deltas and never
-- updates a shared row, so two workers acknowledging at once never wait on each other
-- (as job_counts); prune folds the deltas into run_minutes, one row per (minute, queue,
-- run-time bucket). A read sums both.
CREATE TABLE {schema}.run_minutes (
    minute   BIGINT NOT NULL,
    queue    TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    finished BIGINT NOT NULL,
    failed   BIGINT NOT NULL,
    PRIMARY KEY (minute, queue, bucket)
);
CREATE TABLE {schema}.run_minute_deltas (
    minute   BIGINT NOT NULL,
    queue    TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    finished BIGINT NOT NULL,
    failed   BIGINT NOT NULL
);
-- The last hour's runs, so the charts do not start empty at the upgrade (the bucket
-- arithmetic is rollup.bucket_of's).
INSERT INTO {schema}.run_minutes (minute, queue, bucket, finished, failed)
SELECT floor(finished_at / 60)::bigint * 60, queue,
       CASE WHEN finished_at - started_at < 1e-4 THEN 0
            ELSE least(160, 1 + floor(4 * ln((finished_at - started_at) / 1e-4) / ln(2)))::int END,
       count(*), count(*) FILTER (WHERE state = 'FAILURE')
FROM {schema}.jobs
WHERE finished_at >= extract(epoch FROM now()) - 3600 AND started_at IS NOT NULL
GROUP BY 1, 2, 3;
