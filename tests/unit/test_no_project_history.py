"""Code, tests, docs and API text state behaviour and reasons, not the project's history:
no issue numbers, no branch names, no "the seed" (the legacy design has a name)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HISTORY = re.compile(
    # owner/repo#123 is another project's issue (a reference for a reader): allowed.
    r"\bissues? #?\d+|(?<![\w/.-])#\d{2,}\b(?![0-9a-fA-F])|\bthe seed\b|\bseed's\b"
    r"|\bseed (design|table|schema|baseline)\b|\b(integ\d*|i1\d[a-z]*) branch\b",
    re.IGNORECASE,
)
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".tpl", ".tf", ".sql", ".toml", ".txt", ""}
ALLOWED = {"tests/unit/test_no_project_history.py"}  # the pattern itself


def tracked_text_files() -> list[str]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    )
    names = [name for name in listed.stdout.splitlines() if name not in ALLOWED]
    return [name for name in names if Path(name).suffix in TEXT_SUFFIXES]


def test_the_pattern_finds_what_it_should() -> None:
    for text in ("see issue 12", "(issue #14)", "before #123", "the seed's claim", "Issues 3"):
        assert HISTORY.search(text), text
    for text in ("--seed 7", "random.seed(1)", "#ffffff", "aws/containers-roadmap#1629"):
        assert not HISTORY.search(text), text


def test_no_file_speaks_of_the_projects_history() -> None:
    found = []
    for name in tracked_text_files():
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if HISTORY.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert found == []
