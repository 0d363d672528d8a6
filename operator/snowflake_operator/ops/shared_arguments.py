"""The arguments every ops command shares: which queue table, who logs in, and -o.

Each command adds its own arguments itself (``add_arguments`` in its module); this module
imports no command, so commands, the configuration and the registry can all import it.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from snowflake_worker.snowflake_settings import AuthMode

from .output import JSON, OUTPUT_FORMATS, TABLE

# Flags that say where the queue table is: they come from the resource with --resource.
TARGET_FLAGS = ("account", "database", "schema", "table", "host", "port")
# Flags that say who logs in: with --resource they override the resource's values (an
# operator on a laptop cannot use the pods' workload identity, and enqueue and purge
# need a role with INSERT or DELETE, which the service role does not have).
LOGIN_FLAGS = ("user", "role", "warehouse", "auth")


def names_no_table(args: argparse.Namespace) -> bool:
    """No NAME, no --resource and none of the flags that say where a table is."""
    flags = [getattr(args, name, None) for name in TARGET_FLAGS]
    return args.name is None and args.resource is None and all(f is None for f in flags)


def _wrap(text: str) -> str:
    """Group descriptions are printed as they are (RawDescriptionHelpFormatter)."""
    return textwrap.fill(text, width=78)


def add_target_arguments(parser: argparse.ArgumentParser, *, login: bool = True) -> None:
    """The queue table (a resource in the cluster, --resource or the flags) and, for a
    command that logs in, the account and the login, as help groups."""
    where = parser.add_argument_group(
        "the queue table",
        _wrap(
            "One of: NAME, a SnowflakeProcessor read from the cluster like kubectl does "
            "(-n NAMESPACE, else the kubeconfig context's namespace; its Snowflake key or "
            "password comes from the Secrets it references); --resource FILE, a "
            "SnowflakeProcessor YAML file; or --account, --database, --schema and --table "
            "(with --host/--port for private link or the emulator). A resource's spec is "
            "validated as the operator does and its spec.snowflake names the table and the "
            "login."
            if login
            else "One of: NAME, a SnowflakeProcessor read from the cluster like kubectl does "
            "(-n NAMESPACE, else the kubeconfig context's namespace); --resource FILE, a "
            "SnowflakeProcessor YAML file; or --database, --schema and --table."
        ),
    )
    name = where.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="a SnowflakeProcessor in the cluster (kubectl get sfp lists them)",
    )
    name.completer = complete_processor_names  # type: ignore[attr-defined]  # argcomplete's
    where.add_argument(
        "-n",
        "--namespace",
        help="NAME's namespace (the kubeconfig context's namespace, else default)",
    )
    where.add_argument("--context", help="kubeconfig context to use (the current one)")
    where.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="PATH",
        help="kubeconfig file ($KUBECONFIG, else ~/.kube/config; in a pod its service account)",
    )
    _add_kubectl_global_flags(parser)
    where.add_argument(
        "--resource", type=Path, metavar="FILE", help="a SnowflakeProcessor YAML file"
    )
    if login:
        where.add_argument("--account", help="Snowflake account identifier")
    where.add_argument("--database", help="database of the queue table")
    where.add_argument("--schema", help="schema of the queue table")
    where.add_argument("--table", help="the queue table")
    if not login:
        return
    where.add_argument("--host", help="Snowflake host (private link, or the local emulator)")
    where.add_argument("--port", type=int, help="Snowflake port (with --host)")
    _add_login_arguments(parser)


# kubectl's global flags the ops commands honour, as kubectl spells them, and where
# argparse keeps each. --user is not among them yet: it still names the Snowflake user.
KUBECTL_GLOBAL_FLAGS = {
    "--server": "server",
    "--token": "token",
    "--as": "impersonate",
    "--as-group": "impersonate_group",
    "--certificate-authority": "certificate_authority",
    "--insecure-skip-tls-verify": "insecure_skip_tls_verify",
    "--cluster": "cluster",
}


def _add_kubectl_global_flags(parser: argparse.ArgumentParser) -> None:
    kubectl = parser.add_argument_group(
        "kubectl's global flags",
        _wrap(
            "As in kubectl, each one given wins over the kubeconfig. They apply where a "
            "command reads the cluster (NAME, or status listing processors)."
        ),
    )
    kubectl.add_argument("--server", metavar="URL", help="the Kubernetes API server's address")
    kubectl.add_argument(
        "--cluster",
        metavar="NAME",
        help="the kubeconfig cluster to use, with the context's user and namespace",
    )
    kubectl.add_argument(
        "--token", metavar="TOKEN", help="bearer token for the API server (never printed)"
    )
    kubectl.add_argument("--as", dest="impersonate", metavar="USER", help="user to impersonate")
    kubectl.add_argument(
        "--as-group", dest="impersonate_group", metavar="GROUP", help="group to impersonate"
    )
    kubectl.add_argument(
        "--certificate-authority",
        type=Path,
        metavar="PATH",
        help="CA certificate file for the API server",
    )
    kubectl.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        default=None,
        help="do not check the API server's certificate (insecure)",
    )


def _add_login_arguments(parser: argparse.ArgumentParser) -> None:
    login = parser.add_argument_group(
        "the login",
        _wrap(
            "With NAME or --resource these override the resource's values. Secrets never go "
            "on the command line: key_pair takes --private-key-file (or "
            "SFP_SNOWFLAKE_PRIVATE_KEY_FILE) and SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE for an "
            "encrypted key; password takes SFP_SNOWFLAKE_PASSWORD. With NAME and none of "
            "--snowflake-user, --auth, --private-key-file, the resource's own login is used, "
            "its key or password read from its Secrets (never printed)."
        ),
    )
    login.add_argument(
        "--snowflake-user",
        dest="user",
        metavar="USER",
        help="Snowflake user (key_pair and password need one)",
    )
    login.add_argument(
        "--user",
        dest="user",
        action=_DeprecatedSnowflakeUser,
        help="same as --snowflake-user (deprecated: kubectl's --user names a kubeconfig user)",
    )
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


class _DeprecatedSnowflakeUser(argparse.Action):
    """--user as it was: the Snowflake user, with a warning, until it can mean what kubectl
    means by it (a kubeconfig user)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(
            "warning: --user is deprecated and will name a kubeconfig user as in kubectl; "
            "use --snowflake-user for the Snowflake user",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def complete_processor_names(
    prefix: str, parsed_args: argparse.Namespace, **_: object
) -> list[str]:
    """NAME completes to the SnowflakeProcessors of the namespace given so far (-n, else the
    context's), as `kubectl get sfp <TAB>` does; nothing when the cluster cannot say."""
    from .cluster import processor_names  # the kubernetes client: only while completing

    try:
        names = processor_names(getattr(parsed_args, "namespace", None), parsed_args)
    except Exception:  # a completion never fails loudly: it offers nothing
        return []
    return [name for name in names if name.startswith(prefix)]


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """-o json|yaml|wide, as kubectl spells it; --json stays as a deprecated alias."""
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=None,
        help="json or yaml: one document on stdout (nothing there when the command fails); "
        "wide: tables with nothing cut short. Default: tables",
    )
    parser.add_argument("--json", action="store_true", help="same as -o json (deprecated)")


def output_format(args: argparse.Namespace) -> str:
    """The format asked for: -o wins over the deprecated --json."""
    if args.output is not None:
        return str(args.output)
    return JSON if args.json else TABLE
