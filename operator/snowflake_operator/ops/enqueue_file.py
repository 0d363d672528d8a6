"""The enqueue command's input: a JSON-lines file read and checked into queue entries.

Every line is checked and every problem reported as 'line N: ...'; nothing is raised for a
bad line, so the command can report them all before deciding to insert nothing. The rules
are in ``enqueue.ENQUEUE_RULES`` (the command's --help).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snowflake_worker.errors import ConfigError
from snowflake_worker.queue import MAX_BIND_BYTES

MAX_ID_LENGTH = 64  # the id column's width (sql/001_queue_table.sql)


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


def read_lines(file_name: str) -> list[bytes]:
    """The file's lines without their newlines (FILE - is stdin); ConfigError if unreadable."""
    try:
        data = sys.stdin.buffer.read() if file_name == "-" else Path(file_name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {file_name}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return lines
