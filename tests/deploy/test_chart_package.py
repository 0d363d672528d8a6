"""The chart as it is distributed: `make chart` packages it with the real helm, and
`helm show readme` prints a README generated from values.yaml that documents every key."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_tools import ROOT, tool
from tests.support.generators import assert_generated_file_current

CHART = ROOT / "charts" / "snowflake-processor"
README = CHART / "README.md"


def _helm(*args: str) -> str:
    result = subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _keys(document: Any, prefix: str = "") -> Iterator[str]:
    """Every key of values.yaml, dotted (walked apart from the generator's comment parser)."""
    for key, value in document.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from _keys(value, f"{path}.")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _helm("package", str(CHART), "--destination", str(out))
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    archive = out / f"snowflake-processor-{version}.tgz"
    assert archive.is_file()
    return archive


def test_the_readme_is_generated_from_the_values() -> None:
    assert_generated_file_current("gen_chart_readme.py")
    readme = README.read_text(encoding="utf-8")
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for key in _keys(values):
        listed = f"| `{key}` |" in readme or f"\n### `{key}`\n" in readme  # a row or a section
        assert listed, f"{key} is not in the chart README"
    assert "| `operator.config.statusHeartbeatSeconds` | int | `600` |" in readme
    assert '| `mode` | string | `"operator"` |' in readme


def test_helm_show_readme_prints_it_from_the_package(package: Path) -> None:
    shown = _helm("show", "readme", str(package))
    assert shown.rstrip("\n") == README.read_text(encoding="utf-8").rstrip("\n")  # helm adds one
    chart = yaml.safe_load(_helm("show", "chart", str(package)))
    assert chart["annotations"]["artifacthub.io/license"] == "Apache-2.0"
    with tarfile.open(package) as archive:
        names = set(archive.getnames())
    assert "snowflake-processor/templates/crds.yaml" in names
    assert "snowflake-processor/files/crds/snowflakeprocessors.yaml" in names
    assert "snowflake-processor/values.schema.json" in names


def test_the_package_renders_like_the_chart_directory(package: Path) -> None:
    images = ("--values", str(Path(__file__).with_name("chart-image-values.yaml")))
    packaged = _helm("template", "sfp", str(package), *images)
    assert "snowflake-processor-worker" in packaged
    assert packaged == _helm("template", "sfp", str(CHART), *images)


def test_make_chart_packages_with_helm_into_dist() -> None:
    plan = subprocess.run(
        ["make", "-n", "chart", "DIST=out"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert ".venv/bin/python scripts/gen_chart_readme.py --check" in lines
    assert ".tools/bin/helm package charts/snowflake-processor --destination out" in lines


def test_make_chart_needs_helm_alone() -> None:
    """Packaging the chart installs helm, not the checkers (checkov, hadolint) of `make
    tools`: -B plans every prerequisite as if nothing were installed yet."""
    plan = subprocess.run(
        ["make", "-n", "-B", "chart", "DIST=out"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plan.returncode == 0, plan.stderr
    installs = [line for line in plan.stdout.splitlines() if "install_tools.py" in line]
    assert installs == [".venv/bin/python scripts/install_tools.py helm"]
    assert "checkov" not in plan.stdout
    assert "hadolint" not in plan.stdout
