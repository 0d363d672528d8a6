"""The ops commands' arguments: one shared set naming the queue, then each command's own."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

from snowflake_worker.connection import AuthMode

# Flags that say where the queue table is: they come from the resource with --resource.
TARGET_FLAGS = ("account", "database", "schema", "table", "host", "port")
# Flags that say who logs in: with --resource they override the resource's values (an
# operator on a laptop cannot use the pods' workload identity, and enqueue and purge
# need a role with INSERT or DELETE, which the service role does not have).
LOGIN_FLAGS = ("user", "role", "warehouse", "auth")

MAX_DURATION_SECONDS = 36_500 * 86_400  # 100 years: past that DATEADD overflows
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

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


def _count(text: str, *, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
    return value


def _dead_letter_count(text: str) -> int:
    return _count(text, low=0, high=1000)


def _max_attempts(text: str) -> int:
    return _count(text, low=1, high=100)


def add_ops_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Add the shared queue arguments and ``command``'s own to its subparser."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _add_target_arguments(parser)
    {
        "status": _add_status_arguments,
        "enqueue": _add_enqueue_arguments,
        "requeue": _add_requeue_arguments,
        "purge": _add_purge_arguments,
    }[command](parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (nothing on stdout when the command fails)",
    )


def _wrap(text: str) -> str:
    """Group descriptions are printed as they are (RawDescriptionHelpFormatter)."""
    return textwrap.fill(text, width=78)


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group(
        "the queue table",
        _wrap(
            "Either --resource FILE (a SnowflakeProcessor resource: its spec is validated as "
            "the operator does and its spec.snowflake names the table and the login), or "
            "--account, --database, --schema and --table (with --host/--port for private link "
            "or the emulator). Not both."
        ),
    )
    where.add_argument(
        "--resource", type=Path, metavar="FILE", help="a SnowflakeProcessor YAML file"
    )
    where.add_argument("--account", help="Snowflake account identifier")
    where.add_argument("--database", help="database of the queue table")
    where.add_argument("--schema", help="schema of the queue table")
    where.add_argument("--table", help="the queue table")
    where.add_argument("--host", help="Snowflake host (private link, or the local emulator)")
    where.add_argument("--port", type=int, help="Snowflake port (with --host)")
    login = parser.add_argument_group(
        "the login",
        _wrap(
            "With --resource these override the resource's values. Secrets never go on the "
            "command line: key_pair takes --private-key-file (or SFP_SNOWFLAKE_PRIVATE_KEY_FILE) "
            "and SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE for an encrypted key; password takes "
            "SFP_SNOWFLAKE_PASSWORD."
        ),
    )
    login.add_argument("--user", help="Snowflake user (key_pair and password need one)")
    login.add_argument(
        "--role",
        help="role to use (enqueue needs INSERT and purge needs DELETE on the table, which "
        "the service role does not have)",
    )
    login.add_argument("--warehouse", help="warehouse to use")
    login.add_argument(
        "--auth",
        choices=[mode.value for mode in AuthMode],
        help="how to log in (flags: workload_identity unless given)",
    )
    login.add_argument(
        "--private-key-file", type=Path, metavar="PATH", help="PKCS#8 private key (key_pair)"
    )


def _add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Entries by status, the age of the oldest pending entry, and the most recent dead "
        "letters with their errors."
    )
    parser.add_argument(
        "--dead-letters",
        type=_dead_letter_count,
        default=10,
        metavar="N",
        help="how many recent dead letters to show, 0 to 1000 (10)",
    )
    parser.add_argument(
        "--max-attempts",
        type=_max_attempts,
        default=None,
        metavar="N",
        help="attempts limit that decides which pending entries are eligible "
        "(the resource's queue.maxAttempts, else 5)",
    )


def _add_enqueue_arguments(parser: argparse.ArgumentParser) -> None:
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


def _add_requeue_arguments(parser: argparse.ArgumentParser) -> None:
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


def _add_purge_arguments(parser: argparse.ArgumentParser) -> None:
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
