"""Local ports for tests: one that is free to listen on, one that nothing listens on."""

from __future__ import annotations

# The development tools pick free ports for their emulators the same way: one definition.
from snowflake_devtools.snowflake_emulator import free_port

__all__ = ["closed_port", "free_port"]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused.

    It is a port the OS just handed out and took back, so nothing was listening on it a
    moment ago; the same as :func:`free_port`, named for what the test means by it."""
    return free_port()
