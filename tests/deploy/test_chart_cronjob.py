"""The chart in CronJob mode (mode cronjob, for clusters where no CRD may be installed):
per processor a spec ConfigMap, a status ConfigMap and a CronJob, namespace-scoped RBAC
only, no CRD and no Deployment; the runs' pods as secure as the operator's and selected by
the jobs' Fargate profile; their arguments, environment and spec accepted by the code that
runs them. (Lint, Kubernetes'
schemas and checkov run on this value set in test_chart.py.)"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from snowflake_operator.constants import PROCESSOR_LABEL
from snowflake_operator.cronjob.command import add_reconcile_once_arguments
from snowflake_operator.cronjob.configmap_status import SPEC_KEY
from snowflake_operator.spec.admission import Admitted, admit
from snowflake_operator.spec.operator_settings import OperatorSettings
from snowflake_operator.spec.table_claims import TableClaim
from tests.deploy.test_chart import (
    CRONJOB_VALUES,
    JOBS_NAMESPACE,
    Manifest,
    grants,
    helm,
    of_kind,
    one,
    render,
    render_notes,
    render_set,
    template_args,
)
from tests.support.terraform_config import TF_DIR, fargate_selectors, load_config

PROCESSORS = ("invoices", "orders-enrichment")
RECONCILER_SA = "snowflake-processor-reconciler"
# What cronjob/reconcile_once.py and the poll it runs call; anything more is a finding.
CRONJOB_GRANTS = {
    ("batch", "jobs"): {"list", "create", "patch", "delete"},
    ("", "pods"): {"list"},
    ("", "secrets"): {"get", "create", "patch"},
    ("", "configmaps"): {"get", "patch"},
    ("", "events"): {"create", "get", "patch"},
}


def cronjobs() -> dict[str, Manifest]:
    return {c["metadata"]["name"]: c for c in of_kind(render_set("cronjob"), "CronJob")}


def run_pod(cronjob: Manifest) -> Manifest:
    pod: Manifest = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    return pod


def test_cronjob_mode_renders_no_crd_no_deployment_and_nothing_cluster_wide() -> None:
    docs = render_set("cronjob")
    names = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert names == [
        "ConfigMap/invoices-spec",
        "ConfigMap/invoices-status",
        "ConfigMap/orders-enrichment-spec",
        "ConfigMap/orders-enrichment-status",
        "CronJob/invoices",
        "CronJob/orders-enrichment",
        "Role/snowflake-processor-reconciler",
        "RoleBinding/snowflake-processor-reconciler",
        f"ServiceAccount/{RECONCILER_SA}",
        "ServiceAccount/snowflake-processor-worker",
    ]
    assert all(d["metadata"]["namespace"] == JOBS_NAMESPACE for d in docs)


def test_each_cronjob_polls_every_minute_by_default_and_never_overlaps_itself() -> None:
    values = (
        "--set-json",
        'cronjob.processors=[{"name": "q", "spec": {"snowflake": {}, "endpoint": {}}}]',
    )
    (cronjob,) = of_kind(render("--set", "mode=cronjob", *values), "CronJob")
    spec = cronjob["spec"]
    assert spec["schedule"] == "* * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 30
    # A finished run is counted in the status ConfigMap; only a failed one is kept to read.
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (0, 1)
    assert spec["suspend"] is False
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 300
    assert job["template"]["spec"]["restartPolicy"] == "Never"


def test_a_suspended_spec_suspends_its_cronjob() -> None:
    jobs = cronjobs()
    assert jobs["invoices"]["spec"]["suspend"] is True  # spec.suspend: true in the values
    assert jobs["orders-enrichment"]["spec"]["suspend"] is False
    assert jobs["orders-enrichment"]["spec"]["schedule"] == "*/2 * * * *"


def test_runs_are_as_locked_down_as_the_operator() -> None:
    """The same pod and container security as the operator's Deployment (Pod Security
    "restricted"), requests equal to limits."""
    operator = one(render_set("default"), "Deployment")["spec"]["template"]["spec"]
    for cronjob in cronjobs().values():
        pod = run_pod(cronjob)["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"] == operator["securityContext"]
        assert container["securityContext"] == operator["containers"][0]["securityContext"]
        assert container["resources"]["requests"] == container["resources"]["limits"]
        assert pod["serviceAccountName"] == RECONCILER_SA
        assert pod["automountServiceAccountToken"] is True
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/snowflake-processor"]["readOnly"] is True
        assert "/tmp" in mounts  # the root file system is read-only


def test_run_pods_are_selected_by_the_jobs_fargate_profile_and_are_no_worker_pods() -> None:
    """They run in jobs.namespace, where terraform/eks's jobs profile selects pods by label;
    without the processor label, so the runs never count them as the processor's Jobs."""
    selectors = fargate_selectors(load_config(TF_DIR))
    for cronjob in cronjobs().values():
        labels = run_pod(cronjob)["metadata"]["labels"]
        assert any(s.matches(JOBS_NAMESPACE, labels) for s in selectors), labels
        assert PROCESSOR_LABEL not in labels
        assert PROCESSOR_LABEL not in cronjob["spec"]["jobTemplate"]["metadata"]["labels"]


