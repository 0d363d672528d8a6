"""What a Snowflake error means for the statement that failed (pure decisions on the
connector's error classes and numbers).

Three kinds of failure are worth another try, each for its own reason:

- transient: the lock's queue was full (000625), the connection broke, the emulator saw
  a write-write conflict where Snowflake would have queued the statement;
- session lost: the server no longer knows the session (expired, master token gone or
  invalid, the server restarted); retried on a new session;
- ended while waiting: the statement was cancelled or timed out before it finished, by the
  server's LOCK_TIMEOUT or STATEMENT_TIMEOUT_IN_SECONDS (000630) or by the connector's own
  timer (000604). Such a statement changed nothing, unless it committed just as it was
  cancelled; it is retried only for the statements whose retry is safe either way (a
  claim keeps its token, a write-back is guarded by it), and with the server's bounds
  set each try waits a bounded time.
"""

from __future__ import annotations

# The lock's queue was full ("number of waiters for this lock exceeds the 20 statements
# limit"). Snowflake does not document which code a LOCK_TIMEOUT gives; the text says so.
LOCK_WAITERS_EXCEEDED = 625
CANCELLED_BY_CLIENT = 604  # "SQL execution canceled" (the connector's timer fired)
STATEMENT_TIMED_OUT = 630  # "Statement reached its statement or warehouse timeout"

# 290401: HTTP 401; 390111 session gone; 390112 session expired; 390113 master token not
# found; 390114 master token expired; 390115 master token invalid.
SESSION_LOST = frozenset({290401, 390111, 390112, 390113, 390114, 390115})

# Statement kinds a cancel or timeout may be retried for (queue_sql.TEMPLATES' names): the
# worker's, whose retry is safe even when the first try committed after all. A long ops
# statement (a purge) that timed out would only time out again; the operator's lease
# recovery runs again at its next poll, which a retry would only hold up.
RETRY_AFTER_TIMEOUT = frozenset(
    {"claim", "claim_select", "write_back", "write_back_result", "write_back_check"}
)
# SQLSTATE of a cancelled statement: 000604, 000625 and 000630 all carry it, and so may a
# LOCK_TIMEOUT's error, whose code Snowflake does not document.
QUERY_CANCELED = "57014"


def _errno(exc: BaseException) -> int | None:
    value = getattr(exc, "errno", None)
    return value if isinstance(value, int) else None


def is_transient(exc: BaseException) -> bool:
    """Lock-queue overflow (000625) and lost connections are worth another try."""
    from snowflake.connector import errors as sf_errors

    if isinstance(exc, sf_errors.Error) and exc.errno == LOCK_WAITERS_EXCEEDED:
        return True
    if isinstance(exc, sf_errors.OperationalError | sf_errors.InterfaceError):
        return True
    # The emulator reports write-write conflicts where Snowflake would queue on the lock.
    return "Conflict on update" in str(exc)


def is_session_lost(exc: BaseException) -> bool:
    """The server no longer knows this session (expired, or the server restarted)."""
    return _errno(exc) in SESSION_LOST


def ended_while_waiting(exc: BaseException) -> bool:
    """Cancelled or timed out before it finished: by the server's LOCK_TIMEOUT or
    STATEMENT_TIMEOUT_IN_SECONDS, or by the connector's timer."""
    text = str(exc).lower()
    return (
        _errno(exc) in (CANCELLED_BY_CLIENT, STATEMENT_TIMED_OUT, LOCK_WAITERS_EXCEEDED)
        or getattr(exc, "sqlstate", None) == QUERY_CANCELED
        or "lock wait timeout" in text
        or "lock_timeout" in text
    )


def worth_retrying(kind: str, exc: BaseException, *, can_reconnect: bool) -> bool:
    """Whether statement ``kind`` that failed with ``exc`` is tried again."""
    if can_reconnect and is_session_lost(exc):
        return True
    if is_transient(exc):
        return True
    return kind in RETRY_AFTER_TIMEOUT and ended_while_waiting(exc)
