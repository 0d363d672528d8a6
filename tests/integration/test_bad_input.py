"""Bad configuration: one clear line, a non-zero exit, and no entry changes state."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from snowflake_devtools.certificates import DemoCertificates, write_mismatched_key_client
from snowflake_devtools.processes import ServerProcess
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient

from .conftest import WorkerRun, fetch_rows, make_spec

ENTRIES = 10


@pytest.fixture
def filled(queue: QueueClient) -> QueueClient:
    queue.enqueue((f"e{i}", {"n": i}) for i in range(ENTRIES))
    return queue


def _assert_untouched(queue: QueueClient) -> None:
    rows = fetch_rows(queue)
    assert len(rows) == ENTRIES
    assert all(r["status"] == "pending" and r["retry_count"] == 0 for r in rows)
    assert all(r["claim_token"] is None for r in rows)


def _assert_one_clear_line(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if '"level":"error"' in line]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"SFP_SNOWFLAKE_TABLE": 'queue"; DROP TABLE x; --'}, ["SFP_SNOWFLAKE_TABLE", "invalid"]),
        ({"SFP_SNOWFLAKE_DATABASE": "1db"}, ["SFP_SNOWFLAKE_DATABASE"]),
        ({"SFP_ENDPOINT_URL": "http://127.0.0.1:1/process"}, ["https://"]),
        ({"SFP_CONCURRENCY": "0"}, ["SFP_CONCURRENCY"]),
        ({"SFP_CLAIM_BATCH": "-5"}, ["SFP_CLAIM_BATCH"]),
        ({"SFP_MAX_ENTRIES": "0"}, ["SFP_MAX_ENTRIES"]),
        ({"SFP_DEADLINE_SECONDS": "5000", "SFP_LEASE_SECONDS": "600"}, ["SFP_LEASE_SECONDS"]),
    ],
    ids=["table", "database", "http-endpoint", "concurrency", "claim-batch", "budget", "lease"],
)
def test_invalid_configuration_exits_2(
    filled: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_worker: Callable[..., WorkerRun],
    overrides: dict[str, str],
    needles: list[str],
) -> None:
    spec = make_spec(snowflake_server.port, 1, queue_table)
    code, stderr = start_worker(spec, **overrides).wait()
    assert code == 2
    _assert_one_clear_line(stderr, *needles)
    _assert_untouched(filled)


def test_missing_certificate_file(
    filled: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_worker: Callable[..., WorkerRun],
    tmp_path: Path,
) -> None:
    empty = tmp_path / "no-certs"
    empty.mkdir()
    code, stderr = start_worker(
        make_spec(snowflake_server.port, 1, queue_table), cert_dir=empty
    ).wait()
    assert code == 2
    _assert_one_clear_line(stderr, "client.pem", "missing", "SFP_CERT_DIR")
    _assert_untouched(filled)


def test_key_that_does_not_match_its_certificate(
    filled: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_worker: Callable[..., WorkerRun],
    certs: DemoCertificates,
    tmp_path: Path,
) -> None:
    mismatched = write_mismatched_key_client(certs, tmp_path)
    code, stderr = start_worker(
        make_spec(snowflake_server.port, 1, queue_table), cert_dir=mismatched
    ).wait()
    assert code == 2
    _assert_one_clear_line(stderr, "client-key.pem", "does not match")
    _assert_untouched(filled)


def test_unreachable_snowflake(
    filled: QueueClient,
    queue_table: TableRef,
    start_worker: Callable[..., WorkerRun],
) -> None:
    spec = make_spec(_closed_port(), 1, queue_table)
    run = start_worker(spec, SFP_SNOWFLAKE_LOGIN_TIMEOUT_SECONDS="5")
    code, stderr = run.wait(timeout=90)
    assert code == 1
    _assert_one_clear_line(stderr, "cannot connect to Snowflake")
    assert '"event":"fatal"' in run.termination.read_text()
    _assert_untouched(filled)


def test_unreachable_service_claims_nothing(
    filled: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_worker: Callable[..., WorkerRun],
) -> None:
    code, stderr = start_worker(
        make_spec(snowflake_server.port, _closed_port(), queue_table)
    ).wait()
    assert code == 1
    _assert_one_clear_line(stderr, "unreachable", "no entry was claimed")
    _assert_untouched(filled)


@pytest.mark.parametrize(
    "arguments",
    [["--entries", "0"], ["--max-jobs", "-1"], ["--transient-rate", "2"], ["--concurrency", "x"]],
)
def test_demo_rejects_bad_arguments_in_one_line(arguments: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "snowflake_processor", "demo", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert arguments[0] in result.stderr
