-- 002: upgrade a table created by the legacy (seed) design in place, keeping every row.
--
-- Idempotent: every statement is a no-op the second time, and on a table made by 001.
-- Only nullable columns without defaults are added: Snowflake cannot ADD COLUMN with a
-- non-constant default, and a NULL here means "no claim yet" / "eligible now".
--
-- Not changed on a seed table (Snowflake cannot add a non-sequence DEFAULT to an
-- existing column): id stays VARCHAR(36) DEFAULT UUID_STRING(), retry_count and status
-- stay nullable. The backfill below removes the NULLs that legacy code left behind.

ALTER TABLE {{ queue_table }} ADD COLUMN IF NOT EXISTS claim_token VARCHAR(64);

ALTER TABLE {{ queue_table }} ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMP_NTZ;

-- Legacy code treated a NULL retry_count as 0; the protocol does arithmetic on it.
UPDATE {{ queue_table }} SET retry_count = 0 WHERE retry_count IS NULL;

-- A row with no status was never picked up by legacy code: it is still pending.
UPDATE {{ queue_table }} SET status = 'pending' WHERE status IS NULL;
