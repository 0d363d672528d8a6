"""`snowflake-processor purge --older-than DURATION`: delete old completed entries.

Only rows with status completed whose completed_at is older than the cutoff; pending,
processing and failed rows are never touched. Needs DELETE on the table, which the service
role (sql/004_grants.sql) does not have: an admin role runs it.
"""

from __future__ import annotations

import argparse
from typing import Any

from .output import Column, human_seconds
from .runner import Session


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
    if output.json_mode:
        output.json(document)
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
