"""One line for a pydantic ValidationError, whatever the user calls the fields.

Environment variables (the worker), ``spec.`` paths (the operator's events and the ops
commands' resource files) and command-line flags (the ops commands) name the same
problem differently; the caller says how to name a location, this module does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError


def validation_problems(
    exc: ValidationError,
    locate: Callable[[Sequence[str]], str] = ".".join,
    reword: Callable[[str], str] = lambda message: message,
) -> str:
    """``"where: what; where: what"``: each error's location (through ``locate``) and
    message (pydantic's "Value error, " prefix removed, then ``reword``)."""
    problems = []
    for error in exc.errors():
        where = locate([str(part) for part in error["loc"]])
        message = reword(error["msg"].removeprefix("Value error, "))
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def environment_location(prefix: str) -> Callable[[Sequence[str]], str]:
    """Locations as environment variables: ``("port",)`` -> ``SFP_SNOWFLAKE_PORT``."""

    def locate(parts: Sequence[str]) -> str:
        name = "_".join(parts).upper()
        return name if not name or name.startswith("SFP_") else prefix + name

    return locate


def spec_location(parts: Sequence[str]) -> str:
    """Locations in a SnowflakeProcessor: ``("job", "cpu")`` -> ``spec.job.cpu``,
    ``("job", "env", "0", "name")`` -> ``spec.job.env[0].name``."""
    text = "spec"
    for part in parts:
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


def settings_error_message(exc: Exception, env_prefix: str) -> str:
    """The worker's configuration errors: one line naming the environment variables."""
    if not isinstance(exc, ValidationError):
        return f"invalid configuration: {exc}"
    return "invalid configuration: " + validation_problems(exc, environment_location(env_prefix))
