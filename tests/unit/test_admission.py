"""Which resources the operator polls at all: allow-lists, one resource per table, image
references (the modules of snowflake_operator/spec: admission, reference_policy,
table_claims, image_reference)."""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from typing import Any

import pytest

from snowflake_operator.daemon.operator_command import add_operator_arguments, run_operator
from snowflake_operator.ops.config import validate_spec
from snowflake_operator.spec.admission import (
    DUPLICATE_TABLE,
    INVALID_SPEC,
    NOT_ALLOWED,
    Admitted,
    Refusal,
    admit,
)
from snowflake_operator.spec.image_reference import repository, repository_pattern
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_operator.spec.operator_settings import OperatorSettings
from snowflake_operator.spec.reference_policy import (
    VOLUME_TYPES,
    ReferencePolicy,
    refusals,
    secret_references,
)
from snowflake_operator.spec.table_claims import TableClaim, earlier_claim, table_key
from tests.support.specs import MINIMAL_SPEC, merged, processor_spec

POLICY = ReferencePolicy(
    images=(repository_pattern("registry.example.com/worker:1"),),
    service_accounts=("snowflake-processor-worker",),
    secrets=("snowflake-key", "team-a-.*"),
    env_names=("API_TOKEN", "OTHER"),
)
KEY_PAIR = {
    "user": "SVC",
    "auth": {
        "mode": "key_pair",
        "privateKeySecret": {"name": "snowflake-key", "key": "rsa_key.p8"},
        "privateKeyPassphraseSecret": {"name": "other-team", "key": "passphrase"},
    },
}
MINE = TableClaim("2026-11-26T10:00:05Z", "ns", "mine")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("worker", "worker"),
        ("worker:1.2", "worker"),
        ("registry:5000/team/worker:1", "registry:5000/team/worker"),
        ("registry:5000/team/worker", "registry:5000/team/worker"),
        ("worker@sha256:" + "a" * 64, "worker"),
        ("worker:1@sha256:" + "a" * 64, "worker"),
    ],
)
def test_repository_of_an_image_reference(image: str, expected: str) -> None:
    assert repository(image) == expected


def test_repository_pattern_admits_tags_and_digests_of_that_repository_only() -> None:
    pattern = repository_pattern("registry.example.com/worker:1")
    for image in ("registry.example.com/worker", "registry.example.com/worker:2.0-rc.1",
                  "registry.example.com/worker@sha256:" + "b" * 64):  # fmt: skip
        assert re.fullmatch(pattern, image), image
    for image in ("registry.example.com/worker-evil:1", "registryXexample.com/worker:1",
                  "evil.example.com/registry.example.com/worker:1",
                  "registry.example.com/worker:1 ; x"):  # fmt: skip
        assert not re.fullmatch(pattern, image), image


def test_defaults_admit_the_default_image_and_service_account_and_no_secret() -> None:
    spec = processor_spec(MINIMAL_SPEC)
    assert refusals(spec, OperatorSettings().reference_policy()) == []
    assert secret_references(spec) == {}


def test_each_reference_outside_the_policy_is_named() -> None:
    spec = processor_spec(
        MINIMAL_SPEC,
        snowflake=KEY_PAIR,
        certificates={"existingSecret": "team-b-tls"},
        endpoint={"url": "https://service.example.com/x", "headersSecret": "team-b-api-key"},
        job={"image": "evil.example.com/worker:1", "serviceAccountName": "admin"},
    )
    problems = refusals(spec, POLICY)
    assert [p.split(" ", 1)[0] for p in problems] == [
        "spec.job.image",
        "spec.job.serviceAccountName",
        "spec.snowflake.auth.privateKeyPassphraseSecret",
        "spec.certificates.existingSecret",
        "spec.endpoint.headersSecret",
    ]
    assert "'other-team'" in problems[2] and "SFP_OPERATOR_ALLOWED_SECRETS" in problems[2]


def test_only_the_secrets_of_the_login_mode_count() -> None:
    """A password Secret left in a key-pair spec is never read: it is not a reference."""
    auth = {**KEY_PAIR["auth"], "passwordSecret": {"name": "forgotten", "key": "p"}}
    spec = processor_spec(MINIMAL_SPEC, snowflake={**KEY_PAIR, "auth": auth})
    assert set(secret_references(spec).values()) == {"snowflake-key", "other-team"}


