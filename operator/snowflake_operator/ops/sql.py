"""`snowflake-processor sql render|apply`: the queue table's SQL (``sql/001..005``) with its
variables filled in, printed or written to files (render), or run on Snowflake (apply); with
``--part``, a new account's setup one part at a time, each opening with the role that runs it
(:mod:`.sql_parts`).

Every file is safe to run again (``IF NOT EXISTS``, ``ADD COLUMN IF NOT EXISTS``, updates of
NULLs only, ``CREATE OR REPLACE VIEW ... COPY GRANTS``, ``CREATE ROLE IF NOT EXISTS``,
grants), so applying twice changes nothing the second time. The variables are identifiers
only, validated and quoted by ``queue_schema``; no value is ever put into SQL text.
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snowflake_operator import legacy_upgrade, queue_schema
from snowflake_worker.errors import ConfigError
from snowflake_worker.identifiers import InvalidIdentifier, TableRef

from . import sql_parts
from .command import OpsCommand
from .output import Column, warn
from .purge import batch_rows

if TYPE_CHECKING:  # only for annotations: both pull in more than parsing needs
    from .config import NamedResource
    from .session import Session

DEFAULT_RETENTION_DAYS = 1  # with --transient: a day to UNDROP or query the past in

GROUP_HELP = (
    "the queue table's SQL (sql/001..005), or a new account's setup in parts (--part): "
    "render it, or apply it (idempotent)"
)
RENDER_HELP = "print the SQL with its variables filled in, or write it to files"
APPLY_HELP = "run the SQL on Snowflake, in order; safe to run again"
APPLY_PRIVILEGE_HINT = (
    "sql apply needs CREATE TABLE and CREATE VIEW on the schema, and for 004 a role that "
    "can create roles and grant (USERADMIN/SECURITYADMIN): use an admin role (--role), or "
    "leave the grants out (--no-grants); with --part, each part first runs USE ROLE of its "
    "own role (--objects-role, --users-role, --grants-role): log in as a user who holds it"
)

FILES_EPILOG = textwrap.dedent(
    """\
    Files, in this order: 001_queue_table.sql (CREATE TABLE IF NOT EXISTS),
    002_migrate_from_legacy.sql (upgrades a legacy table in place; a no-op otherwise),
    003_monitoring_views.sql (the status and dead-letter views), 004_grants.sql (the
    service role and its least privileges) when a service role is known: --service-role,
    else the resource's spec.snowflake.role; 004 also needs the service's warehouse
    (--service-warehouse, else the resource's spec.snowflake.warehouse). --no-grants
    leaves 004 out. 005_result_column.sql (ADD COLUMN IF NOT EXISTS result: where
    spec.endpoint.storeResponseBytes keeps the service's answers). The database and the
    schema must exist.

    Parts (--part, repeatable; "all" is the first seven, in this order), each opening with
    USE ROLE of the role allowed to run it: warehouse, database, table (001, 002, 005) and
    views (003) as --objects-role (SYSADMIN); roles (service and admin) and users (one
    service user per IAM role, from --operator-role-arn, --worker-role-arn,
    --reconciler-role-arn or --terraform-output) as --users-role (USERADMIN); grants (004
    and the admin role's) as --grants-role (SECURITYADMIN). release-legacy-claims (the
    cutover from the legacy design) is never in "all". apply runs parts table and
    release-legacy-claims as the owner of an existing table (ALTER needs OWNERSHIP) when
    --objects-role is not given, and stops when it is and does not own the table. See
    docs/snowflake-setup.md.
    """
)


@dataclass(frozen=True)
class RenderedFile:
    name: str
    steps: list[queue_schema.Step]  # statements, and steps that look before they act
    part: str | None = None  # set for a setup part, whose first statement is USE ROLE
    role: str | None = None

    @property
    def statements(self) -> list[str]:
        """As a script runs them (a step's script form): what render prints."""
        return queue_schema.script(self.steps)

    def text(self, table: TableRef) -> str:
        """The file as `snow sql -f` or a worksheet runs it: statements ending in ';'."""
        header = f"-- {self.name}, rendered for {table} by snowflake-processor sql render"
        if self.role is not None:
            header += f"; run as {self.role}"
        return header + "\n" + "".join(f"\n{statement};\n" for statement in self.statements)

    def document(self) -> dict[str, Any]:
        extra = {} if self.part is None else {"part": self.part, "role": self.role}
        return {"file": self.name, **extra, "statements": self.statements}


def add_schema_arguments(parser: argparse.ArgumentParser) -> None:
    """The variables beyond the table (004's) and which files; shared by render and apply."""
    parser.epilog = FILES_EPILOG
    parser.add_argument(
        "--service-role",
        metavar="ROLE",
        help="the role workers and the operator use, granted by 004 (the resource's "
        "spec.snowflake.role)",
    )
    parser.add_argument(
        "--service-warehouse",
        metavar="WAREHOUSE",
        help="the warehouse 004 grants USAGE on (the resource's spec.snowflake.warehouse)",
    )
    parser.add_argument(
        "--no-grants",
        action="store_true",
        help="leave out 004_grants.sql even with a role (without --part)",
    )
    parser.add_argument(
        "--transient",
        action="store_true",
        help="001 creates a TRANSIENT table: no Fail-safe, so less storage for a table "
        "rewritten this often, but a table dropped or damaged past its Time Travel cannot be "
        "recovered, not even by Snowflake support (docs/snowflake-setup.md). Changes nothing "
        "on a table that exists",
    )
    parser.add_argument(
        "--retention-days",
        type=int,
        choices=queue_schema.TRANSIENT_RETENTION_DAYS,
        metavar="0|1",
        help=f"with --transient: days of Time Travel (default {DEFAULT_RETENTION_DAYS}; 0: none)",
    )
    add_part_arguments(parser)


def add_part_arguments(parser: argparse.ArgumentParser) -> None:
    """The setup parts and what only they need: the admin role, the runners, the IAM roles."""
    parts = parser.add_argument_group("account setup, one part at a time (--part)")
    parts.add_argument(
        "--part",
        action="append",
        choices=sql_parts.PART_CHOICES,
        metavar="PART",
        help="render or apply this part of a new account's setup (repeatable): "
        + ", ".join(sql_parts.PART_CHOICES),
    )
    parts.add_argument(
        "--admin-role",
        metavar="ROLE",
        help="the role enqueue and purge run as (parts roles and grants)",
    )
    for kind, default in sql_parts.DEFAULT_RUNNERS.items():
        names = [p.name for p in (*sql_parts.PARTS, *sql_parts.CUTOVER_PARTS) if p.runner == kind]
        owner = (
            "; apply runs parts that change an existing table as its owner, when this is not given"
            if kind == sql_parts.OBJECTS
            else ""
        )
        parts.add_argument(
            f"--{kind}-role",
            metavar="ROLE",
            help=f"the role that parts {', '.join(names)} USE (default {default}){owner}",
        )
    parts.add_argument(
        "--service-user-prefix",
        metavar="NAME",
        default=sql_parts.DEFAULT_USER_PREFIX,
        help="service users are named PREFIX_OPERATOR, PREFIX_WORKER, PREFIX_RECONCILER "
        f"(default {sql_parts.DEFAULT_USER_PREFIX})",
    )
    for component in sql_parts.COMPONENTS:
        parts.add_argument(
            f"--{component.name}-role-arn",
            metavar="ARN",
            help=f"IAM role of {component.pods}: Terraform's {component.terraform_output}",
        )
    parts.add_argument(
        "--terraform-output",
        type=Path,
        metavar="FILE",
        help="read every IAM role ARN from `terraform output -json` of terraform/eks",
    )


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Print the queue table's SQL with its variables filled in, one statement after "
        "another ending in ';', or write one file per source file (--out-dir) for `snow sql "
        "-f FILE` or a worksheet. Needs no Snowflake login.",
        width=78,
    )
    add_schema_arguments(parser)
    parser.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="write DIR/001_queue_table.sql, ... instead of printing (DIR is created)",
    )


def add_apply_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Run the queue table's SQL on Snowflake, file by file, statement by statement. Every "
        "statement is safe to run again: applying twice changes nothing the second time. "
        "Needs an admin role (--role), not the service role.",
        width=78,
    )
    add_schema_arguments(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the statements that would run; connect to nothing, change nothing",
    )
    parser.add_argument(
        "--batch-size",
        type=batch_rows,
        default=legacy_upgrade.DEFAULT_BATCH_ROWS,
        metavar="ROWS",
        help="rows one backfill UPDATE of 002 (legacy upgrade) changes at most "
        f"(default {legacy_upgrade.DEFAULT_BATCH_ROWS:,})",
    )


