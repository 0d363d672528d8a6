"""`snowflake-processor demo` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.polling import wait_for


def _demo(work_dir: Path, *arguments: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snowflake_processor",
        "demo",
        "--work-dir",
        str(work_dir),
        "--poll-seconds",
        "1",
        *arguments,
    ]


def test_demo_drains_the_queue_and_reports_json(tmp_path: Path) -> None:
    result = subprocess.run(
        _demo(
            tmp_path,
            "--entries",
            "300",
            "--poison",
            "4",
            "--malformed",
            "2",
            "--entries-per-job",
            "100",
            "--max-jobs",
            "2",
            "--latency-ms",
            "5",
            "--json",
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["entries"] == 300
    assert summary["lost"] == 0
    assert summary["failed"] == 6  # the crafted entries, and nothing else
    assert summary["completed"] == 294
    assert summary["duplicates"] == 0
    assert 1 <= summary["jobs_launched"] <= 6
    assert 0 < summary["snowflake_statements"] < 300
    assert summary["seconds"] > 0
    # progress was shown while it ran, with the drain rate and the time left at that rate
    ticks = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert ticks and all("active Jobs" in line and "entries/s" in line for line in ticks)
    assert ticks[-1].endswith("ETA 0 s")
    assert any(" ETA " in line and not line.endswith("ETA -") for line in ticks[:-1])
    # the summary says how to list the dead letters, in this run's emulator
    assert summary["dead_letters_command"] == (
        f"snowflake-processor status --dead-letters 10 --auth emulator --host 127.0.0.1 "
        f"--port {summary['snowflake_port']} --account local --database DEMO --schema QUEUE "
        "--table WORK_QUEUE"
    )
    assert summary["dead_letters_command"] in result.stderr
    assert f"Snowflake emulator on 127.0.0.1:{summary['snowflake_port']}" in result.stderr
    # each Job left its summary where Kubernetes would show it
    terminations = list((tmp_path / "jobs").glob("*/termination-log"))
    assert len(terminations) == summary["jobs_launched"]


def test_ctrl_c_stops_workers_and_releases_their_entries(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        _demo(
            tmp_path,
            "--entries",
            "3000",
            "--latency-ms",
            "300",
            "--concurrency",
            "4",
            "--max-jobs",
            "2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def workers_started() -> bool:
        # Started, not just launched: a worker still importing dies of SIGTERM unheard.
        logs = list((tmp_path / "jobs").glob("*/worker.log"))
        if logs and all("worker started" in log.read_text() for log in logs):
            return True
        assert demo.poll() is None, "the demo ended before a worker started"
        return False

    wait_for(workers_started, 120, "the workers' 'worker started' lines")
    time.sleep(3)  # workers are mid-batch
    os.kill(demo.pid, signal.SIGINT)
    _, stderr = demo.communicate(timeout=90)
    assert demo.returncode == 130
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    summaries = [
        json.loads(path.read_text()) for path in (tmp_path / "jobs").glob("*/termination-log")
    ]
    assert summaries and all(s["stop_reason"] == "sigterm" for s in summaries)
    assert all(s["released"] + s["completed"] + s["failed"] == s["claimed"] for s in summaries)


def test_keep_running_serves_the_emulator_for_the_printed_command(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        _demo(tmp_path, "--entries", "60", "--poison", "2", "--malformed", "1", "--latency-ms",
              "2", "--entries-per-job", "60", "--keep-running", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        summary = json.loads(demo.stdout.readline())  # the JSON line comes before the wait
        assert summary["failed"] == 3
        command = summary["dead_letters_command"].split()
        assert command[0] == "snowflake-processor"
        listed = subprocess.run(
            [sys.executable, "-m", "snowflake_processor", *command[1:], "-o", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        status = json.loads(listed.stdout)
        assert status["counts"]["failed"] == 3
        errors = sorted(letter["error_message"].split(":")[0] for letter in status["dead_letters"])
        assert errors == ["HTTP 422", "HTTP 422", "data is not valid JSON"]
    finally:
        os.kill(demo.pid, signal.SIGINT)
        _, stderr = demo.communicate(timeout=90)
    assert demo.returncode == 0, stderr
    assert "stays up on 127.0.0.1" in stderr and "Traceback" not in stderr


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_stops_a_demo_started_where_sigint_is_ignored(tmp_path: Path) -> None:
    """A shell starts background commands with SIGINT ignored, and Python then keeps it
    ignored; the demo promises that Ctrl-C (SIGINT) stops it, so it listens regardless."""
    demo = subprocess.Popen(
        _demo(tmp_path, "--entries", "20", "--latency-ms", "2", "--keep-running", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,  # a signal disposition only, set before exec
    )
    try:
        assert demo.stdout is not None
        assert json.loads(demo.stdout.readline())["lost"] == 0  # drained; now it waits
    finally:
        os.kill(demo.pid, signal.SIGINT)
        _, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 0, stderr
    assert "stopping the emulator and the service" in stderr


def test_sigterm_stops_the_demo_and_its_emulator(tmp_path: Path) -> None:
    """`kill` is how scripts and supervisors stop a program: the emulator and the mTLS
    service must not outlive the demo that started them."""
    demo = subprocess.Popen(
        _demo(tmp_path, "--entries", "20", "--latency-ms", "2", "--keep-running", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        summary = json.loads(demo.stdout.readline())
        port = summary["snowflake_port"]
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # up while waiting
    finally:
        os.kill(demo.pid, signal.SIGTERM)
        _, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 0, stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
