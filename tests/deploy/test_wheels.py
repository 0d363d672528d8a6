"""The wheels hold the product only: no emulator, test double or demo module in them.

Built the way the Dockerfiles build them (``pip wheel --no-deps``), then every module in
each wheel is parsed for what it imports, and each wheel's declared dependencies are
checked against the hashed lock file its image installs first (the wheels themselves go
in with ``--no-deps``).
"""

from __future__ import annotations

import ast
import email.parser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

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


def requires_dist(wheel: Path) -> list[Requirement]:
    """The wheel's Requires-Dist entries that apply here (no extra, this platform)."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = email.parser.Parser().parsestr(archive.read(metadata).decode())
    found = [Requirement(text) for text in headers.get_all("Requires-Dist") or []]
    return [r for r in found if r.marker is None or r.marker.evaluate({"extra": ""})]


def hashed_pins(file: str) -> dict[str, str]:
    """{name: version} of a hashed lock file under requirements/."""
    text = (ROOT / "requirements" / file).read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, flags=re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


# Each wheel, the hashed file of the image that installs it, and the own distributions
# installed beside it (from the same build, not from the file).
LOCKED_BY = {
    "snowflake_processor_worker": ("worker.txt", set()),
    "snowflake_processor": ("operator.txt", {"snowflake-processor-worker"}),
}


@pytest.mark.parametrize("name", sorted(LOCKED_BY))
def test_each_wheels_dependencies_are_in_its_images_hashed_file(
    wheels: dict[str, Path], name: str
) -> None:
    """The image installs the wheel with --no-deps after the hashed file: every
    dependency the built wheel declares must be there, at a version it accepts."""
    file, beside = LOCKED_BY[name]
    pins = hashed_pins(file)
    assert len(pins) > 10, f"{file}: {pins}"
    requirements = requires_dist(wheels[name])
    assert requirements, f"{name}: no Requires-Dist read"
    for requirement in requirements:
        dependency = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if dependency in beside:
            continue
        assert dependency in pins, f"{name} needs {requirement}; {file} lacks it"
        assert requirement.specifier.contains(pins[dependency], prereleases=True), (
            f"{name} needs {requirement}; {file} pins {pins[dependency]}"
        )


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