@dataclass(frozen=True)
class SchemaPlan:
    """What render prints and apply runs: the variables and the selected files, rendered."""

    target: queue_schema.SchemaTarget
    files: list[RenderedFile]

    @property
    def table(self) -> TableRef:
        return self.target.table

    def text(self) -> str:
        return "\n".join(file.text(self.table) for file in self.files)

    def document(self, **extra: Any) -> dict[str, Any]:
        return {
            "table": str(self.table),
            "service_role": self.target.service_role,
            "service_warehouse": self.target.warehouse,
            "files": [f.document() for f in self.files],
            **extra,
        }


def schema_plan(
    args: argparse.Namespace, table: TableRef, resource: NamedResource | None
) -> SchemaPlan:
    """Every selected file rendered, before anything runs: a bad variable changes nothing."""
    snowflake = None if resource is None else resource.spec.snowflake
    role = args.service_role or (snowflake.role if snowflake else None)
    warehouse = args.service_warehouse or (snowflake.warehouse if snowflake else None)
    if args.retention_days is not None and not args.transient:
        raise ConfigError("--retention-days goes with --transient (a permanent table keeps "
                          "the account's Time Travel setting)")  # fmt: skip
    retention = None
    if args.transient:
        retention = DEFAULT_RETENTION_DAYS if args.retention_days is None else args.retention_days
    try:
        target = queue_schema.SchemaTarget(
            table=table,
            warehouse=warehouse,
            service_role=role,
            transient=args.transient,
            retention_days=retention,
        )
    except InvalidIdentifier as exc:
        raise ConfigError(str(exc)) from None
    if args.part:
        return _parts_plan(args, target)
    names = list(queue_schema.ENSURE_FILES)
    if target.service_role is not None and not args.no_grants:
        if target.warehouse is None:
            raise ConfigError(
                "004_grants.sql grants USAGE on the service's warehouse: give "
                "--service-warehouse (or set spec.snowflake.warehouse), or --no-grants"
            )
        names = sorted([*names, *queue_schema.GRANT_FILES])  # file-name order: 004 before 005
    return SchemaPlan(target, [RenderedFile(n, queue_schema.steps(n, target)) for n in names])


