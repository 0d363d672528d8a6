"""Figures the end-to-end tests measure, gathered for `make e2e`'s one JSON line.

Tests call `record(...)` with what they saw; at the end of the session conftest.py
writes the figures to the file named by $SFP_E2E_REPORT (devtools' e2e_report reads
it). A part that did not run says why with `not_run(part, reason)`: conftest.py calls it
for every e2e test that was skipped (with the skip's reason) or deselected, so the JSON
line tells a part that was never run from one whose figures are missing because it failed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from snowflake_devtools.e2e_report import REPORT_ENV

FIGURES: dict[str, Any] = {}
DESELECTED = "deselected on the command line (-k, -m or --deselect)"


def record(**figures: Any) -> None:
    FIGURES.update(figures)


def add(name: str, amount: float) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + amount


def not_run(part: str, reason: str) -> None:
    """A part that did not run on this machine: one line in the output, named in the JSON."""
    print(f"\nNOT RUN: {part}: {reason}")
    FIGURES.setdefault("not_run", {})[part] = reason


def skip_reason(longrepr: Any) -> str:
    """The reason pytest gives for a skip: its report's longrepr is (path, line, "Skipped:
    REASON") for pytest.skip() and skip markers."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "skipped")


def record_skipped(nodeid: str, longrepr: Any) -> None:
    """A test that pytest skipped (in its setup or its body) did not run: say so."""
    not_run(nodeid, skip_reason(longrepr))


def write_report(outcomes: dict[str, int]) -> None:
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    Path(target).write_text(json.dumps({**FIGURES, "tests": outcomes}, default=str))
