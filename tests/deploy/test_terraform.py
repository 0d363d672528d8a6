"""The EKS Fargate stack in terraform/eks: formatting, checkov, and its contract with the chart.

Nothing here reaches AWS or a provider registry: ``terraform init``, ``validate`` and
``plan`` cannot run offline, so the configuration is checked statically.

- ``terraform fmt -check`` passes (skipped only when there is no terraform binary).
- checkov's terraform checks report no failure; each skip is a comment with a reason,
  made inside the block it exempts.
- The parsed HCL (python-hcl2) agrees with the Helm chart (charts/snowflake-processor)
  and with examples/processor-workload-identity.yaml: the Fargate profiles select the
  namespaces and pod labels the operator and the Jobs really have (a pod no profile
  selects stays Pending forever), the IRSA trusts name the chart's service accounts, the
  operator may read exactly the example's bucket and prefix and nothing else, the worker
  role has no permission at all, modules are pinned, the ECR repositories are immutable
  and scanned, and the ``helm_values`` output fits the chart (rendered with helm).
- Both chart modes, rendered with ``helm template`` and the ``helm_values`` output as
  terraform.tfvars.example configures the stack (operator mode; CronJob mode in the jobs
  namespace and in each of ``cronjob_namespaces``), plus the worker Job the operator's
  own manifest builder makes for each: every pod matches a Fargate profile and runs as a
  ServiceAccount whose IAM role trusts exactly it, and no role trusts, nor profile
  selects, anything no release renders.
- Every account-wide name derives from ``var.name``; one access entry per admin, the
  applying identity included; a new or an existing VPC, the S3 gateway and optional
  interface endpoints, the NAT addresses as an output; destroy refuses non-empty
  repositories and the bucket unless ``force_destroy``; README.md and
  terraform.tfvars.example name every variable and output.

Expressions python-hcl2 leaves as text (``for``, ``merge``, conditionals) are evaluated by
tests/support/terraform_config.py from the variables (tfvars, else defaults); what only
AWS knows stays ``${...}`` text.

Each consistency check is a function that raises AssertionError; the mutation tests at
the end feed each one a broken copy of the configuration, so every check is shown to fail
on the mistake it is about. checkov and helm come from PATH or .tools/bin (``make tools``);
a missing one fails the test.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from snowflake_operator.constants import FARGATE_PROFILE_LABEL, FARGATE_PROFILE_LABEL_VALUE
from snowflake_operator.kube.job_manifest import build_job
from snowflake_operator.kube.processor_ref import ProcessorRef
from snowflake_operator.spec.model import ProcessorSpec
from tests.support.deploy_tools import checkov_report as shared_checkov_report
from tests.support.deploy_tools import passed_checks, tool
from tests.support.terraform_config import (
    HCL_OPTIONS,
    Config,
    as_list,
    blocks,
    eks_module,
    fargate_profiles,
    fargate_selectors,
    is_unknown,
    load_config,
    load_tfvars,
    ref_of,
    resolve,
    vpc_module,
    with_known,
    with_variables,
)

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "terraform" / "eks"
CHART_DIR = ROOT / "charts" / "snowflake-processor"
CHART_VALUES = CHART_DIR / "values.yaml"
CRONJOB_VALUES = CHART_DIR / "ci" / "cronjob-values.yaml"
EXAMPLE = ROOT / "examples" / "processor-workload-identity.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
TFVARS_EXAMPLE = TF_DIR / "terraform.tfvars.example"
README = TF_DIR / "README.md"
# IAM limits a role's name_prefix to 38 characters (64 less a 26-character unique suffix).
IAM_NAME_PREFIX_LIMIT = 38

# The chart is installed into this namespace (its release namespace, named in the
# chart's values.yaml header and docs/install.md); the Helm release is not in any file.
OPERATOR_NAMESPACE = "snowflake-processor-system"
# The chart's templates label the operator pod with it (fixed in _helpers.tpl).
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "snowflake-processor"}
ECR_REPOSITORIES = {
    "operator": "snowflake-processor-operator",
    "worker": "snowflake-processor-worker",
}
# The chart values the helm_values output feeds, and the resource attribute each comes from.
HELM_VALUES_SOURCES = {
    ("operator", "serviceAccount", "roleArn"): "${aws_iam_role.operator.arn}",
    ("worker", "serviceAccount", "roleArn"): "${aws_iam_role.worker.arn}",
    ("cronjob", "serviceAccount", "roleArn"): "${aws_iam_role.reconciler.arn}",
    ("operator", "image", "repository"): '${aws_ecr_repository.this["operator"].repository_url}',
    ("worker", "image", "repository"): '${aws_ecr_repository.this["worker"].repository_url}',
}
OPERATOR_S3_ACTIONS = {"s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion"}
# Resources that give a role permissions, and the attribute naming the role.
POLICY_ATTACHMENT_TYPES = {
    "aws_iam_role_policy": "role",
    "aws_iam_role_policy_attachment": "role",
    "aws_iam_policy_attachment": "roles",
}
EXCLUSIVE_POLICY_TYPES = {
    "aws_iam_role_policies_exclusive": "policy_names",
    "aws_iam_role_policy_attachments_exclusive": "policy_arns",
}

CONFIG = load_config(TF_DIR)
# The configuration as terraform.tfvars.example sets it: the bucket of the example
# resource, and a CronJob-mode namespace besides the jobs namespace (docs/install.md's).
EXAMPLE_CONFIG = with_variables(CONFIG, **load_tfvars(TFVARS_EXAMPLE))
# The IRSA roles, by the chart's ServiceAccount each one is for.
IRSA_ROLES = ("operator", "worker", "reconciler")


# -- the parsed configuration (tests/support/terraform_config.py) -----------------------


def policy_document_of(config: Config, reference: Any) -> tuple[str, dict[str, Any]]:
    """The aws_iam_policy_document a ``policy``/``assume_role_policy`` attribute names."""
    expression = ref_of(reference)
    match = re.fullmatch(r"data\.aws_iam_policy_document\.(\w+)\.json", expression or "")
    assert match, f"expected data.aws_iam_policy_document.<name>.json, got {reference!r}"
    name = match.group(1)
    document = config.data.get(("aws_iam_policy_document", name))
    assert document is not None, f"data.aws_iam_policy_document.{name} is not defined"
    return name, document


@dataclass
class Statement:
    effect: str
    actions: list[str]
    resources: list[str]
    principals: list[dict[str, Any]]
    conditions: list[dict[str, Any]]
    raw: dict[str, Any]


def statements(config: Config, document: dict[str, Any]) -> list[Statement]:
    found = []
    for statement in blocks(document.get("statement")):
        resolved = resolve(config, statement)
        found.append(
            Statement(
                effect=resolved.get("effect", "Allow"),
                actions=as_list(resolved.get("actions")),
                resources=as_list(resolved.get("resources")),
                principals=blocks(resolved.get("principals")),
                conditions=blocks(resolved.get("condition")),
                raw=resolved,
            )
        )
    return found


# -- the other side of the contract: the chart and the example resource ------------------


def load_example() -> dict[str, Any]:
    with EXAMPLE.open() as handle:
        example = yaml.safe_load(handle)
    assert isinstance(example, dict), EXAMPLE
    return example


@dataclass(frozen=True)
class Contract:
    """What the chart and the example resource fix, read from their files."""

    operator_namespace: str
    operator_service_account: str
    operator_pod_labels: dict[str, str]
    jobs_namespace: str
    worker_service_account: str
    worker_pod_labels: dict[str, str]
    reconciler_service_account: str
    certificate_bucket: str
    certificate_prefix: str
    chart_values: dict[str, Any]


def chart_value(values: dict[str, Any], *path: str) -> Any:
    node: Any = values
    for index, key in enumerate(path):
        assert isinstance(node, dict) and key in node, (
            f"{CHART_VALUES.relative_to(ROOT)} has no {'.'.join(path[: index + 1])}: "
            "the Terraform stack reads the chart's names from it (see the chart contract "
            "in this test's docstring)"
        )
        node = node[key]
    return node


def load_contract() -> Contract:
    assert CHART_VALUES.exists(), (
        f"{CHART_VALUES.relative_to(ROOT)} not found: the Terraform stack's service "
        "accounts and namespaces are checked against the chart's values"
    )
    with CHART_VALUES.open() as handle:
        values = yaml.safe_load(handle)
    assert isinstance(values, dict), CHART_VALUES
    example = load_example()
    job = example["spec"]["job"]
    s3 = example["spec"]["certificates"]["s3"]
    jobs_namespace = example["metadata"]["namespace"]
    assert chart_value(values, "jobs", "namespace") == jobs_namespace, (
        "the chart's jobs.namespace and the example resource's namespace differ"
    )
    worker_service_account = chart_value(values, "worker", "serviceAccount", "name")
    assert job["serviceAccountName"] == worker_service_account, (
        "the example's spec.job.serviceAccountName is not the chart's worker service account"
    )
    return Contract(
        operator_namespace=OPERATOR_NAMESPACE,
        operator_service_account=chart_value(values, "operator", "serviceAccount", "name"),
        operator_pod_labels=dict(OPERATOR_POD_LABELS),
        jobs_namespace=jobs_namespace,
        worker_service_account=worker_service_account,
        # What the operator puts on every Job's pod, whatever the resource says.
        worker_pod_labels={FARGATE_PROFILE_LABEL: FARGATE_PROFILE_LABEL_VALUE},
        reconciler_service_account=chart_value(values, "cronjob", "serviceAccount", "name"),
        certificate_bucket=s3["bucket"],
        certificate_prefix=s3["prefix"],
        chart_values=values,
    )


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


# -- tools -------------------------------------------------------------------------------


def terraform_binary() -> str:
    found = shutil.which("terraform") or (
        "/usr/local/bin/terraform" if Path("/usr/local/bin/terraform").exists() else None
    )
    if found is None:
        pytest.skip(
            "no terraform binary on PATH or at /usr/local/bin/terraform (no registry offers "
            "one here); terraform fmt -check cannot run"
        )
    return found


def terraform_fmt_check(directory: Path) -> subprocess.CompletedProcess[str]:
    # No CLI configuration file is needed for fmt; point at none so it does not warn.
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        [terraform_binary(), "fmt", "-check", "-recursive", "-diff", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def checkov_report(directory: Path) -> dict[str, Any]:
    return shared_checkov_report("terraform", "-d", str(directory))


# -- formatting and checkov --------------------------------------------------------------


def test_terraform_fmt_check_passes() -> None:
    result = terraform_fmt_check(TF_DIR)
    assert result.returncode == 0, (
        "terraform fmt -check found unformatted files (run `terraform fmt -recursive "
        f"terraform/eks`):\n{result.stdout}{result.stderr}"
    )


def test_terraform_fmt_check_fails_on_a_misformatted_file(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('locals {\n  a = "x"\n  bb   =    "y"\n}\n')
    assert terraform_fmt_check(tmp_path).returncode != 0


@pytest.fixture(scope="module")
def checkov() -> dict[str, Any]:
    return checkov_report(TF_DIR)


def test_checkov_terraform_checks_pass(checkov: dict[str, Any]) -> None:
    passed = passed_checks(checkov)
    assert checkov["summary"]["parsing_errors"] == 0
    assert checkov["summary"]["resource_count"] > 0
    # What this stack is about: KMS rotation, S3 public access block and versioning,
    # ECR immutability, scanning and KMS, log retention and encryption.
    assert {
        "CKV_AWS_7",
        "CKV2_AWS_6",
        "CKV_AWS_21",
        "CKV_AWS_51",
        "CKV_AWS_163",
        "CKV_AWS_136",
        "CKV_AWS_158",
        "CKV_AWS_338",
    } <= passed, sorted(passed)


def skip_comments() -> Iterator[tuple[Path, int, str, str]]:
    for path in sorted(TF_DIR.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = re.search(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", line)
            if match:
                yield path, number, match.group(1), (match.group(2) or "").strip()


def test_every_checkov_skip_is_a_reasoned_comment_inside_its_block(
    checkov: dict[str, Any],
) -> None:
    for path, number, check_id, reason in skip_comments():
        where = f"{path.relative_to(ROOT)}:{number} {check_id}"
        assert len(reason) >= 20, f"{where}: say why the check does not apply"
        line = path.read_text().splitlines()[number - 1]
        assert line.startswith("  #checkov:skip="), f"{where}: put the skip inside the block"
    skipped = checkov["results"]["skipped_checks"]
    # Every comment exempts a check checkov really runs on that block: a typo'd ID or a
    # skip left in the wrong block shows up as a comment without a skipped result.
    assert Counter(c["check_id"] for c in skipped) == Counter(
        check_id for _, _, check_id, _ in skip_comments()
    )
    for check in skipped:
        suppress = check.get("check_result", {}).get("suppress_comment", "")
        assert len(suppress.strip()) >= 20, f"{check['check_id']} ({check['resource']})"
    for name in (".checkov.yaml", ".checkov.yml", "terraform/eks/.checkov.yaml"):
        config = ROOT / name
        assert not config.exists() or "skip-check" not in config.read_text(), config


def test_checkov_fails_a_public_bucket(tmp_path: Path) -> None:
    """The checkov run above can fail: an open public access block is reported."""
    for path in TF_DIR.glob("*.tf"):
        shutil.copy(path, tmp_path / path.name)
    s3 = tmp_path / "s3.tf"
    s3.write_text(
        s3.read_text().replace("restrict_public_buckets = true", "restrict_public_buckets = false")
    )
    report = checkov_report(tmp_path)
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert report["summary"]["failed"] > 0
    assert "CKV_AWS_56" in failed, failed


# -- the consistency checks, each a function the mutation tests break -------------------


def check_versions(config: Config) -> None:
    (terraform,) = config.terraform
    assert terraform.get("required_version") == ">= 1.6"
    (providers,) = blocks(terraform.get("required_providers"))
    aws = providers.get("aws")
    assert isinstance(aws, dict), "required_providers.aws"
    assert aws.get("source") == "hashicorp/aws"
    assert re.fullmatch(r"~> 5\.\d+(\.\d+)?", aws.get("version", "")), aws
    kubernetes = providers.get("kubernetes")
    assert isinstance(kubernetes, dict), "required_providers.kubernetes"
    assert re.fullmatch(r"~> \d+\.\d+(\.\d+)?", kubernetes.get("version", "")), kubernetes


def check_variables_documented(config: Config) -> None:
    assert config.variables, "no variables"
    for name, variable in config.variables.items():
        assert str(variable.get("description", "")).strip(), f"variable {name}: no description"
        assert "type" in variable, f"variable {name}: no type"
    assert re.fullmatch(r"1\.\d+", str(resolve(config, "${var.cluster_version}")))
    assert resolve(config, "${var.cluster_endpoint_public_access}") is False
    assert resolve(config, "${var.certificate_prefix}") == "prod/"


def check_modules_pinned(config: Config) -> None:
    assert config.modules, "no modules"
    for name, module in config.modules.items():
        source = str(module.get("source", ""))
        if source.startswith(("./", "../")):
            continue
        if source.startswith("git::") or "github.com" in source:
            assert re.search(r"[?&]ref=[0-9a-f]{40}$", source), (
                f"module.{name}: a git source must pin a commit hash"
            )
            continue
        version = str(module.get("version", ""))
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (
            f"module.{name} ({source}): pin an exact version, not {version!r}"
        )


def check_eks_hardening(config: Config) -> None:
    eks = resolve(config, eks_module(config))
    assert eks.get("cluster_version") == resolve(config, "${var.cluster_version}")
    assert eks.get("cluster_endpoint_private_access") is True
    assert eks.get("cluster_endpoint_public_access") is False, "public endpoint off by default"
    assert {"api", "audit", "authenticator"} <= set(eks.get("cluster_enabled_log_types", []))
    (encryption,) = blocks(eks.get("cluster_encryption_config"))
    assert encryption.get("resources") == ["secrets"]
    assert str(encryption.get("provider_key_arn", "")).strip(), "a KMS key for Secrets"
    assert eks.get("enable_irsa") is True
    coredns = (eks.get("cluster_addons") or {}).get("coredns")
    assert isinstance(coredns, dict), "the coredns cluster addon"
    assert re.search(r'computeType\s*=\s*"Fargate"', str(coredns.get("configuration_values"))), (
        "coredns must run on Fargate (configuration_values computeType = Fargate)"
    )
    vpc = [m for m in config.modules.values() if m.get("source") == "terraform-aws-modules/vpc/aws"]
    assert len(vpc) == 1, "one terraform-aws-modules/vpc/aws module"
    assert vpc[0].get("enable_nat_gateway") is True
    assert vpc[0].get("private_subnets") and vpc[0].get("public_subnets")


def job_namespaces(config: Config, contract: Contract) -> list[str]:
    """Where worker Jobs and CronJob-mode runs go: the jobs namespace and cronjob_namespaces."""
    extra = resolve(config, "${var.cronjob_namespaces}")
    assert isinstance(extra, list), extra
    return list(dict.fromkeys([contract.jobs_namespace, *extra]))


def check_fargate_profiles(config: Config, contract: Contract) -> None:
    profiles = fargate_profiles(config)
    expected = {
        "operator": (contract.operator_namespace, contract.operator_pod_labels),
        "jobs": (contract.jobs_namespace, contract.worker_pod_labels),
        "coredns": ("kube-system", {"k8s-app": "kube-dns"}),
    }
    # A CronJob-mode namespace: its runs and their Jobs carry the worker pod label.
    for namespace in job_namespaces(config, contract)[1:]:
        expected[f"cronjob-{namespace}"] = (namespace, contract.worker_pod_labels)
    assert set(expected) == set(profiles), f"Fargate profiles: {sorted(profiles)}"
    for name, (namespace, pod_labels) in expected.items():
        selectors = blocks(profiles[name].get("selectors"))
        assert len(selectors) == 1, f"profile {name}: one selector"
        (selector,) = selectors
        assert selector.get("namespace") == namespace, (
            f"profile {name} selects namespace {selector.get('namespace')!r}, "
            f"the pods run in {namespace!r}"
        )
        labels = selector.get("labels")
        assert isinstance(labels, dict) and labels, f"profile {name}: select on pod labels"
        # A profile selects a pod when every label of its selector is on the pod.
        missing = {k: v for k, v in labels.items() if pod_labels.get(k) != str(v)}
        assert not missing, (
            f"profile {name} selects {labels}; the pods carry {pod_labels}: "
            f"{missing} would leave them Pending"
        )


def subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def trust_subjects(config: Config, role_name: str) -> list[str]:
    """The service accounts an IRSA role trusts, after checking the trust's shape: one
    statement, AssumeRoleWithWebIdentity from this cluster's OIDC provider alone,
    StringEquals on sub (exact names, no wildcard) and on aud."""
    role = config.resources.get(("aws_iam_role", role_name))
    assert role is not None, f"aws_iam_role.{role_name} is not defined"
    document_name, document = policy_document_of(config, role.get("assume_role_policy"))
    (statement,) = statements(config, document)
    assert statement.effect == "Allow"
    assert statement.actions == ["sts:AssumeRoleWithWebIdentity"], statement.actions
    assert statement.principals == [
        {"type": "Federated", "identifiers": ["${module.eks.oidc_provider_arn}"]}
    ], f"{document_name}: trust only the cluster's OIDC provider"
    conditions = {(c.get("test"), c.get("variable")): c.get("values") for c in statement.conditions}
    sub = ("StringEquals", "${module.eks.oidc_provider}:sub")
    aud = ("StringEquals", "${module.eks.oidc_provider}:aud")
    assert set(conditions) == {sub, aud}, f"{document_name}: {conditions}"
    assert conditions[aud] == ["sts.amazonaws.com"], f"{document_name}: {conditions[aud]}"
    subjects = conditions[sub]
    assert isinstance(subjects, list) and subjects, f"{document_name}: sub {subjects!r}"
    for name in subjects:
        assert isinstance(name, str) and not is_unknown(name), f"{document_name}: {name!r}"
        assert re.fullmatch(r"system:serviceaccount:[a-z0-9-]+:[a-z0-9.-]+", name), name
    return subjects


def check_irsa_trust(config: Config, contract: Contract) -> None:
    namespaces = job_namespaces(config, contract)
    expected = {
        "operator": [subject(contract.operator_namespace, contract.operator_service_account)],
        "worker": [subject(n, contract.worker_service_account) for n in namespaces],
        "reconciler": [subject(n, contract.reconciler_service_account) for n in namespaces],
    }
    for role_name, subjects in expected.items():
        trusted = trust_subjects(config, role_name)
        assert sorted(trusted) == sorted(subjects), f"the {role_name} role trusts {trusted}"


def role_policies(config: Config, role_name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Resources granting a policy to aws_iam_role.<role_name>: (type, name, body)."""
    found = []
    for (type_, name), body in config.resources.items():
        attribute = POLICY_ATTACHMENT_TYPES.get(type_)
        if attribute is None:
            continue
        targets = [ref_of(target) or "" for target in as_list(body.get(attribute))]
        if any(re.fullmatch(rf"aws_iam_role\.{role_name}\.(id|name)", t) for t in targets):
            found.append((type_, name, body))
    return found


