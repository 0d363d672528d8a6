"""Shared fixtures: a real fakesnow server process, behind the model of Snowflake's
semantics (snowflake_devtools/snowflake_model.py), and connections to it; and, as plugins,
those of tests/support/kube_fixtures.py and tests/support/operator_world.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from snowflake_devtools.processes import ServerProcess, start_snowflake_emulator
from tests.support.snowflake import EMULATOR_MODEL_OPTIONS, connect_to_emulator

# Fixtures shared by more than one directory of tests: the Kubernetes API emulator
# (kube_api, kube_client, kubeconfig) and the operator's world (operator_settings, world).
# pytest takes pytest_plugins only from the root conftest.
pytest_plugins = ["tests.support.kube_fixtures", "tests.support.operator_world"]


@pytest.fixture(scope="session")
def snowflake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("snowflake")
    server = start_snowflake_emulator(
        root / "data", root / "emulator.log", options=EMULATOR_MODEL_OPTIONS
    )
    yield server
    server.stop()


@pytest.fixture
def database_name() -> str:
    """A fresh database per test, so tests never see each other's rows."""
    return f"T_{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture
def snowflake_connect(
    snowflake_server: ServerProcess, database_name: str
) -> Iterator[Callable[..., Any]]:
    """Open raw connector connections to the emulator, with the test's database created."""
    opened: list[Any] = []

    def connect(**overrides: Any) -> Any:
        conn = connect_to_emulator(snowflake_server.port, **overrides)
        opened.append(conn)
        return conn

    setup = connect()
    setup.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database_name}")
    setup.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {database_name}.QUEUE")
    yield connect
    for conn in opened:
        conn.close()
