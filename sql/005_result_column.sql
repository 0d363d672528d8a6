-- 005: the result column, where a worker stores the service's answer to an entry.
--
-- Only written when the resource sets spec.endpoint.storeResponseBytes (the worker checks
-- at start that the column exists): the first that many bytes of the body of the answer
-- that completed the entry, as text. 16384 characters hold the largest setting (16384
-- bytes of UTF-8 are at most 16384 characters).
--
-- Idempotent: ADD COLUMN IF NOT EXISTS is a no-op on a table that has it (one made by 001
-- now, or one this file ran on before). A nullable column without a default, so Snowflake
-- adds it to a table of any size in place.

ALTER TABLE {{ queue_table }} ADD COLUMN IF NOT EXISTS result VARCHAR(16384);