def key_policy_grants(config: Config, role_name: str) -> list[tuple[str, Statement]]:
    """Statements of other policy documents naming the role as a principal."""
    grants = []
    for (type_, name), document in config.data.items():
        if type_ != "aws_iam_policy_document":
            continue
        for statement in statements(config, document):
            identifiers = [i for p in statement.principals for i in as_list(p.get("identifiers"))]
            if any(
                re.fullmatch(rf"\$\{{aws_iam_role\.{role_name}\.\w+\}}", i) for i in identifiers
            ):
                grants.append((name, statement))
    return grants


# The roles that read the certificates (the operator, and the runs in CronJob mode), and
# the one aws_iam_role_policy each gets.
CERTIFICATE_READERS = {"operator": "operator_certificates", "reconciler": "reconciler_certificates"}


def check_operator_s3_policy(config: Config, contract: Contract) -> None:
    bucket = resolve(config, "${aws_s3_bucket.certificates.bucket}")
    prefix = resolve(config, "${var.certificate_prefix}")
    assert (bucket, prefix) == (contract.certificate_bucket, contract.certificate_prefix), (
        f"terraform.tfvars.example makes s3://{bucket}/{prefix}, the example "
        f"resource reads s3://{contract.certificate_bucket}/{contract.certificate_prefix}"
    )
    for role_name, policy_name in CERTIFICATE_READERS.items():
        check_certificate_reader(config, contract, role_name, policy_name)


