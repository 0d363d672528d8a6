-- 003: monitoring views over the queue table (read by the operator and by people).
--
-- CREATE OR REPLACE so a changed definition is picked up on the next run; COPY GRANTS
-- keeps the SELECT grants from 004 when a view is replaced. Needs the columns that 001
-- or 002 add, so run it after them.

-- One row with the queue's counts. eligible_now = pending rows whose retry backoff
-- (next_attempt_at) is unset or over, i.e. what a worker could claim right now.
-- failed = dead letters. Ages are in seconds against SYSDATE() (UTC, like created_at).
-- COALESCE: Snowflake's COUNT_IF gives 0 on an empty table, DuckDB (fakesnow) gives NULL.
CREATE OR REPLACE VIEW {{ status_view }} COPY GRANTS AS
SELECT
    COALESCE(COUNT_IF(status = 'pending'), 0) AS pending,
    COALESCE(COUNT_IF(
        status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= SYSDATE())
    ), 0) AS eligible_now,
    COALESCE(COUNT_IF(status = 'processing'), 0) AS processing,
    COALESCE(COUNT_IF(status = 'completed'), 0) AS completed,
    COALESCE(COUNT_IF(status = 'failed'), 0) AS failed,
    COUNT(*) AS total,
    MIN(IFF(status = 'pending', created_at, NULL)) AS oldest_pending_created_at,
    TIMESTAMPDIFF(
        SECOND, MIN(IFF(status = 'pending', created_at, NULL)), SYSDATE()
    ) AS oldest_pending_age_seconds
FROM {{ queue_table }};

-- The dead letters: rows that ran out of retries, with the last error.
CREATE OR REPLACE VIEW {{ dead_letter_view }} COPY GRANTS AS
SELECT
    id,
    error_message,
    retry_count,
    failed_at,
    created_at,
    data
FROM {{ queue_table }}
WHERE status = 'failed';
