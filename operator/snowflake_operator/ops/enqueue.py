"""`snowflake-processor enqueue FILE`: bulk-insert entries from a JSON-lines file.

Every line is checked before anything is sent; one bad line and nothing is inserted.
The rules are in ``arguments.ENQUEUE_RULES`` (the command's --help).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snowflake_worker.errors import ConfigError
from snowflake_worker.queue import MAX_BIND_BYTES, QueueClient

from .output import Column, warn
from .runner import Session

MAX_ID_LENGTH = 64  # the id column's width (sql/001_queue_table.sql)
PROGRESS_LINES = 10_000  # larger files show progress on a terminal
INSERT_SLICE = 10_000  # entries per enqueue call while showing progress


@dataclass
class ParsedFile:
    entries: list[tuple[str, Any]] = field(default_factory=list)
    generated: set[str] = field(default_factory=set)  # ids made up here (uuid4)
    problems: list[str] = field(default_factory=list)


def parse_lines(
    lines: Sequence[bytes], id_field: str, advance: Callable[[int], None] | None = None
) -> ParsedFile:
    """Entries from JSON lines, and every problem as 'line N: ...' (nothing raised)."""
    parsed = ParsedFile()
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if advance is not None and number % 1000 == 0:
            advance(1000)
        problem = _parse_line(number, raw, id_field, parsed, first_line)
        if problem is not None:
            parsed.problems.append(f"line {number}: {problem}")
    if advance is not None:
        advance(len(lines) % 1000)
    return parsed


def _parse_line(
    number: int,
    raw: bytes,
    id_field: str,
    parsed: ParsedFile,
    first_line: dict[str, int],
) -> str | None:
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    except ValueError as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {_json_kind(value)}"
    if id_field in value:
        entry_id, problem = _entry_id(value[id_field], id_field)
        if problem is not None:
            return problem
        assert entry_id is not None
        if entry_id in first_line:
            return f"duplicate id {_show(entry_id)} (first on line {first_line[entry_id]})"
        first_line[entry_id] = number
    else:
        entry_id = str(uuid.uuid4())
        parsed.generated.add(entry_id)
    rest = {key: item for key, item in value.items() if key != id_field}
    data = rest["data"] if rest.keys() == {"data"} else rest
    size = len(json.dumps({"id": entry_id, "data": data}, separators=(",", ":")).encode())
    if size > MAX_BIND_BYTES:
        return f"entry is {size} bytes of JSON; at most {MAX_BIND_BYTES} per entry"
    parsed.entries.append((entry_id, data))
    return None


def _entry_id(value: Any, id_field: str) -> tuple[str | None, str | None]:
    if value is None:
        return None, f'"{id_field}" is null (leave the field out to have an id generated)'
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, f'"{id_field}" must be a string or a whole number, not {_json_kind(value)}'
    entry_id = str(value)
    if not entry_id.strip():
        return None, f'empty "{id_field}"'
    if len(entry_id) > MAX_ID_LENGTH:
        return None, f'"{id_field}" is longer than {MAX_ID_LENGTH} characters'
    return entry_id, None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show(entry_id: str) -> str:
    text = repr(entry_id)
    return text if len(text) <= 70 else text[:67] + "..."


def _read(file_name: str) -> list[bytes]:
    try:
        data = sys.stdin.buffer.read() if file_name == "-" else Path(file_name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {file_name}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return lines


def run(args: argparse.Namespace, session: Session) -> int:
    if not args.id_field:
        raise ConfigError("--id-field must not be empty")
    lines = _read(args.file)
    progress = _Progress(enabled=len(lines) > PROGRESS_LINES and sys.stderr.isatty())
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


def _insert(queue: QueueClient, entries: list[tuple[str, Any]], progress: _Progress) -> int:
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
    if output.json_mode:
        output.json(
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


class _Progress:
    """A rich progress bar on stderr for large files on a terminal; otherwise nothing."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def task(self, description: str, total: int) -> Callable[[int], None] | None:
        if self._bar is None:
            return None
        bar = self._bar
        task_id = bar.add_task(description, total=total)

        def advance(amount: int) -> None:
            bar.advance(task_id, amount)

        return advance
