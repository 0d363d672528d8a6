-- 002: upgrade a table created by the legacy design in place, keeping every row.
--
-- Idempotent: every statement is a no-op the second time, and on a table made by 001.
-- Only nullable columns without defaults are added: Snowflake cannot ADD COLUMN with a
-- non-constant default, and a NULL here means "no claim yet" / "eligible now".
--
-- Not changed on a legacy table (Snowflake cannot add or change a non-sequence DEFAULT of
-- an existing column): id keeps DEFAULT UUID_STRING(), created_at keeps DEFAULT
-- CURRENT_TIMESTAMP() (the inserting session's time zone: see sql/README.md, "Legacy
-- writers and time zones"), retry_count and status stay nullable. The backfill below
-- removes the NULLs that legacy code left behind.

-- The legacy design made id VARCHAR(36); the protocol takes ids of up to 64 characters, and
-- Snowflake refuses a longer string than the column's length. Increasing a VARCHAR's
-- length is allowed in place; on a table made by 001 (already 64) it changes nothing.
ALTER TABLE {{ queue_table }} ALTER COLUMN id SET DATA TYPE VARCHAR(64);

ALTER TABLE {{ queue_table }} ADD COLUMN IF NOT EXISTS claim_token VARCHAR(64);

ALTER TABLE {{ queue_table }} ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMP_NTZ;

-- Legacy code treated a NULL retry_count as 0; the protocol does arithmetic on it.
UPDATE {{ queue_table }} SET retry_count = 0 WHERE retry_count IS NULL;

-- A row with no status was never picked up by legacy code: it is still pending.
UPDATE {{ queue_table }} SET status = 'pending' WHERE status IS NULL;