def _parts_plan(args: argparse.Namespace, target: queue_schema.SchemaTarget) -> SchemaPlan:
    """The selected parts, each a file named after its place in the setup order."""
    if args.no_grants:
        raise ConfigError("--no-grants goes without --part: choose the parts instead")
    parts = sql_parts.selected_parts(args.part)
    try:
        arns = _role_arns(args) if any(p.name == "users" for p in parts) else {}
        setup = sql_parts.AccountSetup(
            schema=target,
            admin_role=args.admin_role,
            arns=arns,
            user_prefix=args.service_user_prefix,
            runners={
                kind: getattr(args, f"{kind}_role") or default
                for kind, default in sql_parts.DEFAULT_RUNNERS.items()
            },
        )
        chosen = args.objects_role is not None
        rendered = [sql_parts.render_part(p, setup, role_chosen=chosen) for p in parts]
    except (sql_parts.SetupError, InvalidIdentifier) as exc:
        raise ConfigError(str(exc)) from None
    order = [*sql_parts.PARTS, *sql_parts.CUTOVER_PARTS]
    files = [
        RenderedFile(
            f"{order.index(r.part) + 1:02d}_{r.part.name}.sql", r.steps, r.part.name, r.role
        )
        for r in rendered
    ]
    return SchemaPlan(target, files)


