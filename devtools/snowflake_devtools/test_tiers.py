"""`make test`: the tests that need no cluster and the real-cluster tests, side by side.

The real-cluster tests (tests/e2e) spend most of their time waiting: for pods, for a
kubelet stopped a minute on purpose, for leases to run out. The rest of the tests keep
the CPUs busy. One after the other they would take their sum; side by side, about the
longer of the two. The real-cluster tier runs as `make e2e` runs it and streams to the
terminal (its build phases, then its figures as one JSON line); the other tier's goes to a
log, whose summary (and, when it fails, its last lines) is printed when both have ended.

With arguments (``make test ARGS="-k chaos"``) it is one plain pytest run, as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from snowflake_devtools.cluster import hostdeps

CLUSTER_TESTS = "tests/e2e"
LOG = Path(".test-logs/tests-without-cluster.log")
TAIL_LINES_ON_FAILURE = 200


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


def summary_lines(text: str, failed: bool) -> list[str]:
    """What to show of the other tier's log: its short summary and result line; the last
    TAIL_LINES_ON_FAILURE lines when it failed (the failures' tracebacks come first)."""
    lines = text.splitlines()
    if failed:
        return lines[-TAIL_LINES_ON_FAILURE:]
    start = next(
        (i for i, line in enumerate(lines) if "short test summary info" in line), len(lines) - 1
    )
    return lines[max(0, start) :]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        return subprocess.call(pytest_command(*args))
    LOG.parent.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    if os.geteuid() == 0:
        # Before either tier: the other tier's host checks then find the Debian packages
        # the real-cluster tier would otherwise be installing at the same moment.
        hostdeps.ensure_step("cluster", lambda message: print(f"[tiers] {message}", flush=True))
    with LOG.open("w") as out:
        others = subprocess.Popen(
            pytest_command(f"--ignore={CLUSTER_TESTS}"), stdout=out, stderr=subprocess.STDOUT
        )
    print(f"[tiers] the tests without the cluster run beside these; output in {LOG}", flush=True)
    # As `make e2e` runs them: the run ends with their figures as one JSON line.
    cluster_code = subprocess.call([sys.executable, "-m", "snowflake_devtools.e2e_report"])
    print("[tiers] waiting for the tests without the cluster", flush=True)
    others_code = others.wait()
    print(f"[tiers] the tests without the cluster ({LOG}):")
    for line in summary_lines(LOG.read_text(errors="replace"), failed=others_code != 0):
        print(line)
    print(
        f"[tiers] real-cluster tests exit {cluster_code}, the others exit {others_code}; "
        f"{time.monotonic() - began:.0f} s side by side",
        flush=True,
    )
    return cluster_code or others_code


if __name__ == "__main__":
    sys.exit(main())