def test_allowed_references_pass() -> None:
    spec = processor_spec(
        MINIMAL_SPEC,
        certificates={"existingSecret": "team-a-tls"},
        job={"image": "registry.example.com/worker@sha256:" + "c" * 64},
    )
    assert refusals(spec, POLICY) == []


def test_settings_refuse_a_pattern_that_is_no_regular_expression(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SFP_OPERATOR_ALLOWED_SECRETS", '["team-(a"]')
    with pytest.raises(ValueError, match="not a regular expression"):
        OperatorSettings()


@pytest.mark.parametrize(
    "snowflake",
    [
        {"account": "MyOrg-MyAccount", "database": "analytics", "schema": "Queue"},
        {"account": "myorg-myaccount", "database": "ANALYTICS", "schema": "QUEUE"},
    ],
)
def test_table_key_resolves_names_as_snowflake_does(snowflake: dict[str, str]) -> None:
    spec = merged(MINIMAL_SPEC, snowflake={**snowflake, "table": "work_items"})
    assert table_key(spec) == ("myorg-myaccount", "ANALYTICS", "QUEUE", "WORK_ITEMS")


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"snowflake": "x"},
        {"snowflake": {"account": "a"}},
        merged(MINIMAL_SPEC, snowflake={"table": "bad name"}),
    ],
)
def test_no_table_key_without_a_valid_table(spec: dict[str, object]) -> None:
    assert table_key(spec) is None


def test_the_earliest_resource_keeps_the_table() -> None:
    older = TableClaim("2026-11-26T10:00:04Z", "zz", "zz")
    same_second = TableClaim("2026-11-26T10:00:05Z", "ns", "a-name-before-mine")
    newer = TableClaim("2026-11-26T10:00:06Z", "aa", "aa")
    assert earlier_claim(MINE, []) is None
    assert earlier_claim(MINE, [newer]) is None
    assert earlier_claim(MINE, [newer, older]) == older
    assert earlier_claim(MINE, [same_second]) == same_second  # same second: by name
    assert str(older) == "zz/zz"


def test_admit_returns_the_spec_or_the_first_refusal() -> None:
    admitted = admit(MINIMAL_SPEC, OperatorSettings().reference_policy(), MINE, [])
    assert isinstance(admitted, Admitted) and isinstance(admitted.spec, ProcessorSpec)
    assert admitted.unknown_fields == ()
    invalid = admit(merged(MINIMAL_SPEC, suspend="yes"), POLICY, MINE, [])
    assert isinstance(invalid, Refusal) and invalid.reason == INVALID_SPEC
    assert "spec.suspend" in invalid.message
    greedy = admit(merged(MINIMAL_SPEC, job={"serviceAccountName": "admin"}), POLICY, MINE, [])
    assert isinstance(greedy, Refusal) and greedy.reason == NOT_ALLOWED
    older = TableClaim("2026-11-26T09:00:00Z", "other", "orders")
    duplicate = admit(MINIMAL_SPEC, POLICY, MINE, [older])
    assert isinstance(duplicate, Refusal) and duplicate.reason == DUPLICATE_TABLE
    assert "other/orders" in duplicate.message and "ANALYTICS.QUEUE.WORK_ITEMS" in duplicate.message


