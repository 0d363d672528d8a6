"""The emulator's command line for its model of Snowflake (snowflake_emulator.py)."""

from __future__ import annotations

from snowflake_devtools.snowflake_emulator import user_default


def test_user_defaults_are_typed_as_a_client_sends_them() -> None:
    """fakesnow reads any non-empty string as true: "false" must arrive as false."""
    assert user_default("nocommit:autocommit=false") == ("nocommit", "AUTOCOMMIT", False)
    assert user_default("slow:LOCK_TIMEOUT=5") == ("slow", "LOCK_TIMEOUT", 5)
    assert user_default("la:TIMEZONE=America/Los_Angeles")[2] == "America/Los_Angeles"
