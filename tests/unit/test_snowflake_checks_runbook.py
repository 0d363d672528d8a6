"""The day-one runbook (docs/snowflake-checks.md) shows the statements the project really
sends, so a user checks on a real account what the workers and the operator will run.

Each statement below is rendered from the project's own code (the queue's templates, and
for JSON binds what QueueClient itself sends), with the runbook's values in place of the
binds, and must appear in the runbook's SQL exactly (whitespace aside). Every statement
kind the code sends is either shown or listed with the reason it is not; a new kind fails
here until it is one or the other. Statements of the runbook that the code does not send
(account parameters, set-up, contrast cases) are not checked.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from snowflake_worker.connection import session_parameters
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import ClaimedEntry, QueueClient, completed, released
from snowflake_worker.queue_sql import TEMPLATES, Statement, statements_for
from snowflake_worker.snowflake_settings import SnowflakeSettings

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "snowflake-checks.md"
CHECK_TABLE = TableRef("DB", "SFP_CHECKS", "SFP_CHECK")
KEEP = object()  # a bind the runbook shows as ``?`` (its Python code binds it)

# The kinds the runbook does not show, and why.
NOT_SHOWN = {
    "write_back_check": "a SELECT by ids, only after a write-back changed fewer rows",
    "requeue_dead_letters": "an ops command (snowflake-processor requeue), not typed",
    "count_dead_letters": "an ops command's dry run",
    "dead_letter_ids": "an ops command's listing",
    "recent_dead_letters": "run through the project by `snowflake-processor status` (check 2)",
    "existing_ids": "an ops command's lookup",
    "count_completed_before": "the purge command's dry run",
    "purge_completed": "the purge command (an admin's, not the service's)",
    "settled_by": "a SELECT by Job names, when the operator counts finished Jobs",
}


class RecordingConnection:
    """Records what QueueClient sends; answers every statement with no rows."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def cursor(self, *_: Any) -> RecordingConnection:
        return self

    def execute(self, sql: str, binds: tuple[Any, ...] | None = None) -> None:
        self.sent.append((sql, tuple(binds or ())))

    rowcount = 0

    def fetchall(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _literal(value: Any) -> str:
    """A bound value as the SQL literal the runbook shows in its place."""
    if value is KEEP:
        return "?"
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _render(sql: str, binds: tuple[Any, ...]) -> str:
    """The statement as the runbook writes it: its values inlined, the table by its bare
    name (after USE SCHEMA) and the schema as <DB>.SFP_CHECKS."""
    pieces = sql.split("?")
    assert len(pieces) == len(binds) + 1, sql
    text = pieces[0] + "".join(_literal(v) + p for v, p in zip(binds, pieces[1:], strict=True))
    schema = f'"{CHECK_TABLE.database}"."{CHECK_TABLE.schema}"'
    return text.replace(CHECK_TABLE.sql, CHECK_TABLE.table).replace(schema, "<DB>.SFP_CHECKS")


def _from_template(kind: str, **values: Any) -> str:
    statement: Statement = statements_for(CHECK_TABLE)[kind]
    return _render(statement.sql, statement.binds(values))


def _sent_by_the_queue(call: str, *args: Any) -> str:
    """The one statement a QueueClient method sends, as it sends it."""
    connection = RecordingConnection()
    getattr(QueueClient(connection, CHECK_TABLE), call)(*args)
    ((sql, binds),) = connection.sent
    return _render(sql, binds)


CLAIMED_E1 = ClaimedEntry("e1", None, 1, "check-9")
CLAIMED_E2 = ClaimedEntry("e2", None, 1, "check-9")

# kind -> the statement as the runbook must show it
SHOWN = {
    "claim": _from_template("claim", token="check-1", processor="check", max_attempts=5, limit=3),
    "claim_select": _from_template("claim_select", token="check-1"),
    "lease_recovery": _from_template(
        "lease_recovery", lease=900, max_attempts=5, recovery="recovery-1"
    ),
    "lease_dead_lettered": _from_template("lease_dead_lettered", recovery="recovery-1"),
    "enqueue": _sent_by_the_queue("enqueue", [("dup-1", 1), ("dup-2", 2)]),
    "write_back": _sent_by_the_queue(
        "write_back", [released(CLAIMED_E2, error="HTTP 503", delay_seconds=60)]
    ),
    "write_back_result": _sent_by_the_queue(
        "write_back", [completed(CLAIMED_E1, result="accepted")]
    ),
    "result_column": _from_template("result_column"),
    "idle_show": _from_template("idle_show"),
    "idle_count": _from_template("idle_count"),
    "counts": _from_template("counts", max_attempts=5),
}
# Other renderings the runbook shows: check 9's claim of two rows.
ALSO_SHOWN = [
    _from_template("claim", token="check-9", processor="check", max_attempts=5, limit=2),
]
# The claim of check 11, in Python: its token and processor bound, as the worker binds them.
RACE_CLAIM = _from_template("claim", token=KEEP, processor=KEEP, max_attempts=5, limit=3)


def _normal(sql: str) -> str:
    """Whitespace collapsed, none just inside parentheses, no trailing semicolon."""
    text = " ".join(sql.split()).rstrip(";").strip()
    return re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", text))


def _runbook_blocks(language: str) -> list[str]:
    text = RUNBOOK.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def runbook_statements() -> list[str]:
    """Each statement of the runbook's ```sql blocks, comments removed."""
    found: list[str] = []
    for block in _runbook_blocks("sql"):
        lines = [line.split("--", 1)[0] if "--" in line else line for line in block.splitlines()]
        for statement in re.split(r";[ \t]*(?:\n|$)", "\n".join(lines)):
            if statement.strip():
                found.append(_normal(statement))
    return found


def test_every_kind_the_code_sends_is_shown_or_has_a_reason() -> None:
    assert set(SHOWN) | set(NOT_SHOWN) == set(TEMPLATES)
    assert not set(SHOWN) & set(NOT_SHOWN)


@pytest.mark.parametrize("kind", sorted(SHOWN))
def test_the_runbook_shows_the_statement_the_code_sends(kind: str) -> None:
    assert _normal(SHOWN[kind]) in runbook_statements(), (
        f"docs/snowflake-checks.md does not show the {kind} statement as the code sends it:\n"
        f"{SHOWN[kind]}"
    )


@pytest.mark.parametrize("statement", ALSO_SHOWN)
def test_the_runbook_shows_other_renderings_as_the_code_sends_them(statement: str) -> None:
    assert _normal(statement) in runbook_statements()


def test_the_claim_race_runs_the_workers_claim() -> None:
    """Check 11's Python CLAIM is the worker's claim, its token and processor bound."""
    claims = []
    for block in _runbook_blocks("python"):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "CLAIM" for t in node.targets
            ):
                claims.append(ast.literal_eval(node.value))
    assert [_normal(c) for c in claims] == [_normal(RACE_CLAIM)]


