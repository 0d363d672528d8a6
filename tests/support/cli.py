"""The `snowflake-processor` command run as a user runs it: ``python -m snowflake_processor``
in a subprocess, with none of this process's SFP_ settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snowflake_worker.identifiers import TableRef


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SFP_")}
    return subprocess.run(
        [sys.executable, "-m", "snowflake_processor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**clean, **(env or {})},
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Exit 0, and the whole of stdout is one JSON document (an object): returned."""
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, nothing on stdout, no traceback, and each needle in stderr."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def queue_flags(snowflake_port: int, table: TableRef) -> list[str]:
    """The flags that name a queue table in the Snowflake emulator."""
    return [
        "--auth",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(snowflake_port),
        "--account",
        "local",
        "--database",
        table.database,
        "--schema",
        table.schema,
        "--table",
        table.table,
    ]


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    """An input file for the command: each line ended by a newline, UTF-8."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
