"""The identities the Snowflake setup registers against the IAM roles Terraform creates.

Snowflake finds a workload-identity login's user from the IAM role the pod presents, so
every IRSA role of terraform/eks (each one's pods open Snowflake sessions: the operator,
the worker Jobs, the CronJob runs) must have a service user, and no other role should.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from snowflake_operator.ops import sql_parts
from snowflake_processor.cli import main
from tests.support.terraform_config import TF_DIR, Config, load_config, ref_of, resolve

CONFIG = load_config(TF_DIR)
ACCOUNT = "123456789012"


def web_identity_roles(config: Config) -> dict[str, str]:
    """aws_iam_role resource -> its resolved name, for the roles pods assume (IRSA): trusted
    through sts:AssumeRoleWithWebIdentity by a federated (OIDC) principal."""
    roles: dict[str, str] = {}
    for (kind, name), body in config.resources.items():
        if kind != "aws_iam_role":
            continue
        match = re.fullmatch(
            r"data\.aws_iam_policy_document\.(\w+)\.json", ref_of(body["assume_role_policy"]) or ""
        )
        assert match, f"aws_iam_role.{name}: trust policy is not a policy document"
        document = config.data[("aws_iam_policy_document", match.group(1))]
        for statement in document["statement"]:
            federated = any(p["type"] == "Federated" for p in statement.get("principals", []))
            if federated and "sts:AssumeRoleWithWebIdentity" in statement["actions"]:
                roles[name] = resolve(config, body["name"])
    return roles


def role_outputs(config: Config) -> dict[str, str]:
    """aws_iam_role resource -> the output that is exactly its ARN."""
    found: dict[str, str] = {}
    for output, body in config.outputs.items():
        match = re.fullmatch(r"aws_iam_role\.(\w+)\.arn", ref_of(body.get("value")) or "")
        if match:
            found[match.group(1)] = output
    return found


def test_terraform_creates_the_irsa_roles_this_test_knows() -> None:
    """Guards the rest: a new or renamed IRSA role must be decided on here."""
    assert set(web_identity_roles(CONFIG)) == {"operator", "worker", "reconciler"}


def test_every_irsa_role_has_the_output_the_setup_reads_and_no_other_is_read() -> None:
    outputs = role_outputs(CONFIG)
    irsa = web_identity_roles(CONFIG)
    read = {component.terraform_output for component in sql_parts.COMPONENTS}
    assert {outputs[role] for role in irsa} == read
    assert all(outputs[c.name] == c.terraform_output for c in sql_parts.COMPONENTS)


def test_the_users_part_registers_every_irsa_role_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    irsa = web_identity_roles(CONFIG)
    outputs = role_outputs(CONFIG)
    arns = {role: f"arn:aws:iam::{ACCOUNT}:role/{name}" for role, name in irsa.items()}
    assert not any("${" in arn for arn in arns.values()), arns
    # What `terraform output -json` prints for this stack (the ARNs as apply makes them).
    document: dict[str, Any] = {
        outputs[role]: {"sensitive": False, "type": "string", "value": arn}
        for role, arn in arns.items()
    }
    document["region"] = {"sensitive": False, "type": "string", "value": "eu-west-1"}
    output_file = tmp_path / "terraform-output.json"
    output_file.write_text(json.dumps(document), encoding="utf-8")

    code = main(
        ["sql", "render", "--database", "db", "--schema", "queue", "--table", "jobs",
         "--service-role", "sfp_service", "--service-warehouse", "etl_wh", "--part", "users",
         "--terraform-output", str(output_file), "-o", "json"]
    )  # fmt: skip
    assert code == 0
    (users,) = json.loads(capsys.readouterr().out)["files"]
    text = "\n".join(users["statements"])
    created = (
        r"^CREATE USER IF NOT EXISTS \"(\w+)\"\n.*\n"
        r"    WORKLOAD_IDENTITY = \(TYPE = AWS ARN = '([^']+)'\)"
    )
    registered = re.findall(created, text, re.M)
    assert sorted(arn for _, arn in registered) == sorted(arns.values())
    assert len({user for user, _ in registered}) == len(arns)  # one user per role
    for user, _ in registered:
        assert f'GRANT ROLE "SFP_SERVICE" TO USER "{user}"' in users["statements"]
