"""Every statement of the queue protocol, as named templates. Nothing else writes queue SQL.

The only things placed into the text are the validated, quoted identifiers of the table
({table}) and of its schema ({schema}). Every value is a named parameter (%(name)s) that
:func:`statements_for` turns into a server-side bind (``?``): values travel apart from the
statement text, so entry data and error messages never show in QUERY_HISTORY's query text
and escaping never grows a statement.

Written for Snowflake's documented semantics, not the emulator's (sql/README.md, "What
Snowflake allows"): LIMIT only at the top level (a subquery with LIMIT is documented as
unsupported unless it is an uncorrelated scalar subquery), new rows only through MERGE
(Snowflake does not enforce PRIMARY KEY), every time from SYSDATE() (UTC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
# The offset is bound as a negative number of seconds.
COMPLETED_BEFORE = "status = 'completed' AND completed_at < DATEADD(second, %(offset)s, SYSDATE())"

# -- the worker --------------------------------------------------------------------------

# The oldest eligible rows by QUALIFY, not ORDER BY ... LIMIT: Snowflake documents LIMIT in
# an IN subquery as unsupported (only an uncorrelated scalar subquery may have one).
CLAIM = (
    "UPDATE {table} SET status = 'processing', claim_token = %(token)s, "
    "processor_id = %(processor)s, claimed_at = SYSDATE() "
    f"WHERE id IN (SELECT id FROM {{table}} WHERE {ELIGIBLE} "
    "QUALIFY ROW_NUMBER() OVER (ORDER BY created_at, id) <= %(limit)s) AND status = 'pending'"
)
CLAIM_SELECT = (
    "SELECT id, data, retry_count FROM {table} "
    "WHERE claim_token = %(token)s AND status = 'processing' ORDER BY created_at, id"
)
# One statement per batch of outcomes (a JSON array), each row guarded by its claim token.
# The target has an alias (q), as Snowflake's documentation writes joined UPDATEs: the
# table's own name would make four-part column names ("DB"."SCHEMA"."TABLE".id).
_WRITE_BACK_SET = (
    "UPDATE {table} q SET status = s.status, "
    "completed_at = IFF(s.status = 'completed', SYSDATE(), NULL), "
    "failed_at = IFF(s.status = 'failed', SYSDATE(), NULL), "
    "error_message = IFF(s.error IS NULL, error_message, s.error), "
    "retry_count = COALESCE(retry_count, 0) + s.retry_inc, "
    "next_attempt_at = IFF(s.delay > 0, DATEADD(second, s.delay, SYSDATE()), NULL), "
    "claim_token = NULL, claimed_at = IFF(s.status = 'pending', NULL, claimed_at)"
)
_OUTCOME_FIELDS = (
    "SELECT f.value:id::STRING AS id, f.value:token::STRING AS token, "
    "f.value:status::STRING AS status, f.value:error::STRING AS error, "
    "f.value:retry_inc::INTEGER AS retry_inc, f.value:delay::INTEGER AS delay"
)
_OUTCOMES = "FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(outcomes)s))) f) s "
_WRITE_BACK_GUARD = "WHERE q.id = s.id AND q.claim_token = s.token AND q.status = 'processing'"
WRITE_BACK = f"{_WRITE_BACK_SET} FROM ({_OUTCOME_FIELDS} {_OUTCOMES}{_WRITE_BACK_GUARD}"
# The same, also keeping the service's answer of completed rows in `result` (sql/005): only
# for outcomes that carry one, so a table without the column never sees this statement.
WRITE_BACK_RESULT = (
    f"{_WRITE_BACK_SET}, result = IFF(s.status = 'completed', s.answer, q.result) "
    f"FROM ({_OUTCOME_FIELDS}, f.value:result::STRING AS answer {_OUTCOMES}{_WRITE_BACK_GUARD}"
)
# Whether the table has the result column (a worker that stores answers checks at start).
# SHOW runs in the cloud services layer: no warehouse. The pattern is a constant, not a bind:
# Snowflake documents LIKE '<pattern>' in SHOW as a string literal.
RESULT_COLUMN = "SHOW COLUMNS LIKE 'RESULT' IN TABLE {table}"
# Only after a write-back changed fewer rows than it had outcomes: which of them landed.
WRITE_BACK_CHECK = (
    "SELECT id, status, processor_id, claim_token, error_message FROM {table} "
    "WHERE id IN (SELECT f.value::STRING FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(ids)s))) f)"
)

# -- the operator ------------------------------------------------------------------------

# One statement, so one SYSDATE() and one turn of the table lock: every expired lease goes
# back to pending, or to failed when this attempt was its last. (Two statements, each with
# its own clock, requeued a lease that expired between them with its attempts used up:
# never eligible again, never dead-lettered.) Dead-lettered rows keep the recovery's token,
# so LEASE_DEAD_LETTERED can count them; write-backs never match a failed row.
# Each column is set only where the WHERE still holds (_EXPIRED again, on the row as it is
# when the statement writes it): Snowflake does not document whether an UPDATE that waited
# for the lock chooses its rows as they were when it arrived. If it does, a row that a
# write-back completed, or another recovery requeued, while this one waited is written back
# unchanged instead of being requeued or dead-lettered a second time (its attempt counted
# twice). Such a row still counts as updated, so only the recovery's figure can be high.
_EXPIRED = "status = 'processing' AND claimed_at < DATEADD(second, -%(lease)s, SYSDATE())"
_LAST_ATTEMPT = "COALESCE(retry_count, 0) + 1 >= %(max_attempts)s"


def _if_expired(column: str, value: str) -> str:
    return f"{column} = IFF({_EXPIRED}, {value}, {column})"


LEASE_RECOVERY = (
    "UPDATE {table} SET "
    + ", ".join(
        _if_expired(column, value)
        for column, value in (
            ("status", f"IFF({_LAST_ATTEMPT}, 'failed', 'pending')"),
            ("failed_at", f"IFF({_LAST_ATTEMPT}, SYSDATE(), failed_at)"),
            (
                "error_message",
                f"IFF({_LAST_ATTEMPT}, "
                "'lease expired after ' || %(lease)s || ' s; attempts exhausted', error_message)",
            ),
            ("claim_token", f"IFF({_LAST_ATTEMPT}, %(recovery)s, NULL)"),
            ("processor_id", f"IFF({_LAST_ATTEMPT}, processor_id, NULL)"),
            ("claimed_at", f"IFF({_LAST_ATTEMPT}, claimed_at, NULL)"),
            ("retry_count", "COALESCE(retry_count, 0) + 1"),
            ("next_attempt_at", "NULL"),
        )
    )
    + f" WHERE {_EXPIRED}"
)
LEASE_DEAD_LETTERED = (
    "SELECT COUNT(*) FROM {table} WHERE claim_token = %(recovery)s AND status = 'failed'"
)
# Warehouse-free on Snowflake: SHOW runs in the cloud services layer, and a COUNT(*) with
# no WHERE is answered from table metadata. No LIKE: its pattern is a string literal, and
# the server refuses a bind there (a syntax error); the table is picked from the answer.
IDLE_SHOW = "SHOW TABLES IN SCHEMA {schema}"
IDLE_COUNT = "SELECT COUNT(*) FROM {table}"
# Pending rows the eligibility excludes: those waiting out a retry delay (claimable once
# next_attempt_at passes: the seconds until the first is) and those with every attempt
# used (stranded: never claimable, e.g. after maxAttempts was lowered).
_ATTEMPTS_LEFT = "COALESCE(retry_count, 0) < %(max_attempts)s"
COUNTS = (
    f"SELECT COUNT_IF({ELIGIBLE}), COUNT_IF(status = 'pending'), "
    "COUNT_IF(status = 'processing'), COUNT_IF(status = 'completed'), "
    "COUNT_IF(status = 'failed'), "
    "TIMESTAMPDIFF(second, MIN(IFF(status = 'pending', created_at, NULL)), SYSDATE()), "
    f"COUNT_IF(status = 'pending' AND NOT ({_ATTEMPTS_LEFT})), "
    "TIMESTAMPDIFF(second, SYSDATE(), MIN(IFF(status = 'pending' "
    f"AND {_ATTEMPTS_LEFT} AND next_attempt_at > SYSDATE(), next_attempt_at, NULL))) "
    "FROM {table}"
)

# What finished Jobs settled, by Job (processor_id is the Job's name): the operator's
# status.totals, exact even when a worker was killed before it could report. A row settled
# by a later Job after a lease recovery carries that Job's name, so each row counts once.
SETTLED_BY = (
    "SELECT processor_id, COUNT_IF(status = 'completed'), COUNT_IF(status = 'failed') "
    "FROM {table} WHERE status IN ('completed', 'failed') AND processor_id IN "
    "(SELECT f.value::STRING FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%(jobs)s))) f) "
    "GROUP BY processor_id"
)

# -- the ops commands ------------------------------------------------------------------------

# Idempotent by id: a retried enqueue, or an id already queued, adds nothing. MERGE, not
# INSERT ... WHERE NOT EXISTS: Snowflake enforces no PRIMARY KEY and runs INSERTs side by
# side, so two sessions could both find an id missing and both insert it; a MERGE takes the
# table lock, so the second sees the first's rows. The ids in one bind are distinct (the
# client removes repeats): MERGE inserts every unmatched source row, repeats included.
ENQUEUE = (
    "MERGE INTO {table} q USING ("
    "SELECT f.value:id::STRING AS id, f.value:data AS data "
    "FROM (SELECT PARSE_JSON(%(entries)s) AS entries) e, "
    "LATERAL FLATTEN(INPUT => e.entries) f) s "
    "ON q.id = s.id "
    "WHEN NOT MATCHED THEN INSERT (id, data, status, retry_count, created_at) "
    "VALUES (s.id, s.data, 'pending', 0, SYSDATE())"
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
# One batch of a purge: at most %(limit)s ids, oldest completion first, so each DELETE holds
# the table's lock briefly and the workers' claims and write-backs get their turns between
# batches. The outer filter is the inner one again: an id a legacy writer added twice (no
# PRIMARY KEY is enforced) loses only its eligible rows. The same QUALIFY as the claim, as
# Snowflake allows no LIMIT in an IN subquery.
PURGE_COMPLETED = (
    f"DELETE FROM {{table}} WHERE id IN (SELECT id FROM {{table}} WHERE {COMPLETED_BEFORE} "
    "QUALIFY ROW_NUMBER() OVER (ORDER BY completed_at, id) <= %(limit)s) "
    f"AND {COMPLETED_BEFORE}"
)

# Statement kind (what QueueClient counts and metrics label) -> template.
TEMPLATES = {
    "claim": CLAIM,
    "claim_select": CLAIM_SELECT,
    "write_back": WRITE_BACK,
    "write_back_result": WRITE_BACK_RESULT,
    "write_back_check": WRITE_BACK_CHECK,
    "result_column": RESULT_COLUMN,
    "lease_recovery": LEASE_RECOVERY,
    "lease_dead_lettered": LEASE_DEAD_LETTERED,
    "idle_show": IDLE_SHOW,
    "idle_count": IDLE_COUNT,
    "counts": COUNTS,
    "settled_by": SETTLED_BY,
    "enqueue": ENQUEUE,
    "requeue_dead_letters": REQUEUE_DEAD_LETTERS,
    "count_dead_letters": COUNT_DEAD_LETTERS,
    "dead_letter_ids": DEAD_LETTER_IDS,
    "recent_dead_letters": RECENT_DEAD_LETTERS,
    "existing_ids": EXISTING_IDS,
    "count_completed_before": COUNT_COMPLETED_BEFORE,
    "purge_completed": PURGE_COMPLETED,
}


# The kinds Snowflake runs under the table's lock (UPDATE, DELETE, MERGE): one at a time per
# table, and a statement that would be the 21st waiting fails with 000625. INSERT and
# SELECT never wait for it. tests/unit/test_snowflake_strictness.py keeps this list true.
TABLE_LOCK_KINDS = frozenset(
    {
        "claim",
        "write_back",
        "write_back_result",
        "lease_recovery",
        "enqueue",
        "requeue_dead_letters",
        "purge_completed",
    }
)

_PARAMETER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Statement:
    """One statement's text, with ``?`` where its named values go, in order."""

    sql: str
    names: tuple[str, ...]

    def binds(self, values: Mapping[str, Any] | None) -> tuple[Any, ...]:
        """The values in the order of the statement's ``?`` (a name may appear twice)."""
        given = values or {}
        missing = sorted(set(self.names) - set(given))
        if missing:
            raise KeyError(f"no value for {', '.join(missing)}")
        return tuple(given[name] for name in self.names)


def compile_template(template: str, table: TableRef) -> Statement:
    """Fill in the quoted identifiers and turn each %(name)s into a ``?`` bind."""
    schema = f'"{table.database}"."{table.schema}"'
    text = template.format(table=table.sql, schema=schema)
    return Statement(_PARAMETER.sub("?", text), tuple(_PARAMETER.findall(text)))


def statements_for(table: TableRef) -> dict[str, Statement]:
    """Every template, compiled for this table."""
    return {kind: compile_template(sql, table) for kind, sql in TEMPLATES.items()}
