"""`snowflake-processor requeue`: dead letters back to pending, by id, by error text or all.

Unknown ids are an error found before anything changes; ids that exist but are not dead
letters are reported and left alone. The dry run counts with the very filter the requeue
uses (QueueClient.count_dead_letters).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from snowflake_worker.errors import ConfigError

from .command import OpsCommand
from .output import Column

if TYPE_CHECKING:  # only for annotations: the session pulls in the Snowflake connector
    from .session import Session

HELP = "put dead letters back to pending, by id, by error text or all"
SHOW_IDS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Put dead letters (status failed) back to pending with a fresh attempt budget. "
        "Say which: --id (repeatable), --error-contains, both (entries matching both), or "
        "--all. Ids that do not exist are an error and change nothing; ids that exist but "
        "are not dead letters are reported and left alone."
    )
    parser.add_argument(
        "--id",
        dest="ids",
        action="append",
        default=None,
        metavar="ID",
        help="a dead letter's id (repeatable)",
    )
    parser.add_argument(
        "--error-contains",
        metavar="TEXT",
        help="dead letters whose error message contains TEXT (case-insensitive)",
    )
    parser.add_argument("--all", action="store_true", help="every dead letter")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="show how many (and which, up to 50) would be requeued; change nothing",
    )


def _filters(args: argparse.Namespace) -> tuple[list[str] | None, str | None]:
    ids: list[str] | None = None if args.ids is None else list(dict.fromkeys(args.ids))
    needle: str | None = args.error_contains
    if args.all and (ids is not None or needle is not None):
        raise ConfigError("--all requeues every dead letter: leave out --id and --error-contains")
    if not args.all and ids is None and needle is None:
        raise ConfigError(
            "say which dead letters to requeue: --id ID (repeatable), --error-contains TEXT, "
            "or --all for every one (add --dry-run to see first)"
        )
    if ids is not None and any(not entry_id.strip() for entry_id in ids):
        raise ConfigError("--id must not be empty")
    if needle is not None and not needle.strip():
        raise ConfigError("--error-contains must not be empty (use --all for every dead letter)")
    return ids, needle


def run(args: argparse.Namespace, session: Session) -> int:
    ids, needle = _filters(args)
    queue = session.queue
    not_dead: list[str] = []
    if ids is not None:
        existing = queue.existing_ids(ids)
        unknown = [entry_id for entry_id in ids if entry_id not in existing]
        if unknown:
            shown = ", ".join(repr(entry_id) for entry_id in unknown[:SHOW_IDS])
            more = f" and {len(unknown) - SHOW_IDS} more" if len(unknown) > SHOW_IDS else ""
            raise ConfigError(
                f"no entry with id {shown}{more} in {session.target.table_name}: "
                "nothing was requeued"
            )
        dead = set(queue.dead_letter_ids(ids, None, limit=len(ids)))
        not_dead = [entry_id for entry_id in ids if entry_id not in dead]
    document: dict[str, Any] = {
        "table": session.target.table_name,
        "dry_run": args.dry_run,
        "filter": {"ids": ids, "error_contains": needle, "all": args.all},
    }
    if args.dry_run:
        count = queue.count_dead_letters(ids, needle)
        sample = queue.dead_letter_ids(ids, needle, limit=SHOW_IDS) if count else []
        document.update(would_requeue=count, ids=sample, more_ids=max(0, count - len(sample)))
    else:
        count = queue.requeue_dead_letters(ids=ids, error_contains=needle)
        document["requeued"] = count
    document["not_dead_letters"] = not_dead
    _report(session, document)
    return 0


def _report(session: Session, document: dict[str, Any]) -> None:
    output = session.output
    if output.structured:
        output.document(document)
        return
    dry_run = document["dry_run"]
    rows: list[list[Any]] = (
        [["would be requeued", document["would_requeue"]]]
        if dry_run
        else [["requeued", document["requeued"]]]
    )
    if document["not_dead_letters"]:
        rows.append(["not dead letters (left alone)", len(document["not_dead_letters"])])
    title = f"requeue dead letters in {document['table']}"
    output.table(
        title + (" (dry run: nothing changed)" if dry_run else ""),
        [Column("dead letters"), Column("count", numeric=True)],
        rows,
    )
    if document["not_dead_letters"]:
        output.line("not dead letters, left alone: " + ", ".join(document["not_dead_letters"]))
    if dry_run and document["ids"]:
        more = f" (and {document['more_ids']} more)" if document["more_ids"] else ""
        output.line("would requeue: " + ", ".join(document["ids"]) + more)


COMMAND = OpsCommand("requeue", HELP, add_arguments, run)
