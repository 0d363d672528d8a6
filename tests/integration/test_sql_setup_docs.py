"""Every `snowflake-processor sql` command docs/snowflake-setup.md and docs/cutover.md tell an
administrator to type runs: `render` as written, `apply` with `--dry-run` added (the real
login is a person's key pair on a real account), with the docs' own $LOGIN and $TABLE."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from snowflake_processor.cli import PROG, build_parser, commands_for
from tests.support.cli import run_cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GUIDES = (ROOT / "docs" / "snowflake-setup.md", ROOT / "docs" / "cutover.md")
BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
ASSIGNMENT = re.compile(r'^([A-Z]+)="(.*?)"$', re.MULTILINE | re.DOTALL)
PROGRAM = "snowflake-processor sql "
TERRAFORM_OUTPUT = "/tmp/sfp-terraform.json"
KEY_FILE = "~/.snowflake/jdoe.p8"


def sql_commands(path: Path) -> list[str]:
    """The guide's `snowflake-processor sql` lines, continuations joined, its shell
    variables (assigned in its own blocks) expanded, trailing comments dropped."""
    text = path.read_text(encoding="utf-8")
    blocks = [re.sub(r"\\\n\s*", " ", block) for block in BLOCK.findall(text)]
    variables = {name: value for block in blocks for name, value in ASSIGNMENT.findall(block)}
    found = []
    for block in blocks:
        for line in block.splitlines():
            line = line.strip()
            if not line.startswith(PROGRAM):
                continue
            line = re.split(r"\s+#\s", line, maxsplit=1)[0]
            for name, value in variables.items():
                line = line.replace(f"${name}", value)
            found.append(line)
    return found


def every_command() -> list[tuple[str, str]]:
    return [(path.name, line) for path in GUIDES for line in sql_commands(path)]


def test_the_guides_show_render_and_apply_with_parts() -> None:
    lines = [line for _, line in every_command()]
    assert {name for name, _ in every_command()} == {path.name for path in GUIDES}
    assert any(" render " in line and "--part all" in line for line in lines)
    assert any("--part release-legacy-claims" in line for line in lines)
    assert all("--part" in line for line in lines)


@pytest.mark.parametrize(("guide", "line"), every_command())
def test_each_sql_command_of_the_guides_runs(guide: str, line: str, tmp_path: Path) -> None:
    output = tmp_path / "terraform.json"
    output.write_text(
        json.dumps(
            {
                f"{name}_role_arn": {"value": f"arn:aws:iam::123456789012:role/sfp-{name}"}
                for name in ("operator", "worker", "reconciler")
            }
        ),
        encoding="utf-8",
    )
    key = tmp_path / "jdoe.p8"
    key.write_text("not read by a dry run\n", encoding="utf-8")
    line = line.replace(TERRAFORM_OUTPUT, str(output)).replace(KEY_FILE, str(key))
    line = line.replace("--out-dir rendered/", f"--out-dir {tmp_path / 'rendered'}")
    argv = shlex.split(line)[1:]
    if argv[1] == "apply":
        argv.append("--dry-run")
    result = run_cli(*argv)
    assert result.returncode == 0, f"{guide}: `{line}`: {result.stderr}"
    assert "USE ROLE" in result.stdout or (tmp_path / "rendered").is_dir()


def test_the_cutover_status_command_parses() -> None:
    """The one command of docs/cutover.md that needs a cluster: it parses with the CLI."""
    text = (ROOT / "docs" / "cutover.md").read_text(encoding="utf-8")
    variables = dict(ASSIGNMENT.findall(re.sub(r"\\\n\s*", " ", text)))
    (line,) = [
        line.strip()
        for block in BLOCK.findall(text)
        for line in block.splitlines()
        if line.strip().startswith("snowflake-processor status ")
    ]
    for name, value in variables.items():
        line = line.replace(f"${name}", value)
    parser = build_parser(commands_for(PROG), PROG)
    args = parser.parse_args(shlex.split(line)[1:])
    assert (args.namespace, args.name, args.role) == (
        "snowflake-processor",
        "processor-name",
        "SFP_ADMIN",
    )
