"""Connections to the Snowflake emulator (fakesnow's server) through the real connector."""

from __future__ import annotations

from typing import Any

import snowflake.connector


def connect_to_emulator(port: int, **overrides: Any) -> Any:
    """A raw connector connection to the emulator on ``port``; keyword arguments are the
    connector's, replacing these defaults."""
    params: dict[str, Any] = {
        "user": "test",
        "password": "test",
        "account": "fakesnow",
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        "network_timeout": 10,
    }
    params.update(overrides)
    return snowflake.connector.connect(**params)
