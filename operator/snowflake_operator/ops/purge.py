"""`snowflake-processor purge --older-than DURATION`: delete old completed entries.

Only rows with status completed whose completed_at is older than the cutoff; pending,
processing and failed rows are never touched. Needs DELETE on the table, which the service
role (sql/004_grants.sql) does not have: an admin role runs it.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from .command import OpsCommand
from .output import Column, human_seconds

if TYPE_CHECKING:  # only for annotations: the session pulls in the Snowflake connector
    from .session import Session

HELP = "delete completed entries older than a cutoff"
PRIVILEGE_HINT = "purge needs DELETE on the table: use an admin role that has it (--role)"

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Delete completed entries that completed longer ago than --older-than. Pending, "
        "processing and failed entries are never touched. Needs DELETE on the table: run it "
        "with an admin role (--role), not the service role."
    )
    parser.add_argument(
        "--older-than",
        type=duration_seconds,
        required=True,
        metavar="DURATION",
        help="e.g. 7d, 12h, 90m or 3600s",
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
        document["would_purge"] = queue.count_completed_before(seconds)
    else:
        document["purged"] = queue.purge_completed(seconds)
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
            else ["deleted", document["purged"]]
        ],
    )
    return 0


COMMAND = OpsCommand("purge", HELP, add_arguments, run, privilege_hint=PRIVILEGE_HINT)
