"""`make e2e`: the end-to-end tests on the real local cluster, ending with one JSON line.

Runs pytest on tests/e2e with $SFP_E2E_REPORT naming a file; the tests record what they
measured there (tests/e2e/figures.py). Exits with pytest's status: a failed test fails
`make e2e` whatever the figures say.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPORT_ENV = "SFP_E2E_REPORT"

# The figures the issue asks for, first and in this order; anything else follows.
HEADLINE = (
    "kubernetes",
    "kubelet",
    "crd_accepted",
    "invalid_refused",
    "helm",
    "operator_ready",
    "entries",
    "completed",
    "failed",
    "lost",
    "duplicates",
    "jobs_completed",
    "gc_ok",
    "pods_matching_fargate_profiles",
    "pods",
    "build_seconds",
    "seconds",
)


def summary(figures: Mapping[str, Any], seconds: float, exit_code: int) -> dict[str, Any]:
    """The JSON line: every headline figure (None when its test did not get that far),
    then the rest. `passed` is pytest's verdict."""
    line: dict[str, Any] = {key: figures.get(key) for key in HEADLINE}
    line["seconds"] = round(seconds, 1)
    line.update({k: v for k, v in figures.items() if k not in line})
    line["passed"] = exit_code == 0
    line.setdefault("not_run", {})
    return line


def run(pytest_args: Sequence[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="sfp-e2e-") as tmp:
        report = Path(tmp) / "figures.json"
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/e2e", "-p", "no:cacheprovider", *pytest_args],
            env={**os.environ, REPORT_ENV: str(report)},
            check=False,
        )
        figures = json.loads(report.read_text()) if report.is_file() else {}
    print(json.dumps(summary(figures, time.monotonic() - began, result.returncode)))
    return result.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Every argument goes to pytest as it is (e.g. `-x -k drain`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"]):
        print("usage: python -m snowflake_devtools.e2e_report [PYTEST_ARGS...]\n" + __doc__)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
