-- 001: the work-queue table in its final shape.
--
-- Column names are a contract: the worker, the operator and the ops commands all use
-- them. Safe to run again (IF NOT EXISTS); it never alters an existing table, which is
-- what 002 is for.
--
-- Status lifecycle: pending -> processing -> completed, or -> failed (the dead letter,
-- after retries run out). Timestamps are TIMESTAMP_NTZ in UTC, taken from SYSDATE().
--
-- Permanent by default. `sql render|apply --transient [--retention-days 0|1]` makes it
-- CREATE TRANSIENT TABLE ... DATA_RETENTION_TIME_IN_DAYS = N instead, the kind Snowflake
-- recommends for data rewritten this often: every claim and write-back rewrites
-- micro-partitions, and a permanent table keeps each replaced one for its Time Travel
-- period and then 7 days of Fail-safe, billed as storage. A transient table has no
-- Fail-safe: a table dropped or corrupted past its Time Travel (0 or 1 day) cannot be
-- recovered, not even by Snowflake support. The kind is fixed when the table is created;
-- this file never changes an existing table's. table_kind and table_options are rendered
-- from the flag and a checked 0 or 1, never from text.

CREATE {{ table_kind }}TABLE IF NOT EXISTS {{ queue_table }} (
    -- Application-generated (uuid text, say), so enqueueing twice can be detected.
    -- Snowflake does not enforce PRIMARY KEY; it documents intent.
    id              VARCHAR(64)   NOT NULL PRIMARY KEY,
    data            VARIANT,
    status          VARCHAR(20)   NOT NULL DEFAULT 'pending',
    processor_id    VARCHAR(255),
    claimed_at      TIMESTAMP_NTZ,
    completed_at    TIMESTAMP_NTZ,
    failed_at       TIMESTAMP_NTZ,
    error_message   VARCHAR(1000),
    retry_count     INTEGER       NOT NULL DEFAULT 0,
    created_at      TIMESTAMP_NTZ NOT NULL DEFAULT SYSDATE(),
    -- Protocol: a random token written by the claiming UPDATE. The worker finds the
    -- rows it won by this token, and completes/fails a row only where the token still
    -- matches, so a worker whose claim was taken over (stale lease) cannot overwrite
    -- the new owner's result.
    claim_token     VARCHAR(64),
    -- Protocol: retry backoff. A pending row is claimable only when this is NULL or
    -- in the past, so a failed attempt is not retried immediately in a hot loop.
    next_attempt_at TIMESTAMP_NTZ,
    -- The start of the service's answer to the call that completed the row, kept only
    -- when spec.endpoint.storeResponseBytes asks for it (005 adds it to older tables).
    result          VARCHAR(16384)
)
{{ table_options }};
