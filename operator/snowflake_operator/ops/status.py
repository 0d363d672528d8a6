"""`snowflake-processor status`: counts by status, the oldest pending entry's age, and the
most recent dead letters with their errors."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from snowflake_worker.errors import ConfigError

from .command import OpsCommand
from .output import Column, human_seconds, truncate, utc_iso, utc_text

if TYPE_CHECKING:  # only for annotations: the session pulls in the Snowflake connector
    from .output import Output
    from .session import Session

HELP = "entries by status, the oldest pending age, recent dead letters"
ERROR_WIDTH = 80  # in the table; -o wide, json and yaml have the whole message


def _count(text: str, *, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
    return value


def _dead_letter_count(text: str) -> int:
    return _count(text, low=0, high=1000)


def _max_attempts(text: str) -> int:
    return _count(text, low=1, high=100)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Entries by status, the age of the oldest pending entry, and the most recent dead "
        "letters with their errors. Without NAME, --resource or table flags: every "
        "SnowflakeProcessor of the namespace (-n, else the kubeconfig context's; -A: all "
        "namespaces) with what the operator last reported, as kubectl get sfp does."
    )
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="without NAME: list the processors of every namespace",
    )
    parser.add_argument(
        "--dead-letters",
        type=_dead_letter_count,
        default=10,
        metavar="N",
        help="how many recent dead letters to show, 0 to 1000 (10)",
    )
    parser.add_argument(
        "--max-attempts",
        type=_max_attempts,
        default=None,
        metavar="N",
        help="attempts limit that decides which pending entries are eligible "
        "(the resource's queue.maxAttempts, else 5)",
    )


def run(args: argparse.Namespace, session: Session) -> int:
    max_attempts = args.max_attempts or session.target.max_attempts
    queue = session.queue
    counts = queue.counts(max_attempts=max_attempts)
    dead = queue.recent_dead_letters(args.dead_letters) if args.dead_letters else []
    age = counts.oldest_pending_age_seconds
    numbers = {
        "eligible": counts.eligible,
        "pending": counts.pending,
        "processing": counts.processing,
        "completed": counts.completed,
        "failed": counts.failed,
        "total": counts.total,
    }
    output = session.output
    processor = _processor(session)
    if output.structured:
        document: dict[str, Any] = {
            **({"processor": processor} if processor is not None else {}),
            "table": session.target.table_name,
            "max_attempts": max_attempts,
            "counts": numbers,
            "oldest_pending_age_seconds": age,
            "oldest_pending_age": None if age is None else human_seconds(age),
            "dead_letters": [
                {
                    "id": letter.id,
                    "error_message": letter.error_message,
                    "retry_count": letter.retry_count,
                    "failed_at": utc_iso(letter.failed_at),
                }
                for letter in dead
            ],
        }
        output.document(document)
        return 0
    if processor is not None:
        output.line(_processor_line(processor))
    output.table(
        f"queue {session.target.table_name}",
        [Column("status"), Column("entries", numeric=True)],
        [
            ["eligible now", counts.eligible],
            ["pending", counts.pending],
            ["processing", counts.processing],
            ["completed", counts.completed],
            ["failed (dead letters)", counts.failed],
            ["total", counts.total],
        ],
    )
    pending_age = "none pending" if age is None else f"{human_seconds(age)} ({age} s)"
    output.line(f"oldest pending entry: {pending_age}")
    output.line(f"eligible: pending, fewer than {max_attempts} attempts, next attempt due")
    if not args.dead_letters:
        return 0
    output.line()
    if not dead:
        output.line("no dead letters")
        return 0
    output.table(
        f"dead letters: the {len(dead)} most recent of {counts.failed}",
        [
            Column("id"),
            Column("attempts", numeric=True),
            Column("failed at (UTC)"),
            Column("error"),
        ],
        [
            [
                letter.id,
                letter.retry_count,
                utc_text(letter.failed_at),
                truncate(letter.error_message, None if output.wide else ERROR_WIDTH),
            ]
            for letter in dead
        ],
    )
    return 0


def _processor(session: Session) -> dict[str, Any] | None:
    """With NAME: what the operator last reported in the resource's status."""
    resource = session.target.resource
    if resource is None or resource.cluster is None:
        return None
    cluster = resource.cluster
    status = cluster.status
    conditions = status.get("conditions")
    ready = next(
        (c for c in conditions or [] if isinstance(c, dict) and c.get("type") == "Ready"), {}
    )
    return {
        "namespace": cluster.namespace,
        "name": cluster.name,
        "ready": ready.get("status"),
        "reason": ready.get("reason"),
        "message": ready.get("message"),
        "active_jobs": status.get("activeJobs"),
        "last_poll_time": status.get("lastPollTime"),
    }


