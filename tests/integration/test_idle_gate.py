"""Idle cost control against the emulator, through the real connector: warehouse-free
checks while idle, the table's signature (SHOW TABLES' rows and bytes, as the emulator's
model reports them, and COUNT(*)), the safety net, retry delays, stranded rows and a
signature the server refuses."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from snowflake_devtools.local_poll import local_poll
from snowflake_devtools.specs import emulator_spec
from snowflake_operator.poll.idle_gate import WAREHOUSE_FREE_KINDS, IdleGate, signature_changed
from snowflake_operator.poll.run import observe_queue
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient, completed, dead_lettered, released
from snowflake_worker.queue_records import TableSignature
from tests.support.snowflake import location
from tests.support.sql_tables import query


class RecordingBackend:
    """Jobs are not the subject here: count launches, finish nothing."""

    def __init__(self) -> None:
        self.launched: list[str] = []

    def unfinished_count(self) -> int:
        return 0

    def launch(self, name: str, spec: ProcessorSpec, certificates_secret: str) -> bool:
        self.launched.append(name)
        return True


def _spec(table: TableRef, idle_poll_seconds: int) -> ProcessorSpec:
    return emulator_spec(
        table, 1, 1, idle_poll_seconds=idle_poll_seconds, job={"entries_per_job": 100}
    )


def _warehouse_statements(queue: QueueClient, before: Counter[str]) -> int:
    delta = Counter(queue.statements) - before
    return sum(n for kind, n in delta.items() if kind not in WAREHOUSE_FREE_KINDS)


def _drain_everything(queue: QueueClient) -> None:
    batch = queue.claim(1000, max_attempts=5, processor_id="w")
    queue.write_back([completed(e) for e in batch])


def test_an_idle_queue_costs_no_warehouse_statement(
    queue: QueueClient, queue_table: TableRef
) -> None:
    queue.enqueue([("a", {"n": 1}), ("b", {"n": 2})])
    _drain_everything(queue)
    spec, gate = _spec(queue_table, idle_poll_seconds=0), IdleGate()
    first = observe_queue(queue, spec, 0, gate, clock=0.0)
    assert first.counts is not None and first.counts.completed == 2 and not first.idle
    assert gate.asleep
    before = Counter(queue.statements)
    for second in range(1, 31):  # 30 polls, a 0 safety net: never a full poll
        view = observe_queue(queue, spec, 0, gate, clock=float(second))
        assert view.idle and view.counts == first.counts
    assert _warehouse_statements(queue, before) == 0
    assert sum((Counter(queue.statements) - before).values()) == 60  # SHOW + COUNT(*) each


def test_new_entries_wake_it_at_once(queue: QueueClient, queue_table: TableRef) -> None:
    spec, gate, backend = _spec(queue_table, idle_poll_seconds=0), IdleGate(), RecordingBackend()
    now = datetime.now(UTC)
    local_poll("p", spec, queue, backend, now, idle_gate=gate)  # empty table: asleep
    assert gate.asleep
    local_poll("p", spec, queue, backend, now, idle_gate=gate)
    assert backend.launched == []
    queue.enqueue((f"e{i}", {"n": i}) for i in range(150))
    result = local_poll("p", spec, queue, backend, now, idle_gate=gate)
    assert not result.observation.idle
    assert result.observation.counts is not None and result.observation.counts.eligible == 150
    assert len(backend.launched) == 2 and not gate.asleep


def test_the_signature_is_the_tables_rows_and_bytes_and_only_its_own(
    queue: QueueClient, queue_table: TableRef
) -> None:
    """SHOW TABLES reports each table's rows and bytes (the emulator's model fills them, as
    Snowflake does): the gate compares those, not only the COUNT(*). Another table of the
    schema changing leaves this one's signature alone."""
    empty = queue.table_signature()
    assert (empty.rows, empty.bytes, empty.count) == (0, 0, 0)
    queue.enqueue([("a", {"n": 1}), ("b", {"n": 2})])
    filled = queue.table_signature()
    assert (filled.rows, filled.count) == (2, 2) and filled.bytes > 0
    assert filled.metadata_reliable and signature_changed(empty, filled)
    other = f'"{queue_table.database}"."{queue_table.schema}"."NEIGHBOUR"'
    query(queue._connection, f"CREATE TABLE {other} (n INTEGER)")
    query(queue._connection, f"INSERT INTO {other} (n) SELECT 1")
    assert queue.table_signature() == filled


