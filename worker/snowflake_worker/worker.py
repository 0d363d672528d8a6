"""`snowflake-processor worker`: the Job's entrypoint."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .connection import connect, load_snowflake_settings, reconnect
from .drain import Drainer, summary_line
from .errors import FatalError
from .http_clients import service_clients
from .logs import configure_json_logging
from .preflight import check_service_accepts_client
from .queue import QueueClient
from .settings import WorkerSettings, load_worker_settings
from .termination import (
    NOTHING_CLAIMED,
    StoppedBeforeClaiming,
    stop_cleanly_until_claiming,
    termination_message_path,
    write_termination_message,
)
from .tls import client_ssl_context

log = logging.getLogger("snowflake_worker")


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
    try:
        settings = load_worker_settings()
        configure_json_logging(settings.log_level)
        snowflake = load_snowflake_settings()
        ssl_context = client_ssl_context(settings.cert_dir)
        connection = connect(snowflake)
    except FatalError as exc:
        log.error(str(exc))
        if settings is not None:
            write_termination_message(
                settings.termination_message_path, {"event": "fatal", "error": str(exc)}
            )
        return exc.exit_code
    queue = QueueClient(connection, snowflake.table_ref, reconnect=lambda: reconnect(snowflake))
    log.info(
        "worker started",
        extra={"processor_id": settings.processor_id, "table": str(snowflake.table_ref)},
    )
    try:
        summary = asyncio.run(_drain(settings, queue, ssl_context))
    except FatalError as exc:
        log.error(str(exc))
        write_termination_message(
            settings.termination_message_path, {"event": "fatal", "error": str(exc)}
        )
        return exc.exit_code
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


async def _drain(settings: WorkerSettings, queue: QueueClient, ssl_context: Any) -> Any:
    async with service_clients(
        settings.concurrency, ssl_context, settings.request_timeout_seconds
    ) as clients:
        await check_service_accepts_client(clients[0], settings.endpoint_url)
        return await Drainer(settings, queue, clients).run()
