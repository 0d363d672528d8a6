"""One release version, in VERSION: the chart (version, appVersion and so the image tags'
default), the Python distributions and the operator's pin of the worker all say it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "snowflake-processor"
SET_VERSION = [sys.executable, str(ROOT / "scripts" / "set_version.py")]


def _version() -> str:
    return (ROOT / "VERSION").read_text().strip()


def test_this_release_is_0_2_0() -> None:
    """0.2.0: the release that reads what 0.1.0 stored and upgrades its installs."""
    assert _version() == "0.2.0"


def test_the_chart_says_the_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == _version()


def test_every_distribution_says_the_version() -> None:
    for path in ("pyproject.toml", "worker/pyproject.toml", "devtools/pyproject.toml"):
        project = tomllib.loads((ROOT / path).read_text())["project"]
        assert project["version"] == _version(), path
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"snowflake-processor-worker=={_version()}" in root["dependencies"]


def test_the_check_passes_here_and_names_a_copy_that_differs(tmp_path: Path) -> None:
    """scripts/set_version.py --check, on this tree and on a copy with VERSION raised."""
    assert subprocess.run([*SET_VERSION, "--check"], capture_output=True).returncode == 0
    copy = tmp_path / "tree"
    for path in ("VERSION", "pyproject.toml", "worker/pyproject.toml", "devtools/pyproject.toml"):
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_text((ROOT / path).read_text())
    (copy / "charts/snowflake-processor").mkdir(parents=True)
    (copy / "charts/snowflake-processor/Chart.yaml").write_text((CHART / "Chart.yaml").read_text())
    (copy / "scripts").mkdir()
    (copy / "scripts/set_version.py").write_text((ROOT / "scripts/set_version.py").read_text())
    script = [sys.executable, str(copy / "scripts" / "set_version.py")]
    (copy / "VERSION").write_text("9.9.9\n")
    stale = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1
    assert "charts/snowflake-processor/Chart.yaml" in stale.stderr
    assert "worker/pyproject.toml" in stale.stderr
    subprocess.run(script, check=True)  # writes the copies from VERSION
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 0
    chart = yaml.safe_load((copy / "charts/snowflake-processor/Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == "9.9.9"
    worker = tomllib.loads((copy / "worker/pyproject.toml").read_text())["project"]
    assert worker["version"] == "9.9.9"