def check_certificate_reader(
    config: Config, contract: Contract, role_name: str, policy_name: str
) -> None:
    role = config.resources[("aws_iam_role", role_name)]
    for attribute in ("inline_policy", "managed_policy_arns"):
        assert attribute not in role, f"aws_iam_role.{role_name}.{attribute}"
    granted = role_policies(config, role_name)
    assert [(t, n) for t, n, _ in granted] == [("aws_iam_role_policy", policy_name)], (
        f"the {role_name} role gets exactly one policy, got {[(t, n) for t, n, _ in granted]}"
    )
    _, document = policy_document_of(config, granted[0][2].get("policy"))
    bucket_arn = f"arn:aws:s3:::{contract.certificate_bucket}"
    objects_arn = f"{bucket_arn}/{contract.certificate_prefix}*"
    actions: set[str] = set()
    for statement in statements(config, document):
        assert statement.effect == "Allow"
        for forbidden in ("not_actions", "not_resources", "not_principals"):
            assert forbidden not in statement.raw, forbidden
        actions.update(statement.actions)
        if statement.actions == ["s3:ListBucket"]:
            assert statement.resources == [bucket_arn], statement.resources
            assert [(c["test"], c["variable"], c["values"]) for c in statement.conditions] == [
                ("StringLike", "s3:prefix", [f"{contract.certificate_prefix}*"])
            ], statement.conditions
        else:
            assert set(statement.actions) <= {"s3:GetObject", "s3:GetObjectVersion"}, (
                statement.actions
            )
            assert statement.resources == [objects_arn], statement.resources
    assert actions == OPERATOR_S3_ACTIONS, sorted(actions)
    # The only other grant: kms:Decrypt of the certificate key, through S3 alone.
    grants = key_policy_grants(config, role_name)
    assert grants, f"no key policy lets the {role_name} role decrypt the certificates"
    for name, statement in grants:
        assert statement.actions == ["kms:Decrypt"], (name, statement.actions)
        via = {c["variable"]: c["values"] for c in statement.conditions}
        region = resolve(config, "${var.region}")
        assert via.get("kms:ViaService") == [f"s3.{region}.amazonaws.com"], (name, via)


def check_worker_has_no_permissions(config: Config) -> None:
    role = config.resources.get(("aws_iam_role", "worker"))
    assert role is not None, "aws_iam_role.worker is not defined"
    for attribute in ("inline_policy", "managed_policy_arns", "permissions_boundary"):
        assert attribute not in role, f"aws_iam_role.worker.{attribute}"
    granted = role_policies(config, "worker")
    assert not granted, f"the worker role must have no policy: {[(t, n) for t, n, _ in granted]}"
    for (type_, name), body in config.resources.items():
        list_attribute = EXCLUSIVE_POLICY_TYPES.get(type_)
        if list_attribute and ref_of(body.get("role_name")) == "aws_iam_role.worker.name":
            assert body.get(list_attribute) == [], f"{type_}.{name}.{list_attribute}"
    grants = key_policy_grants(config, "worker")
    assert not grants, f"policy documents grant the worker role: {[n for n, _ in grants]}"


def check_ecr(config: Config) -> None:
    repositories = {k: v for k, v in config.resources.items() if k[0] == "aws_ecr_repository"}
    assert repositories, "no aws_ecr_repository"
    names: set[str] = set()
    for (_, name), body in repositories.items():
        where = f"aws_ecr_repository.{name}"
        assert body.get("image_tag_mutability") == "IMMUTABLE", where
        (scanning,) = blocks(body.get("image_scanning_configuration"))
        assert scanning.get("scan_on_push") is True, where
        (encryption,) = blocks(body.get("encryption_configuration"))
        assert encryption.get("encryption_type") == "KMS", where
        repository_names = resolve(config, body.get("for_each")) if "for_each" in body else None
        if isinstance(repository_names, dict):
            assert ref_of(body.get("name")) == "each.value", where
            names.update(repository_names.values())
        else:
            names.add(resolve(config, body.get("name")))
    assert names == set(ECR_REPOSITORIES.values()), sorted(names)


# Resource types whose names are unique per account (or, for buckets, globally), and the
# attribute holding the name.
ACCOUNT_WIDE_NAMES = {
    "aws_iam_role": "name",
    "aws_iam_policy": "name",
    "aws_kms_alias": "name",
    "aws_cloudwatch_log_group": "name",
    "aws_security_group": "name",
    "aws_s3_bucket": "bucket",
}
PROBE_NAME = "probe-stack"


