"""Every statement of the queue protocol, as named templates. Nothing else writes queue SQL.

The only things placed into the text are the validated, quoted identifiers of the table
({table}) and of its schema ({schema}); every value is a bind parameter (%(name)s).
"""

from __future__ import annotations

from .identifiers import TableRef

# -- fragments ---------------------------------------------------------------------------

# Claimable now: pending, attempts left, its retry delay passed.
ELIGIBLE = (
    "status = 'pending' AND COALESCE(retry_count, 0) < %(max_attempts)s "
    "AND (next_attempt_at IS NULL OR next_attempt_at <= SYSDATE())"
)
# Dead letters chosen by id list (a JSON array) and/or by error text; NULL means any.
DEAD_LETTER_FILTER = (
    "status = 'failed' "
    "AND (%(ids)s IS NULL OR id IN (SELECT f.value::STRING "
    "FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(ids)s))) f)) "
    "AND (%(needle)s IS NULL OR CONTAINS(LOWER(error_message), LOWER(%(needle)s)))"
)
# The offset is bound already negated: "-%(offset)s" with a negative value would render
# as "--", a comment.
COMPLETED_BEFORE = "status = 'completed' AND completed_at < DATEADD(second, %(offset)s, SYSDATE())"

# -- the worker --------------------------------------------------------------------------

CLAIM = (
    "UPDATE {table} SET status = 'processing', claim_token = %(token)s, "
    "processor_id = %(processor)s, claimed_at = SYSDATE() "
    f"WHERE id IN (SELECT id FROM {{table}} WHERE {ELIGIBLE} "
    "ORDER BY created_at, id LIMIT %(limit)s) AND status = 'pending'"
)
CLAIM_SELECT = (
    "SELECT id, data, retry_count FROM {table} "
    "WHERE claim_token = %(token)s AND status = 'processing' ORDER BY created_at, id"
)
# One statement per batch of outcomes (a JSON array), each row guarded by its claim token.
WRITE_BACK = (
    "UPDATE {table} SET status = s.status, "
    "completed_at = IFF(s.status = 'completed', SYSDATE(), NULL), "
    "failed_at = IFF(s.status = 'failed', SYSDATE(), NULL), "
    "error_message = IFF(s.error IS NULL, error_message, s.error), "
    "retry_count = COALESCE(retry_count, 0) + s.retry_inc, "
    "next_attempt_at = IFF(s.delay > 0, DATEADD(second, s.delay, SYSDATE()), NULL), "
    "claim_token = NULL, claimed_at = IFF(s.status = 'pending', NULL, claimed_at) "
    "FROM (SELECT f.value:id::STRING AS id, f.value:token::STRING AS token, "
    "f.value:status::STRING AS status, f.value:error::STRING AS error, "
    "f.value:retry_inc::INTEGER AS retry_inc, f.value:delay::INTEGER AS delay "
    "FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(outcomes)s))) f) s "
    "WHERE {table}.id = s.id AND {table}.claim_token = s.token "
    "AND {table}.status = 'processing'"
)
# Only after a write-back changed fewer rows than it had outcomes: which of them landed.
WRITE_BACK_CHECK = (
    "SELECT id, status, processor_id, claim_token, error_message FROM {table} "
    "WHERE id IN (SELECT f.value::STRING FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(ids)s))) f)"
)

# -- the operator ------------------------------------------------------------------------

