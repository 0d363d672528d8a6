"""The wheels hold the product only: no emulator, test double or demo module in them.

Built the way the Dockerfiles build them (``pip wheel --no-deps``), then every module in
each wheel is parsed for what it imports.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {"fakesnow", "trustme", "moto", "kmock", "hypercorn", "uvicorn", "snowflake_devtools"}
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
OPERATOR_LIBRARIES = {"kopf", "kubernetes", "boto3", "botocore", "prometheus_client", "rich"}


# What the Dockerfiles copy into their build (operator/snowflake_operator/sql links to sql/).
CONTEXT = ("pyproject.toml", "README.md", "sql", "worker", "operator")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    source = tmp_path_factory.mktemp("context")  # setuptools writes build/ into the sources
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in CONTEXT:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheels")
    for project in (source, source / "worker"):
        built = subprocess.run(
            [*PIP_WHEEL, "--verbose", "--wheel-dir", str(out), str(project)],
            check=True,
            capture_output=True,
            text=True,
        )
        BUILD_OUTPUT.append(built.stdout + built.stderr)
    found = {path.name.split("-")[0]: path for path in out.glob("*.whl")}
    assert set(found) == {"snowflake_processor", "snowflake_processor_worker"}, found
    return found


BUILD_OUTPUT: list[str] = []


def test_wheels_build_without_deprecation_warnings(wheels: dict[str, Path]) -> None:
    """setuptools stops supporting `license = { text = ... }` in February 2027; the SPDX
    string needs setuptools 77 or newer, which every pyproject.toml requires."""
    assert len(BUILD_OUTPUT) == 2
    for output in BUILD_OUTPUT:
        assert "is deprecated" not in output, output[-3000:]
    for path in (
        ROOT / "pyproject.toml",
        ROOT / "worker" / "pyproject.toml",
        ROOT / "devtools" / "pyproject.toml",
    ):
        text = path.read_text()
        assert 'license = "Apache-2.0"' in text, path
        assert 'requires = ["setuptools>=77"' in text, path


@pytest.mark.parametrize("name", ["snowflake_processor", "snowflake_processor_worker"])
def test_wheel_metadata_carries_the_spdx_license(wheels: dict[str, Path], name: str) -> None:
    with zipfile.ZipFile(wheels[name]) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in headers.splitlines()


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def modules(wheel: Path) -> dict[str, set[str]]:
    """Module path in the wheel -> the top-level names it imports."""
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: imported_roots(archive.read(name).decode())
            for name in archive.namelist()
            if name.endswith(".py")
        }


def test_imported_roots_sees_lazy_imports() -> None:
    source = "import a.b\nfrom c import d\ndef f():\n    from e.f import g\nfrom . import h\n"
    assert imported_roots(source) == {"a", "c", "e"}


def test_no_wheel_holds_dev_tooling_or_a_demo(wheels: dict[str, Path]) -> None:
    for wheel in wheels.values():
        for module, imports in modules(wheel).items():
            assert not imports & DEV_ONLY, f"{wheel.name}: {module} imports {imports & DEV_ONLY}"
            assert "demo" not in module and "/local/" not in module, f"{wheel.name}: {module}"


def test_the_worker_wheel_holds_only_the_worker(wheels: dict[str, Path]) -> None:
    found = modules(wheels["snowflake_processor_worker"])
    assert found and all(name.startswith("snowflake_worker/") for name in found), sorted(found)
    for module, imports in found.items():
        assert not imports & OPERATOR_LIBRARIES, f"{module} imports {imports & OPERATOR_LIBRARIES}"


def test_the_operator_wheel_holds_the_operator_and_the_command(wheels: dict[str, Path]) -> None:
    packages = {name.split("/")[0] for name in modules(wheels["snowflake_processor"])}
    assert packages == {"snowflake_operator", "snowflake_processor"}
