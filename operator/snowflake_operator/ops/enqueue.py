"""`snowflake-processor enqueue FILE`: bulk-insert entries from a JSON-lines file.

Every line is checked before anything is sent; one bad line and nothing is inserted.
The rules are in ``ENQUEUE_RULES`` (the command's --help); the checking is in
``enqueue_file``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from snowflake_worker.errors import ConfigError

from .command import OpsCommand
from .output import Column, warn
from .progress import Progress

if TYPE_CHECKING:  # only for annotations: both pull in the Snowflake connector
    from snowflake_worker.queue import QueueClient

    from .session import Session

HELP = "add entries in bulk from a JSON-lines file (idempotent by id)"
PRIVILEGE_HINT = "enqueue needs INSERT on the table: use a role that has it (--role)"
PROGRESS_LINES = 10_000  # larger files show progress on a terminal
INSERT_SLICE = 10_000  # entries per enqueue call while showing progress

ENQUEUE_RULES = textwrap.dedent(
    """\
    Each line of FILE is one JSON object (blank lines are skipped; FILE - reads stdin):
      * the entry id is the object's "id" field (or --id-field): a non-empty string or a
        whole number, at most 64 characters; without the field a uuid4 is generated;
      * the entry's data is the object's "data" field when "data" is the only other
        field, as in {"id": "a1", "data": {...}}; otherwise it is the whole object
        without the id field: {"id": "a1", "x": 1} enqueues {"x": 1}.
    Every line is checked first: malformed JSON, a line that is not an object, an empty
    or null id, or an id seen earlier in the file is reported as "line N: problem" on
    stderr, and then nothing is enqueued (exit 2). Entries whose id is already in the
    table are left alone, whatever their status, so running the same file twice adds
    nothing the second time.
    """
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Add entries to the queue, in bulk, from a JSON-lines file."
    parser.epilog = ENQUEUE_RULES
    parser.add_argument("file", metavar="FILE", help="JSON-lines file, or - for stdin")
    parser.add_argument(
        "--id-field", default="id", metavar="NAME", help="field holding the entry id (id)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the file and count what would be inserted; change nothing",
    )


def run(args: argparse.Namespace, session: Session) -> int:
    # Imported here: the file checks need the queue's size limit, which loads the Snowflake
    # connector, and this module is imported whenever a command line is parsed.
    from .enqueue_file import parse_lines, read_lines

    if not args.id_field:
        raise ConfigError("--id-field must not be empty")
    lines = read_lines(args.file)
    progress = Progress(enabled=len(lines) > PROGRESS_LINES and sys.stderr.isatty())
    with progress:
        parsed = parse_lines(lines, args.id_field, progress.task("checking lines", len(lines)))
        if parsed.problems:
            progress.stop()
            for problem in parsed.problems:
                warn(problem)
            raise ConfigError(
                f"{len(parsed.problems)} bad line(s) in {args.file}: nothing was enqueued"
            )
        if not parsed.entries:
            raise ConfigError(f"{args.file} has no entries: nothing to enqueue")
        queue = session.queue
        total = len(parsed.entries)
        if args.dry_run:
            supplied = [
                entry_id for entry_id, _ in parsed.entries if entry_id not in parsed.generated
            ]
            present = len(queue.existing_ids(supplied)) if supplied else 0
            inserted = total - present
        else:
            inserted = _insert(queue, parsed.entries, progress)
            present = total - inserted
    _report(args, session, total, len(parsed.generated), inserted, present)
    return 0


def _insert(queue: QueueClient, entries: list[tuple[str, Any]], progress: Progress) -> int:
    if not progress.enabled:
        return queue.enqueue(entries)  # chunked by bind size: the fewest statements
    advance = progress.task("enqueueing", len(entries))
    inserted = 0
    for start in range(0, len(entries), INSERT_SLICE):
        batch = entries[start : start + INSERT_SLICE]
        inserted += queue.enqueue(batch)
        if advance is not None:
            advance(len(batch))
    return inserted


def _report(
    args: argparse.Namespace,
    session: Session,
    total: int,
    generated: int,
    inserted: int,
    present: int,
) -> None:
    output = session.output
    verb = "would_insert" if args.dry_run else "inserted"
    if output.structured:
        output.document(
            {
                "table": session.target.table_name,
                "file": args.file,
                "dry_run": args.dry_run,
                "entries": total,
                "generated_ids": generated,
                verb: inserted,
                "already_present": present,
            }
        )
        return
    title = f"enqueue {args.file} into {session.target.table_name}"
    output.table(
        title + (" (dry run: nothing changed)" if args.dry_run else ""),
        [Column("entries"), Column("count", numeric=True)],
        [
            ["in the file", total],
            ["with generated ids", generated],
            ["would be inserted" if args.dry_run else "inserted", inserted],
            ["already present (left alone)", present],
        ],
    )


COMMAND = OpsCommand("enqueue", HELP, add_arguments, run, privilege_hint=PRIVILEGE_HINT)
