"""`make chaos`, scaled down: workers SIGKILLed, Snowflake crashed and restarted, a
faulty service; nothing may be lost and every poison entry must be a dead letter."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowflake_devtools.chaos import CHAOS_TABLE, ChaosConfig, passed, run_chaos
from snowflake_devtools.processes import start_snowflake_emulator
from tests.support.ports import free_port
from tests.support.snowflake import connect_to_emulator

pytestmark = pytest.mark.integration


def test_chaos_loses_nothing_and_dead_letters_poison_with_its_error(tmp_path: Path) -> None:
    config = ChaosConfig(
        entries=300,
        workers=2,
        kills=3,
        seed=11,
        latency_ms=100,  # slow enough that the kills land while workers hold entries
        concurrency=4,
        claim_batch=20,
        entries_per_job=100,
        poll_seconds=1,
        kill_gap_seconds=(0.5, 1.5),
        min_worker_age_seconds=2.0,
        timeout_seconds=150,
        work_dir=tmp_path,
    )

    result = run_chaos(config)

    assert result["drained"], result
    assert result["lost"] == 0, result
    assert result["kills"] >= 3, result
    assert result["snowflake_restarts"] == 1, result
    assert result["operator_reconnects"] >= 1, result  # its session died with the emulator
    assert result["poison"] == 2
    assert result["dead_letters_without_error"] == 0, result
    assert passed(result)

    # Read the table itself, from the data the run left on disk, through a new emulator.
    emulator = start_snowflake_emulator(
        tmp_path / "snowflake", tmp_path / "verify.log", port=free_port()
    )
    try:
        connection = connect_to_emulator(
            emulator.port,
            database=CHAOS_TABLE.database,
            schema=CHAOS_TABLE.schema,
            network_timeout=20,
        )
        cursor = connection.cursor()
        cursor.execute(
            f"SELECT id, status, error_message FROM {CHAOS_TABLE.sql} "
            "WHERE data:poison::BOOLEAN = TRUE ORDER BY id"
        )
        poison_rows = cursor.fetchall()
        cursor.execute(f"SELECT status, COUNT(*) FROM {CHAOS_TABLE.sql} GROUP BY status")
        by_status = dict(cursor.fetchall())
        connection.close()
    finally:
        emulator.stop()

    assert len(poison_rows) == 2
    for entry_id, status, error in poison_rows:
        assert status == "failed", (entry_id, status)
        assert error and "422" in error, (entry_id, error)
    assert set(by_status) <= {"completed", "failed"}, by_status
    assert sum(by_status.values()) == 300
    assert by_status.get("completed", 0) == result["completed"]
