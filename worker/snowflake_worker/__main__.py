"""`python -m snowflake_worker` and the `snowflake-processor-worker` command: run one Job.

The worker image holds only this package, so the Job's command needs nothing else. Its
``--help`` lists every SFP_* variable with its default and meaning, read from the settings
models themselves (their Field descriptions), so it cannot drift from what is read.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .termination import (
    NOTHING_CLAIMED,
    StoppedBeforeClaiming,
    stop_cleanly_until_claiming,
    termination_message_path,
    write_termination_message,
)

USAGE = """\
usage: snowflake-processor-worker

Run one Job: claim entries from the queue table and call the service with mutual TLS.
The whole configuration comes from these environment variables, validated before anything
is claimed (docs/worker-environment.md explains them at length):
"""
EXIT_CODES = """\
exit codes: 0 drained (queue empty, entry budget or deadline reached) or stopped by
SIGTERM or by a queue table that stayed locked through every retry of a claim, after
finishing or releasing every entry it held; 1 fatal at run time (Snowflake or the service
unreachable, login refused, an outcome that could not be written back); 2 invalid
configuration or certificates.
"""


@dataclass(frozen=True)
class Variable:
    name: str  # SFP_...
    default: str  # as shown: "required", "none", or the value
    meaning: str


def environment_variables() -> dict[str, list[Variable]]:
    """Every variable the worker reads, grouped by settings model, in declaration order."""
    from .settings import WorkerSettings
    from .snowflake_settings import SnowflakeSettings

    return {
        "Worker": _variables(WorkerSettings),
        "Snowflake": _variables(SnowflakeSettings),
    }


def _variables(model: Any) -> list[Variable]:
    prefix = str(model.model_config.get("env_prefix", ""))
    found = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        variable = alias if isinstance(alias, str) else prefix + name.upper()
        meaning = field.description or "(undocumented)"
        found.append(Variable(variable, _default_text(field), meaning))
    return found


def _default_text(field: Any) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "default_text" in extra:
        return str(extra["default_text"])
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=False)
    if default is None:
        return "none"
    return str(default.value if isinstance(default, Enum) else default)


def help_text() -> str:
    lines = [USAGE]
    for group, variables in environment_variables().items():
        lines.append(f"{group}:")
        for variable in variables:
            lines.append(f"  {variable.name} ({variable.default})")
            lines.extend(
                textwrap.wrap(
                    variable.meaning, width=88, initial_indent=" " * 6, subsequent_indent=" " * 6
                )
            )
        lines.append("")
    lines.append(EXIT_CODES)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:  # `snowflake-processor worker` spelled the long way
        args = args[1:]
    if args and args[0] in ("-h", "--help"):
        print(help_text(), end="")
        return 0
    if args:
        print(f"error: unrecognized arguments: {' '.join(args)}", file=sys.stderr)
        return 2
    stop_cleanly_until_claiming()  # before the heavy imports below
    try:
        from .worker import run_worker
    except StoppedBeforeClaiming:
        write_termination_message(termination_message_path(), NOTHING_CLAIMED)
        return 0
    return run_worker()


if __name__ == "__main__":
    sys.exit(main())