def check_names_derive_from_name(config: Config) -> None:
    """A second stack with another var.name collides with the first on no name."""
    probe = with_variables(config, name=PROBE_NAME)
    for (type_, name), body in probe.resources.items():
        attribute = ACCOUNT_WIDE_NAMES.get(type_)
        if attribute is not None:
            value = resolve(probe, body.get(attribute))
            assert isinstance(value, str) and PROBE_NAME in value, (
                f"{type_}.{name}.{attribute} = {value!r} does not derive from var.name"
            )
    ecr = probe.resources[("aws_ecr_repository", "this")]
    assert ref_of(ecr.get("for_each")) == "local.ecr_repositories"
    repositories = resolve(probe, "${local.ecr_repositories}")
    assert repositories == {k: f"{PROBE_NAME}-{k}" for k in ECR_REPOSITORIES}, repositories
    eks = resolve(probe, eks_module(probe))
    assert eks["cluster_name"] == PROBE_NAME
    assert "iam_role_name" not in eks, "the cluster role keeps the module's <name>-cluster-"
    for profile_name, profile in fargate_profiles(probe).items():
        assert "iam_role_name" not in profile, f"profile {profile_name} drops the default"
    for what, prefix in iam_name_prefixes(probe).items():
        assert prefix.startswith(PROBE_NAME), f"{what}: {prefix!r}"
    assert resolve(probe, vpc_module(probe)["name"]) == PROBE_NAME


def check_cluster_admins(config: Config) -> None:
    """One access entry per principal: the applying identity (what the module's own
    creator entry would add) joined with the listed admins, listed or not."""
    eks = eks_module(config)
    assert eks.get("enable_cluster_creator_admin_permissions") is False, (
        "the module's creator entry would be a second entry for a listed applier"
    )
    applier = f"arn:aws:iam::{ACCOUNT}:role/ci"
    admin = f"arn:aws:iam::{ACCOUNT}:role/platform-admin"
    for listed in ([], [admin], [applier], [admin, applier]):
        planned = with_known(
            with_variables(config, cluster_admin_principal_arns=listed),
            data__aws_iam_session_context__current__issuer_arn=applier,
        )
        entries = resolve(planned, eks_module(planned).get("access_entries"))
        assert isinstance(entries, dict), entries
        assert sorted(entries) == sorted({*listed, applier}), (listed, sorted(entries))
        for key, entry in entries.items():
            assert entry["principal_arn"] == key
            (association,) = entry["policy_associations"].values()
            assert association["policy_arn"].endswith("/AmazonEKSClusterAdminPolicy")
            assert association["access_scope"] == {"type": "cluster"}


EXISTING_VPC = {
    "vpc_id": "vpc-0123456789abcdef0",
    "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
}
INTERFACE_ENDPOINTS = {"ecr.api", "ecr.dkr", "sts", "logs"}


def check_network(config: Config) -> None:
    """A new VPC or an existing one; the S3 gateway endpoint with a new VPC; interface
    endpoints only when asked, reachable on 443 from the VPC; the NAT addresses out."""
    vpc = vpc_module(config)
    endpoint_s3 = config.resources.get(("aws_vpc_endpoint", "s3"))
    assert endpoint_s3 is not None, "aws_vpc_endpoint.s3 (the free S3 gateway endpoint)"
    existing_vpc = config.data[("aws_vpc", "existing")]

    eks = resolve(config, eks_module(config))
    assert resolve(config, vpc.get("create_vpc")) is True
    assert eks["vpc_id"] == "${module.vpc.vpc_id}", eks["vpc_id"]
    for attribute in ("subnet_ids", "control_plane_subnet_ids"):
        assert eks[attribute] == "${module.vpc.private_subnets}", (attribute, eks[attribute])
    assert resolve(config, existing_vpc.get("count")) == 0
    s3 = resolve(config, endpoint_s3)
    assert s3["count"] == 1 and s3["vpc_endpoint_type"] == "Gateway", s3
    assert s3["route_table_ids"] == "${module.vpc.private_route_table_ids}", s3
    rule = eks["cluster_security_group_additional_rules"]["ingress_private_api"]
    assert rule["cidr_blocks"] == [resolve(config, "${var.vpc_cidr}")], rule

    existing = with_variables(config, **EXISTING_VPC)
    eks = resolve(existing, eks_module(existing))
    assert resolve(existing, vpc.get("create_vpc")) is False, "a VPC besides vpc_id"
    assert eks["vpc_id"] == EXISTING_VPC["vpc_id"]
    for attribute in ("subnet_ids", "control_plane_subnet_ids"):
        assert eks[attribute] == EXISTING_VPC["private_subnet_ids"], attribute
    assert resolve(existing, existing_vpc.get("count")) == 1
    assert resolve(existing, endpoint_s3.get("count")) == 0

    assert resolve(config, "${local.interface_endpoint_services}") == [], "off by default"
    assert resolve(config, "${var.vpc_interface_endpoints}") is False
    enabled = with_variables(config, vpc_interface_endpoints=True)
    assert set(resolve(enabled, "${local.interface_endpoint_services}")) == INTERFACE_ENDPOINTS
    services = enabled.data[("aws_vpc_endpoint_service", "interface")]
    assert ref_of(services.get("for_each")) == "local.interface_endpoint_services"
    interface = resolve(enabled, enabled.resources[("aws_vpc_endpoint", "interface")])
    assert interface["for_each"] == "${data.aws_vpc_endpoint_service.interface}", interface
    assert interface["vpc_endpoint_type"] == "Interface"
    assert interface["private_dns_enabled"] is True, "pods resolve the public names"
    assert interface["subnet_ids"] == "${module.vpc.private_subnets}"
    assert interface["security_group_ids"] == ["${aws_security_group.vpc_endpoints[0].id}"]
    group = resolve(enabled, enabled.resources[("aws_security_group", "vpc_endpoints")])
    assert group["count"] == 1
    (ingress,) = blocks(group.get("ingress"))
    assert (ingress["protocol"], ingress["from_port"], ingress["to_port"]) == ("tcp", 443, 443)
    assert ingress["cidr_blocks"] == [resolve(config, "${var.vpc_cidr}")], ingress
    assert "egress" not in group, "an endpoint opens no connection of its own"

    nat = config.outputs.get("nat_public_ips")
    assert nat is not None, "output nat_public_ips"
    assert resolve(config, nat["value"]) == "${module.vpc.nat_public_ips}"
    assert "data.aws_nat_gateway.existing" in str(nat["value"]), "and with an existing VPC"


def check_teardown(config: Config) -> None:
    """Destroy keeps non-empty repositories and the bucket unless force_destroy says so."""
    assert resolve(config, "${var.force_destroy}") is False
    ecr = config.resources[("aws_ecr_repository", "this")]
    bucket = config.resources[("aws_s3_bucket", "certificates")]
    assert ref_of(ecr.get("force_delete")) == "var.force_destroy", ecr.get("force_delete")
    assert ref_of(bucket.get("force_destroy")) == "var.force_destroy", bucket.get("force_destroy")
    readme = README.read_text()
    for step in ("terraform apply -var force_destroy=true", "terraform destroy"):
        assert step in readme, f"README.md does not say to run {step!r}"


def helm_values_template(config: Config) -> dict[str, Any]:
    """The object inside the helm_values output's yamlencode(...), parsed."""
    output = config.outputs.get("helm_values")
    assert output is not None, "output helm_values is not defined"
    value = str(output.get("value", ""))
    match = re.fullmatch(r"\$\{yamlencode\((\{.*\})\)\}", value, re.DOTALL)
    assert match, f"helm_values must be yamlencode({{...}}), got {value[:80]!r}"
    parsed = hcl2.loads(f"x = {match.group(1)}\n", serialization_options=HCL_OPTIONS)
    template = parsed["x"]
    assert isinstance(template, dict)
    return template


def flatten(node: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(node, dict):
        flat: dict[tuple[str, ...], Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, (*path, key)))
        return flat
    return {path: node}


def check_outputs(config: Config, contract: Contract) -> None:
    required = {
        "cluster_name",
        "cluster_endpoint",
        "region",
        "operator_role_arn",
        "worker_role_arn",
        "reconciler_role_arn",
        "nat_public_ips",
        "vpc_id",
        "private_subnet_ids",
        "job_namespaces",
        "operator_image_repository",
        "worker_image_repository",
        "certificate_bucket",
        "certificate_prefix",
        "helm_values",
    }
    assert required <= set(config.outputs), sorted(required - set(config.outputs))
    flat = flatten(helm_values_template(config))
    assert flat == HELM_VALUES_SOURCES, flat
    for path in flat:
        chart_value(contract.chart_values, *path)
    repositories = resolve(config, "${local.ecr_repositories}")
    assert repositories == ECR_REPOSITORIES, repositories
    # The chart publishes no image: its repositories are empty (helm refuses them) and
    # helm_values sets them; values.yaml's example is these ECR repositories' URL.
    values_text = (CHART_DIR / "values.yaml").read_text()
    for component, repository in ECR_REPOSITORIES.items():
        assert chart_value(contract.chart_values, component, "image", "repository") == ""
        assert f".dkr.ecr.us-east-1.amazonaws.com/{repository}" in values_text


