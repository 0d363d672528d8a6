"""The arguments every ops command shares: which queue table, who logs in, and --json.

Each command adds its own arguments itself (``add_arguments`` in its module); this module
imports no command, so commands, the configuration and the registry can all import it.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from snowflake_worker.connection import AuthMode

# Flags that say where the queue table is: they come from the resource with --resource.
TARGET_FLAGS = ("account", "database", "schema", "table", "host", "port")
# Flags that say who logs in: with --resource they override the resource's values (an
# operator on a laptop cannot use the pods' workload identity, and enqueue and purge
# need a role with INSERT or DELETE, which the service role does not have).
LOGIN_FLAGS = ("user", "role", "warehouse", "auth")


def _wrap(text: str) -> str:
    """Group descriptions are printed as they are (RawDescriptionHelpFormatter)."""
    return textwrap.fill(text, width=78)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The queue table (--resource or the flags) and the login, as two help groups."""
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


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (nothing on stdout when the command fails)",
    )
