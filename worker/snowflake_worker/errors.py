"""Errors that end a command with one clear line instead of a traceback."""

from __future__ import annotations


class FatalError(Exception):
    """A problem the program cannot work around: bad config, missing certificates, auth.

    The message is shown to the user as it is, so it says what is wrong and how to fix it.
    """

    exit_code = 1


class ConfigError(FatalError):
    """Invalid configuration or input, found before anything was changed."""

    exit_code = 2
