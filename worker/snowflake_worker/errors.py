"""Errors that end a command with one clear line instead of a traceback."""

from __future__ import annotations

from .constants import ERROR_TEXT_LIMIT


class FatalError(Exception):
    """A problem the program cannot work around: bad config, missing certificates, auth.

    The message is shown to the user as it is, so it says what is wrong and how to fix it.
    """

    exit_code = 1


class ConfigError(FatalError):
    """Invalid configuration or input, found before anything was changed."""

    exit_code = 2


def one_line(problem: BaseException | str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """The first line of an error (or of any text), cut to ``limit`` characters: what logs,
    events, conditions and termination messages show."""
    if isinstance(problem, BaseException):
        text = str(problem).strip() or type(problem).__name__
    else:
        text = problem.strip()
    return (text.splitlines() or [""])[0][:limit]
