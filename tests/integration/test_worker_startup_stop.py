"""SIGTERM while the worker is still importing its libraries: exit 0 with a summary.

On a busy node the Snowflake connector's import takes seconds; a Job stopped then (the
demo's Ctrl-C, a node drain) must still say that it claimed nothing. The import is
slowed down on purpose, with a marker file written once it is under way, so the signal
lands inside it every time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.polling import wait_for

DRIVER = """
import importlib.abc, pathlib, runpy, sys, time

MARKER = pathlib.Path(sys.argv[1])

class SlowConnector(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "snowflake.connector":
            MARKER.write_text("importing")
            time.sleep(30)
        return None

sys.meta_path.insert(0, SlowConnector())
sys.argv = ["snowflake-processor-worker"]
runpy.run_module("snowflake_worker", run_name="__main__")
"""


def test_sigterm_during_the_imports_ends_cleanly_with_a_summary(tmp_path: Path) -> None:
    marker = tmp_path / "importing"
    termination = tmp_path / "termination-log"
    termination.write_text("")  # the kubelet creates it empty
    worker = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(marker)],
        env={"SFP_TERMINATION_MESSAGE_PATH": str(termination), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(marker.exists, 60, "the worker importing the Snowflake connector")
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, stderr
    summary = json.loads(termination.read_text())
    assert summary["stop_reason"] == "sigterm"
    assert summary["claimed"] == 0