def test_an_update_that_keeps_the_row_count_wakes_it_at_once(
    queue: QueueClient, queue_table: TableRef
) -> None:
    """A requeue of dead letters is an UPDATE: COUNT(*) does not move, SHOW TABLES' bytes
    do. The next poll sees it, long before the safety net."""
    queue.enqueue([("x", {"n": 1})])
    (entry,) = queue.claim(1, max_attempts=5, processor_id="w")
    queue.write_back([dead_lettered(entry, "HTTP 422")])
    spec, gate = _spec(queue_table, idle_poll_seconds=3600), IdleGate()
    observe_queue(queue, spec, 0, gate, clock=0.0)
    assert gate.asleep and gate.signature is not None
    asleep = gate.signature
    assert observe_queue(queue, spec, 0, gate, clock=1.0).idle  # nothing changed: idle
    assert queue.requeue_dead_letters(ids=["x"]) == 1
    now = queue.table_signature()
    assert (now.rows, now.count) == (asleep.rows, asleep.count) and now.bytes != asleep.bytes
    view = observe_queue(queue, spec, 0, gate, clock=2.0)  # the signature changed: full poll
    assert not view.idle
    assert view.counts is not None and view.counts.eligible == 1
    assert not gate.asleep  # something to do: awake


def test_safety_net_catches_changes_the_signature_cannot_see(
    queue: QueueClient, queue_table: TableRef
) -> None:
    """An UPDATE that leaves every value's length as it was leaves the emulator's bytes as
    they were (on Snowflake rewritten micro-partitions usually move them): here a legacy
    writer moves a retry delay a day earlier. Unseen until the safety net's full poll."""
    queue.enqueue([("x", {"n": 1})])
    (entry,) = queue.claim(1, max_attempts=5, processor_id="w")
    queue.write_back([released(entry, error="HTTP 503", delay_seconds=86_400)])
    spec, gate = _spec(queue_table, idle_poll_seconds=10), IdleGate()
    first = observe_queue(queue, spec, 0, gate, clock=0.0)
    assert first.counts is not None and first.counts.eligible == 0
    assert gate.signature is not None
    query(
        queue._connection,
        f"UPDATE {queue_table.sql} SET next_attempt_at = DATEADD(day, -1, next_attempt_at)",
    )
    assert not signature_changed(gate.signature, queue.table_signature())
    assert observe_queue(queue, spec, 0, gate, clock=5.0).idle  # unseen, before the net
    view = observe_queue(queue, spec, 0, gate, clock=10.0)  # the net: a full poll
    assert not view.idle
    assert view.counts is not None and view.counts.eligible == 1
    assert not gate.asleep


def test_running_jobs_keep_it_awake(queue: QueueClient, queue_table: TableRef) -> None:
    spec, gate = _spec(queue_table, idle_poll_seconds=0), IdleGate()
    observe_queue(queue, spec, 0, gate, clock=0.0)
    assert gate.asleep
    before = Counter(queue.statements)
    view = observe_queue(queue, spec, 1, gate, clock=1.0)  # a Job is running
    assert not view.idle and not gate.asleep
    assert _warehouse_statements(queue, before) == 2  # the lease recovery and the counts


