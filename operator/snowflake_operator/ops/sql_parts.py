"""A new Snowflake account's setup for one queue table, in parts that each one role runs.

A new account needs, in this order: a warehouse, the database and schema, the queue table,
its views, the service and admin roles, a service user for every IAM role whose pods log in,
and the grants. Each part is rendered on its own and opens with the ``USE ROLE`` of the role
allowed to run it, so an administrator can review and run one part at a time
(``sql render|apply --part``).

The table and views are ``sql/001..005`` through :mod:`snowflake_operator.queue_schema`;
the rest is ``sql/account/`` and ``sql/cutover/``, rendered here. Placeholders become
validated, double-quoted identifiers, or (the IAM role ARN) a string literal whose text is
checked against the ARN format first; no other value is put into SQL text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snowflake_operator import queue_schema
from snowflake_worker.identifiers import quote_identifier, validate_identifier

from .table_owner import UseTableOwnerRole

# Who runs what, by default: objects by SYSADMIN (it owns them), roles and users by
# USERADMIN (CREATE ROLE, CREATE USER; it then owns both, so it can grant the roles),
# grants on objects by SECURITYADMIN (MANAGE GRANTS). Each can be replaced.
OBJECTS = "objects"
USERS = "users"
GRANTS = "grants"
DEFAULT_RUNNERS = {OBJECTS: "SYSADMIN", USERS: "USERADMIN", GRANTS: "SECURITYADMIN"}


@dataclass(frozen=True)
class Part:
    """One part: its role's kind, the variables it needs, and its SQL files in order.

    A file at the top of sql/ is rendered by queue_schema (001..005); one in a folder here.
    The part "users" renders its file once per service user.
    """

    name: str
    runner: str  # OBJECTS, USERS or GRANTS
    summary: str
    files: tuple[str, ...]
    needs: tuple[str, ...] = ()  # of NEEDS


# What a part may need beyond the table, and the flag that gives it.
NEEDS = {
    "warehouse": "the service's warehouse: give --service-warehouse (or set "
    "spec.snowflake.warehouse)",
    "service_role": "the service role: give --service-role (or set spec.snowflake.role)",
    "admin_role": "the admin role: give --admin-role",
}

PARTS = (
    Part(
        "warehouse",
        OBJECTS,
        "CREATE WAREHOUSE IF NOT EXISTS (X-Small, auto-suspend 60 s)",
        ("account/warehouse.sql",),
        ("warehouse",),
    ),
    Part(
        "database", OBJECTS, "CREATE DATABASE and SCHEMA IF NOT EXISTS", ("account/database.sql",)
    ),
    Part(
        "table",
        OBJECTS,
        "the queue table: 001, 002 (legacy upgrade), 005 (result column)",
        ("001_queue_table.sql", "002_migrate_from_legacy.sql", "005_result_column.sql"),
    ),
    Part("views", OBJECTS, "the status and dead-letter views: 003", ("003_monitoring_views.sql",)),
    Part(
        "roles",
        USERS,
        "the service role and the admin role, both granted to SYSADMIN",
        ("account/roles.sql",),
        ("service_role", "admin_role"),
    ),
    Part(
        "users",
        USERS,
        "one service user per IAM role that logs in, with the service role",
        ("account/service_user.sql",),
        ("warehouse", "service_role"),
    ),
    Part(
        "grants",
        GRANTS,
        "the service role's least privileges (004) and the admin role's",
        ("004_grants.sql", "account/admin_grants.sql"),
        ("warehouse", "service_role", "admin_role"),
    ),
)
# Run once in the cutover from the legacy design, never part of "all".
CUTOVER_PARTS = (
    Part(
        "release-legacy-claims",
        OBJECTS,
        "give back the rows legacy containers left 'processing' (docs/cutover.md)",
        ("cutover/release_legacy_claims.sql",),
    ),
)
ALL = "all"
PARTS_BY_NAME = {part.name: part for part in (*PARTS, *CUTOVER_PARTS)}
PART_CHOICES = (*PARTS_BY_NAME, ALL)


@dataclass(frozen=True)
class Component:
    """A chart component whose pods open a Snowflake session, and its Terraform output."""

    name: str
    terraform_output: str
    pods: str


# Every IRSA role of terraform/eks whose pods log in to Snowflake, by its output:
# tests/deploy/test_sql_identities.py holds this list against the roles Terraform creates.
COMPONENTS = (
    Component("operator", "operator_role_arn", "the operator's pods (operator mode)"),
    Component("worker", "worker_role_arn", "the worker Jobs (both modes)"),
    Component("reconciler", "reconciler_role_arn", "the CronJob runs (mode cronjob)"),
)
DEFAULT_USER_PREFIX = "SNOWFLAKE_PROCESSOR"

# An IAM role's ARN: partition, 12-digit account, role name with an optional path. Nothing
# else can be in it (no quote, backslash or space), so it can stand in a '...' literal.
_ROLE_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}"
)


class SetupError(ValueError):
    """A variable the selected parts need is missing or invalid: one line, for the user."""


def role_arn_literal(arn: str, what: str = "IAM role ARN") -> str:
    """The ARN as a SQL string literal, after checking it is an IAM role's ARN."""
    if not isinstance(arn, str) or not _ROLE_ARN.fullmatch(arn):
        raise SetupError(
            f"invalid {what} {arn!r}: expected arn:aws:iam::<12-digit account>:role/<name>"
        )
    return f"'{arn}'"