def _role_arns(args: argparse.Namespace) -> dict[str, str]:
    """Component -> ARN: from --terraform-output, or the flags given (not both)."""
    flagged = {
        c.name: getattr(args, f"{c.name}_role_arn")
        for c in sql_parts.COMPONENTS
        if getattr(args, f"{c.name}_role_arn") is not None
    }
    if args.terraform_output is None:
        return flagged
    if flagged:
        raise ConfigError("give the role ARNs as flags or --terraform-output, not both")
    return sql_parts.read_terraform_output(args.terraform_output)


def _render_plan(args: argparse.Namespace) -> SchemaPlan:
    """Where the table is, with no login: the resource's, or --database/--schema/--table."""
    from .config import named_resource

    resource = named_resource(args)
    if resource is not None:
        return schema_plan(args, resource.spec.snowflake.table_ref, resource)
    missing = [f"--{flag}" for flag in ("database", "schema", "table") if not getattr(args, flag)]
    if missing:
        raise ConfigError(
            f"missing {', '.join(missing)}: say which queue table, by NAME (a SnowflakeProcessor "
            "in the cluster), --resource FILE, or --database, --schema and --table"
        )
    try:
        table = TableRef(args.database, args.schema, args.table)
    except InvalidIdentifier as exc:
        raise ConfigError(str(exc)) from None
    return schema_plan(args, table, None)


def run_render(args: argparse.Namespace, session: Session) -> int:
    plan = _render_plan(args)
    output = session.output
    if args.out_dir is None:
        if output.structured:
            output.document(plan.document())
        else:
            output.text(plan.text())
        return 0
    written = [_write(args.out_dir, file, plan.table) for file in plan.files]
    if output.structured:
        output.document(plan.document(written=[str(path) for path in written]))
        return 0
    output.table(
        f"rendered for {plan.table}",
        [Column("file"), Column("statements", numeric=True)],
        [[str(path), len(file.statements)] for path, file in zip(written, plan.files, strict=True)],
    )
    return 0


def _write(directory: Path, file: RenderedFile, table: TableRef) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / file.name
        path.write_text(file.text(table), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    return path


def run_apply(args: argparse.Namespace, session: Session) -> int:
    target = session.target
    plan = schema_plan(args, target.settings.table_ref, target.resource)
    output = session.output
    if args.dry_run:
        if output.structured:
            output.document(plan.document(dry_run=True))
        else:
            output.text(plan.text())
            output.line(f"-- dry run: nothing was sent to Snowflake ({len(plan.files)} files)")
        return 0
    # Each part's steps open with its USE ROLE (a table-changing part's: its owner's).
    options = queue_schema.RunOptions(batch_rows=args.batch_size, note=warn)
    applied = queue_schema.run_steps(
        session.connection, [step for f in plan.files for step in f.steps], options
    )
    if output.structured:
        output.document(plan.document(dry_run=False, statements_run=applied))
        return 0
    output.table(
        f"applied to {plan.table}",
        [Column("file"), Column("statements", numeric=True)],
        [[file.name, len(file.statements)] for file in plan.files],
    )
    output.line(f"{applied} statements ran; every one is safe to run again")
    return 0


RENDER = OpsCommand("render", RENDER_HELP, add_render_arguments, run_render, logs_in=False)
APPLY = OpsCommand(
    "apply", APPLY_HELP, add_apply_arguments, run_apply, privilege_hint=APPLY_PRIVILEGE_HINT
)