def _processor_line(processor: dict[str, Any]) -> str:
    name = f"SnowflakeProcessor {processor['namespace']}/{processor['name']}"
    if processor["ready"] is None and processor["last_poll_time"] is None:
        return f"{name}: no status yet (is the operator running?)"
    reason = f" ({processor['reason']})" if processor["reason"] else ""
    jobs = processor["active_jobs"] if processor["active_jobs"] is not None else "-"
    return (
        f"{name}: Ready {processor['ready'] or 'unknown'}{reason}, active Jobs {jobs}, "
        f"last poll {processor['last_poll_time'] or 'never'}"
    )


# status with no queue table named lists the cluster's processors, and a laptop without a
# kubeconfig may have meant a table: both ways are said.
NO_CLUSTER_TO_LIST = (
    "no kubeconfig to list SnowflakeProcessors from (set KUBECONFIG, pass --kubeconfig PATH "
    "or create ~/.kube/config); for one queue table give NAME, --resource FILE, or --account, "
    "--database, --schema and --table"
)


def list_processors(args: argparse.Namespace, output: Output) -> int:
    """Every processor of a namespace (or all) with its last reported status; no login."""
    from snowflake_operator.kube.client_config import cluster_reachable_as_kubectl_would

    from .cluster import kubectl_overrides
    from .cluster import list_processors as listed_in_cluster

    reachable = cluster_reachable_as_kubectl_would(kubectl_overrides(args))
    if args.kubeconfig is None and not reachable:
        raise ConfigError(NO_CLUSTER_TO_LIST)

    namespace, items = listed_in_cluster(args.namespace, args.all_namespaces, args)
    rows = [processor_row(item) for item in items]
    rows.sort(key=lambda row: (row["namespace"], row["name"]))
    if output.structured:
        output.document({"namespace": namespace, "processors": rows})
        return 0
    if not rows:
        where = "any namespace" if namespace is None else f"namespace {namespace}"
        output.line(f"no SnowflakeProcessors in {where}")
        return 0
    columns = [
        Column("namespace"),
        Column("name"),
        Column("ready"),
        Column("reason"),
        Column("backlog", numeric=True),
        Column("active", numeric=True),
        Column("failed", numeric=True),
        Column("last poll (UTC)"),
    ]
    keys = ["namespace", "name", "ready", "reason", "backlog", "active_jobs", "failed"]
    if namespace is not None:  # one namespace: said in the title, not in every row
        columns, keys = columns[1:], keys[1:]
    title = "SnowflakeProcessors" + ("" if namespace is None else f" in {namespace}")
    output.table(
        title,
        columns,
        [[_cell(row[key]) for key in keys] + [_cell(row["last_poll_time"])] for row in rows],
    )
    return 0


def processor_row(item: dict[str, Any]) -> dict[str, Any]:
    """A resource as the list shows it (pure): its Ready condition and counts, as written
    by the operator; what it never wrote is None."""
    metadata = item.get("metadata") or {}
    status = item.get("status") if isinstance(item.get("status"), dict) else {}
    assert isinstance(status, dict)
    conditions = status.get("conditions") if isinstance(status.get("conditions"), list) else []
    ready = next(
        (c for c in conditions or [] if isinstance(c, dict) and c.get("type") == "Ready"), {}
    )
    return {
        "namespace": str(metadata.get("namespace") or ""),
        "name": str(metadata.get("name") or ""),
        "ready": ready.get("status"),
        "reason": ready.get("reason"),
        "backlog": status.get("backlog"),
        "active_jobs": status.get("activeJobs"),
        "failed": status.get("failed"),
        "last_poll_time": status.get("lastPollTime"),
    }


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


COMMAND = OpsCommand("status", HELP, add_arguments, run, untargeted=list_processors)