# Past the attempt limit first, so the requeue below never sees those rows.
LEASE_DEAD_LETTER = (
    "UPDATE {table} SET status = 'failed', failed_at = SYSDATE(), "
    "retry_count = COALESCE(retry_count, 0) + 1, claim_token = NULL, "
    "error_message = 'lease expired after ' || %(lease)s || ' s; attempts exhausted' "
    "WHERE status = 'processing' "
    "AND claimed_at < DATEADD(second, -%(lease)s, SYSDATE()) "
    "AND COALESCE(retry_count, 0) + 1 >= %(max_attempts)s"
)
LEASE_REQUEUE = (
    "UPDATE {table} SET status = 'pending', retry_count = COALESCE(retry_count, 0) + 1, "
    "claim_token = NULL, claimed_at = NULL, processor_id = NULL, "
    "next_attempt_at = NULL "
    "WHERE status = 'processing' "
    "AND claimed_at < DATEADD(second, -%(lease)s, SYSDATE())"
)
# Warehouse-free on Snowflake: SHOW runs in the cloud services layer, and a COUNT(*) with
# no WHERE is answered from table metadata.
IDLE_SHOW = "SHOW TABLES LIKE %(name)s IN SCHEMA {schema}"
IDLE_COUNT = "SELECT COUNT(*) FROM {table}"
COUNTS = (
    f"SELECT COUNT_IF({ELIGIBLE}), COUNT_IF(status = 'pending'), "
    "COUNT_IF(status = 'processing'), COUNT_IF(status = 'completed'), "
    "COUNT_IF(status = 'failed'), "
    "TIMESTAMPDIFF(second, MIN(IFF(status = 'pending', created_at, NULL)), SYSDATE()) "
    "FROM {table}"
)

# -- the ops commands ------------------------------------------------------------------------

# Idempotent by id: a retried insert, or an id already queued, adds nothing.
ENQUEUE = (
    "INSERT INTO {table} (id, data, status, retry_count, created_at) "
    "SELECT s.id, s.data, 'pending', 0, SYSDATE() FROM ("
    "SELECT f.value:id::STRING AS id, f.value:data AS data "
    "FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(entries)s))) f) s "
    "WHERE NOT EXISTS (SELECT 1 FROM {table} q WHERE q.id = s.id)"
)
REQUEUE_DEAD_LETTERS = (
    "UPDATE {table} SET status = 'pending', retry_count = 0, failed_at = NULL, "
    "claim_token = NULL, claimed_at = NULL, next_attempt_at = NULL "
    f"WHERE {DEAD_LETTER_FILTER}"
)
# The same filter as the requeue, so a dry run counts exactly the rows it would change.
COUNT_DEAD_LETTERS = f"SELECT COUNT(*) FROM {{table}} WHERE {DEAD_LETTER_FILTER}"
DEAD_LETTER_IDS = f"SELECT id FROM {{table}} WHERE {DEAD_LETTER_FILTER} ORDER BY id LIMIT %(limit)s"
RECENT_DEAD_LETTERS = (
    "SELECT id, error_message, COALESCE(retry_count, 0), failed_at FROM {table} "
    "WHERE status = 'failed' ORDER BY failed_at DESC NULLS LAST, id "
    "LIMIT %(limit)s"
)
EXISTING_IDS = (
    "SELECT DISTINCT id FROM {table} WHERE id IN (SELECT f.value::STRING "
    "FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(ids)s))) f)"
)
COUNT_COMPLETED_BEFORE = f"SELECT COUNT(*) FROM {{table}} WHERE {COMPLETED_BEFORE}"
PURGE_COMPLETED = f"DELETE FROM {{table}} WHERE {COMPLETED_BEFORE}"

# Statement kind (what QueueClient counts and metrics label) -> template.
TEMPLATES = {
    "claim": CLAIM,
    "claim_select": CLAIM_SELECT,
    "write_back": WRITE_BACK,
    "write_back_check": WRITE_BACK_CHECK,
    "lease_dead_letter": LEASE_DEAD_LETTER,
    "lease_requeue": LEASE_REQUEUE,
    "idle_show": IDLE_SHOW,
    "idle_count": IDLE_COUNT,
    "counts": COUNTS,
    "enqueue": ENQUEUE,
    "requeue_dead_letters": REQUEUE_DEAD_LETTERS,
    "count_dead_letters": COUNT_DEAD_LETTERS,
    "dead_letter_ids": DEAD_LETTER_IDS,
    "recent_dead_letters": RECENT_DEAD_LETTERS,
    "existing_ids": EXISTING_IDS,
    "count_completed_before": COUNT_COMPLETED_BEFORE,
    "purge_completed": PURGE_COMPLETED,
}


def statements_for(table: TableRef) -> dict[str, str]:
    """Every template with this table's quoted name filled in."""
    schema = f'"{table.database}"."{table.schema}"'
    return {kind: sql.format(table=table.sql, schema=schema) for kind, sql in TEMPLATES.items()}
