"""Figures the end-to-end tests measure, gathered for `make e2e`'s one JSON line.

Tests call `record(...)` with what they saw; at the end of the session conftest.py
writes the figures to the file named by $SFP_E2E_REPORT (devtools' e2e_report reads
it). A part that could not run says why with `not_run(part, reason)`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from snowflake_devtools.e2e_report import REPORT_ENV

FIGURES: dict[str, Any] = {}


def record(**figures: Any) -> None:
    FIGURES.update(figures)


def add(name: str, amount: float) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + amount


def not_run(part: str, reason: str) -> None:
    """A part that cannot run on this machine: one line in the output, named in the JSON."""
    print(f"\nNOT RUN: {part}: {reason}")
    FIGURES.setdefault("not_run", {})[part] = reason


def write_report(outcomes: dict[str, int]) -> None:
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    Path(target).write_text(json.dumps({**FIGURES, "tests": outcomes}, default=str))
