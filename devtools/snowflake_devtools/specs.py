"""The spec of a processor whose queue lives in the local Snowflake emulator."""

from __future__ import annotations

from typing import Any

from snowflake_operator.spec.model import (
    Endpoint,
    JobSettings,
    ProcessorSpec,
    QueueSettings,
    SnowflakeAuth,
    SnowflakeTarget,
)
from snowflake_worker.identifiers import TableRef
from snowflake_worker.snowflake_settings import AuthMode


def emulator_spec(
    table: TableRef,
    snowflake_port: int,
    service_port: int,
    *,
    endpoint: dict[str, Any] | None = None,
    queue: dict[str, Any] | None = None,
    job: dict[str, Any] | None = None,
    **spec: Any,
) -> ProcessorSpec:
    """A ProcessorSpec for the emulator and the local mTLS service; sections override
    the production defaults field by field (snake_case names). Its Jobs are processes on
    this machine, not Fargate pods: compute nodes (so a short lease or deadline, which a
    Fargate start would not fit in, is allowed)."""
    return ProcessorSpec(
        snowflake=SnowflakeTarget(
            account="local",
            database=table.database,
            schema_=table.schema,
            table=table.table,
            auth=SnowflakeAuth(mode=AuthMode.EMULATOR),
            host="127.0.0.1",
            port=snowflake_port,
        ),
        endpoint=Endpoint(url=f"https://127.0.0.1:{service_port}/process", **(endpoint or {})),
        queue=QueueSettings(**(queue or {})),
        job=JobSettings(**{"compute": "nodes", **(job or {})}),
        **spec,
    )
