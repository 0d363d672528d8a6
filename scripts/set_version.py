"""The release version lives in VERSION; this writes it wherever a literal is needed.

Chart.yaml must hold literals (Helm reads no other file), and the worker's pyproject.toml
is built from worker/ alone (its image's build context), so it cannot read a file above
it: each holds a copy, written here and checked by tests/deploy/test_release_version.py.
The chart's README is generated from Chart.yaml: run scripts/gen_chart_readme.py after.

    python scripts/set_version.py 0.3.0    # write VERSION and every copy
    python scripts/set_version.py          # write the copies from VERSION
    python scripts/set_version.py --check  # exit 1 naming each copy that differs
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "VERSION"
SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
# (file, pattern whose group "v" is the version): every copy of the version.
COPIES: tuple[tuple[str, str], ...] = (
    ("pyproject.toml", r'(?m)^version = "(?P<v>[^"]+)"$'),
    ("pyproject.toml", r'"snowflake-processor-worker==(?P<v>[^"]+)"'),
    ("worker/pyproject.toml", r'(?m)^version = "(?P<v>[^"]+)"$'),
    ("devtools/pyproject.toml", r'(?m)^version = "(?P<v>[^"]+)"$'),
    ("charts/snowflake-processor/Chart.yaml", r"(?m)^version: (?P<v>\S+)$"),
    ("charts/snowflake-processor/Chart.yaml", r'(?m)^appVersion: "(?P<v>[^"]+)"$'),
)


def read_version() -> str:
    version = VERSION_FILE.read_text(encoding="utf-8").strip()
    if not SEMVER.match(version):
        raise SystemExit(f"VERSION holds {version!r}: expected MAJOR.MINOR.PATCH, e.g. 0.2.0")
    return version


def copies() -> list[tuple[str, str]]:
    """(where, the version written there) for every copy."""
    found = []
    for path, pattern in COPIES:
        match = re.search(pattern, (ROOT / path).read_text(encoding="utf-8"))
        if match is None:
            raise SystemExit(f"{path}: no version matching {pattern}")
        found.append((f"{path} ({pattern})", match["v"]))
    return found


def write_copies(version: str) -> None:
    for path, pattern in COPIES:
        file = ROOT / path
        text = file.read_text(encoding="utf-8")
        match = re.search(pattern, text)
        assert match is not None, path
        start, end = match.span("v")
        file.write_text(text[:start] + version + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the release version everywhere.")
    parser.add_argument("version", nargs="?", help="the new version (default: VERSION's)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a copy differs")
    args = parser.parse_args(argv)
    if args.check:
        version = read_version()
        stale = [f"{where}: {found}" for where, found in copies() if found != version]
        for line in stale:
            print(f"{line}, not {version} (run python scripts/set_version.py)", file=sys.stderr)
        return 1 if stale else 0
    if args.version:
        if not SEMVER.match(args.version):
            raise SystemExit(f"{args.version!r}: expected MAJOR.MINOR.PATCH, e.g. 0.2.0")
        VERSION_FILE.write_text(args.version + "\n", encoding="utf-8")
    write_copies(read_version())
    return 0


if __name__ == "__main__":
    sys.exit(main())