def test_a_statement_that_drifted_would_be_caught() -> None:
    """The check itself: the claim with one word changed is not in the runbook."""
    drifted = _normal(SHOWN["claim"]).replace("ORDER BY created_at, id", "ORDER BY id")
    assert drifted not in runbook_statements()


def _python_constants(name: str) -> list[Any]:
    """Every value the runbook's Python blocks assign to ``name``."""
    found = []
    for block in _runbook_blocks("python"):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets
            ):
                found.append(ast.literal_eval(node.value))
    return found


def test_the_long_lock_check_connects_as_the_worker_does() -> None:
    """Check 8's wait behind a lock held past two minutes uses the worker's own session
    parameters and network timeout (the SFP_SNOWFLAKE_* defaults), so what it shows is
    what a worker meets."""
    settings = SnowflakeSettings(
        account="check",
        database="DB",
        schema_name="SFP_CHECKS",
        table="SFP_CHECK",
        auth="emulator",
        host="127.0.0.1",
        port=1,
    )
    expected = {k: v for k, v in session_parameters(settings).items() if k != "QUERY_TAG"}
    assert _python_constants("WORKER_SESSION") == [expected]
    assert _python_constants("WORKER_NETWORK_TIMEOUT") == [settings.client_timeout_seconds]
    assert settings.lock_timeout_seconds < 120 < settings.client_timeout_seconds
