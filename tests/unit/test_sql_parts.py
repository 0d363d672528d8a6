"""The pure decisions of the account setup's parts (snowflake_operator/ops/sql_parts.py):
which ARNs may become a SQL literal, what a Terraform output yields, which parts run."""

from __future__ import annotations

from typing import Any

import pytest

from snowflake_operator.ops import sql_parts
from snowflake_operator.ops.table_owner import UseTableOwnerRole, role_for_table
from snowflake_operator.queue_schema import RunOptions, SchemaTarget
from snowflake_worker.errors import ConfigError
from snowflake_worker.identifiers import TableRef

TARGET = SchemaTarget(TableRef("db", "queue", "jobs"), warehouse="wh", service_role="svc")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/sfp-worker",
        "arn:aws-us-gov:iam::123456789012:role/sfp-worker",
        "arn:aws-cn:iam::123456789012:role/team/eks/sfp_worker.v2@x=y,z+w",
    ],
)
def test_an_iam_role_arn_becomes_a_quoted_literal(arn: str) -> None:
    assert sql_parts.role_arn_literal(arn) == f"'{arn}'"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/it's",
        "arn:aws:iam::123456789012:role/a\\b",
        "arn:aws:iam::123456789012:role/a b",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam::123456789012:role/" + "r" * 65,
        "arn:aws:iam::123456789012:user/jdoe",
        "arn:aws:sts::123456789012:assumed-role/sfp-worker/botocore-session-1",
        "arn:aws:iam::1234567890123:role/x",
        "ARN:AWS:IAM::123456789012:ROLE/X",
        " arn:aws:iam::123456789012:role/x",
    ],
)
def test_anything_else_is_refused_with_its_text(arn: str) -> None:
    with pytest.raises(sql_parts.SetupError, match="invalid worker role ARN"):
        sql_parts.role_arn_literal(arn, "worker role ARN")


def test_terraform_output_yields_the_three_pod_roles_and_nothing_else() -> None:
    document = {
        "operator_role_arn": {"value": "arn:aws:iam::1:role/o", "sensitive": False},
        "worker_role_arn": {"value": "arn:aws:iam::1:role/w"},
        "reconciler_role_arn": {"value": "arn:aws:iam::1:role/r"},
        "cluster_name": {"value": "sfp"},
    }
    assert sql_parts.arns_from_terraform_output(document) == {
        "operator": "arn:aws:iam::1:role/o",
        "worker": "arn:aws:iam::1:role/w",
        "reconciler": "arn:aws:iam::1:role/r",
    }
    with pytest.raises(sql_parts.SetupError, match="no string output 'reconciler_role_arn'"):
        sql_parts.arns_from_terraform_output({k: document[k] for k in list(document)[:2]})
    with pytest.raises(sql_parts.SetupError, match="expected the JSON object"):
        sql_parts.arns_from_terraform_output(["operator_role_arn"])


def test_parts_come_once_each_in_setup_order() -> None:
    names = [p.name for p in sql_parts.selected_parts(["grants", "table", "grants"])]
    assert names == ["table", "grants"]
    everything = [p.name for p in sql_parts.selected_parts(["release-legacy-claims", "all"])]
    assert everything == [*(p.name for p in sql_parts.PARTS), "release-legacy-claims"]


def test_a_users_part_has_one_user_per_component_given() -> None:
    setup = sql_parts.AccountSetup(
        TARGET, arns={"worker": "arn:aws:iam::123456789012:role/w"}, user_prefix="sfp"
    )
    assert [(u.name, u.component) for u in setup.users] == [("SFP_WORKER", "worker")]
    with pytest.raises(sql_parts.SetupError, match="no component named builder"):
        sql_parts.AccountSetup(TARGET, arns={"builder": "arn:aws:iam::123456789012:role/b"})


