"""YAML documents a user hands a command (a spec file, a resource file), read with one
clear error for a file that cannot be read or parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snowflake_worker.errors import ConfigError, one_line


def read_yaml_file(path: Path, what: str) -> Any:
    """The parsed YAML document; ConfigError saying why the file cannot be read or parsed."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the {what} {path}: {reason}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or one_line(exc)
        raise ConfigError(f"{path} is not valid YAML{line}: {problem}") from None
