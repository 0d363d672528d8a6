"""The generators in scripts/ run as a person runs them, with --check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def assert_generated_file_current(script: str) -> None:
    """``python scripts/<script> --check`` exits 0: the file it writes is up to date."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