def test_a_row_waiting_out_a_retry_delay_lets_it_sleep_until_its_next_attempt(
    queue: QueueClient, queue_table: TableRef
) -> None:
    """Nothing eligible, nothing processing, no Jobs: idle, even with a row waiting out a
    retry delay; the full poll comes when that row is claimable, not before, and finds it."""
    queue.enqueue([("r", {"n": 1})])
    (entry,) = queue.claim(1, max_attempts=5, processor_id="w")
    queue.write_back([released(entry, error="HTTP 503", delay_seconds=4)])
    spec, gate = _spec(queue_table, idle_poll_seconds=1800), IdleGate()
    started = time.monotonic()
    first = observe_queue(queue, spec, 0, gate, clock=started)
    assert first.counts is not None and (first.counts.eligible, first.counts.pending) == (0, 1)
    assert first.counts.next_attempt_seconds is not None
    assert 1 <= first.counts.next_attempt_seconds <= 4
    assert gate.asleep and not first.idle
    before = Counter(queue.statements)
    waiting = observe_queue(queue, spec, 0, gate, clock=started + 0.5)
    assert waiting.idle and _warehouse_statements(queue, before) == 0
    time.sleep(max(0.0, started + first.counts.next_attempt_seconds + 1 - time.monotonic()))
    due = observe_queue(queue, spec, 0, gate)  # the real clock: past next_attempt_at
    assert not due.idle and due.counts is not None and due.counts.eligible == 1
    assert not gate.asleep and _warehouse_statements(queue, before) == 2


def test_a_stranded_row_lets_it_sleep_and_is_counted(
    queue: QueueClient, queue_table: TableRef
) -> None:
    """A pending row with every attempt used can never be claimed: it keeps nobody awake,
    and the counts say how many there are (the StrandedEntries condition and metric)."""
    queue.enqueue([("s", {"n": 1}), ("t", {"n": 2})])
    claimed = queue.claim(2, max_attempts=5, processor_id="w")
    queue.write_back([released(e, error="HTTP 503") for e in claimed])  # one attempt used
    spec = emulator_spec(queue_table, 1, 1, idle_poll_seconds=0, queue={"max_attempts": 1})
    gate = IdleGate()
    view = observe_queue(queue, spec, 0, gate, clock=0.0)
    assert view.counts is not None
    assert (view.counts.eligible, view.counts.pending, view.counts.stranded) == (0, 2, 2)
    assert view.counts.next_attempt_seconds is None  # no delay: never claimable, not later
    assert gate.asleep
    assert observe_queue(queue, spec, 0, gate, clock=3600.0).idle


class QueueWithTheBoundShow(QueueClient):
    """The signature as the project read it before: SHOW TABLES LIKE ? with a bind, which
    Snowflake's server (and so the emulator) refuses with a syntax error."""

    def __init__(self, connection: Any, table: TableRef) -> None:
        super().__init__(connection, table)
        self._raw = connection

    def table_signature(self) -> TableSignature:
        schema = f'"{self.table.database}"."{self.table.schema}"'
        sql = f"SHOW TABLES LIKE ? IN SCHEMA {schema}"
        self._raw.cursor().execute(sql, (self.table.table,))
        return super().table_signature()


def test_a_refused_signature_falls_back_to_a_full_poll_that_launches(
    snowflake_connect: Callable[..., Any], queue: QueueClient, queue_table: TableRef
) -> None:
    refusing = QueueWithTheBoundShow(snowflake_connect(**location(queue_table)), queue_table)
    with pytest.raises(ProgrammingError, match="unexpected '\\?'"):
        refusing.table_signature()
    queue.enqueue((f"e{i}", {"n": i}) for i in range(150))
    spec, gate, backend = _spec(queue_table, idle_poll_seconds=0), IdleGate(), RecordingBackend()
    result = local_poll("p", spec, refusing, backend, datetime.now(UTC), idle_gate=gate)
    assert result.observation.snowflake_error is None
    assert result.observation.counts is not None and result.observation.counts.eligible == 150
    assert len(backend.launched) == 2
    _drain_everything(queue)
    for _ in range(2):  # idle now, but without a signature it cannot sleep: full polls
        again = local_poll("p", spec, refusing, backend, datetime.now(UTC), idle_gate=gate)
        assert not again.observation.idle and again.observation.counts is not None
    assert not gate.asleep and refusing.statements["counts"] == 3
