"""Statement bounds and write-back safety, the pure parts: which Snowflake errors are
retried for which statement, the session every login sets, the timeouts' settings, one
outcome per row in a write-back, and write-backs without four-part column names."""

from __future__ import annotations

import re

import pytest
from snowflake.connector import errors as sf_errors

from snowflake_worker.connection import connection_params, session_parameters
from snowflake_worker.errors import ConfigError
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import (
    ClaimedEntry,
    Outcome,
    QueueClient,
    Status,
    completed,
    distinct_entries,
    distinct_outcomes,
    released,
)
from snowflake_worker.queue_sql import statements_for
from snowflake_worker.snowflake_errors import (
    ended_while_waiting,
    is_session_lost,
    worth_retrying,
)
from snowflake_worker.snowflake_settings import SnowflakeSettings, load_snowflake_settings

CANCELLED = sf_errors.ProgrammingError(
    msg="SQL execution was cancelled by the client due to a timeout.", errno=604
)
STATEMENT_TIMEOUT = sf_errors.ProgrammingError(
    msg="Statement reached its statement or warehouse timeout of 300 second(s) and was canceled.",
    errno=630,
)
LOCK_TIMEOUT = sf_errors.ProgrammingError(msg="waited 60 s (LOCK_TIMEOUT)", errno=625)
NO_SUCH_TABLE = sf_errors.ProgrammingError(msg="Object does not exist", errno=2003)


def settings(**values: object) -> SnowflakeSettings:
    base: dict[str, object] = {
        "account": "acct",
        "database": "db",
        "schema_name": "queue",
        "table": "work",
    }
    return SnowflakeSettings(**{**base, **values})  # type: ignore[arg-type]


# -- which errors are retried, for which statement --------------------------------------


@pytest.mark.parametrize("errno", [290401, 390111, 390112, 390113, 390114, 390115])
def test_every_session_lost_code_is_recognised(errno: int) -> None:
    assert is_session_lost(sf_errors.DatabaseError(msg="session gone", errno=errno))


def test_a_lost_session_is_retried_only_with_a_way_to_reconnect() -> None:
    lost = sf_errors.DatabaseError(msg="Master token is invalid", errno=390115)
    assert worth_retrying("claim", lost, can_reconnect=True)
    assert not worth_retrying("claim", lost, can_reconnect=False)


@pytest.mark.parametrize("exc", [CANCELLED, STATEMENT_TIMEOUT, LOCK_TIMEOUT])
@pytest.mark.parametrize("kind", ["claim", "claim_select", "write_back", "write_back_result"])
def test_a_claim_or_write_back_ended_while_waiting_is_retried(kind: str, exc: Exception) -> None:
    assert ended_while_waiting(exc)
    assert worth_retrying(kind, exc, can_reconnect=True)


@pytest.mark.parametrize(
    "kind", ["purge_completed", "requeue_dead_letters", "counts", "lease_recovery"]
)
def test_a_timed_out_ops_or_operator_statement_is_not_run_again(kind: str) -> None:
    """A purge that ran past the statement timeout would only time out again; the
    operator's next poll recovers leases anyway."""
    assert not worth_retrying(kind, STATEMENT_TIMEOUT, can_reconnect=True)
    assert not worth_retrying(kind, CANCELLED, can_reconnect=True)


def test_a_cancel_of_an_undocumented_code_is_known_by_its_sqlstate() -> None:
    """Snowflake does not document the code of a LOCK_TIMEOUT; its SQLSTATE is the
    cancelled statement's."""
    exc = sf_errors.ProgrammingError(msg="aborted", errno=999999, sqlstate="57014")
    assert ended_while_waiting(exc)
    assert worth_retrying("write_back", exc, can_reconnect=False)


def test_other_errors_are_not_retried_for_any_statement() -> None:
    assert not ended_while_waiting(NO_SUCH_TABLE)
    assert not worth_retrying("claim", NO_SUCH_TABLE, can_reconnect=True)


# -- the session every login sets -------------------------------------------------------


def test_every_session_bounds_its_waits_on_the_server_and_aborts_detached_statements() -> None:
    params = session_parameters(settings(lock_timeout_seconds=45, statement_timeout_seconds=200))
    assert params["LOCK_TIMEOUT"] == 45
    assert params["STATEMENT_TIMEOUT_IN_SECONDS"] == 200
    assert params["ABORT_DETACHED_QUERY"] is True