def check_namespaces_and_logging(config: Config, contract: Contract) -> None:
    namespaces = {
        resolve(config, blocks(body.get("metadata"))[0].get("name")): resolve(config, body)
        for (type_, _), body in config.resources.items()
        if type_ == "kubernetes_namespace"
    }
    for namespace in (contract.operator_namespace, contract.jobs_namespace, "aws-observability"):
        assert namespace in namespaces, f"kubernetes_namespace {namespace!r}: {sorted(namespaces)}"
    observability = blocks(namespaces["aws-observability"]["metadata"])[0]
    assert observability.get("labels") == {"aws-observability": "enabled"}
    maps = [
        resolve(config, body)
        for (type_, _), body in config.resources.items()
        if type_ == "kubernetes_config_map"
    ]
    logging = [m for m in maps if blocks(m["metadata"])[0].get("name") == "aws-logging"]
    assert len(logging) == 1, "one aws-logging ConfigMap"
    output_conf = logging[0]["data"].get("output.conf", "")
    assert re.search(r"Name\s+cloudwatch_logs", output_conf), output_conf
    assert "log_group_name ${aws_cloudwatch_log_group.fargate.name}" in output_conf
    group = config.resources.get(("aws_cloudwatch_log_group", "fargate"))
    assert group is not None, "aws_cloudwatch_log_group.fargate"
    assert group.get("retention_in_days") and group.get("kms_key_id")
    defaults = resolve(config, eks_module(config).get("fargate_profile_defaults") or {})
    attached = (defaults.get("iam_role_additional_policies") or {}).values()
    assert "${aws_iam_policy.fargate_logging.arn}" in attached, (
        "the Fargate pod execution roles need the logging policy"
    )
    for name, profile in fargate_profiles(config).items():
        assert "iam_role_additional_policies" not in profile, f"profile {name} drops the default"
    policy = config.resources[("aws_iam_policy", "fargate_logging")]
    _, document = policy_document_of(config, policy.get("policy"))
    for statement in statements(config, document):
        assert all(a.startswith("logs:") for a in statement.actions), statement.actions
        assert "logs:PutLogEvents" in statement.actions or "logs:CreateLogStream" in (
            statement.actions
        )
        assert statement.resources and all(
            r.startswith("${aws_cloudwatch_log_group.fargate.arn}") for r in statement.resources
        ), statement.resources


def test_tfvars_example_sets_only_declared_variables(tmp_path: Path) -> None:
    example = TF_DIR / "terraform.tfvars.example"
    parsed = hcl2.loads(example.read_text(), serialization_options=HCL_OPTIONS)
    names = {k for k in parsed if not k.startswith("__")}
    assert names, example
    assert names <= set(CONFIG.variables), sorted(names - set(CONFIG.variables))
    # fmt reads .tfvars, not .tfvars.example: check a copy.
    (tmp_path / "example.tfvars").write_text(example.read_text())
    result = terraform_fmt_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_and_tfvars_example_describe_every_variable_and_output() -> None:
    readme = README.read_text()
    example = TFVARS_EXAMPLE.read_text()
    for name in CONFIG.variables:
        assert f"| `{name}` |" in readme, f"README.md: no row for variable {name}"
        assert re.search(rf"^#?\s*{name}\s*=", example, re.MULTILINE), (
            f"terraform.tfvars.example neither sets nor mentions {name}"
        )
    for name in CONFIG.outputs:
        assert f"| `{name}` |" in readme, f"README.md: no row for output {name}"


CONFIG_CHECKS: dict[str, Callable[[Config], None]] = {
    "versions": check_versions,
    "variables": check_variables_documented,
    "modules_pinned": check_modules_pinned,
    "eks_hardening": check_eks_hardening,
    "worker_no_permissions": check_worker_has_no_permissions,
    "ecr": check_ecr,
    "names": check_names_derive_from_name,
    "cluster_admins": check_cluster_admins,
    "network": check_network,
    "teardown": check_teardown,
}
CONTRACT_CHECKS: dict[str, Callable[[Config, Contract], None]] = {
    "fargate_profiles": check_fargate_profiles,
    "irsa_trust": check_irsa_trust,
    "operator_s3_policy": check_operator_s3_policy,
    "outputs": check_outputs,
    "namespaces_and_logging": check_namespaces_and_logging,
}


@pytest.mark.parametrize("name", sorted(CONFIG_CHECKS))
def test_configuration(name: str) -> None:
    CONFIG_CHECKS[name](CONFIG)


@pytest.mark.parametrize("name", sorted(CONTRACT_CHECKS))
def test_agrees_with_chart_and_example(name: str, contract: Contract) -> None:
    CONTRACT_CHECKS[name](EXAMPLE_CONFIG, contract)


# -- the chart rendered with the helm_values output -------------------------------------


ACCOUNT = "123456789012"


def role_arn(config: Config, role: str) -> str:
    """The ARN aws_iam_role.<role> gets in one account."""
    name = resolve(config, config.resources[("aws_iam_role", role)]["name"])
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def role_of_arn(config: Config, arn: str) -> str:
    found = [role for role in IRSA_ROLES if role_arn(config, role) == arn]
    assert len(found) == 1, f"{arn} is none of the IRSA roles {IRSA_ROLES}"
    return found[0]


def fake_output_values(config: Config) -> dict[str, Any]:
    """helm_values as `terraform output -raw helm_values` would print it for one account."""
    account, region = ACCOUNT, resolve(config, "${var.region}")
    known = {f"${{aws_iam_role.{role}.arn}}": role_arn(config, role) for role in IRSA_ROLES}
    for key, repository in ECR_REPOSITORIES.items():
        known[f'${{aws_ecr_repository.this["{key}"].repository_url}}'] = (
            f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}"
        )
    values: dict[str, Any] = {}
    for path, source in flatten(helm_values_template(config)).items():
        node = values
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = known[source]
    return values


