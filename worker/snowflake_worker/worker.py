"""`snowflake-processor worker`: the Job's entrypoint."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import ambient
from .connection import connect, reconnect
from .drain import Drainer, summary_line
from .errors import ConfigError, FatalError, one_line
from .http_clients import service_clients
from .logs import configure_json_logging
from .preflight import check_service_accepts_client
from .queue import QueueClient
from .service_headers import read_header_files
from .service_request import ServiceRequest
from .settings import WorkerSettings, load_worker_settings
from .snowflake_settings import load_snowflake_settings
from .termination import (
    NOTHING_CLAIMED,
    StoppedBeforeClaiming,
    stop_cleanly_until_claiming,
    termination_message_path,
    write_termination_message,
)
from .tls import client_ssl_context

log = logging.getLogger("snowflake_worker")


def _termination_path(settings: WorkerSettings | None) -> Path:
    """The settings' path; before they load (or when they are invalid), the variable's."""
    if settings is not None:
        return settings.termination_message_path
    return termination_message_path()


def _fatal(settings: WorkerSettings | None, message: str, exit_code: int) -> int:
    log.error(message)
    write_termination_message(_termination_path(settings), {"event": "fatal", "error": message})
    return exit_code


def run_worker() -> int:
    configure_json_logging()
    stop_cleanly_until_claiming()
    try:
        return _run(None)
    except StoppedBeforeClaiming:
        log.info("stopped before claiming anything")
        write_termination_message(termination_message_path(), NOTHING_CLAIMED)
        return 0


def _run(settings: WorkerSettings | None) -> int:
    ignored = ambient.apply()  # before anything reads the environment
    try:
        settings = load_worker_settings()
        configure_json_logging(settings.log_level)
        request = service_request(settings)
        snowflake = load_snowflake_settings()
        ssl_context = client_ssl_context(settings.cert_dir)
        connection = connect(snowflake)
    except FatalError as exc:
        return _fatal(settings, str(exc), exc.exit_code)
    queue = QueueClient(connection, snowflake.table_ref, reconnect=lambda: reconnect(snowflake))
    log.info(
        "worker started",
        extra={
            "processor_id": settings.processor_id,
            "table": str(snowflake.table_ref),
            "ignored_environment": list(ignored),  # names only
        },
    )
    try:
        if settings.store_response_bytes:
            check_result_column(queue)
        summary = asyncio.run(_drain(settings, queue, ssl_context, request))
    except FatalError as exc:
        return _fatal(settings, str(exc), exc.exit_code)
    except StoppedBeforeClaiming:
        raise
    except Exception as exc:  # a bug: still one line and a termination message, never silence
        return _fatal(settings, f"worker failed: {type(exc).__name__}: {one_line(exc)}", 1)
    finally:
        connection.close()
    line = summary_line(summary)
    if summary.stop_reason == "fatal":
        log.error("worker stopped on a fatal error", extra=line)
    else:
        log.info("worker finished", extra=line)
    write_termination_message(settings.termination_message_path, line)
    if summary.unwritten:
        log.error(
            f"{summary.unwritten} outcomes could not be written back; their leases will "
            "expire and the entries will be processed again"
        )
    return 1 if summary.stop_reason == "fatal" or summary.unwritten else 0


def service_request(settings: WorkerSettings) -> ServiceRequest:
    """What each call sends; the extra headers are read (and checked) here, at start."""
    folder = settings.endpoint_headers_dir
    headers = {} if folder is None else read_header_files(folder)
    return ServiceRequest(settings.endpoint_method, settings.endpoint_payload, headers)


def check_result_column(queue: QueueClient) -> None:
    """Storing answers needs the result column: without it every write-back would fail."""
    if not queue.has_result_column():
        raise ConfigError(
            f"SFP_STORE_RESPONSE_BYTES is set but {queue.table} has no result column; add it "
            "with `snowflake-processor sql apply` (sql/005_result_column.sql); no entry was "
            "claimed"
        )


async def _drain(
    settings: WorkerSettings, queue: QueueClient, ssl_context: Any, request: ServiceRequest
) -> Any:
    timeout = settings.request_timeout_seconds
    async with service_clients(settings.concurrency, ssl_context, timeout) as clients:
        await check_service_accepts_client(clients[0], settings.endpoint_url, timeout)
        # Measured from here, the start of claiming; an absolute time (the Job's start plus
        # its deadline) can be converted to a monotonic instant here instead.
        # The earlier of SFP_DEADLINE_AT (from the Job's start) and SFP_DEADLINE_SECONDS.
        deadline_at = time.monotonic() + settings.seconds_to_deadline(datetime.now(UTC))
        drainer = Drainer(settings, queue, clients, deadline_at=deadline_at, request=request)
        return await drainer.run()
