"""What the ops commands print: rich tables on a terminal, aligned plain text otherwise,
one JSON or YAML document with ``-o json|yaml``. Messages and problems go to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool = False  # right-aligned


def human_seconds(seconds: int | None) -> str:
    """12 -> '12s', 3725 -> '1h 2m', 90061 -> '1d 1h'; None -> '-'."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def utc_iso(value: datetime | None) -> str | None:
    """TIMESTAMP_NTZ values are UTC (from SYSDATE()): say so in JSON."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def utc_text(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def truncate(text: str | None, width: int | None) -> str:
    """On one line, cut to ``width`` characters (None: not cut)."""
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if width is None or len(flat) <= width else flat[: width - 3] + "..."


# -o values, as kubectl spells them; "table" is what no -o gives.
TABLE, WIDE, JSON, YAML = "table", "wide", "json", "yaml"
OUTPUT_FORMATS = (JSON, YAML, WIDE)


class Output:
    def __init__(self, *, format: str = TABLE, stdout: TextIO | None = None) -> None:
        if format not in (TABLE, *OUTPUT_FORMATS):
            raise ValueError(f"unknown output format {format!r}")
        self.format = format
        self._stdout = stdout or sys.stdout
        self.rich = not self.structured and self._stdout.isatty()

    @property
    def structured(self) -> bool:
        """One document (JSON or YAML) on stdout instead of tables and lines."""
        return self.format in (JSON, YAML)

    @property
    def wide(self) -> bool:
        """Tables with every column and nothing cut short."""
        return self.format == WIDE

    def document(self, document: dict[str, Any]) -> None:
        if self.format == YAML:
            # Through JSON first: the same plain types (datetimes already ISO text) either way.
            self._stdout.write(_yaml(json.loads(json.dumps(document, default=str))))
        else:
            self._stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        self._stdout.flush()

    def text(self, text: str) -> None:
        """Text on stdout exactly as it is, never wrapped or styled (nothing with -o json or
        yaml): SQL to save and run."""
        if self.structured:
            return
        self._stdout.write(text if text.endswith("\n") else text + "\n")
        self._stdout.flush()

    def line(self, text: str = "") -> None:
        """Human-readable text on stdout (nothing with -o json or yaml)."""
        if self.structured:
            return
        if self.rich:
            self._console().print(text, highlight=False, markup=False)
        else:
            self._stdout.write(text + "\n")

    def table(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
        if self.structured:
            return
        cells = [[str(value) for value in row] for row in rows]
        if self.rich:
            from rich.table import Table
            from rich.text import Text

            # Text cells: an error message like "[Errno 111] ..." is not rich markup.
            table = Table(title=Text(title), title_justify="left")
            for column in columns:
                table.add_column(column.name, justify="right" if column.numeric else "left")
            for row in cells:
                table.add_row(*(Text(value) for value in row))
            self._console().print(table)
            return
        widths = [
            max([len(column.name), *(len(row[i]) for row in cells)])
            for i, column in enumerate(columns)
        ]

        def render(values: Sequence[str]) -> str:
            padded = [
                value.rjust(width) if column.numeric else value.ljust(width)
                for value, width, column in zip(values, widths, columns, strict=True)
            ]
            return "  ".join(padded).rstrip()

        lines = [title, render([c.name for c in columns])]
        lines.append(render(["-" * width for width in widths]))
        lines.extend(render(row) for row in cells)
        self._stdout.write("\n".join(lines) + "\n")

    def _console(self) -> Any:
        from rich.console import Console

        return Console(file=self._stdout)


def _yaml(document: Any) -> str:
    """YAML as kubectl writes it: keys in order, text of several lines as a | block."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
