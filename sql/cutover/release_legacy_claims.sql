-- Part "release-legacy-claims" of the cutover from the legacy design (docs/cutover.md):
-- give back the rows the legacy containers claimed and never finished. Run as the table's
-- owner (SYSADMIN), only after every legacy container has stopped, before the operator
-- starts.
--
-- A row claimed by the legacy design has no claim_token: every claim of this protocol
-- writes one. The attempt is not counted (retry_count unchanged): it was stopped for the
-- cutover, not failed by the entry. Safe to run again: a second run matches nothing.

UPDATE {{ queue_table }}
SET status = 'pending', processor_id = NULL, claimed_at = NULL
WHERE status = 'processing' AND claim_token IS NULL;
