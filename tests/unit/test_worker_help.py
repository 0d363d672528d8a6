"""`snowflake-processor-worker --help` lists every SFP_* variable the worker reads, with its
default and meaning, from the settings models themselves; docs/worker-environment.md has the
same tables, generated from the same models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from snowflake_worker.settings import WorkerSettings
from snowflake_worker.snowflake_settings import SnowflakeSettings
from tests.support.generators import assert_generated_file_current

ROOT = Path(__file__).resolve().parents[2]


def _variable(model: Any, name: str, field: Any) -> str:
    """The environment variable pydantic-settings reads for a field (written apart from the
    help's own code)."""
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    return f"{model.model_config['env_prefix']}{name}".upper()


FIELDS = [
    (model, name, field)
    for model in (WorkerSettings, SnowflakeSettings)
    for name, field in model.model_fields.items()
]


def _run(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def worker_help() -> str:
    return _run("-m", "snowflake_worker", "--help")


def test_help_lists_every_variable_with_its_default(worker_help: str) -> None:
    lines = worker_help.splitlines()
    for model, name, field in FIELDS:
        variable = _variable(model, name, field)
        (line,) = [line for line in lines if line.startswith(f"  {variable} (")]
        if field.is_required():
            assert line == f"  {variable} (required)"
        elif field.default is None and not (field.json_schema_extra or {}).get("default_text"):
            assert line == f"  {variable} (none)"
    assert "  SFP_CONCURRENCY (32)" in lines
    assert "  SFP_SNOWFLAKE_AUTH (workload_identity)" in lines
    assert "  SFP_PROCESSOR_ID (host name)" in lines
    assert "  SFP_SNOWFLAKE_NETWORK_TIMEOUT_SECONDS (statement timeout + 30)" in lines
    assert "exit codes: 0 drained" in worker_help


def test_every_variable_says_what_it_means(worker_help: str) -> None:
    for _, name, field in FIELDS:
        assert field.description, f"{name} has no Field description: it is its --help line"
    assert "(undocumented)" not in worker_help
    assert "calls in flight at once (1-1024)" in worker_help


def test_the_operator_cli_shows_the_same_help(worker_help: str) -> None:
    assert _run("-m", "snowflake_processor", "worker", "--help") == worker_help


def test_the_documented_tables_are_generated_from_the_same_models() -> None:
    assert_generated_file_current("gen_worker_environment.py")
    doc = (ROOT / "docs" / "worker-environment.md").read_text(encoding="utf-8")
    for model, name, field in FIELDS:
        assert f"| `{_variable(model, name, field)}` |" in doc
