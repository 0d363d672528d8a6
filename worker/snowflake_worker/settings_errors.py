"""Turn pydantic validation errors into one line naming the environment variable."""

from __future__ import annotations

from pydantic import ValidationError


def settings_error_message(exc: Exception, env_prefix: str) -> str:
    if not isinstance(exc, ValidationError):
        return f"invalid configuration: {exc}"
    problems = []
    for error in exc.errors():
        location = "_".join(str(part) for part in error["loc"]).upper()
        if location and not location.startswith("SFP_"):
            location = env_prefix + location
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "invalid configuration: " + "; ".join(problems)
