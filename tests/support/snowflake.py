"""Connections to the Snowflake emulator (fakesnow's server) through the real connector,
and how the tests start it: behind the model of Snowflake's semantics."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import snowflake.connector

from snowflake_devtools.processes import ServerProcess, start_snowflake_emulator
from snowflake_devtools.snowflake_emulator import fetch_model_stats
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_worker.connection import SESSION_OPTIONS
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient

# A user whose sessions default to AUTOCOMMIT = FALSE, as after
# ALTER USER NOCOMMIT SET AUTOCOMMIT = FALSE (or the same on the account).
AUTOCOMMIT_OFF_USER = "nocommit"
EMULATOR_MODEL_OPTIONS = ("--user-default", f"{AUTOCOMMIT_OFF_USER}:AUTOCOMMIT=false")


def connect_to_emulator(port: int, **overrides: Any) -> Any:
    """A raw connector connection to the emulator on ``port``, with the session options the
    project uses (qmark binds, autocommit, UTC); keyword arguments are the connector's,
    replacing these defaults."""
    params: dict[str, Any] = {
        **SESSION_OPTIONS,
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


def location(table: TableRef) -> dict[str, str]:
    """The session's current database and schema: the table's. (fakesnow runs a MERGE only
    in a session with a current schema; the project's connections always have one.)"""
    return {"database": table.database, "schema": table.schema}


def model_stats(port: int) -> dict[str, Any]:
    """What the emulator's Snowflake model saw (lock waits, refused statements)."""
    return fetch_model_stats(port)


def query_texts(port: int) -> list[dict[str, Any]]:
    """The latest statements' text as the emulator received them (QUERY_HISTORY's view):
    ``{"length": characters, "text": the first 64 KiB}``, oldest first."""
    queries: list[dict[str, Any]] = _model_get(port, "queries")["queries"]
    return queries


def _model_get(port: int, what: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/model/{what}", timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found


@contextmanager
def emulator(directory: Path, *options: str) -> Iterator[ServerProcess]:
    """An emulator of the test's own, for model settings the shared one does not use
    (``--lock-hold-ms 1000``, say)."""
    server = start_snowflake_emulator(directory / "data", directory / "emulator.log", 0, options)
    try:
        yield server
    finally:
        server.stop()


def new_queue(port: int, table: TableRef) -> QueueClient:
    """A queue client on a new queue table ``table`` in the emulator on ``port``."""
    setup = connect_to_emulator(port)
    setup.cursor().execute(f'CREATE DATABASE IF NOT EXISTS "{table.database}"')
    setup.cursor().execute(f'CREATE SCHEMA IF NOT EXISTS "{table.database}"."{table.schema}"')
    connection = connect_to_emulator(port, **location(table), network_timeout=60)
    ensure_queue_table(connection, SchemaTarget(table=table))
    return QueueClient(connection, table)
