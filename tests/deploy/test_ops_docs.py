"""Every ops command the runbook (docs/operations.md) and the CLI guide (docs/ops-cli.md)
tell on-call to type parses with the real command-line parser, as `snowflake-processor` or
as `kubectl sfp`: a flag the CLI does not take, or a command it does not have, fails here."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from snowflake_processor.cli import KUBECTL_PROG, PROG, build_parser, commands_for

ROOT = Path(__file__).resolve().parents[2]
GUIDES = (ROOT / "docs" / "operations.md", ROOT / "docs" / "ops-cli.md")
BLOCK = re.compile(r"```(bash|console|sh)\n(.*?)```", re.DOTALL)
# How the guides spell the two programs, and what they stand for. ops-cli.md's samples use
# `sfp` (alias sfp='snowflake-processor') and $R (a --resource with an admin login).
PROGRAMS = {"snowflake-processor": PROG, "sfp": PROG, "kubectl sfp": KUBECTL_PROG}
SHELL_VALUES = {
    "$R": "--resource r.yaml --auth key_pair --snowflake-user JDOE --role QUEUE_ADMIN "
    "--private-key-file key.p8",
    "PORT": "4566",  # the port `make demo` prints
}
REFUSED = "error: argument"  # what argparse prints for a flag it refuses


def command_lines(text: str) -> list[tuple[str, bool]]:
    """Each command of a shell block that runs one of the programs (continuations joined,
    comments and pipes after it dropped), and whether the guide shows it refused: a
    console sample whose output is argparse's refusal."""
    found = []
    for language, block in BLOCK.findall(text):
        lines = re.sub(r"\\\n\s*", " ", block).splitlines()
        for index, line in enumerate(lines):
            line = line.strip()
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line.removeprefix("$ ")
            if not any(line.startswith(f"{name} ") for name in PROGRAMS):
                continue
            output = []
            for after in lines[index + 1 :]:
                if language != "console" or after.startswith("$ "):
                    break
                output.append(after)
            command = re.split(r"\s+(?:#|\||>|&&)\s", line, maxsplit=1)[0]
            found.append((command, any(REFUSED in out for out in output)))
    return found


def argv_of(line: str) -> tuple[str, list[str]]:
    for value_name, value in SHELL_VALUES.items():
        line = re.sub(rf"(?<![\w$]){re.escape(value_name)}(?!\w)", value, line)
    prog = next(p for name, p in PROGRAMS.items() if line.startswith(f"{name} "))
    words = shlex.split(line)
    skip = 2 if prog == KUBECTL_PROG else 1
    return prog, words[skip:]


def every_command() -> list[tuple[str, str, bool]]:
    return [
        (path.name, line, refused)
        for path in GUIDES
        for line, refused in command_lines(path.read_text())
    ]


def test_the_guides_show_commands() -> None:
    shown = every_command()
    assert {name for name, _, _ in shown} == {path.name for path in GUIDES}
    # The runbook names a processor the way the CLI guide does: kubectl sfp ... -n NS NAME.
    assert any(
        line.startswith("kubectl sfp ") for name, line, _ in shown if name == "operations.md"
    )


def parses(line: str) -> str | None:
    """None if the real parser takes the line, else its complaint."""
    prog, argv = argv_of(line)
    parser = build_parser(commands_for(prog), prog)
    try:
        with contextlib.redirect_stderr(io.StringIO()) as complaint:
            parsed = parser.parse_args(argv)
    except SystemExit:
        return complaint.getvalue().strip().splitlines()[-1]
    # enqueue takes [NAME] FILE: a file given first would be read as the processor's name.
    if getattr(parsed, "name", None) and str(parsed.name).endswith(".jsonl"):
        return f"NAME is {parsed.name!r}: the file goes after the processor's name"
    return None


@pytest.mark.parametrize(("guide", "line", "refused"), every_command())
def test_each_command_parses_with_the_real_cli(guide: str, line: str, refused: bool) -> None:
    complaint = parses(line)
    if refused:
        assert complaint is not None, f"{guide}: `{line}` is shown refused but parses"
    else:
        assert complaint is None, f"{guide}: `{line}` does not parse: {complaint}"