def test_every_part_opens_with_use_role_of_its_runner() -> None:
    setup = sql_parts.AccountSetup(
        TARGET,
        admin_role="adm",
        arns={"worker": "arn:aws:iam::123456789012:role/w"},
        runners={sql_parts.USERS: "identity_admin"},
    )
    for part in (*sql_parts.PARTS, *sql_parts.CUTOVER_PARTS):
        rendered = sql_parts.render_part(part, setup)
        expected = {"objects": "SYSADMIN", "users": "IDENTITY_ADMIN", "grants": "SECURITYADMIN"}
        assert rendered.role == expected[part.runner]
        assert rendered.statements[0] == f'USE ROLE "{rendered.role}"'
        assert len(rendered.statements) > 1


def test_a_template_refuses_a_placeholder_it_has_no_value_for() -> None:
    with pytest.raises(sql_parts.SetupError, match=r"x\.sql: no value for placeholder"):
        sql_parts.render_template("GRANT USAGE ON {{ nothing }} TO ROLE R;", {}, "x.sql")
    assert sql_parts.render_template(
        "-- a comment; with a semicolon\nSELECT {{ a }};\n\n", {"a": '"A"'}, "y.sql"
    ) == ['SELECT "A"']


# -- parts that change the table run as its owner ------------------------------------------

TABLE = TableRef("db", "queue", "jobs")


def test_the_table_owner_decides_who_runs_a_table_changing_part() -> None:
    assert role_for_table(TABLE, None, "SYSADMIN", False, "table") == "SYSADMIN"  # no table
    assert role_for_table(TABLE, "SYSADMIN", "SYSADMIN", True, "table") == "SYSADMIN"
    assert role_for_table(TABLE, "LEGACY_OWNER", "SYSADMIN", False, "table") == "LEGACY_OWNER"
    with pytest.raises(ConfigError, match=r"owned by role LEGACY_OWNER.*--objects-role LEGACY"):
        role_for_table(TABLE, "LEGACY_OWNER", "QUEUE_ADMIN", True, "table")


class ShowingConnection:
    """Answers SHOW TABLES with one table owned by ``owner``; records the statements."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.executed: list[str] = []

    def cursor(self) -> Any:
        connection = self

        class Cursor:
            description = (("name",), ("kind",), ("owner",))

            def execute(self, statement: str) -> None:
                connection.executed.append(statement)

            def fetchall(self) -> list[tuple[str, ...]]:
                return [("OTHER", "TABLE", "X"), ("JOBS", "TABLE", connection.owner)]

            def close(self) -> None:
                pass

        return Cursor()


def test_apply_switches_to_the_owner_of_a_legacy_table_and_says_so() -> None:
    step = UseTableOwnerRole("table", TABLE, "SYSADMIN", chosen=False)
    assert step.script() == ['USE ROLE "SYSADMIN"']  # what render prints
    connection, notes = ShowingConnection("LEGACY_OWNER"), list[str]()
    assert step.run(connection, RunOptions(note=notes.append)) == 3
    assert connection.executed == [
        'USE ROLE "SYSADMIN"',
        'SHOW TABLES IN SCHEMA "DB"."QUEUE"',
        'USE ROLE "LEGACY_OWNER"',
    ]
    assert notes == [f"part table: {TABLE} is owned by LEGACY_OWNER; running it as LEGACY_OWNER"]
    owned = ShowingConnection("SYSADMIN")
    assert step.run(owned, RunOptions()) == 2
    assert owned.executed[-1] == 'SHOW TABLES IN SCHEMA "DB"."QUEUE"'


def test_only_the_table_changing_parts_look_for_the_owner() -> None:
    setup = sql_parts.AccountSetup(
        schema=SchemaTarget(TABLE, warehouse="wh", service_role="svc"), admin_role="adm"
    )
    for part in (*sql_parts.PARTS, *sql_parts.CUTOVER_PARTS):
        if part.name == "users":
            continue
        first = sql_parts.render_part(part, setup).steps[0]
        assert isinstance(first, UseTableOwnerRole) is (
            part.name in {"table", "release-legacy-claims"}
        )
