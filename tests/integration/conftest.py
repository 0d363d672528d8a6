"""Integration fixtures: a queue table in the emulator, demo certificates, the worker and
the mTLS service (`workers`), moto's S3 and a trustme CA for certificate bundles.

The helpers they are built from live in tests/support; the Kubernetes emulator's fixtures
and the operator's `world` come from there too, as plugins (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from snowflake_devtools.certificates import DemoCertificates, write_demo_certificates
from snowflake_devtools.processes import ServerProcess
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from tests.support.s3 import moto_server, s3_client, versioned_bucket
from tests.support.snowflake import location
from tests.support.sql_tables import migrated_legacy_table
from tests.support.worker_runs import WorkerWorld, mtls_services, worker_processes

pytestmark = pytest.mark.integration


# --- the queue ------------------------------------------------------------------------


@pytest.fixture
def queue_table(snowflake_connect: Callable[..., Any], database_name: str) -> TableRef:
    table = TableRef(database_name, "QUEUE", "WORK_QUEUE")
    ensure_queue_table(snowflake_connect(), SchemaTarget(table=table))
    return table


@pytest.fixture
def queue(snowflake_connect: Callable[..., Any], queue_table: TableRef) -> QueueClient:
    return QueueClient(snowflake_connect(**location(queue_table)), queue_table)


@pytest.fixture
def legacy_queue(snowflake_connect: Callable[..., Any], database_name: str) -> QueueClient:
    """A table made by the legacy design, then migrated in place (001-003)."""
    table = TableRef(database_name, "QUEUE", "LEGACY")
    connection = snowflake_connect(**location(table))
    migrated_legacy_table(connection, table)
    return QueueClient(connection, table)


# --- the worker and the service it calls ----------------------------------------------


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DemoCertificates:
    return write_demo_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def workers(
    queue: QueueClient, snowflake_server: ServerProcess, certs: DemoCertificates, tmp_path: Path
) -> Iterator[WorkerWorld]:
    """The queue, and ways to start mTLS services (5 ms latency unless told otherwise) and
    worker processes; whatever the test started is stopped after it."""
    with (
        mtls_services(certs, tmp_path, latency_ms=5, log_name="service") as start_service,
        worker_processes(certs, tmp_path) as start_worker,
    ):
        yield WorkerWorld(queue, snowflake_server.port, certs, start_service, start_worker)


# --- S3 and certificate bundles -------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh versioned bucket per test."""
    return versioned_bucket(s3)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="snowflake-processor test CA")