def test_the_runs_arguments_environment_and_spec_are_what_the_code_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docs = render_set("cronjob")
    specs = {m["metadata"]["name"]: m for m in of_kind(docs, "ConfigMap")}
    for name, cronjob in cronjobs().items():
        (container,) = run_pod(cronjob)["spec"]["containers"]
        assert container["args"][0] == "reconcile-once"
        parser = argparse.ArgumentParser(exit_on_error=False)
        add_reconcile_once_arguments(parser)
        parsed = parser.parse_args(container["args"][1:])
        assert (parsed.name, parsed.namespace) == (name, JOBS_NAMESPACE)
        assert parsed.spec == Path("/etc/snowflake-processor") / SPEC_KEY
        volumes = {v["name"]: v for v in run_pod(cronjob)["spec"]["volumes"]}
        assert volumes["spec"]["configMap"]["name"] == f"{name}-spec"
        for env in container["env"]:
            if env["name"].startswith("SFP_OPERATOR_"):
                monkeypatch.setenv(env["name"], env["value"])
        settings = OperatorSettings()
        spec = yaml.safe_load(specs[f"{name}-spec"]["data"][SPEC_KEY])
        listed = yaml.safe_load(CRONJOB_VALUES.read_text())["cronjob"]["processors"]
        assert spec == {p["name"]: p["spec"] for p in listed}[name]
        admitted = admit(spec, settings.reference_policy(), TableClaim("", "", name), [])
        assert isinstance(admitted, Admitted), admitted
        assert admitted.unknown_fields == ()


def test_status_configmaps_are_created_empty_for_the_runs_to_fill() -> None:
    statuses = [
        m
        for m in of_kind(render_set("cronjob"), "ConfigMap")
        if m["metadata"]["name"].endswith("-status")
    ]
    assert len(statuses) == len(PROCESSORS)
    for status in statuses:
        assert "data" not in status  # Helm then leaves what the runs write, on upgrades too


def test_rbac_is_one_role_in_the_jobs_namespace_with_exactly_what_a_run_calls() -> None:
    docs = render_set("cronjob")
    assert not {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"} & {
        d["kind"] for d in docs
    }
    role, binding = one(docs, "Role"), one(docs, "RoleBinding")
    assert grants(docs) == CRONJOB_GRANTS
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RECONCILER_SA, "namespace": JOBS_NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    configmap_rules = [r for r in role["rules"] if r["resources"] == ["configmaps"]]
    assert all(rule.get("resourceNames") for rule in configmap_rules)  # its own ConfigMaps only
    by_verb = {
        verb: set(rule["resourceNames"]) for rule in configmap_rules for verb in rule["verbs"]
    }
    assert by_verb["patch"] == {f"{p}-status" for p in PROCESSORS}
    assert by_verb["get"] == {f"{p}-{kind}" for p in PROCESSORS for kind in ("spec", "status")}


def test_a_processor_listed_twice_or_two_on_one_table_fail_the_install(tmp_path: Path) -> None:
    def processor(name: str, database: str) -> dict[str, Any]:
        table = {"account": "Acme", "database": database, "schema": "q", "table": "t"}
        return {"name": name, "spec": {"snowflake": table, "endpoint": {"url": "https://x"}}}

    cases = {
        "listed twice": ([processor("a", "db1"), processor("a", "db2")], "a is listed twice"),
        # Unquoted identifiers resolve upper-cased in Snowflake: DB and db are one database.
        "same table": (
            [processor("a", "db"), processor("b", "DB")],
            "a and b name the same table acme.DB.Q.T",
        ),
    }
    for values, message in cases.values():
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump({"mode": "cronjob", "cronjob": {"processors": values}}))
        result = helm(*template_args("--values", str(path)), check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
    quoted = [processor("a", '"db"'), processor("b", "DB")]  # "db" is not DB
    path = tmp_path / "quoted.yaml"
    path.write_text(yaml.safe_dump({"mode": "cronjob", "cronjob": {"processors": quoted}}))
    assert len(of_kind(render("--values", str(path)), "CronJob")) == 2


def test_processors_in_operator_mode_are_refused() -> None:
    processors = '[{"name": "q", "spec": {"snowflake": {}, "endpoint": {}}}]'
    result = helm(*template_args("--set-json", f"cronjob.processors={processors}"), check=False)
    assert result.returncode != 0
    assert "cronjob.processors is used with mode cronjob only" in result.stderr


def test_notes_tell_where_each_processors_status_is(tmp_path: Path) -> None:
    notes = render_notes(tmp_path, "--values", str(CRONJOB_VALUES))
    for name in PROCESSORS:
        assert f"kubectl get configmap {name}-status -n {JOBS_NAMESPACE} -o yaml" in notes
        assert f"kubectl get cronjob {name} -n {JOBS_NAMESPACE}" in notes
    assert "kubectl get sfp" not in notes and "CRD" in notes


@pytest.mark.parametrize("mode", ["default", "all-features", "cronjob"])
def test_no_value_set_lets_the_operator_log_in_to_an_emulator(mode: str) -> None:
    """Emulator login (plain HTTP to any host a resource names) is a process flag for
    development; whatever the values, the chart never passes it."""
    for doc in render_set(mode):
        assert "--development-emulator-login" not in yaml.safe_dump(doc), doc["kind"]


def test_the_tests_post_renderer_adds_the_flag_to_both_commands() -> None:
    """The real-cluster tests add it outside the chart, with helm's --post-renderer."""
    from tests.e2e.post_render import FLAG, add_flag

    deployment = copy.deepcopy(one(render_set("default"), "Deployment"))  # renders are cached
    (container,) = add_flag(deployment)["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "operator" and container["args"][-1] == FLAG
    for cronjob in copy.deepcopy(list(cronjobs().values())):
        (run,) = add_flag(cronjob)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert run["args"][0] == "reconcile-once" and run["args"][-1] == FLAG


def test_with_no_processors_listed_the_role_reads_no_configmap() -> None:
    """An empty resourceNames list means every ConfigMap of the namespace to RBAC: with
    nothing listed the role names none rather than all."""
    (role,) = of_kind(render("--set", "mode=cronjob"), "Role")
    configmap_rules = [r for r in role["rules"] if "configmaps" in r["resources"]]
    assert configmap_rules == []
