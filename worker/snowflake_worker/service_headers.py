"""Extra request headers (API keys, tokens) from a folder: one file per header.

The operator mounts the Secret named by ``spec.endpoint.headersSecret`` there: each key of
the Secret is a header's name, its value the header's value. Values are secrets: no
message here, nor anywhere they go, ever shows one; problems name the file only.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigError

# RFC 9110 token characters (a Secret's keys allow a subset of them: letters, digits, -._).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Set by the worker itself, or by HTTP: a file may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "accept-encoding",  # identity: bodies are read raw, bounded in size
        "connection",
        "content-length",
        "content-type",
        "host",
        "idempotency-key",  # stable per entry: the service's deduplication relies on it
        "transfer-encoding",
    }
)


def read_header_files(folder: Path) -> dict[str, str]:
    """Header name -> value for each file in ``folder`` (a mounted Secret's dot-entries are
    Kubernetes' own and skipped). One trailing newline is dropped from a value, as
    ``kubectl create secret --from-file`` keeps the file's."""
    if not folder.is_dir():
        raise ConfigError(f"SFP_ENDPOINT_HEADERS_DIR {folder} is not a folder")
    headers: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        headers[header_name(path.name)] = header_value(path)
    if not headers:
        raise ConfigError(f"SFP_ENDPOINT_HEADERS_DIR {folder} holds no header file")
    return headers


def header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ConfigError(f"header file {name!r} is not a valid HTTP header name")
    if name.lower() in RESERVED_HEADERS:
        raise ConfigError(
            f"header {name!r} is set by the worker itself and cannot be replaced "
            f"(reserved: {', '.join(sorted(RESERVED_HEADERS))})"
        )
    return name


def header_value(path: Path) -> str:
    """The file's text without its trailing newline; never part of an error message."""
    try:
        text = path.read_bytes().decode("ascii")
    except OSError as exc:
        raise ConfigError(f"cannot read header file {path.name!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"header file {path.name!r} is not ASCII text") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise ConfigError(f"header file {path.name!r} is empty")
    if any(ch in value for ch in "\r\n\0") or any(ord(ch) < 32 and ch != "\t" for ch in value):
        raise ConfigError(
            f"header file {path.name!r} holds a line break or control character; a header "
            "value is one line"
        )
    return value
