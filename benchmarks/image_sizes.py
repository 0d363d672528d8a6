"""How much each image's Python dependencies weigh: the worker's and the operator's.

For each image: a fresh ``python -m venv``, ``pip install --no-cache-dir`` of the
distributions it installs (the worker: ``worker/``; the operator: ``worker/`` and the root)
(not editable: wheels are built from a copy of what the Docker build context holds), pip
and setuptools removed again as the Dockerfiles do, then the size of site-packages
(bytes of every file, .pyc included: pip compiles them and the images ship them) and the
number of distributions in it (snowflake-processor included).

Not part of the tests or of ``make bench``; run it by hand (needs the package index):

    .venv/bin/python benchmarks/image_sizes.py [--keep DIR]

Prints a table, then one JSON line:
{"worker_extra_mb": ..., "operator_extra_mb": ..., "worker_packages": n, "operator_packages": n}
MB here is 10^6 bytes. The base image (python:3.11.x-slim-bookworm) is not counted.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the Dockerfiles copy into the builder (operator/snowflake_operator/sql links to sql/).
CONTEXT = ("pyproject.toml", "README.md", "sql", "worker", "operator")
# The distributions each image installs, as paths in the copied context.
IMAGES = {"worker": ("worker",), "operator": ("worker", ".")}
MB = 1_000_000


@dataclass
class Measurement:
    extra: str
    site_packages_bytes: int
    distributions: dict[str, int] = field(default_factory=dict)  # name -> bytes

    @property
    def mb(self) -> float:
        return round(self.site_packages_bytes / MB, 1)

    def largest(self, count: int = 5) -> list[tuple[str, int]]:
        return sorted(self.distributions.items(), key=lambda item: -item[1])[:count]


def copy_context(target: Path) -> Path:
    """The sources as the Docker build sees them, so the repository gets no build/ dirs."""
    source = target / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "Dockerfile")
    for name in CONTEXT:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    return source


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True)


def tree_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def distribution_sizes(site: Path) -> dict[str, int]:
    """Bytes per installed distribution, from each one's RECORD."""
    sizes: dict[str, int] = {}
    for info in sorted(site.glob("*.dist-info")):
        record = info / "RECORD"
        name = info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        total = 0
        if record.exists():
            with record.open(newline="") as handle:
                for row in csv.reader(handle):
                    if not row:
                        continue
                    path = (site / row[0]).resolve()
                    if path.is_file():
                        total += path.stat().st_size
        sizes[name] = total
    return sizes


def measure(image: str, source: Path, workdir: Path, python: str) -> Measurement:
    venv = workdir / f"venv-{image}"
    run(python, "-m", "venv", venv)
    venv_python = venv / "bin" / "python"
    run(
        venv_python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-cache-dir",
        "--disable-pip-version-check",
        *(str(source / path) for path in IMAGES[image]),
    )
    # As in the Dockerfiles: nothing installs at run time.
    run(venv_python, "-m", "pip", "uninstall", "--quiet", "--yes", "pip", "setuptools")
    (site,) = venv.glob("lib/python*/site-packages")
    return Measurement(image, tree_bytes(site), distribution_sizes(site))


def print_table(results: list[Measurement]) -> None:
    print(f"{'image':<10} {'site-packages MB':>17} {'distributions':>14}  largest (MB)")
    print(f"{'-' * 10} {'-' * 17} {'-' * 14}  {'-' * 40}")
    for result in results:
        largest = ", ".join(f"{name} {size / MB:.1f}" for name, size in result.largest())
        print(f"{result.extra:<10} {result.mb:>17.1f} {len(result.distributions):>14}  {largest}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venvs")
    parser.add_argument("--keep", type=Path, help="build the venvs here and keep them")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="image-sizes-") as tmp:
        workdir = Path(tmp) if args.keep is None else args.keep.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        source = copy_context(Path(tmp))
        results = [measure(image, source, workdir, args.python) for image in IMAGES]

    print_table(results)
    by_extra = {r.extra: r for r in results}
    print(
        json.dumps(
            {
                "worker_extra_mb": by_extra["worker"].mb,
                "operator_extra_mb": by_extra["operator"].mb,
                "worker_packages": len(by_extra["worker"].distributions),
                "operator_packages": len(by_extra["operator"].distributions),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