def arns_from_terraform_output(document: Any, source: str = "terraform output") -> dict[str, str]:
    """Component name -> IAM role ARN from ``terraform output -json`` of terraform/eks.

    Every component's output must be there: the stack creates all three roles, so a missing
    one means the file is not that stack's output.
    """
    if not isinstance(document, Mapping):
        raise SetupError(f"{source}: expected the JSON object `terraform output -json` prints")
    arns: dict[str, str] = {}
    for component in COMPONENTS:
        output = document.get(component.terraform_output)
        value = output.get("value") if isinstance(output, Mapping) else None
        if not isinstance(value, str):
            raise SetupError(
                f"{source}: no string output {component.terraform_output!r} "
                "(run `terraform output -json` in terraform/eks)"
            )
        arns[component.name] = value
    return arns


def read_terraform_output(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SetupError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    return arns_from_terraform_output(document, source=str(path))


@dataclass(frozen=True)
class ServiceUser:
    name: str  # validated, upper-case
    component: str
    arn: str


@dataclass(frozen=True)
class AccountSetup:
    """Everything the parts need beyond the table: validated when built."""

    schema: queue_schema.SchemaTarget
    admin_role: str | None = None
    arns: Mapping[str, str] = field(default_factory=dict)  # component -> ARN
    user_prefix: str = DEFAULT_USER_PREFIX
    runners: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RUNNERS))

    def __post_init__(self) -> None:
        if self.admin_role is not None:
            object.__setattr__(
                self, "admin_role", validate_identifier(self.admin_role, "admin role")
            )
        unknown = sorted(set(self.arns) - {c.name for c in COMPONENTS})
        if unknown:
            raise SetupError(f"no component named {', '.join(unknown)}")
        for component, arn in self.arns.items():
            role_arn_literal(arn, f"{component} role ARN")
        object.__setattr__(
            self, "user_prefix", validate_identifier(self.user_prefix, "service user prefix")
        )
        runners = {
            kind: validate_identifier(role, f"{kind} role") for kind, role in self.runners.items()
        }
        object.__setattr__(self, "runners", {**DEFAULT_RUNNERS, **runners})

    @property
    def users(self) -> list[ServiceUser]:
        """One per component with an ARN, in COMPONENTS order: PREFIX_OPERATOR, ..."""
        return [
            ServiceUser(
                validate_identifier(f"{self.user_prefix}_{c.name.upper()}", "service user"),
                c.name,
                self.arns[c.name],
            )
            for c in COMPONENTS
            if c.name in self.arns
        ]

    def role_of(self, part: Part) -> str:
        return self.runners[part.runner]

    def placeholders(self) -> dict[str, str]:
        values = self.schema.placeholders()
        if self.admin_role is not None:
            values["admin_role"] = quote_identifier(self.admin_role, "admin role")
        return values


