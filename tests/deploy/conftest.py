"""Deploy checks' shared tools: promtool, built before any test runs (a cold build takes
about five minutes, as long as the per-test timeout)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from snowflake_devtools.cluster.prometheus import ensure_prometheus_tool


def _say(message: str) -> None:
    print(f"[promtool] {message}", flush=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    used = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    if "promtool" in used:
        began = time.monotonic()
        ensure_prometheus_tool("promtool", say=_say)
        # `make cold-check` reads this line as a phase of the run.
        print(f"[phase] prometheus tools: {time.monotonic() - began:.1f} s", flush=True)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return ensure_prometheus_tool("promtool", say=_say)
