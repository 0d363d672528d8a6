"""The offline deployment tools (`make tools` puts them in .tools/bin) and checkov's report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"


def tool(name: str) -> str:
    """A tool from PATH or .tools/bin; missing is a failure, since `make test` installs it."""
    found = shutil.which(name)
    if found:
        return found
    local = TOOLS_BIN / name
    if local.exists():
        return str(local)
    pytest.fail(f"{name} is neither on PATH nor in {TOOLS_BIN}: run `make tools`")


def tool_env() -> dict[str, str]:
    """checkov shells out to `helm`: make sure it finds ours."""
    return {**os.environ, "PATH": f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def checkov_report(framework: str, *target: str) -> dict[str, Any]:
    """Run checkov on one framework and return that framework's report; fail when checkov
    printed nothing, ran no runner, or produced no report for the framework."""
    result = subprocess.run(
        [
            tool("checkov"),
            "--skip-download",
            "--framework",
            framework,
            *target,
            "-o",
            "json",
            "--compact",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=tool_env(),
        timeout=600,
    )
    combined = result.stdout + result.stderr
    assert "no runners" not in combined.lower(), combined[-2000:]
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON report (exit {result.returncode}):\n{combined[-4000:]}"
        )
    # One framework gives one report; checkov prints a list when there are several.
    reports = report if isinstance(report, list) else [report]
    found = [r for r in reports if r.get("check_type") == framework]
    # Without anything to scan checkov prints a bare zero summary and no report.
    assert len(found) == 1, f"checkov ran no {framework} checks: {result.stdout[:500]}"
    assert isinstance(found[0], dict)
    return found[0]


def passed_checks(report: dict[str, Any]) -> set[str]:
    """Fail when checkov's report has a failed check (listing them) or passed none; the ids
    of the checks that passed."""
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']}, {c.get('file_path')})"
        for c in report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["passed"] > 0, summary
    return {c["check_id"] for c in report["results"]["passed_checks"]}