# The parts that change the queue table: they run as its owner (table_owner.py).
TABLE_CHANGING_PARTS = frozenset({"table", "release-legacy-claims"})


@dataclass(frozen=True)
class RenderedPart:
    part: Part
    role: str
    steps: list[queue_schema.Step]  # the first is USE ROLE (or the table owner's)

    @property
    def statements(self) -> list[str]:
        """As a script runs them: what render prints."""
        return queue_schema.script(self.steps)


def selected_parts(names: list[str]) -> list[Part]:
    """The parts asked for, each once, in setup order ("all": the seven setup parts)."""
    wanted = set(names)
    if ALL in wanted:
        wanted |= {part.name for part in PARTS}
    return [part for part in (*PARTS, *CUTOVER_PARTS) if part.name in wanted]


def render_part(part: Part, setup: AccountSetup, *, role_chosen: bool = False) -> RenderedPart:
    """The part's steps, opening with its role; ``role_chosen``: its role was given by flag
    (a table-changing part then stops instead of switching to the table's owner)."""
    role = setup.role_of(part)
    first: queue_schema.Step = f"USE ROLE {quote_identifier(role, 'role')}"
    if part.name in TABLE_CHANGING_PARTS:
        first = UseTableOwnerRole(part.name, setup.schema.table, role, role_chosen)
    return RenderedPart(part, role, [first, *_statements(part, setup)])


def _statements(part: Part, setup: AccountSetup) -> list[queue_schema.Step]:
    values = setup.placeholders()
    for need in part.needs:
        if need not in values:
            raise SetupError(f"part {part.name} needs {NEEDS[need]}")
    if part.name != "users":
        return _render_files(part.files, setup, values)
    if not setup.users:
        flags = ", ".join(f"--{c.name}-role-arn" for c in COMPONENTS)
        raise SetupError(
            f"part users needs the IAM role of every pod that logs in: give {flags} "
            "(the ones you run), or --terraform-output FILE"
        )
    statements: list[queue_schema.Step] = []
    for user in setup.users:
        per_user = {
            **values,
            "service_user": quote_identifier(user.name, "service user"),
            "iam_role_arn": role_arn_literal(user.arn, f"{user.component} role ARN"),
        }
        statements += _render_files(part.files, setup, per_user)
    return statements


def _render_files(
    files: tuple[str, ...], setup: AccountSetup, values: dict[str, str]
) -> list[queue_schema.Step]:
    statements: list[queue_schema.Step] = []
    for name in files:
        if "/" in name:
            path = queue_schema.SQL_DIR / name
            statements += render_template(path.read_text(encoding="utf-8"), values, name)
        else:  # sql/001..005: queue_schema's files, placeholders and checks
            statements += queue_schema.steps(name, setup.schema)
    return statements


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LINE_COMMENT = re.compile(r"--[^\n]*")


def render_template(sql: str, values: Mapping[str, str], source: str) -> list[str]:
    """Statements of ``sql``: comments dropped, ``{{ name }}`` replaced, split on ';'.

    The values are quoted identifiers or checked literals, so none holds ';' or '--', and
    the templates hold neither inside a literal.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SetupError(f"{source}: no value for placeholder {{{{ {name} }}}}")
        return values[name]

    rendered = _PLACEHOLDER.sub(substitute, _LINE_COMMENT.sub("", sql))
    statements = []
    for chunk in rendered.split(";"):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if lines:
            statements.append("\n".join(lines))
    return statements
