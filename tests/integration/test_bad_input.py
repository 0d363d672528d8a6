"""Bad configuration: one clear line, a non-zero exit, and no entry changes state."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snowflake_devtools.certificates import (
    write_client_valid_between,
    write_mismatched_key_client,
)
from snowflake_worker.queue import QueueClient
from tests.support.ports import closed_port
from tests.support.queues import fetch_rows, fill
from tests.support.worker_runs import WorkerWorld

ENTRIES = 10


@pytest.fixture
def filled(workers: WorkerWorld) -> WorkerWorld:
    """The worker world with ENTRIES pending entries."""
    fill(workers.queue, ENTRIES)
    return workers


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
        ({"SFP_ENDPOINT_URL": "https://127.0.0.1:99999/x"}, ["SFP_ENDPOINT_URL", "port"]),
        ({"SFP_ENDPOINT_URL": "https://[::1/x"}, ["SFP_ENDPOINT_URL", "https://[::1/x"]),
        ({"SFP_ENDPOINT_URL": "https://"}, ["SFP_ENDPOINT_URL", "host"]),
        ({"SFP_LOG_LEVEL": "LOUD"}, ["SFP_LOG_LEVEL", "LOUD"]),
        ({"SFP_REQUEST_TIMEOUT_SECONDS": "inf"}, ["SFP_REQUEST_TIMEOUT_SECONDS", "finite"]),
    ],
    ids=[
        "table",
        "database",
        "http-endpoint",
        "concurrency",
        "claim-batch",
        "budget",
        "lease",
        "port-out-of-range",
        "broken-ipv6-host",
        "no-host",
        "unknown-log-level",
        "infinite-timeout",
    ],
)
def test_invalid_configuration_exits_2(
    filled: WorkerWorld, overrides: dict[str, str], needles: list[str]
) -> None:
    run = filled.start(filled.spec(1), **overrides)
    code, stderr = run.wait()
    assert code == 2
    _assert_one_clear_line(stderr, *needles)
    _assert_untouched(filled.queue)
    assert run.summary()["event"] == "fatal"
    assert needles[0] in run.summary()["error"]


def test_missing_certificate_file(filled: WorkerWorld, tmp_path: Path) -> None:
    empty = tmp_path / "no-certs"
    empty.mkdir()
    code, stderr = filled.start(filled.spec(1), cert_dir=empty).wait()
    assert code == 2
    _assert_one_clear_line(stderr, "client.pem", "missing", "SFP_CERT_DIR")
    _assert_untouched(filled.queue)


def test_key_that_does_not_match_its_certificate(filled: WorkerWorld, tmp_path: Path) -> None:
    mismatched = write_mismatched_key_client(filled.certs, tmp_path)
    code, stderr = filled.start(filled.spec(1), cert_dir=mismatched).wait()
    assert code == 2
    _assert_one_clear_line(stderr, "client-key.pem", "does not match")
    _assert_untouched(filled.queue)


@pytest.mark.parametrize(
    ("window", "needle"),
    [((-30, -1), "expired on"), ((1, 30), "not valid before")],
    ids=["expired", "not-yet-valid"],
)
def test_client_certificate_outside_its_validity(
    filled: WorkerWorld, window: tuple[int, int], needle: str
) -> None:
    now = datetime.now(UTC)
    start, end = (now + timedelta(days=days) for days in window)
    root = filled.certs.ca_cert.parent.parent
    cert_dir = write_client_valid_between(root, f"valid-from-{window[0]}-days", start, end)
    service = filled.start_service()
    code, stderr = filled.start(filled.spec(service.port), cert_dir=cert_dir).wait()
    assert code == 2
    _assert_one_clear_line(stderr, "client.pem", needle)
    _assert_untouched(filled.queue)


def test_unreachable_snowflake(filled: WorkerWorld) -> None:
    spec = filled.spec(1, snowflake_port=closed_port())
    run = filled.start(spec, SFP_SNOWFLAKE_LOGIN_TIMEOUT_SECONDS="5")
    code, stderr = run.wait(timeout=90)
    assert code == 1
    _assert_one_clear_line(stderr, "cannot connect to Snowflake")
    assert '"event":"fatal"' in run.termination.read_text()
    _assert_untouched(filled.queue)


def test_unreachable_service_claims_nothing(filled: WorkerWorld) -> None:
    code, stderr = filled.start(filled.spec(closed_port())).wait()
    assert code == 1
    _assert_one_clear_line(stderr, "unreachable", "no entry was claimed")
    _assert_untouched(filled.queue)


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


def _snowflake_processor(
    *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snowflake_processor", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.mark.parametrize("command", [["operator"], ["reconcile-once", "orders", "--spec", "x"]])
def test_a_bad_log_level_is_refused_at_once(command: list[str]) -> None:
    result = _snowflake_processor(*command, "--log-level", "LOUD")
    assert result.returncode == 2
    assert "--log-level: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_operator_without_a_cluster_says_so_and_stops(tmp_path: Path) -> None:
    """No kubeconfig and not in a pod: one line, exit 2, not a login retried for ever."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),  # no ~/.kube/config there
        "KUBECONFIG": str(tmp_path / "missing"),
    }
    result = _snowflake_processor("operator", env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "snowflake-processor operator: no cluster to watch: set KUBECONFIG or create "
        "~/.kube/config (as for kubectl), or run it in a pod"
    ]