@pytest.mark.parametrize("auth", ["workload_identity", "emulator"])
def test_the_connectors_timer_is_longer_than_the_servers_bound(auth: str) -> None:
    extra = {"host": "127.0.0.1", "port": 1} if auth == "emulator" else {}
    params = connection_params(settings(auth=auth, statement_timeout_seconds=200, **extra))
    assert params["network_timeout"] == 230
    assert params["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 200
    assert params["session_parameters"]["ABORT_DETACHED_QUERY"] is True


def test_the_defaults_keep_the_bounds_in_order() -> None:
    s = settings()
    assert (s.lock_timeout_seconds, s.statement_timeout_seconds) == (60, 300)
    assert s.client_timeout_seconds == 330


@pytest.mark.parametrize(
    ("variables", "complaint"),
    [
        (
            {"SFP_SNOWFLAKE_NETWORK_TIMEOUT_SECONDS": "120"},
            "SFP_SNOWFLAKE_NETWORK_TIMEOUT_SECONDS must be more than",
        ),
        (
            {"SFP_SNOWFLAKE_LOCK_TIMEOUT_SECONDS": "300"},
            "SFP_SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS must be more than",
        ),
    ],
)
def test_bounds_out_of_order_are_one_line_config_errors(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], complaint: str
) -> None:
    """A network timeout of 120 (the old default) under a 300 s statement bound would let
    the connector cancel what Snowflake still bounds."""
    base = {
        "SFP_SNOWFLAKE_ACCOUNT": "acct",
        "SFP_SNOWFLAKE_DATABASE": "db",
        "SFP_SNOWFLAKE_SCHEMA": "queue",
        "SFP_SNOWFLAKE_TABLE": "work",
    }
    for name, value in {**base, **variables}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_snowflake_settings()
    assert complaint in str(refused.value)
    assert "\n" not in str(refused.value)


# -- one outcome per row --------------------------------------------------------------------


def entry(entry_id: str, claim: str = "claim-1") -> ClaimedEntry:
    return ClaimedEntry(entry_id, "{}", 0, claim)


def test_outcomes_for_the_same_row_become_one_the_last_recorded() -> None:
    a, b = entry("a"), entry("b")
    outcomes = [released(a), completed(b), completed(a)]
    assert distinct_outcomes(outcomes) == [completed(a), completed(b)]


def test_the_same_id_under_another_claim_token_is_another_row() -> None:
    first, second = entry("a", "tok-1"), entry("a", "tok-2")
    outcomes = [completed(first), Outcome("a", "tok-2", Status.FAILED, "boom", 1)]
    assert distinct_outcomes(outcomes) == outcomes
    assert distinct_outcomes([completed(second), completed(second)]) == [completed(second)]


def test_a_claim_reading_back_one_id_twice_hands_out_one_entry() -> None:
    assert distinct_entries([entry("a"), entry("b"), entry("a")]) == [entry("a"), entry("b")]


# -- write-backs name their target by an alias --------------------------------------------


@pytest.mark.parametrize("kind", ["write_back", "write_back_result"])
def test_write_backs_have_no_four_part_column_names(kind: str) -> None:
    sql = statements_for(TableRef("DB", "QUEUE", "WORK"))[kind].sql
    assert sql.startswith('UPDATE "DB"."QUEUE"."WORK" q SET ')
    assert not re.search(r'"WORK"\.\w', sql), sql
    assert "q.id = s.id AND q.claim_token = s.token AND q.status = 'processing'" in sql


# -- a lost session is closed before its replacement is opened ------------------------------


class _Cursor:
    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.rowcount = 0

    def execute(self, sql: str, binds: object = None) -> None:
        if self.connection.lost:
            raise sf_errors.DatabaseError(msg="Master token is invalid", errno=390115)
        self.rowcount = 1

    def close(self) -> None:
        pass


class _Connection:
    """A connection's shape only: whether its session is gone, whether it was closed."""

    def __init__(self, lost: bool) -> None:
        self.lost = lost
        self.closed = False

    def cursor(self, *_: object) -> _Cursor:
        return _Cursor(self)

    def close(self) -> None:
        self.closed = True


def test_a_lost_session_is_closed_before_the_statement_runs_on_a_new_one() -> None:
    """Closing ends what the old session still runs, if the server knows it at all; the
    statement then runs once on the new session."""
    old, new = _Connection(lost=True), _Connection(lost=False)
    queue = QueueClient(old, TableRef("DB", "QUEUE", "WORK"), reconnect=lambda: new)
    assert queue.write_back([completed(entry("a"))]) == 1
    assert old.closed and not new.closed
    assert queue.reconnects == 1
