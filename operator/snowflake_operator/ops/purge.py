"""`snowflake-processor purge --older-than DURATION`: delete old completed entries.

Only rows with status completed whose completed_at is older than the cutoff; pending,
processing and failed rows are never touched. Deleted in batches of at most --batch-size
rows, one DELETE each, so no statement holds the table's lock for long (workers claim and
write back between batches). Needs DELETE on the table, which the service role
(sql/004_grants.sql) does not have: an admin role runs it.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Any

from .command import OpsCommand
from .output import Column, human_seconds
from .progress import Progress

if TYPE_CHECKING:  # only for annotations: both pull in the Snowflake connector
    from snowflake_worker.queue import QueueClient

    from .session import Session

HELP = "delete completed entries older than a cutoff"
PRIVILEGE_HINT = "purge needs DELETE on the table: use an admin role that has it (--role)"

# The worker's default, repeated: importing snowflake_worker.queue loads the connector, which
# parsing arguments must not (tests/unit/test_purge_batches.py keeps the two equal).
DEFAULT_BATCH_ROWS = 10_000
MAX_BATCH_ROWS = 1_000_000
MAX_DURATION_SECONDS = 36_500 * 86_400  # 100 years: past that DATEADD overflows
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration_seconds(text: str) -> int:
    """'7d', '12h', '90m', '3600s' -> seconds; argparse shows the message on error."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 7d, 12h, 90m or 3600s (a whole number and one of "
            f"s, m, h, d), got {text!r}"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the duration must be positive, got {text!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise argparse.ArgumentTypeError(f"the duration must be at most 36500d, got {text!r}")
    return seconds


def batch_rows(text: str) -> int:
    """--batch-size: a whole number from 1 to MAX_BATCH_ROWS; argparse shows the message."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_BATCH_ROWS:
        raise argparse.ArgumentTypeError(
            f"the batch size must be from 1 to {MAX_BATCH_ROWS:,}, got {text!r}"
        )
    return value


def batches_needed(rows: int, batch_size: int) -> int:
    """DELETE statements a purge of ``rows`` runs: one per full batch, plus the one that
    finds fewer than a batch (none left: it deletes nothing)."""
    return rows // batch_size + 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Delete completed entries that completed longer ago than --older-than, in batches "
        "of --batch-size rows (one DELETE each, so the table's lock is held briefly). "
        "Pending, processing and failed entries are never touched. Needs DELETE on the "
        "table: run it with an admin role (--role), not the service role."
    )
    parser.add_argument(
        "--older-than",
        type=duration_seconds,
        required=True,
        metavar="DURATION",
        help="e.g. 7d, 12h, 90m or 3600s",
    )
    parser.add_argument(
        "--batch-size",
        type=batch_rows,
        default=DEFAULT_BATCH_ROWS,
        metavar="ROWS",
        help=f"rows one DELETE removes at most (default {DEFAULT_BATCH_ROWS:,})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; change nothing"
    )


def run(args: argparse.Namespace, session: Session) -> int:
    seconds: int = args.older_than
    queue = session.queue
    document: dict[str, Any] = {
        "table": session.target.table_name,
        "dry_run": args.dry_run,
        "older_than_seconds": seconds,
        "older_than": human_seconds(seconds),
    }
    if args.dry_run:
        would = queue.count_completed_before(seconds)
        document["would_purge"] = would
        document["batches"] = batches_needed(would, args.batch_size)
    else:
        document.update(_purge(queue, seconds, args.batch_size))
    document["batch_size"] = args.batch_size
    output = session.output
    if output.structured:
        output.document(document)
        return 0
    title = f"purge entries in {document['table']} completed more than {document['older_than']} ago"
    output.table(
        title + (" (dry run: nothing changed)" if args.dry_run else ""),
        [Column("completed entries"), Column("count", numeric=True)],
        [
            ["would be deleted", document["would_purge"]]
            if args.dry_run
            else ["deleted", document["purged"]],
            ["DELETE statements" + (" it would take" if args.dry_run else ""), document["batches"]],
        ],
    )
    return 0


def _purge(queue: QueueClient, seconds: int, batch_size: int) -> dict[str, int]:
    """Delete batch by batch; on a terminal a bar counts the rows (counted first, as the
    bar's end: rows completing meanwhile may take it a little past)."""
    batches = 0
    with Progress(enabled=sys.stderr.isatty()) as progress:
        total = queue.count_completed_before(seconds) if progress.enabled else None
        advance = progress.task("purging", total)

        def on_batch(deleted: int) -> None:
            nonlocal batches
            batches += 1
            if advance is not None:
                advance(deleted)

        purged = queue.purge_completed(seconds, batch_rows=batch_size, on_batch=on_batch)
    return {"purged": purged, "batches": batches}


COMMAND = OpsCommand("purge", HELP, add_arguments, run, privilege_hint=PRIVILEGE_HINT)
