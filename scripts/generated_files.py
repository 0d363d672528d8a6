"""What the generators in scripts/ share: write a generated file, or check it is current.

python scripts/<generator>.py           # write the file
python scripts/<generator>.py --check   # exit 1, with a diff, if it is out of date
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

MAX_DIFF_LINES = 60


def replace_section(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with what lies between the marker lines ``begin`` and ``end`` replaced."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise SystemExit(f"markers not found: {begin!r} ... {end!r}")
    return text[: start + len(begin)] + "\n" + body + text[stop:]


def write_or_check(
    path: Path, generated: str, command: str, argv: Sequence[str] | None = None
) -> int:
    parser = argparse.ArgumentParser(description=f"Generate {path.name}.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if not args.check:
        if current != generated:
            path.write_text(generated, encoding="utf-8")
            print(f"wrote {path}")
        return 0
    if current == generated:
        return 0
    diff = list(
        difflib.unified_diff(
            current.splitlines(), generated.splitlines(), "committed", "generated", lineterm=""
        )
    )
    print("\n".join(diff[:MAX_DIFF_LINES]), file=sys.stderr)
    print(f"{path} is out of date: run {command}", file=sys.stderr)
    return 1
