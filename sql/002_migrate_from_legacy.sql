-- 002: upgrade a table created by the legacy design in place, keeping every row.
--
-- Idempotent: every statement is a no-op the second time, and on a table made by 001.
-- Only nullable columns without defaults are added: Snowflake cannot ADD COLUMN with a
-- non-constant default, and a NULL here means "no claim yet" / "eligible now".
--
-- Not changed on a legacy table (Snowflake cannot add or change a non-sequence DEFAULT of
-- an existing column): id keeps DEFAULT UUID_STRING(), created_at keeps DEFAULT
-- CURRENT_TIMESTAMP() (the inserting session's time zone: see sql/README.md, "Legacy
-- writers and time zones"), retry_count and status stay nullable. The backfill (below)
-- removes the NULLs that legacy code left behind.

-- Two more steps follow these statements, run by code (snowflake_operator/legacy_upgrade.py)
-- because they look at the table first and work in batches:
--   * id is widened to VARCHAR(64) only when it is narrower (the legacy design made it
--     VARCHAR(36)); Snowflake allows increasing a VARCHAR's length in place and refuses to
--     shrink one, so a wider id is kept as it is;
--   * the NULLs legacy code left (retry_count, treated as 0; status, never picked up, so
--     pending) are filled by UPDATEs that each choose at most --batch-size ids, so no one
--     statement holds the table's lock for long.
-- `sql apply` and ensure_queue_table run them; `sql render` prints their script form after
-- these (an unconditional widen, one UPDATE), for Snowflake's own tools.

ALTER TABLE {{ queue_table }} ADD COLUMN IF NOT EXISTS claim_token VARCHAR(64);

ALTER TABLE {{ queue_table }} ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMP_NTZ;