def test_the_operator_command_refuses_bad_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SFP_OPERATOR_ALLOWED_IMAGES", '["registry.example.com/(team"]')
    parser = argparse.ArgumentParser()
    add_operator_arguments(parser)
    assert run_operator(parser.parse_args([])) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "SFP_OPERATOR_ALLOWED_IMAGES" in error and "not a regular expression" in error


# -- a CRD one version ahead: fields this operator does not know -------------------------

AHEAD = merged(
    MINIMAL_SPEC,
    rateLimit={"perSecond": 50},  # a whole new section
    job={"maxActiveJobs": 3, "spotFallback": True},  # a new field beside known ones
    snowflake={"auth": {"mode": "workload_identity", "tokenAudience": "sts"}},  # deeper
)


def test_unknown_fields_are_left_out_and_named_never_refused() -> None:
    admitted = admit(AHEAD, POLICY, MINE, [])
    assert isinstance(admitted, Admitted), admitted
    assert admitted.spec.job.max_active_jobs == 3  # the fields it knows still apply
    assert sorted(admitted.unknown_fields) == [
        "spec.job.spotFallback",
        "spec.rateLimit",
        "spec.snowflake.auth.tokenAudience",
    ]


def test_a_refused_resource_still_names_its_unknown_fields() -> None:
    # A volume type this operator does not allow is unknown to it: the volume is left
    # without a source, which is the refusal; the unknown field says why.
    spec = merged(MINIMAL_SPEC, job={"volumes": [{"name": "host", "hostPath": {"path": "/"}}]})
    refused = admit(spec, POLICY, MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == INVALID_SPEC
    assert "spec.job.volumes[0]" in refused.message and "exactly one of" in refused.message
    assert refused.unknown_fields == ("spec.job.volumes[0].hostPath",)


def test_wrong_values_of_known_fields_are_still_invalid() -> None:
    refused = admit(merged(AHEAD, job={"maxActiveJobs": 0}), POLICY, MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == INVALID_SPEC
    assert "spec.job.maxActiveJobs" in refused.message


# -- the allow-list covers the Secrets of spec.job's env and volumes ---------------------


def _from_secret(variable: str, secret: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}


SECRETS_IN_POD_TEMPLATE = merged(
    MINIMAL_SPEC,
    job={
        "compute": "nodes",  # a csi volume cannot be mounted on Fargate
        "env": [_from_secret("API_TOKEN", "team-a-token"), _from_secret("OTHER", "payroll-db")],
        "volumes": [
            {"name": "a", "secret": {"secretName": "snowflake-key"}},
            {"name": "b", "secret": {"secretName": "prod-tls"}},
            {"name": "c", "projected": {"sources": [{"secret": {"name": "vault-root"}}]}},
            {"name": "d", "csi": {"driver": "secrets-store.csi.k8s.io",
                                  "nodePublishSecretRef": {"name": "aws-creds"}}},
        ],
    },
)  # fmt: skip


def test_secrets_of_env_and_volumes_are_references_the_allow_list_checks() -> None:
    refs = secret_references(processor_spec(SECRETS_IN_POD_TEMPLATE))
    assert refs == {
        "spec.job.env[0].valueFrom.secretKeyRef.name": "team-a-token",
        "spec.job.env[1].valueFrom.secretKeyRef.name": "payroll-db",
        "spec.job.volumes[0].secret.secretName": "snowflake-key",
        "spec.job.volumes[1].secret.secretName": "prod-tls",
        "spec.job.volumes[2].projected.sources[0].secret.name": "vault-root",
        "spec.job.volumes[3].csi.nodePublishSecretRef.name": "aws-creds",
    }
    refused = admit(SECRETS_IN_POD_TEMPLATE, POLICY, MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == NOT_ALLOWED
    for name in ("payroll-db", "prod-tls", "vault-root", "aws-creds"):
        assert name in refused.message
    for allowed_name in ("team-a-token", "'snowflake-key'"):
        assert allowed_name not in refused.message


def test_the_ops_commands_read_a_newer_resource_with_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kubectl sfp status -n NS NAME` validates the spec as the operator does: fields of a
    newer CRD are named on stderr and left out, the rest is used."""
    spec = validate_spec(AHEAD, "SnowflakeProcessor ns/ahead")
    assert spec.job.max_active_jobs == 3
    warning = capsys.readouterr().err
    assert warning.startswith("warning: SnowflakeProcessor ns/ahead: spec.")
    assert "spec.rateLimit" in warning and "ignored" in warning


# -- the worker's environment: an allow-list of names -------------------------------------


@pytest.mark.parametrize(
    ("name", "allowed_by_default"),
    [
        ("HTTPS_PROXY", True),
        ("no_proxy", True),
        ("TZ", True),
        ("AWS_CONFIG_FILE", False),  # a profile's credential_process runs at login
        ("SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES", False),  # the proof could go anywhere
        ("SSL_CERT_FILE", False),  # a CA of the author's: the Snowflake login intercepted
        ("https_proxy2", False),
    ],
)
def test_env_names_are_allowed_only_when_listed(name: str, allowed_by_default: bool) -> None:
    spec = merged(MINIMAL_SPEC, job={"env": [{"name": name, "value": "x"}]})
    result = admit(spec, OperatorSettings().reference_policy(), MINE, [])
    if allowed_by_default:
        assert isinstance(result, Admitted), result
    else:
        assert isinstance(result, Refusal) and result.reason == NOT_ALLOWED
        assert result.message == (
            f"spec.job.env[0].name {name!r} is not an environment variable resources may set "
            "(SFP_OPERATOR_ALLOWED_ENV)"
        )


@pytest.mark.parametrize("name", ["sfp_endpoint_headers_dir", "Sfp_Processor_Id", "home"])
def test_reserved_names_are_refused_in_any_case_whatever_the_allow_list_says(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFP_OPERATOR_ALLOWED_ENV", '[".*"]')
    spec = merged(MINIMAL_SPEC, job={"env": [{"name": name, "value": "x"}]})
    result = admit(spec, OperatorSettings().reference_policy(), MINE, [])
    assert isinstance(result, Refusal) and result.reason == INVALID_SPEC
    assert f"{name} is reserved" in result.message


# -- volume types: an allow-list too ------------------------------------------------------

VOLUME_OF_EACH_TYPE = {
    "configMap": {"configMap": {"name": "settings"}},
    "secret": {"secret": {"secretName": "api-token"}},
    "emptyDir": {"emptyDir": {"sizeLimit": "1Gi"}},
    "downwardAPI": {"downwardAPI": {"items": [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
    "persistentVolumeClaim": {"persistentVolumeClaim": {"claimName": "shared"}},
    "projected": {"projected": {"sources": [{"configMap": {"name": "settings"}}]}},
    "csi": {"csi": {"driver": "secrets-store.csi.k8s.io",
                    "volumeAttributes": {"secretProviderClass": "queue"}}},
    "ephemeral": {"ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}},
}  # fmt: skip


def _with_volumes(*volumes: dict[str, Any]) -> dict[str, Any]:
    """On nodes: Fargate cannot mount csi or ephemeral volumes at all (test_fargate_limits)."""
    named = [{"name": f"v{index}", **volume} for index, volume in enumerate(volumes)]
    return merged(MINIMAL_SPEC, job={"compute": "nodes", "volumes": named})


def _default_policy(**changes: Any) -> ReferencePolicy:
    """The operator's default policy, any Secret allowed (the volume type is the question)."""
    return replace(OperatorSettings().reference_policy(), secrets=(".*",), **changes)


@pytest.mark.parametrize(
    ("volume_type", "allowed_by_default"),
    [
        ("configMap", True),
        ("secret", True),
        ("emptyDir", True),
        ("downwardAPI", True),
        ("persistentVolumeClaim", True),
        ("projected", True),
        ("csi", False),  # a driver mounts what no object of the namespace holds
        ("ephemeral", False),  # a new claim, and storage, per pod
    ],
)
def test_volume_types_are_allowed_only_when_listed(
    volume_type: str, allowed_by_default: bool
) -> None:
    spec = _with_volumes(VOLUME_OF_EACH_TYPE[volume_type])
    result = admit(spec, _default_policy(), MINE, [])
    if allowed_by_default:
        assert isinstance(result, Admitted), result
        assert result.spec.job.volumes is not None
        assert result.spec.job.volumes[0].source_type() == volume_type
    else:
        assert isinstance(result, Refusal) and result.reason == NOT_ALLOWED
        assert result.message == (
            f"spec.job.volumes[0].{volume_type} is not a volume type resources may use "
            "(SFP_OPERATOR_ALLOWED_VOLUME_TYPES)"
        )


def test_the_default_volume_types_are_the_settings_and_the_policys_default() -> None:
    defaults = ["configMap", "secret", "emptyDir", "downwardAPI", "persistentVolumeClaim",
                "projected"]  # fmt: skip
    assert OperatorSettings().allowed_volume_types == defaults
    assert ReferencePolicy(images=(), service_accounts=(), secrets=()).volume_types == tuple(
        defaults
    )
    assert set(VOLUME_TYPES) == {*defaults, "csi", "ephemeral"} == set(VOLUME_OF_EACH_TYPE)


def test_allowed_volume_types_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFP_OPERATOR_ALLOWED_VOLUME_TYPES", '["csi", "configMap"]')
    policy = replace(OperatorSettings().reference_policy(), secrets=(".*",))
    assert policy.volume_types == ("csi", "configMap")
    spec = _with_volumes(VOLUME_OF_EACH_TYPE["csi"], VOLUME_OF_EACH_TYPE["emptyDir"])
    refused = admit(spec, policy, MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == NOT_ALLOWED
    assert refused.message == (
        "spec.job.volumes[1].emptyDir is not a volume type resources may use "
        "(SFP_OPERATOR_ALLOWED_VOLUME_TYPES)"
    )


@pytest.mark.parametrize("listed", ['["hostPath"]', '["config_map"]', '["ConfigMap"]'])
def test_settings_refuse_a_volume_type_that_does_not_exist(
    listed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFP_OPERATOR_ALLOWED_VOLUME_TYPES", listed)
    with pytest.raises(ValueError, match="is not a volume type: one of configMap, csi"):
        OperatorSettings()


def test_a_projected_volume_brings_in_only_the_types_listed() -> None:
    """Allowing projected allows no source type that is not on the list itself."""
    spec = _with_volumes(
        {"projected": {"sources": [
            {"configMap": {"name": "settings"}},
            {"secret": {"name": "api-token"}},
            {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        ]}}
    )  # fmt: skip
    policy = _default_policy(volume_types=("projected", "configMap"))
    refused = admit(spec, policy, MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == NOT_ALLOWED
    assert refused.message.split("; ") == [
        f"spec.job.volumes[0].projected.sources[{index}].{kind} is not a volume type resources "
        "may use (SFP_OPERATOR_ALLOWED_VOLUME_TYPES)"
        for index, kind in ((1, "secret"), (2, "downwardAPI"))
    ]
    assert isinstance(admit(spec, _default_policy(), MINE, []), Admitted)


# -- what no resource can make the operator do ----------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        {"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}},
        {"clusterTrustBundle": {"signerName": "example.com/signer", "path": "ca.pem"}},
    ],
)
def test_a_projected_service_account_token_is_refused_naming_the_field(
    source: dict[str, Any],
) -> None:
    """As the API server prunes it, the operator leaves it out (and names it): the source it
    leaves has no type, which is the refusal."""
    (kind,) = source
    spec = _with_volumes({"projected": {"sources": [source]}})
    refused = admit(spec, _default_policy(), MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == INVALID_SPEC
    assert refused.message.startswith(
        "spec.job.volumes[0].projected.sources[0]: a projected source needs exactly one of "
        "configMap, secret, downwardAPI (serviceAccountToken, clusterTrustBundle and "
        "podCertificate are not allowed)"
    )
    assert refused.unknown_fields == (f"spec.job.volumes[0].projected.sources[0].{kind}",)


def _nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["x"] = {}
        node = node["x"]
    return root


def test_a_deeply_nested_affinity_is_no_problem_for_admission() -> None:
    """3,000 levels under spec.job.affinity: what the API server would keep of it (nothing)
    is admitted and the rest named; where it replaces a value, the resource is refused. No
    step recurses into it."""
    unknown = merged(MINIMAL_SPEC, job={"affinity": {"nodeAffinity": _nested(3000)}})
    admitted = admit(unknown, POLICY, MINE, [])
    assert isinstance(admitted, Admitted), admitted
    assert admitted.unknown_fields == ("spec.job.affinity.nodeAffinity.x",)
    assert admitted.spec.job.affinity is not None
    assert admitted.spec.job.affinity.model_dump(exclude_none=True) == {"node_affinity": {}}
    term = {"matchExpressions": [{"key": _nested(3000), "operator": "Exists"}]}
    required = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
    wrong = merged(MINIMAL_SPEC, job={"affinity": {"nodeAffinity": required}})
    refused = admit(wrong, POLICY, MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == INVALID_SPEC
    assert refused.message == (
        "spec.job.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].key: Input should be a valid string"
    )