def test_chart_renders_with_the_helm_values_output(tmp_path: Path, contract: Contract) -> None:
    values = fake_output_values(CONFIG)
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = subprocess.run(
        [
            tool("helm"),
            "template",
            "snowflake-processor",
            str(CHART_DIR),
            "--namespace",
            contract.operator_namespace,
            "-f",
            str(values_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"helm template with helm_values:\n{result.stderr}"
    objects = [o for o in yaml.safe_load_all(result.stdout) if isinstance(o, dict)]

    def service_account(name: str) -> dict[str, Any]:
        found = [
            o for o in objects if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == name
        ]
        assert len(found) == 1, f"the chart renders no ServiceAccount {name}"
        return found[0]

    operator_sa = service_account(contract.operator_service_account)
    worker_sa = service_account(contract.worker_service_account)
    assert operator_sa["metadata"]["namespace"] == contract.operator_namespace
    assert worker_sa["metadata"]["namespace"] == contract.jobs_namespace
    role = "eks.amazonaws.com/role-arn"
    assert (
        operator_sa["metadata"]["annotations"][role]
        == values["operator"]["serviceAccount"]["roleArn"]
    )
    assert (
        worker_sa["metadata"]["annotations"][role] == values["worker"]["serviceAccount"]["roleArn"]
    )

    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == 1, "the chart renders one operator Deployment"
    (deployment,) = deployments
    assert deployment["metadata"]["namespace"] == contract.operator_namespace
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = blocks(fargate_profiles(CONFIG)["operator"]["selectors"])[0]["labels"]
    assert all(pod_labels.get(k) == v for k, v in selector.items()), (
        f"the operator pod's labels {pod_labels} miss the Fargate selector {selector}"
    )
    assert pod["spec"]["serviceAccountName"] == contract.operator_service_account
    images = [c["image"] for c in pod["spec"]["containers"]]
    assert any(i.startswith(values["operator"]["image"]["repository"] + ":") for i in images), (
        images
    )
    assert values["worker"]["image"]["repository"] in result.stdout, (
        "the worker image repository from helm_values reaches the operator"
    )


# -- both modes rendered: every pod on a Fargate profile, every role trusted --------------


@dataclass(frozen=True)
class Pod:
    """A pod the chart or the operator starts: where, with which labels, as whom."""

    what: str
    namespace: str
    labels: dict[str, str]
    service_account: str


@dataclass(frozen=True)
class Release:
    """One install of the chart (helm template with the helm_values output), and the worker
    Job its processor launches (the operator's own manifest builder)."""

    mode: str
    namespace: str
    # (namespace, name) of each rendered ServiceAccount -> its IRSA role ARN, or None.
    service_accounts: dict[tuple[str, str], str | None]
    pods: list[Pod]


def helm_template(namespace: str, values: dict[str, Any], directory: Path) -> list[dict[str, Any]]:
    values_file = directory / f"values-{namespace}-{values.get('mode', 'operator')}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = subprocess.run(
        [
            *(tool("helm"), "template", "snowflake-processor", str(CHART_DIR)),
            *("--namespace", namespace, "-f", str(values_file)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"helm template -n {namespace}:\n{result.stderr}"
    return [o for o in yaml.safe_load_all(result.stdout) if isinstance(o, dict)]


def worker_pod(name: str, namespace: str, spec: dict[str, Any]) -> Pod:
    processor = ProcessorRef(name, namespace, "uid")
    job = build_job(
        f"{name}-0",
        processor,
        ProcessorSpec.model_validate(spec),
        image="worker:0.1.0",
        certificates_secret="certificates",
        launched_at=datetime.now(UTC),
    )
    template = job["spec"]["template"]
    return Pod(
        f"worker Job of {name}",
        namespace,
        template["metadata"]["labels"],
        template["spec"]["serviceAccountName"],
    )


def render_release(
    config: Config, mode: str, namespace: str, jobs_namespace: str, directory: Path
) -> Release:
    """``helm install -n <namespace>`` in this mode with the helm_values output, and the
    Job its first processor launches. CronJob mode takes the chart's CI processors."""
    values = fake_output_values(config)
    if mode == "operator":
        example = load_example()
        processor = (example["metadata"]["name"], example["spec"])
    else:
        ci = yaml.safe_load(CRONJOB_VALUES.read_text())
        values.update(mode="cronjob", jobs={"namespace": jobs_namespace})
        values["cronjob"]["processors"] = ci["cronjob"]["processors"]
        values["allowed"] = ci["allowed"]
        processor = (ci["cronjob"]["processors"][0]["name"], ci["cronjob"]["processors"][0]["spec"])
    objects = helm_template(namespace, values, directory)
    service_accounts = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): (
            o["metadata"].get("annotations") or {}
        ).get("eks.amazonaws.com/role-arn")
        for o in objects
        if o["kind"] == "ServiceAccount"
    }
    pods = [worker_pod(processor[0], jobs_namespace, processor[1])]
    for o in objects:
        if o["kind"] == "Deployment":
            template = o["spec"]["template"]
        elif o["kind"] == "CronJob":
            template = o["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        pods.append(
            Pod(
                f"{o['kind']} {o['metadata']['name']}",
                o["metadata"]["namespace"],
                template["metadata"]["labels"],
                template["spec"]["serviceAccountName"],
            )
        )
    return Release(mode, namespace, service_accounts, pods)


def releases_for(config: Config, contract: Contract, directory: Path) -> list[Release]:
    """Operator mode, and CronJob mode in every namespace the stack prepares for it."""
    operator = render_release(
        config, "operator", contract.operator_namespace, contract.jobs_namespace, directory
    )
    return [operator] + [
        render_release(config, "cronjob", namespace, namespace, directory)
        for namespace in job_namespaces(config, contract)
    ]


def check_releases(config: Config, releases: list[Release]) -> None:
    """Every pod of every release lands on a Fargate profile and runs as a ServiceAccount
    whose IAM role trusts it; no role trusts, and no profile selects, what no release has."""
    selectors = fargate_selectors(config)
    trusts = {role: set(trust_subjects(config, role)) for role in IRSA_ROLES}
    rendered: set[str] = set()
    for release in releases:
        where = f"{release.mode} mode in {release.namespace}"
        for (namespace, name), arn in release.service_accounts.items():
            if arn is None:
                continue
            role = role_of_arn(config, arn)
            rendered.add(subject(namespace, name))
            assert subject(namespace, name) in trusts[role], (
                f"{where}: ServiceAccount {namespace}/{name} has the {role} role, which "
                f"trusts only {sorted(trusts[role])}: AssumeRoleWithWebIdentity is denied"
            )
        for pod in release.pods:
            assert any(s.matches(pod.namespace, pod.labels) for s in selectors), (
                f"{where}: the {pod.what} pod (namespace {pod.namespace}, labels "
                f"{pod.labels}) matches no Fargate profile and stays Pending"
            )
            assert release.service_accounts.get((pod.namespace, pod.service_account)), (
                f"{where}: the {pod.what} pod runs as {pod.service_account}, which the "
                f"chart does not render with an IAM role in {pod.namespace}"
            )
    for role, subjects in trusts.items():
        assert subjects <= rendered, (
            f"the {role} role trusts {sorted(subjects - rendered)}, which no release renders"
        )
    pods = [pod for release in releases for pod in release.pods]
    for selector in selectors:
        if selector.namespace != "kube-system":
            assert any(selector.matches(p.namespace, p.labels) for p in pods), (
                f"Fargate profile {selector.profile} selects no pod of any release"
            )


@pytest.fixture(scope="module")
def example_releases(contract: Contract, tmp_path_factory: pytest.TempPathFactory) -> list[Release]:
    return releases_for(EXAMPLE_CONFIG, contract, tmp_path_factory.mktemp("releases"))


def test_example_stack_runs_both_modes(example_releases: list[Release]) -> None:
    """terraform.tfvars.example: operator mode, and CronJob mode in the jobs namespace and
    in its cronjob_namespaces (team-a, docs/install.md's example)."""
    modes = {(release.mode, release.namespace) for release in example_releases}
    assert ("cronjob", "team-a") in modes, modes
    check_releases(EXAMPLE_CONFIG, example_releases)


def test_default_stack_runs_both_modes(contract: Contract, tmp_path: Path) -> None:
    releases = releases_for(CONFIG, contract, tmp_path)
    assert [(r.mode, r.namespace) for r in releases] == [
        ("operator", contract.operator_namespace),
        ("cronjob", contract.jobs_namespace),
    ]
    check_releases(CONFIG, releases)


def test_a_cronjob_namespace_the_stack_does_not_list_is_found_out(
    contract: Contract, tmp_path: Path
) -> None:
    """CronJob mode in a namespace missing from cronjob_namespaces: no Fargate profile, no
    trust. The check says so, as it said of team-a before the stack knew CronJob mode."""
    release = render_release(CONFIG, "cronjob", "team-z", "team-z", tmp_path)
    with pytest.raises(AssertionError, match="team-z"):
        check_releases(CONFIG, [release])


# -- mutation tests: each check fails on the mistake it is about -------------------------


def mutated(mutate: Callable[[Config], object], base: Config = CONFIG) -> Config:
    config = copy.deepcopy(base)
    mutate(config)
    return config


def set_variable(config: Config, name: str, value: Any) -> None:
    """As if terraform.tfvars set it (which wins over the default)."""
    config.tfvars[name] = value


def edit_local(config: Config, name: str, old: str, new: str) -> None:
    """Change part of a local's expression text."""
    text = config.locals[name]
    assert isinstance(text, str) and old in text, (name, old)
    config.locals[name] = text.replace(old, new)


def set_subjects(config: Config, document_name: str, values: list[str]) -> None:
    first_statement(config, document_name)["condition"][0]["values"] = values


def eks_of(config: Config) -> dict[str, Any]:
    return eks_module(config)


def set_profile_label(config: Config, profile: str, labels: Any) -> None:
    blocks(config.locals["fargate_profiles"][profile]["selectors"])[0]["labels"] = labels


def document(config: Config, name: str) -> dict[str, Any]:
    return config.data[("aws_iam_policy_document", name)]


def first_statement(config: Config, name: str) -> dict[str, Any]:
    return blocks(document(config, name)["statement"])[0]


def add_resource(type_: str, name: str, body: dict[str, Any]) -> Callable[[Config], None]:
    def mutate(config: Config) -> None:
        config.resources[(type_, name)] = body

    return mutate


CONTRACT_MUTATIONS: dict[str, tuple[str, Callable[[Config], object]]] = {
    "jobs profile on the wrong label value": (
        "fargate_profiles",
        lambda c: set_profile_label(c, "jobs", {"snowflake-processor.dev/fargate": "yes"}),
    ),
    "operator profile on the wrong namespace": (
        "fargate_profiles",
        lambda c: set_variable(c, "operator_namespace", "snowflake-processor"),
    ),
    "operator profile selects a label the chart does not set": (
        "fargate_profiles",
        lambda c: c.locals.update(operator_pod_labels={"app": "snowflake-processor"}),
    ),
    "coredns profile missing": (
        "fargate_profiles",
        lambda c: c.locals["fargate_profiles"].pop("coredns"),
    ),
    "no profile for a CronJob namespace": (
        "fargate_profiles",
        lambda c: c.locals.update(cronjob_fargate_profiles="${{}}"),
    ),
    "CronJob profile for the jobs namespace too": (
        "fargate_profiles",
        lambda c: c.locals.update(extra_cronjob_namespaces="${local.job_namespaces}"),
    ),
    "worker trust names another service account": (
        "irsa_trust",
        lambda c: set_variable(c, "worker_service_account", "default"),
    ),
    "worker trusted in the jobs namespace only": (
        "irsa_trust",
        lambda c: set_subjects(
            c,
            "worker_assume",
            ["system:serviceaccount:${var.jobs_namespace}:${var.worker_service_account}"],
        ),
    ),
    "reconciler trusts the operator's account instead": (
        "irsa_trust",
        lambda c: set_subjects(
            c,
            "reconciler_assume",
            ["system:serviceaccount:${var.operator_namespace}:${var.operator_service_account}"],
        ),
    ),
    "no reconciler role": (
        "irsa_trust",
        lambda c: c.resources.pop(("aws_iam_role", "reconciler")),
    ),
    "operator trust without the aud condition": (
        "irsa_trust",
        lambda c: first_statement(c, "operator_assume")["condition"].pop(),
    ),
    "operator trust on StringLike with a wildcard": (
        "irsa_trust",
        lambda c: first_statement(c, "operator_assume")["condition"][0].update(
            test="StringLike", values=["system:serviceaccount:*"]
        ),
    ),
    "bucket default differs from the example": (
        "operator_s3_policy",
        lambda c: set_variable(c, "certificate_bucket_name", "other-bucket"),
    ),
    "operator may also put objects": (
        "operator_s3_policy",
        lambda c: blocks(document(c, "operator_certificates")["statement"])[1]["actions"].append(
            "s3:PutObject"
        ),
    ),
    "operator reads the whole bucket": (
        "operator_s3_policy",
        lambda c: blocks(document(c, "operator_certificates")["statement"])[1].update(
            resources=["${aws_s3_bucket.certificates.arn}/*"]
        ),
    ),
    "operator lists without the prefix condition": (
        "operator_s3_policy",
        lambda c: first_statement(c, "operator_certificates").pop("condition"),
    ),
    "operator gets a managed policy too": (
        "operator_s3_policy",
        add_resource(
            "aws_iam_role_policy_attachment",
            "operator_extra",
            {"role": "${aws_iam_role.operator.name}", "policy_arn": "arn:aws:iam::aws:policy/x"},
        ),
    ),
    "helm_values feeds a key the chart does not have": (
        "outputs",
        lambda c: c.outputs["helm_values"].update(
            value="${yamlencode({operator = {serviceAccount = {roleArn = "
            "aws_iam_role.operator.arn}, image = {repo = "
            'aws_ecr_repository.this["operator"].repository_url}}, worker = {serviceAccount = '
            "{roleArn = aws_iam_role.worker.arn}, image = {repository = "
            'aws_ecr_repository.this["worker"].repository_url}}})}'
        ),
    ),
    "helm_values output missing": ("outputs", lambda c: c.outputs.pop("helm_values")),
    "helm_values without the CronJob-mode role": (
        "outputs",
        lambda c: c.outputs["helm_values"].update(
            value=c.outputs["helm_values"]["value"].replace(
                ", cronjob = {serviceAccount = {roleArn = aws_iam_role.reconciler.arn}}", ""
            )
        ),
    ),
    "no NAT address output": ("outputs", lambda c: c.outputs.pop("nat_public_ips")),
    "reconciler may also put objects": (
        "operator_s3_policy",
        add_resource(
            "aws_iam_role_policy",
            "reconciler_write",
            {"role": "${aws_iam_role.reconciler.id}", "policy": "{}"},
        ),
    ),
    "reconciler cannot decrypt the certificates": (
        "operator_s3_policy",
        lambda c: blocks(blocks(document(c, "certificates_key")["statement"])[0]["principals"])[
            0
        ].update(identifiers=["${aws_iam_role.operator.arn}"]),
    ),
    "no aws-observability namespace": (
        "namespaces_and_logging",
        lambda c: c.resources.pop(("kubernetes_namespace", "aws_observability")),
    ),
    "logging policy not on the pod execution roles": (
        "namespaces_and_logging",
        lambda c: eks_of(c).pop("fargate_profile_defaults"),
    ),
}

CONFIG_MUTATIONS: dict[str, tuple[str, Callable[[Config], object]]] = {
    "aws provider unpinned": (
        "versions",
        lambda c: blocks(c.terraform[0]["required_providers"])[0]["aws"].update(version=">= 5"),
    ),
    "variable without description": (
        "variables",
        lambda c: c.variables["region"].pop("description"),
    ),
    "eks module on a version range": (
        "modules_pinned",
        lambda c: eks_of(c).update(version="~> 20.0"),
    ),
    "git module on a branch": (
        "modules_pinned",
        lambda c: eks_of(c).update(
            source="git::https://github.com/terraform-aws-modules/terraform-aws-eks?ref=master"
        ),
    ),
    "public endpoint by default": (
        "eks_hardening",
        lambda c: c.variables["cluster_endpoint_public_access"].update(default=True),
    ),
    "no audit log": (
        "eks_hardening",
        lambda c: eks_of(c).update(cluster_enabled_log_types=["api", "authenticator"]),
    ),
    "coredns addon on EC2": (
        "eks_hardening",
        lambda c: eks_of(c)["cluster_addons"]["coredns"].pop("configuration_values"),
    ),
    "worker gets an inline policy": (
        "worker_no_permissions",
        add_resource(
            "aws_iam_role_policy",
            "worker_s3",
            {"role": "${aws_iam_role.worker.id}", "policy": "{}"},
        ),
    ),
    "worker gets a managed policy": (
        "worker_no_permissions",
        add_resource(
            "aws_iam_role_policy_attachment",
            "worker_ro",
            {"role": "${aws_iam_role.worker.name}", "policy_arn": "arn:aws:iam::aws:policy/x"},
        ),
    ),
    "worker exclusive list allows a policy": (
        "worker_no_permissions",
        lambda c: c.resources[
            ("aws_iam_role_policy_attachments_exclusive", "worker_no_managed_policies")
        ].update(policy_arns=["arn:aws:iam::aws:policy/x"]),
    ),
    "mutable image tags": (
        "ecr",
        lambda c: c.resources[("aws_ecr_repository", "this")].update(
            image_tag_mutability="MUTABLE"
        ),
    ),
    "ECR repository with a fixed name": (
        "names",
        lambda c: c.locals["ecr_repositories"].update(operator="snowflake-processor-operator"),
    ),
    "reconciler role with a fixed name": (
        "names",
        lambda c: c.resources[("aws_iam_role", "reconciler")].update(name="reconciler"),
    ),
    "bucket with a fixed default name": (
        "names",
        lambda c: c.variables["certificate_bucket_name"].update(default="acme-certs"),
    ),
    "Fargate pod execution roles named by the module": (
        "names",
        lambda c: eks_of(c)["fargate_profile_defaults"].pop("iam_role_name"),
    ),
    "flow-log role named by the module": (
        "names",
        lambda c: vpc_module(c).update(vpc_flow_log_iam_role_name="vpc-flow-log-role"),
    ),
    "module's creator entry on as well": (
        "cluster_admins",
        lambda c: eks_of(c).update(enable_cluster_creator_admin_permissions=True),
    ),
    "applying identity not added": (
        "cluster_admins",
        lambda c: c.locals.update(
            cluster_admin_principal_arns="${var.cluster_admin_principal_arns}"
        ),
    ),
    "a VPC even with vpc_id": (
        "network",
        lambda c: vpc_module(c).update(create_vpc=True),
    ),
    "EKS on the new VPC's subnets only": (
        "network",
        lambda c: eks_of(c).update(subnet_ids="${module.vpc.private_subnets}"),
    ),
    "no S3 gateway endpoint": (
        "network",
        lambda c: c.resources.pop(("aws_vpc_endpoint", "s3")),
    ),
    "interface endpoints on by default": (
        "network",
        lambda c: c.variables["vpc_interface_endpoints"].update(default=True),
    ),
    "no STS endpoint": (
        "network",
        lambda c: edit_local(c, "interface_endpoint_services", '"sts", ', ""),
    ),
    "endpoints without private DNS": (
        "network",
        lambda c: c.resources[("aws_vpc_endpoint", "interface")].update(private_dns_enabled=False),
    ),
    "endpoints open on port 80": (
        "network",
        lambda c: blocks(c.resources[("aws_security_group", "vpc_endpoints")]["ingress"])[0].update(
            from_port=80, to_port=80
        ),
    ),
    "no NAT addresses for an existing VPC": (
        "network",
        lambda c: c.outputs["nat_public_ips"].update(value="${module.vpc.nat_public_ips}"),
    ),
    "repositories always force-deleted": (
        "teardown",
        lambda c: c.resources[("aws_ecr_repository", "this")].update(force_delete=True),
    ),
    "bucket never force-destroyed": (
        "teardown",
        lambda c: c.resources[("aws_s3_bucket", "certificates")].update(force_destroy=False),
    ),
    "no scan on push": (
        "ecr",
        lambda c: blocks(
            c.resources[("aws_ecr_repository", "this")]["image_scanning_configuration"]
        )[0].update(scan_on_push=False),
    ),
}


@pytest.mark.parametrize("mutation", sorted(CONFIG_MUTATIONS))
def test_configuration_check_fails_on(mutation: str) -> None:
    check, mutate = CONFIG_MUTATIONS[mutation]
    CONFIG_CHECKS[check](CONFIG)  # passes as written
    with pytest.raises(AssertionError):
        CONFIG_CHECKS[check](mutated(mutate))


@pytest.mark.parametrize("mutation", sorted(CONTRACT_MUTATIONS))
def test_contract_check_fails_on(mutation: str, contract: Contract) -> None:
    check, mutate = CONTRACT_MUTATIONS[mutation]
    CONTRACT_CHECKS[check](EXAMPLE_CONFIG, contract)  # passes as written
    with pytest.raises(AssertionError):
        CONTRACT_CHECKS[check](mutated(mutate, EXAMPLE_CONFIG), contract)


@pytest.mark.parametrize("account", ["worker_service_account", "reconciler_service_account"])
def test_contract_check_fails_when_the_chart_renames_an_account(
    account: str, contract: Contract
) -> None:
    renamed = Contract(**{**contract.__dict__, account: "processor-renamed"})
    with pytest.raises(AssertionError):
        check_irsa_trust(EXAMPLE_CONFIG, renamed)


# Each breaks what a release of the chart needs from the stack (terraform.tfvars.example).
RELEASE_MUTATIONS: dict[str, Callable[[Config], object]] = {
    "no Fargate profile for the CronJob namespaces": lambda c: c.locals.update(
        cronjob_fargate_profiles="${{}}"
    ),
    "CronJob profile selects the runs but not their Jobs": lambda c: edit_local(
        c,
        "cronjob_fargate_profiles",
        "labels = local.worker_pod_labels",
        'labels = {"app.kubernetes.io/component" = "reconciler"}',
    ),
    "jobs profile on a label value no pod carries": lambda c: set_profile_label(
        c, "jobs", {"snowflake-processor.dev/fargate": "yes"}
    ),
    "worker trusted in the jobs namespace only": lambda c: set_subjects(
        c,
        "worker_assume",
        ["system:serviceaccount:${var.jobs_namespace}:${var.worker_service_account}"],
    ),
    "reconciler trusted in the jobs namespace only": lambda c: set_subjects(
        c,
        "reconciler_assume",
        ["system:serviceaccount:${var.jobs_namespace}:${var.reconciler_service_account}"],
    ),
    "reconciler trusts an account no release renders": lambda c: set_subjects(
        c,
        "reconciler_assume",
        [
            "system:serviceaccount:${var.jobs_namespace}:${var.reconciler_service_account}",
            "system:serviceaccount:team-a:${var.reconciler_service_account}",
            "system:serviceaccount:team-a:default",
        ],
    ),
    "reconciler trusts another account name": lambda c: set_variable(
        c, "reconciler_service_account", "reconciler"
    ),
    "a profile for a namespace no release uses": lambda c: c.locals["fargate_profiles"].update(
        spare={"name": "spare", "selectors": [{"namespace": "spare", "labels": {"a": "b"}}]}
    ),
}


@pytest.mark.parametrize("mutation", sorted(RELEASE_MUTATIONS))
def test_release_check_fails_on(mutation: str, example_releases: list[Release]) -> None:
    check_releases(EXAMPLE_CONFIG, example_releases)  # passes as written
    with pytest.raises(AssertionError):
        check_releases(mutated(RELEASE_MUTATIONS[mutation], EXAMPLE_CONFIG), example_releases)


# -- every example's Job lands on a worker Fargate profile -------------------------------


def profile_selecting(config: Config, namespace: str, labels: dict[str, str]) -> str | None:
    """The Fargate profile that selects a pod, as EKS matches them: a selector's namespace
    equals the pod's and every one of its labels is on the pod."""
    for name, profile in fargate_profiles(config).items():
        for selector in blocks(profile.get("selectors")):
            wanted = {str(k): str(v) for k, v in (selector.get("labels") or {}).items()}
            if selector.get("namespace") == namespace and wanted.items() <= labels.items():
                return name
    return None


def example_job(path: Path) -> dict[str, Any]:
    """The Job the operator launches for the resource in ``path``, as written (kubectl puts
    a resource without a namespace into the default namespace)."""
    document = yaml.safe_load(path.read_text())
    namespace = document["metadata"].get("namespace", "default")
    processor = ProcessorRef(document["metadata"]["name"], namespace, "uid")
    return build_job(
        f"{processor.name}-0",
        processor,
        ProcessorSpec.model_validate(document["spec"]),
        image="worker:0.1.0",
        certificates_secret="certificates",
        launched_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_job_is_scheduled_by_a_worker_fargate_profile(
    path: Path, contract: Contract
) -> None:
    """On a cluster without EC2 nodes a pod that no Fargate profile selects stays Pending
    forever; with job.compute nodes a pod one selects goes to Fargate all the same. The
    profiles are read from terraform/eks, the Job from the operator's own manifest
    builder."""
    job = example_job(path)
    namespace = job["metadata"]["namespace"]
    template = job["spec"]["template"]
    selected = profile_selecting(CONFIG, namespace, template["metadata"]["labels"])
    if yaml.safe_load(path.read_text())["spec"].get("job", {}).get("compute") == "nodes":
        # On EC2 or Karpenter nodes: EKS would send a pod a profile selects to Fargate.
        assert selected is None, f"{path.name}: its pod would go to Fargate ({selected})"
    else:
        assert selected == "jobs", (
            f"{path.name}: its Job's pod (namespace {namespace}, labels "
            f"{template['metadata']['labels']}) matches no worker Fargate profile"
        )
    # The worker service account exists there (the chart creates it in jobs.namespace),
    # and the worker IAM role trusts exactly it.
    assert namespace == contract.jobs_namespace, path.name
    assert template["spec"]["serviceAccountName"] == contract.worker_service_account, path.name


def test_a_pod_outside_the_profiles_is_found_out() -> None:
    labels = {FARGATE_PROFILE_LABEL: FARGATE_PROFILE_LABEL_VALUE}
    assert profile_selecting(CONFIG, "snowflake-processor", labels) == "jobs"
    assert profile_selecting(CONFIG, "data-pipelines", labels) is None
    assert profile_selecting(CONFIG, "snowflake-processor", {"team": "data"}) is None


# -- names IAM accepts, access entries that survive a removal --------------------------


def name_is_accepted(config: Config, name: str) -> bool:
    """Whether every validation of variable name passes for this value."""
    probe = with_variables(config, name=name)
    conditions = [v["condition"] for v in blocks(config.variables["name"].get("validation"))]
    assert conditions, "variable name has no validation"
    results = [resolve(probe, condition) for condition in conditions]
    assert all(isinstance(r, bool) for r in results), results
    return all(results)


def iam_name_prefixes(config: Config) -> dict[str, str]:
    """The IAM name prefixes the two modules derive from var.name (terraform-aws-eks
    20.37.2: the cluster role "<cluster_name>-cluster-", each Fargate profile's role
    "<iam_role_name>-"; terraform-aws-vpc 5.21.0: the flow-log role "<its name>-")."""
    eks = resolve(config, eks_module(config))
    assert eks.get("iam_role_use_name_prefix", True) is not False  # the module's default
    vpc = resolve(config, vpc_module(config))
    fargate = eks.get("fargate_profile_defaults") or {}
    for where, body, key in (
        ("module.eks.fargate_profile_defaults", fargate, "iam_role_name"),
        ("module.vpc", vpc, "vpc_flow_log_iam_role_name"),
        ("module.vpc", vpc, "vpc_flow_log_iam_policy_name"),
    ):
        assert key in body, f"{where} leaves {key} to the module's fixed default"
    return {
        "cluster role": f"{eks['cluster_name']}-cluster-",
        "Fargate pod execution roles": f"{eks['fargate_profile_defaults']['iam_role_name']}-",
        "VPC flow-log role": f"{vpc['vpc_flow_log_iam_role_name']}-",
        "VPC flow-log policy": f"{vpc['vpc_flow_log_iam_policy_name']}-",
    }


def test_cluster_names_that_iam_ecr_or_s3_would_refuse_are_refused() -> None:
    longest = "a" * 29
    for name in ("snowflake-processor", "team-a-prod", "a", longest):
        assert name_is_accepted(CONFIG, name), f"{name!r} is refused"
        for what, prefix in iam_name_prefixes(with_variables(CONFIG, name=name)).items():
            assert len(prefix) <= IAM_NAME_PREFIX_LIMIT, f"{what}: {prefix!r} is too long"
    assert len(iam_name_prefixes(with_variables(CONFIG, name=longest))["cluster role"]) == 38
    # Too long for IAM's name prefixes; capitals, "--" or a final "-" for ECR and S3.
    for name in (longest + "b", "a" * 38, "Prod", "a--b", "team-", "1abc", "a_b"):
        assert not name_is_accepted(CONFIG, name), f"{name!r} would break the apply"


def test_access_entries_are_keyed_by_principal_not_by_position() -> None:
    """Keys by list index shift when a principal is removed from the middle of the list:
    Terraform then destroys and recreates the access entries after it."""
    entries = str(eks_module(CONFIG).get("access_entries"))
    match = re.search(
        r"for\s+(.+?)\s+in\s+local\.cluster_admin_principal_arns\s*:\s*(.+?)\s*=>", entries
    )
    assert match, entries
    variables, key = match.group(1), match.group(2)
    names = [v.strip() for v in variables.split(",")]
    assert len(names) == 1, f"the loop takes the index ({variables}): keys shift on removal"
    assert key.strip() == names[0], f"keyed by {key}, not by the principal ARN"


# -- the expression evaluator the checks rely on -----------------------------------------


def test_the_evaluator_computes_from_variables_and_keeps_what_only_aws_knows() -> None:
    config = with_variables(CONFIG, cronjob_namespaces=["team-a", "snowflake-processor"])
    assert resolve(config, "${local.job_namespaces}") == ["snowflake-processor", "team-a"]
    assert resolve(config, "${local.extra_cronjob_namespaces}") == ["team-a"]
    assert resolve(config, '${[for n in ["a", "b"] : "${n}-x" if n != "b"]}') == ["a-x"]
    assert resolve(config, '${{for n in ["a"] : n => {v = n}}}') == {"a": {"v": "a"}}
    assert resolve(config, "${var.vpc_id == null ? 1 : 0}") == 1
    assert resolve(config, '${coalesce(null, "b")}') == "b"
    # Only known to a plan: the text stays, and so does every expression built on it.
    assert resolve(config, "${module.eks.oidc_provider}:sub") == "${module.eks.oidc_provider}:sub"
    assert (
        resolve(config, "${local.account_id}") == "${data.aws_caller_identity.current.account_id}"
    )
    assert is_unknown(resolve(config, "${concat(local.azs, [])}"))
    assert resolve(config, "${jsonencode({a = 1})}") == "${jsonencode({a = 1})}"
