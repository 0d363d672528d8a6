"""The SnowflakeProcessor CRD: its shape, its rules, the examples, and its generator.

scripts/gen_crd.py generates the CRD from the model (snowflake_operator.spec), so the schema
cannot drift from ProcessorSpec field by field; what is checked here is what generation
alone does not prove: the committed file is the generated one, the API server would accept
it (structural, valid, defaults that validate), it refuses what the model refuses at the
same field, its CEL rules hold what the model's validators hold, and the examples pass.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import subprocess
import sys
import types
import typing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel, Field, ValidationError

from snowflake_operator import constants
from snowflake_operator.poll.planning import Observation
from snowflake_operator.spec.base import (
    SpecModel,
    cel_rules,
    described_fields,
    list_map,
    string_map,
)
from snowflake_operator.spec.fargate_sizes import (
    FARGATE_CPUS,
    FARGATE_SIZES_HELP,
    fargate_size_allowed,
)
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker import identifiers
from snowflake_worker.queue_records import QueueCounts
from snowflake_worker.snowflake_settings import AuthMode
from tests.support.generators import assert_generated_file_current
from tests.support.polls import plan_poll

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "snowflakeprocessors.yaml"
CHART_CRD_PATH = ROOT / "charts" / "snowflake-processor" / "files" / "crds" / CRD_PATH.name
GENERATOR = ROOT / "scripts" / "gen_crd.py"
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))

Path_ = tuple[str, ...]


def load_crd() -> dict[str, Any]:
    with CRD_PATH.open() as handle:
        crd = yaml.safe_load(handle)
    assert isinstance(crd, dict)
    return crd


def load_example(name: str) -> dict[str, Any]:
    with (EXAMPLES_DIR / name).open() as handle:
        docs = list(yaml.safe_load_all(handle))
    assert len(docs) == 1, f"{name}: one manifest per example file"
    return docs[0]  # type: ignore[no-any-return]


CRD = load_crd()


def served_version(crd: dict[str, Any]) -> dict[str, Any]:
    versions = crd["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]  # type: ignore[no-any-return]


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return served_version(crd)["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return root_schema(crd)["properties"]["spec"]  # type: ignore[no-any-return]


def status_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return root_schema(crd)["properties"]["status"]  # type: ignore[no-any-return]


def schema_at(schema: dict[str, Any], path: Path_) -> dict[str, Any] | None:
    """The subschema of the property at ``path`` (names below ``schema``, "[]" for an
    array's items), or None."""
    node: dict[str, Any] | None = schema
    for name in path:
        if node is None:
            return None
        node = node.get("items") if name == "[]" else node.get("properties", {}).get(name)
    return node


def walk_properties(schema: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every named property below ``schema`` (through objects and array items)."""
    for name, sub in schema.get("properties", {}).items():
        yield (*path, name), sub
        yield from walk_properties(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from walk_properties(schema["items"], (*path, "[]"))


def walk_nodes(schema: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, dict[str, Any]]]:
    """Every schema node: properties, array items and map values."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk_nodes(sub, (*path, name))
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from walk_nodes(schema[key], (*path, f"<{key}>"))


# -- the strict schema: OpenAPI v3 (Kubernetes flavour) as JSON Schema draft 7 -----------


def _tighten(node: dict[str, Any]) -> None:
    if node.get("nullable") is True:
        node["type"] = [node["type"], "null"]
    node.pop("nullable", None)
    # OpenAPI 3.0 (and Kubernetes) spell an exclusive bound as a boolean beside it.
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True:
            node[exclusive] = node.pop(bound)
        elif node.get(exclusive) is False:
            del node[exclusive]
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for sub in node.get("properties", {}).values():
        _tighten(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _tighten(node[key])


def strict_schema(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD's openAPIV3Schema as draft 7, rejecting unknown fields.

    Kubernetes prunes unknown fields instead (additionalProperties: false is not allowed
    in a structural schema), and the operator's model rejects them; here every object
    with ``properties`` gets additionalProperties: false, so a typo in a field name is
    an error the test can see. Maps (podLabels) keep their own additionalProperties.
    """
    schema = copy.deepcopy(root_schema(crd))
    _tighten(schema)
    return schema


VALIDATOR = jsonschema.Draft7Validator(strict_schema(CRD))


def schema_errors(doc: dict[str, Any]) -> list[jsonschema.ValidationError]:
    return list(VALIDATOR.iter_errors(doc))


def describe(errors: list[jsonschema.ValidationError]) -> str:
    return "; ".join(f"{error.json_path}: {error.message}" for error in errors)


# -- the CRD itself -------------------------------------------------------------------


def test_crd_names_group_and_scope_match_the_operator() -> None:
    assert CRD["apiVersion"] == "apiextensions.k8s.io/v1"
    assert CRD["kind"] == "CustomResourceDefinition"
    assert CRD["metadata"]["name"] == f"{constants.PLURAL}.{constants.GROUP}"
    assert CRD["spec"]["group"] == constants.GROUP == "snowflake-processor.dev"
    assert CRD["spec"]["scope"] == "Namespaced"
    names = CRD["spec"]["names"]
    assert names["kind"] == constants.KIND == "SnowflakeProcessor"
    assert names["plural"] == constants.PLURAL == "snowflakeprocessors"
    assert names["singular"] == "snowflakeprocessor"
    assert names["shortNames"] == ["sfp"]
    assert "categories" not in names
    version = served_version(CRD)
    assert version["name"] == constants.VERSION == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True


def test_status_is_a_subresource() -> None:
    assert served_version(CRD)["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = [
        (column["name"], column["type"], column["jsonPath"], column.get("priority", 0))
        for column in served_version(CRD)["additionalPrinterColumns"]
    ]
    assert columns == [
        ("Backlog", "integer", ".status.backlog", 0),
        ("Active", "integer", ".status.activeJobs", 0),
        ("Failed", "integer", ".status.failed", 0),
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        # A suspended processor is not a broken one: KEDA shows PAUSED, we SUSPENDED.
        ("Suspended", "boolean", ".spec.suspend", 0),
        # -o wide
        ("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', 1),
        ("Pending", "integer", ".status.pending", 1),
        ("Processing", "integer", ".status.processing", 1),
        ("Completed", "integer", ".status.completed", 1),
        ("Oldest", "integer", ".status.oldestPendingAgeSeconds", 1),
        ("Polled", "date", ".status.lastPollTime", 1),
        ("Table", "string", ".spec.snowflake.table", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]


def test_printer_columns_point_at_status_fields_of_their_type() -> None:
    status = status_schema(CRD)["properties"]
    for column in served_version(CRD)["additionalPrinterColumns"]:
        match = re.fullmatch(r"\.(status|spec)\.([\w.]+)", column["jsonPath"])
        if match:
            section = status_schema(CRD) if match.group(1) == "status" else spec_schema(CRD)
            node = schema_at(section, tuple(match.group(2).split(".")))
            assert node is not None, column["name"]
            expected = {"date": "string"}.get(column["type"], column["type"])
            assert node["type"] == expected, column["name"]
    condition = status["conditions"]["items"]["properties"]
    assert condition["type"]["type"] == "string"
    assert condition["status"]["type"] == "string"


@pytest.mark.parametrize("kubernetes_version", ["1.25", kubernetes_validate.latest_version()])
def test_crd_is_a_valid_custom_resource_definition(kubernetes_version: str) -> None:
    # Strict: an unknown or misspelt keyword anywhere in the CRD is an error. 1.25 is the
    # first version evaluating x-kubernetes-validations by default.
    kubernetes_validate.validate(CRD, kubernetes_version, strict=True)


def test_crd_validation_catches_a_misspelt_keyword() -> None:
    broken = copy.deepcopy(CRD)
    spec_schema(broken)["properties"]["suspend"]["defualt"] = False
    with pytest.raises(kubernetes_validate.ValidationError, match="defualt"):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_schema_is_structural() -> None:
    """What the API server demands of a v1 CRD schema (it refuses the CRD otherwise)."""
    problems = []
    for path, node in walk_nodes(root_schema(CRD)):
        where = ".".join(path) or "<root>"
        if "type" not in node:
            problems.append(f"{where}: no type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: properties and additionalProperties together")
        if node.get("additionalProperties") is False:
            problems.append(f"{where}: additionalProperties: false")
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            item = node["items"]
            for key in keys:
                if key not in item.get("required", []):
                    problems.append(f"{where}: list map key {key} not required")
                if item["properties"][key]["type"] not in ("string", "integer"):
                    problems.append(f"{where}: list map key {key} not a scalar")
    assert problems == []


def test_defaults_are_valid_values_of_their_field() -> None:
    # The API server refuses a CRD whose default does not validate against its schema.
    strict = strict_schema(CRD)["properties"]["spec"]
    for path, sub in walk_properties(spec_schema(CRD)):
        if "default" in sub:
            node = schema_at(strict, path)
            assert node is not None
            errors = list(jsonschema.Draft7Validator(node).iter_errors(sub["default"]))
            assert errors == [], f"{'.'.join(path)}: {describe(errors)}"


def test_strict_schema_is_draft7_and_only_adds_closure() -> None:
    strict = strict_schema(CRD)
    jsonschema.Draft7Validator.check_schema(strict)
    # Objects with properties are closed; the CRD itself is left untouched.
    assert strict["properties"]["spec"]["additionalProperties"] is False
    assert strict["properties"]["spec"]["properties"]["job"]["additionalProperties"] is False
    assert "additionalProperties" not in spec_schema(CRD)
    # A map keeps its own rule: any key, string values.
    labels = strict["properties"]["spec"]["properties"]["job"]["properties"]["podLabels"]
    assert labels["additionalProperties"]["type"] == "string"
    # Boolean exclusive bounds became draft 7 numbers.
    port = strict["properties"]["spec"]["properties"]["snowflake"]["properties"]["port"]
    assert (port.get("exclusiveMinimum"), port.get("exclusiveMaximum")) == (0, 65536)
    assert "minimum" not in port
    assert "maximum" not in port


def test_strict_schema_rejects_what_pruning_would_drop() -> None:
    doc = load_example("processor-minimal.yaml")
    doc["spec"]["snowflake"]["tabel"] = "typo"
    raw = copy.deepcopy(root_schema(CRD))
    _tighten(raw)
    _open_all(raw)
    assert list(jsonschema.Draft7Validator(raw).iter_errors(doc)) == []
    assert any("'tabel'" in error.message for error in schema_errors(doc))


def _open_all(node: dict[str, Any]) -> None:
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    for sub in node.get("properties", {}).values():
        _open_all(sub)


# -- the examples -----------------------------------------------------------------------


def test_examples_exist() -> None:
    # Every file in examples/ is checked below; these three must be among them.
    assert {path.name for path in EXAMPLES} >= {
        "processor-key-pair.yaml",
        "processor-minimal.yaml",
        "processor-workload-identity.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_is_valid(path: Path) -> None:
    doc = load_example(path.name)
    assert doc["apiVersion"] == f"{constants.GROUP}/{constants.VERSION}"
    assert doc["kind"] == constants.KIND
    assert doc["metadata"]["name"]
    errors = schema_errors(doc)
    assert errors == [], describe(errors)
    model = ProcessorSpec.model_validate(doc["spec"])
    assert model.certificates is not None  # a cluster deployment needs certificates


def test_workload_identity_example() -> None:
    doc = load_example("processor-workload-identity.yaml")
    model = ProcessorSpec.model_validate(doc["spec"])
    assert doc["metadata"]["namespace"] == "snowflake-processor"
    assert model.snowflake.auth.mode is AuthMode.WORKLOAD_IDENTITY
    assert model.certificates is not None
    assert model.certificates.s3 is not None
    assert model.certificates.s3.bucket == "acme-snowflake-processor-certs"
    assert model.certificates.s3.prefix == "prod/"
    # Nothing Fargate-specific to set: the operator labels every Job's pod for its profile.
    assert model.job.pod_labels == {}


def test_key_pair_example() -> None:
    model = ProcessorSpec.model_validate(load_example("processor-key-pair.yaml")["spec"])
    assert model.snowflake.auth.mode is AuthMode.KEY_PAIR
    assert model.snowflake.auth.private_key_secret is not None
    assert model.snowflake.user
    assert model.certificates is not None
    assert model.certificates.existing_secret
    assert model.certificates.s3 is None


def test_minimal_example_has_only_required_fields_and_certificates() -> None:
    spec_doc = load_example("processor-minimal.yaml")["spec"]
    schema = spec_schema(CRD)
    assert set(spec_doc) == {*schema["required"], "certificates"}
    assert set(spec_doc["snowflake"]) == set(schema["properties"]["snowflake"]["required"])
    assert set(spec_doc["endpoint"]) == set(schema["properties"]["endpoint"]["required"])


# -- invalid resources: the schema and the model both refuse them ----------------------

DELETE = object()
BASE_EXAMPLE = "processor-workload-identity.yaml"


def mutated(changes: dict[Path_, Any], base: str = BASE_EXAMPLE) -> dict[str, Any]:
    """A deep copy of an example with values at spec paths set (or DELETEd)."""
    doc = copy.deepcopy(load_example(base))
    for path, value in changes.items():
        parent = doc["spec"]
        for name in path[:-1]:
            parent = parent.setdefault(name, {})
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return doc


def p(dotted: str) -> Path_:
    return tuple(dotted.split("."))


_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _node_terms(requirement: dict[str, Any]) -> dict[str, Any]:
    """An affinity with one required node selector term holding ``requirement``."""
    return {
        "nodeAffinity": {_REQUIRED: {"nodeSelectorTerms": [{"matchExpressions": [requirement]}]}}
    }


# (id, path of the offending field below spec, its new value, the schema keyword it breaks)
INVALID: list[tuple[str, str, Any, str]] = [
    ("http-url", "endpoint.url", "http://enrichment.internal.acme.example/v1", "pattern"),
    ("missing-table", "snowflake.table", DELETE, "required"),
    ("table-with-hyphen", "snowflake.table", "work-items", "pattern"),
    ("database-starts-with-digit", "snowflake.database", "1analytics", "pattern"),
    ("unknown-top-level-field", "replicas", 3, "additionalProperties"),
    ("unknown-nested-field", "job.cpus", "1", "additionalProperties"),
    ("negative-max-active-jobs", "job.maxActiveJobs", -1, "minimum"),
    ("zero-entries-per-job", "job.entriesPerJob", 0, "minimum"),
    ("zero-concurrency", "job.concurrency", 0, "minimum"),
    ("cpu-zero", "job.cpu", "0", "pattern"),
    ("cpu-millicores-fraction", "job.cpu", "0.5m", "pattern"),
    ("memory-1GB", "job.memory", "1GB", "pattern"),
    ("memory-zero", "job.memory", "0Gi", "pattern"),
    ("auth-mode-oauth", "snowflake.auth.mode", "oauth", "enum"),
    ("pull-policy-sometimes", "job.imagePullPolicy", "Sometimes", "enum"),
    ("zero-max-attempts", "queue.maxAttempts", 0, "minimum"),
    ("lease-10-seconds", "queue.leaseSeconds", 10, "minimum"),
    ("zero-poll-interval", "pollIntervalSeconds", 0, "minimum"),
    ("zero-claim-batch", "queue.claimBatch", 0, "minimum"),
    ("negative-retries", "endpoint.retries", -1, "minimum"),
    ("bucket-upper-case", "certificates.s3.bucket", "Acme-Certs", "pattern"),
    ("suspend-string", "suspend", "yes", "type"),
    ("pod-label-number", "job.podLabels.tier", 5, "type"),
    ("zero-timeout", "endpoint.timeoutSeconds", 0, "exclusiveMinimum"),
    ("max-attempts-101", "queue.maxAttempts", 101, "maximum"),
    ("claim-batch-10001", "queue.claimBatch", 10_001, "maximum"),
    ("max-active-jobs-20", "job.maxActiveJobs", 20, "maximum"),
    ("concurrency-1025", "job.concurrency", 1025, "maximum"),
    ("retries-21", "endpoint.retries", 21, "maximum"),
    ("port-65536", "snowflake.port", 65536, "exclusiveMaximum"),
    ("port-0", "snowflake.port", 0, "exclusiveMinimum"),
    ("log-level-trace", "logLevel", "TRACE", "enum"),
    ("zero-flush-seconds", "job.flushSeconds", 0, "exclusiveMinimum"),
    ("zero-retry-backoff", "endpoint.retryBackoffSeconds", 0, "exclusiveMinimum"),
    ("empty-account", "snowflake.account", "", "minLength"),
    ("empty-service-account", "job.serviceAccountName", "", "minLength"),
    ("bucket-too-short", "certificates.s3.bucket", "ab", "minLength"),
    ("bucket-too-long", "certificates.s3.bucket", "a" * 64, "maxLength"),
    ("deadline-30-seconds", "job.activeDeadlineSeconds", 30, "minimum"),
    ("zero-grace", "job.graceSeconds", 0, "minimum"),
    ("negative-ttl", "job.ttlSecondsAfterFinished", -1, "minimum"),
    ("negative-retry-delay", "queue.retryDelaySeconds", -1, "minimum"),
    ("negative-history-limit", "job.failedJobsHistoryLimit", -1, "minimum"),
    ("warehouse-with-hyphen", "snowflake.warehouse", "queue-wh", "pattern"),
    ("role-with-space", "snowflake.role", "queue processor", "pattern"),
    ("missing-url", "endpoint.url", DELETE, "required"),
    ("missing-account", "snowflake.account", DELETE, "required"),
    ("secret-ref-without-key", "snowflake.auth.privateKeySecret", {"name": "k"}, "required"),
    (
        "secret-ref-empty-name",
        "snowflake.auth.passwordSecret",
        {"name": "", "key": "k"},
        "minLength",
    ),
    ("unknown-s3-field", "certificates.s3.endpoint", "https://s3", "additionalProperties"),
    ("memory-without-unit", "job.memory", "1024", "pattern"),
    ("fractional-entries-per-job", "job.entriesPerJob", 2.5, "type"),
    ("cpu-as-number", "job.cpu", 1, "type"),
    ("identifier-too-long", "snowflake.table", "T" * 256, "pattern"),
    # Bounded, so CEL's cost estimate of the Fargate rules over it is bounded too.
    ("memory-too-long", "job.memory", "0000000000768Mi", "maxLength"),
    # Bounded, so CEL's arithmetic on it (2/3 of it) stays far from overflow.
    ("lease-over-a-day", "queue.leaseSeconds", 86_401, "maximum"),
    # The pod template fields (spec/pod_template.py).
    ("compute-spot", "job.compute", "spot", "enum"),
    ("min-active-jobs-20", "job.minActiveJobs", 20, "maximum"),
    ("idle-wait-zero", "job.idleWaitSeconds", 0, "minimum"),
    ("backoff-negative", "job.launchBackoff.afterFailedJobs", -1, "minimum"),
    ("backoff-zero-seconds", "job.launchBackoff.initialSeconds", 0, "minimum"),
    ("annotation-number", "job.podAnnotations.team", 5, "type"),
    ("env-not-a-list", "job.env", {"A": "b"}, "type"),
    ("priority-class-upper-case", "job.priorityClassName", "Batch", "pattern"),
    ("node-selector-number", "job.nodeSelector.zone", 1, "type"),
    ("volumes-not-a-list", "job.volumes", {"name": "x"}, "type"),
    # Kubernetes' own objects are typed and bounded: nothing below spec.job is kept unread.
    ("pod-label-too-long", "job.podLabels.team", "a" * 64, "maxLength"),
    ("node-selector-too-many", "job.nodeSelector", {f"k{i}": "v" for i in range(65)},
     "maxProperties"),
    ("env-value-too-long", "job.env", [{"name": "TZ", "value": "x" * 32_769}], "maxLength"),
    ("toleration-value-too-long", "job.tolerations",
     [{"key": "k", "operator": "Equal", "value": "v" * 64}], "maxLength"),
    ("affinity-unknown-field", "job.affinity", {"nodeAffinity": {"requiredDuringScheduling": {}}},
     "additionalProperties"),
    ("affinity-operator-like", "job.affinity", _node_terms({"key": "a", "operator": "Like"}),
     "enum"),
    ("affinity-33-terms", "job.affinity",
     {"nodeAffinity": {_REQUIRED: {"nodeSelectorTerms": [{}] * 33}}}, "maxItems"),
    ("affinity-257-values", "job.affinity",
     _node_terms({"key": "a", "operator": "In", "values": ["v"] * 257}), "maxItems"),
    ("affinity-key-too-long", "job.affinity", _node_terms({"key": "k" * 318, "operator": "Exists"}),
     "maxLength"),
    ("affinity-weight-101", "job.affinity", {"podAntiAffinity": {_PREFERRED: [
        {"weight": 101, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}},
     "maximum"),
    ("affinity-match-label-too-long", "job.affinity", {"podAffinity": {_REQUIRED: [
        {"topologyKey": "kubernetes.io/hostname",
         "labelSelector": {"matchLabels": {"app": "a" * 64}}}]}}, "maxLength"),
    ("affinity-term-without-topology-key", "job.affinity", {"podAffinity": {_REQUIRED: [{}]}},
     "required"),
    ("config-map-without-name", "job.volumes", [{"name": "c", "configMap": {}}], "required"),
    ("config-map-65-items", "job.volumes",
     [{"name": "c", "configMap": {"name": "c", "items": [{"key": "k", "path": "p"}] * 65}}],
     "maxItems"),
    ("secret-item-path-too-long", "job.volumes",
     [{"name": "s", "secret": {"secretName": "s", "items": [{"key": "k", "path": "p" * 1025}]}}],
     "maxLength"),
    ("empty-dir-size-not-a-quantity", "job.volumes",
     [{"name": "e", "emptyDir": {"sizeLimit": "lots"}}], "pattern"),
    ("empty-dir-huge-pages", "job.volumes", [{"name": "e", "emptyDir": {"medium": "HugePages"}}],
     "enum"),
    ("csi-65-attributes", "job.volumes", [{"name": "c", "csi": {
        "driver": "d", "volumeAttributes": {f"k{i}": "v" for i in range(65)}}}], "maxProperties"),
    ("projected-33-sources", "job.volumes",
     [{"name": "p", "projected": {"sources": [{"configMap": {"name": "c"}}] * 33}}], "maxItems"),
    ("projected-service-account-token", "job.volumes", [{"name": "t", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}]}}],
     "additionalProperties"),
    ("projected-cluster-trust-bundle", "job.volumes", [{"name": "t", "projected": {"sources": [
        {"clusterTrustBundle": {"signerName": "example.com/x", "path": "ca.pem"}}]}}],
     "additionalProperties"),
    ("ephemeral-volume-name", "job.volumes", [{"name": "e", "ephemeral": {"volumeClaimTemplate": {
        "spec": {"volumeName": "someone-elses-pv"}}}}], "additionalProperties"),
    ("ephemeral-access-mode", "job.volumes", [{"name": "e", "ephemeral": {"volumeClaimTemplate": {
        "spec": {"accessModes": ["ReadWriteSometimes"]}}}}], "enum"),
]  # fmt: skip


_NODE_TERM = (_REQUIRED, "nodeSelectorTerms", "0", "matchExpressions", "0")
# Where below the field a case sets the wrong value is (list items by index).
_WRONG_BELOW = {
    "secret-ref-without-key": ("key",),
    "secret-ref-empty-name": ("name",),
    "env-value-too-long": ("0", "value"),
    "toleration-value-too-long": ("0", "value"),
    "affinity-unknown-field": ("nodeAffinity", "requiredDuringScheduling"),
    "affinity-operator-like": ("nodeAffinity", *_NODE_TERM, "operator"),
    "affinity-33-terms": ("nodeAffinity", _REQUIRED, "nodeSelectorTerms"),
    "affinity-257-values": ("nodeAffinity", *_NODE_TERM, "values"),
    "affinity-key-too-long": ("nodeAffinity", *_NODE_TERM, "key"),
    "affinity-weight-101": ("podAntiAffinity", _PREFERRED, "0", "weight"),
    "affinity-match-label-too-long": (
        "podAffinity", _REQUIRED, "0", "labelSelector", "matchLabels", "app",
    ),
    "affinity-term-without-topology-key": ("podAffinity", _REQUIRED, "0", "topologyKey"),
    "config-map-without-name": ("0", "configMap", "name"),
    "config-map-65-items": ("0", "configMap", "items"),
    "secret-item-path-too-long": ("0", "secret", "items", "0", "path"),
    "empty-dir-size-not-a-quantity": ("0", "emptyDir", "sizeLimit"),
    "empty-dir-huge-pages": ("0", "emptyDir", "medium"),
    "csi-65-attributes": ("0", "csi", "volumeAttributes"),
    "projected-33-sources": ("0", "projected", "sources"),
    "projected-service-account-token": ("0", "projected", "sources", "0", "serviceAccountToken"),
    "projected-cluster-trust-bundle": ("0", "projected", "sources", "0", "clusterTrustBundle"),
    "ephemeral-volume-name": ("0", "ephemeral", "volumeClaimTemplate", "spec", "volumeName"),
    "ephemeral-access-mode": (
        "0", "ephemeral", "volumeClaimTemplate", "spec", "accessModes", "0",
    ),
}  # fmt: skip


def _spec_path(case: tuple[str, str, Any, str]) -> Path_:
    """The field that is wrong: the case's path, or a field inside the value it sets."""
    case_id, dotted, _value, _keyword = case
    return (*p(dotted), *_WRONG_BELOW.get(case_id, ()))


def _invalid_doc(case: tuple[str, str, Any, str]) -> dict[str, Any]:
    return mutated({p(case[1]): case[2]})


def _names_field(error: jsonschema.ValidationError, path: Path_, keyword: str) -> bool:
    """Whether a schema error is the expected one, at the offending field."""
    if error.validator != keyword:
        return False
    located = tuple(str(part) for part in error.absolute_path)  # list items by index
    if keyword in ("required", "additionalProperties"):
        # Reported on the object holding the field, naming the field in the message.
        return located == path[:-1] and repr(path[-1]) in error.message
    return located == path


@pytest.mark.parametrize("case", INVALID, ids=[case[0] for case in INVALID])
def test_invalid_variant_fails_the_schema_at_its_field(case: tuple[str, str, Any, str]) -> None:
    path = ("spec", *_spec_path(case))
    errors = schema_errors(_invalid_doc(case))
    assert errors, "the schema accepted it"
    assert any(_names_field(error, path, case[3]) for error in errors), describe(errors)


@pytest.mark.parametrize(
    "case",
    INVALID,
    ids=[case[0] for case in INVALID],
)
def test_invalid_variant_fails_the_model_at_its_field(case: tuple[str, str, Any, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        ProcessorSpec.model_validate(_invalid_doc(case)["spec"])
    locations = [tuple(str(part) for part in error["loc"]) for error in caught.value.errors()]
    assert _spec_path(case) in locations, locations


def test_there_are_enough_invalid_variants() -> None:
    assert len(INVALID) >= 20
    assert len({case[0] for case in INVALID}) == len(INVALID)


# -- spec.job holds nothing unbounded: no resource too deep or too big to read back -------


def _nested(depth: int, leaf: Any = None) -> dict[str, Any]:
    """``{"x": {"x": ...}}``, ``depth`` levels deep (built without recursion)."""
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth - 1):
        node["x"] = {}
        node = node["x"]
    node["x"] = {} if leaf is None else leaf
    return root


def test_no_field_of_the_spec_keeps_unknown_fields_and_every_collection_is_bounded() -> None:
    """The schema is the whole shape: the API server prunes whatever it does not declare, so
    a stored resource is at most as deep as the schema, with bounded lists and maps."""
    unbounded = []
    for path, node in walk_nodes(spec_schema(CRD)):
        where = ".".join(path) or "<spec>"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            unbounded.append(f"{where}: keeps unknown fields")
        if node["type"] == "array" and "maxItems" not in node:
            unbounded.append(f"{where}: no maxItems")
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(f"{where}: no maxProperties")
        in_job = path[:1] == ("job",)
        if in_job and node["type"] == "string" and not {"maxLength", "enum"} & set(node):
            unbounded.append(f"{where}: no maxLength")
    assert unbounded == []
    depth = max(len(path) for path, _node in walk_nodes(spec_schema(CRD)))
    assert depth < 16  # the deepest: a value of a requirement of a weighted pod affinity term


@pytest.mark.parametrize(
    "affinity",
    [
        {"nodeAffinity": _nested(3000)},  # below a typed object: a field it does not have
        {"podAffinity": {_REQUIRED: [_nested(3000, leaf=[])]}},  # in a list of terms
    ],
    ids=["unknown-field", "in-a-list"],
)
def test_a_deeply_nested_affinity_is_refused_by_the_schema_and_the_model(
    affinity: dict[str, Any],
) -> None:
    """spec.job.affinity held anything once (x-kubernetes-preserve-unknown-fields); a resource
    3,000 levels deep there made every client that read it recurse until it failed."""
    doc = mutated({p("job.affinity"): affinity})
    errors = schema_errors(doc)
    assert errors, "the schema accepted it"
    assert all(tuple(error.absolute_path)[:3] == ("spec", "job", "affinity") for error in errors)
    with pytest.raises(ValidationError) as caught:  # not a RecursionError
        ProcessorSpec.model_validate(doc["spec"])
    assert all(error["loc"][:2] == ("job", "affinity") for error in caught.value.errors())
    assert all(len(error["loc"]) < 12 for error in caught.value.errors())


def _projected(source: dict[str, Any]) -> dict[str, Any]:
    return mutated({p("job.volumes"): [{"name": "token", "projected": {"sources": [source]}}]})


@pytest.mark.parametrize(
    "source",
    [
        {"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}},
        {"serviceAccountToken": {"path": "token"}},  # the API server's own audience
        {"clusterTrustBundle": {"signerName": "example.com/signer", "path": "ca.pem"}},
        {"podCertificate": {"signerName": "example.com/signer", "keyType": "ED25519"}},
    ],
    ids=["token-for-sts", "token-for-the-api-server", "cluster-trust-bundle", "pod-certificate"],
)
def test_a_projected_source_other_than_config_map_secret_or_downward_api_is_refused(
    source: dict[str, Any],
) -> None:
    """No service account token reaches the worker's pod, even as a projected volume."""
    (kind,) = source
    doc = _projected(source)
    where = ("spec", "job", "volumes", 0, "projected", "sources", 0)
    # kubectl's strict field validation, like the strict schema, names the field...
    errors = schema_errors(doc)
    assert [(tuple(error.absolute_path), error.validator) for error in errors] == [
        (where, "additionalProperties")
    ]
    assert repr(kind) in errors[0].message
    # ...the model refuses it by name...
    with pytest.raises(ValidationError) as caught:
        ProcessorSpec.model_validate(doc["spec"])
    refused = {(tuple(str(part) for part in e["loc"]), e["type"]) for e in caught.value.errors()}
    assert (
        ("job", "volumes", "0", "projected", "sources", "0", kind),
        "extra_forbidden",
    ) in refused
    # ...and what the API server keeps of it after pruning, a source of no type, fails the
    # CEL rule of the source (projected-source-of-no-allowed-type above).
    sources = schema_at(spec_schema(CRD), p("job.volumes.[].projected.sources.[]"))
    assert sources is not None and kind not in sources["properties"]
    assert set(sources["properties"]) == {"configMap", "secret", "downwardAPI"}
    assert any(
        "serviceAccountToken" in rule["message"] for rule in sources["x-kubernetes-validations"]
    )


# -- rules across fields: CEL in the CRD, model validators in pydantic -----------------

_KEY = {"name": "snowflake-key", "key": "rsa_key.p8"}
# (id, changes below spec, the object (path below spec) holding the CEL rule, words
#  that one of its rules must all contain)
_EPHEMERAL = {
    "volumeClaimTemplate": {
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }
}
CROSS_FIELD: list[tuple[str, dict[Path_, Any], Path_, list[str]]] = [
    # What EKS Fargate cannot run (its user guide's considerations), on compute fargate only.
    (
        "fargate-image-pull-never",
        {p("job.imagePullPolicy"): "Never"},
        p("job"),
        ["imagePullPolicy", "'Never'", "nodes"],
    ),
    (
        "fargate-csi-volume",
        {p("job.volumes"): [{"name": "x", "csi": {"driver": "efs.csi.aws.com"}}]},
        p("job"),
        ["has(v.csi)", "has(v.ephemeral)", "nodes"],
    ),
    (
        "fargate-ephemeral-volume",
        {p("job.volumes"): [{"name": "x", "ephemeral": _EPHEMERAL}]},
        p("job"),
        ["has(v.ephemeral)", "nodes"],
    ),
    (
        "fargate-deadline-shorter-than-a-start",
        {p("job.activeDeadlineSeconds"): 100},
        (),
        ["activeDeadlineSeconds", "graceSeconds", "nodes"],
    ),
    (
        "both-certificate-sources",
        {p("certificates.existingSecret"): "mtls"},
        p("certificates"),
        ["s3", "existingSecret"],
    ),
    ("no-certificate-source", {p("certificates"): {}}, p("certificates"), ["s3", "existingSecret"]),
    (
        "key-pair-without-key",
        {p("snowflake.auth.mode"): "key_pair", p("snowflake.user"): "SVC"},
        p("snowflake.auth"),
        ["key_pair", "privateKeySecret"],
    ),
    (
        "key-pair-without-user",
        {p("snowflake.auth"): {"mode": "key_pair", "privateKeySecret": _KEY}},
        p("snowflake"),
        ["key_pair", "user"],
    ),
    (
        "password-without-secret",
        {p("snowflake.auth.mode"): "password", p("snowflake.user"): "SVC"},
        p("snowflake.auth"),
        ["password", "passwordSecret"],
    ),
    (
        "password-without-user",
        {p("snowflake.auth"): {"mode": "password", "passwordSecret": _KEY}},
        p("snowflake"),
        ["password", "user"],
    ),
    (
        "emulator-without-host",
        {p("snowflake.auth.mode"): "emulator", p("snowflake.port"): 8000},
        p("snowflake"),
        ["emulator", "host", "port"],
    ),
    (
        "fargate-2-vcpu-1gi",
        {p("job.cpu"): "2", p("job.memory"): "1Gi"},
        p("job"),
        ["self.cpu != '2'", "self.memory"],
    ),
    (
        "fargate-0.5-vcpu-512mi",
        {p("job.cpu"): "0.5", p("job.memory"): "512Mi"},
        p("job"),
        ["self.cpu != '0.5'", "self.memory"],
    ),
    (
        "fargate-4-vcpu-31gi",
        {p("job.cpu"): "4", p("job.memory"): "31Gi"},
        p("job"),
        ["self.cpu != '4'", "self.memory"],
    ),
    (
        # The former default: 1Gi + the 256Mi Fargate adds is billed as 2 GB.
        "fargate-0.5-vcpu-1gi",
        {p("job.cpu"): "0.5", p("job.memory"): "1Gi"},
        p("job"),
        ["self.cpu != '0.5'", "self.memory"],
    ),
    (
        # The largest memory of a vCPU size is billed as the next vCPU size.
        "fargate-1-vcpu-8gi",
        {p("job.cpu"): "1", p("job.memory"): "8Gi"},
        p("job"),
        ["self.cpu != '1'", "+ 256"],
    ),
    (
        # 120Gi + 256Mi fits no Fargate size: the pod would never start.
        "fargate-16-vcpu-120gi",
        {p("job.cpu"): "16", p("job.memory"): "120Gi"},
        p("job"),
        ["self.cpu != '16'", "+ 256"],
    ),
    (
        "fargate-8-vcpu-off-step",
        {p("job.cpu"): "8", p("job.memory"): "18Gi"},
        p("job"),
        ["self.cpu != '8'", "% 4096"],
    ),
    (
        "fargate-16-vcpu-off-step",
        {p("job.cpu"): "16", p("job.memory"): "36Gi"},
        p("job"),
        ["self.cpu != '16'", "% 8192"],
    ),
    (
        "deadline-equals-lease",
        {p("job.activeDeadlineSeconds"): 900, p("queue.leaseSeconds"): 900},
        (),
        ["activeDeadlineSeconds", "leaseSeconds", "<"],
    ),
    (
        "deadline-above-lease",
        {p("job.activeDeadlineSeconds"): 1200, p("queue.leaseSeconds"): 900},
        (),
        ["activeDeadlineSeconds", "leaseSeconds", "<"],
    ),
    (
        "deadline-not-above-grace",
        {p("job.activeDeadlineSeconds"): 60, p("job.graceSeconds"): 60},
        (),
        ["activeDeadlineSeconds", "graceSeconds"],
    ),
    (
        # Above the grace, but with no time left to write back before Kubernetes kills it.
        "deadline-without-write-back-margin",
        {p("job.activeDeadlineSeconds"): 60, p("job.graceSeconds"): 50},
        (),
        ["activeDeadlineSeconds", "graceSeconds + 15"],
    ),
    (
        "default-deadline-not-above-grace",
        {p("queue.leaseSeconds"): 60, p("job.graceSeconds"): 40},
        (),
        ["leaseSeconds * 2 / 3", "graceSeconds"],
    ),
    # compute fargate (the default): Fargate's own vCPU sizes, memory in Mi or Gi.
    ("fargate-cpu-3", {p("job.cpu"): "3"}, p("job"), ["self.cpu in ['0.25'", "'nodes'"]),
    ("fargate-cpu-millicores", {p("job.cpu"): "500m"}, p("job"), ["self.cpu in [", "'nodes'"]),
    (
        "fargate-memory-in-gigabytes",
        {p("job.memory"): "1G"},
        p("job"),
        ["self.memory.matches('^[0-9]+(Mi|Gi)$')", "'nodes'"],
    ),
    (
        "nodes-with-the-fargate-label",
        {
            p("job.compute"): "nodes",
            p("job.podLabels"): {"snowflake-processor.dev/fargate": "true"},
        },
        p("job"),
        ["self.compute != 'nodes'", "snowflake-processor.dev/fargate"],
    ),
    (
        "min-above-max",
        {p("job.minActiveJobs"): 5, p("job.maxActiveJobs"): 4},
        p("job"),
        ["self.minActiveJobs <= self.maxActiveJobs"],
    ),
    (
        "backoff-max-below-initial",
        {p("job.launchBackoff"): {"initialSeconds": 600, "maxSeconds": 60}},
        p("job.launchBackoff"),
        ["self.maxSeconds >= self.initialSeconds"],
    ),
    (
        "mount-of-no-volume",
        {p("job.volumeMounts"): [{"name": "missing", "mountPath": "/mnt/x"}]},
        p("job"),
        ["self.volumeMounts.all(m", "v.name == m.name"],
    ),
    # The security template is not overridable: reserved names and paths.
    *[
        (
            f"reserved-env-{name.lower()}",
            {p("job.env"): [{"name": name, "value": "x"}]},
            p("job.env.[]"),
            ["self.name.upperAscii().startsWith('SFP_')", "'PATH'"],
        )
        for name in ("SFP_CONCURRENCY", "HOME", "PATH", "PYTHONPATH", "LD_PRELOAD", "OPENSSL_CONF")
    ],
    (
        "env-value-and-value-from",
        {
            p("job.env"): [
                {"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}
            ]
        },
        p("job.env.[]"),
        ["!has(self.value) || !has(self.valueFrom)"],
    ),
    (
        "env-two-sources",
        {
            p("job.env"): [
                {
                    "name": "A",
                    "valueFrom": {
                        "fieldRef": {"fieldPath": "metadata.name"},
                        "configMapKeyRef": {"name": "c", "key": "k"},
                    },
                }
            ]
        },
        p("job.env.[].valueFrom"),
        ["has(self.secretKeyRef)", "== 1"],
    ),
    *[
        (
            f"reserved-volume-{name}",
            {p("job.volumes"): [{"name": name, "emptyDir": {}}]},
            p("job.volumes.[]"),
            ["'certificates', 'tmp', 'snowflake-key'"],
        )
        for name in ("certificates", "tmp", "snowflake-key")
    ],
    (
        "volume-without-an-allowed-source",
        {p("job.volumes"): [{"name": "host"}]},  # hostPath would be pruned, leaving none
        p("job.volumes.[]"),
        ["has(self.configMap)", "== 1"],
    ),
    (
        "volume-with-two-sources",
        {p("job.volumes"): [{"name": "x", "emptyDir": {}, "configMap": {"name": "c"}}]},
        p("job.volumes.[]"),
        ["has(self.configMap)", "== 1"],
    ),
    *[
        (
            f"reserved-mount-{path.strip('/').replace('/', '-') or 'root'}",
            {
                p("job.volumes"): [{"name": "x", "emptyDir": {}}],
                p("job.volumeMounts"): [{"name": "x", "mountPath": path}],
            },
            p("job.volumeMounts.[]"),
            ["'/opt'", "self.mountPath.startsWith(r + '/')", "r.startsWith(self.mountPath"],
        )
        # the venv, a library directory, the certificates, /tmp, the IRSA token, above them
        for path in (
            "/opt/venv",
            "/usr/local/lib",
            "/etc/snowflake-processor/certs",
            "/etc/ld.so.preload",
            "/tmp",
            "/var/run/secrets/eks.amazonaws.com",
            "/var",
            "/run",
        )
    ],
    (
        "apparmor-unconfined",
        {
            p("job.podAnnotations"): {
                "container.apparmor.security.beta.kubernetes.io/worker": "unconfined"
            }
        },
        p("job.podAnnotations"),
        ["container.apparmor.security.beta.kubernetes.io/", "seccomp"],
    ),
    (
        "system-priority-class",
        {p("job.priorityClassName"): "system-cluster-critical"},
        p("job.priorityClassName"),
        ["!self.startsWith('system-')"],
    ),
    (
        "toleration-exists-with-value",
        {p("job.tolerations"): [{"key": "k", "operator": "Exists", "value": "v"}]},
        p("job.tolerations.[]"),
        ["self.operator != 'Exists'", "self.value == ''"],
    ),
    (
        "toleration-without-key-equal",
        {p("job.tolerations"): [{"operator": "Equal", "value": "v"}]},
        p("job.tolerations.[]"),
        ["has(self.key)", "self.operator == 'Exists'"],
    ),
    (
        # What the API server keeps of a serviceAccountToken (or clusterTrustBundle) source:
        # pruned, it leaves a source of no allowed type.
        "projected-source-of-no-allowed-type",
        {p("job.volumes"): [{"name": "t", "projected": {"sources": [{}]}}]},
        p("job.volumes.[].projected.sources.[]"),
        ["has(self.configMap)", "has(self.secret)", "has(self.downwardAPI)", "== 1"],
    ),
    (
        "projected-source-of-two-types",
        {
            p("job.volumes"): [
                {
                    "name": "t",
                    "projected": {
                        "sources": [{"configMap": {"name": "c"}, "secret": {"name": "s"}}]
                    },
                }
            ]
        },
        p("job.volumes.[].projected.sources.[]"),
        ["has(self.configMap)", "has(self.secret)", "== 1"],
    ),
    (
        "downward-api-file-without-source",
        {p("job.volumes"): [{"name": "d", "downwardAPI": {"items": [{"path": "name"}]}}]},
        p("job.volumes.[].downwardAPI.items.[]"),
        ["has(self.fieldRef)", "has(self.resourceFieldRef)", "== 1"],
    ),
    (
        "projected-downward-api-file-with-two-sources",
        {
            p("job.volumes"): [
                {
                    "name": "d",
                    "projected": {
                        "sources": [
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "x",
                                            "fieldRef": {"fieldPath": "metadata.name"},
                                            "resourceFieldRef": {"resource": "limits.cpu"},
                                        }
                                    ]
                                }
                            }
                        ]
                    },
                }
            ]
        },
        p("job.volumes.[].projected.sources.[].downwardAPI.items.[]"),
        ["has(self.fieldRef)", "has(self.resourceFieldRef)", "== 1"],
    ),
]


@pytest.mark.parametrize("case", CROSS_FIELD, ids=[case[0] for case in CROSS_FIELD])
def test_cross_field_rule(case: tuple[str, dict[Path_, Any], Path_, list[str]]) -> None:
    _case_id, changes, holder, words = case
    doc = mutated(changes)
    # OpenAPI alone cannot see it: the schema accepts the resource...
    errors = schema_errors(doc)
    assert errors == [], describe(errors)
    # ...the model refuses it...
    with pytest.raises(ValidationError):
        ProcessorSpec.model_validate(doc["spec"])
    # ...and a CEL rule on the object holding those fields names them all.
    node = schema_at(spec_schema(CRD), holder)
    assert node is not None
    rules = node.get("x-kubernetes-validations", [])
    assert any(all(word in rule["rule"] for word in words) for rule in rules), rules


def test_every_cel_rule_has_a_message_and_names_real_fields() -> None:
    found = 0
    for path, node in walk_nodes(spec_schema(CRD)):
        for rule in node.get("x-kubernetes-validations", []):
            found += 1
            assert rule.get("message"), rule
            for match in re.finditer(r"\bself((?:\.\w+)+)(\s*\()?", rule["rule"]):
                names = match.group(1).split(".")[1:]
                if match.group(2):  # a method call: self.memory.endsWith(...)
                    names = names[:-1]
                assert schema_at(node, tuple(names)) is not None, (path, rule["rule"], names)
    assert found >= 12


def test_rules_of_a_defaulted_object_hold_for_its_default() -> None:
    """The API server checks each default against the rules of its own node, before the
    defaults of the fields inside are applied: `default: {}` with a rule reading
    self.mode made the real server refuse the whole CRD ("no such key: mode"). So every
    field such a rule reads must be guarded by has(), or be in the default."""
    for path, node in walk_nodes(spec_schema(CRD)):
        default = node.get("default")
        if not isinstance(default, dict):
            continue
        for rule in node.get("x-kubernetes-validations", []):
            read = set(re.findall(r"\bself\.(\w+)", rule["rule"]))
            guarded = set(re.findall(r"\bhas\(self\.(\w+)\)", rule["rule"]))
            unguarded = read - guarded - set(default)
            assert not unguarded, (path, rule["rule"], unguarded)


def test_every_model_with_a_cross_field_rule_has_cel_rules() -> None:
    for path, model in model_tree(ProcessorSpec):
        if model.__pydantic_decorators__.model_validators:
            node = schema_at(spec_schema(CRD), path)
            assert node is not None
            assert node.get("x-kubernetes-validations"), f"{model.__name__} at {path}"


# The Fargate rules follow one of two shapes, over the memory in MiB; parsing them back
# checks the numbers in the CEL against the model's table.
_MIB = (
    "int(self.memory.substring(0, size(self.memory) - 2)) * (self.memory.endsWith('Gi') ? 1024 : 1)"
)
# Guarded for the default {} (has), for compute nodes, and for memory not in Mi or Gi
# (another rule refuses that on Fargate).
_DEFAULT_GUARD = (
    "!has(self.cpu) || !has(self.memory) || (has(self.compute) && self.compute == 'nodes') "
    "|| !self.memory.matches('^[0-9]+(Mi|Gi)$') || "
)
_LISTED = re.compile(r"self\.cpu != '([0-9.]+)' \|\| MIB in \[([0-9, ]+)\]")
_RANGED = re.compile(
    r"self\.cpu != '([0-9.]+)' \|\| "
    r"\(\(MIB \+ 256\) % (\d+) == 0 && MIB >= (\d+) && MIB <= (\d+)\)"
)


def cel_fargate_rules() -> dict[str, Callable[[int], bool]]:
    rules: dict[str, Callable[[int], bool]] = {}
    for rule in spec_schema(CRD)["properties"]["job"]["x-kubernetes-validations"]:
        if "self.cpu != '" not in rule["rule"]:
            continue  # not a size rule
        assert rule["rule"].startswith(_DEFAULT_GUARD), rule["rule"]
        text = rule["rule"].replace(_MIB, "MIB").removeprefix(_DEFAULT_GUARD)
        if match := _LISTED.fullmatch(text):
            allowed = {int(item) for item in match.group(2).split(",")}
            rules[match.group(1)] = lambda mib, allowed=allowed: mib in allowed  # type: ignore[misc]
        elif match := _RANGED.fullmatch(text):
            step, low, high = (int(group) for group in match.groups()[1:])
            rules[match.group(1)] = lambda mib, step=step, low=low, high=high: (  # type: ignore[misc]
                (mib + 256) % step == 0 and low <= mib <= high
            )
        else:
            pytest.fail(f"a job rule of an unknown shape: {rule['rule']}")
    return rules


def _memory_values() -> list[str]:
    return [f"{mib}Mi" for mib in range(256, 131_073, 256)] + [f"{gib}Gi" for gib in range(130)]


def _mib(memory: str) -> int:
    return int(memory[:-2]) * (1024 if memory.endswith("Gi") else 1)


@pytest.mark.parametrize("cpu", FARGATE_CPUS)
def test_fargate_cel_rule_matches_the_model(cpu: str) -> None:
    rule = cel_fargate_rules()[cpu]
    differ = [
        memory
        for memory in _memory_values()
        if rule(_mib(memory)) != fargate_size_allowed(cpu, memory)
    ]
    assert differ == []


def test_fargate_cel_rules_cover_every_cpu_and_the_documented_sizes() -> None:
    rules = cel_fargate_rules()
    assert sorted(rules) == sorted(FARGATE_CPUS)
    # Fargate sizes less the 256Mi Fargate adds to every pod.
    documented = {"0.25": ["256Mi", "768Mi", "1792Mi"], "8": ["16128Mi", "20224Mi", "61184Mi"]}
    for cpu, sizes in documented.items():
        assert all(rules[cpu](_mib(size)) for size in sizes), cpu
    assert not rules["0.25"](_mib("1Gi"))  # billed as 0.25 vCPU / 2 GB
    assert not rules["0.5"](_mib("1Gi"))  # billed as 0.5 vCPU / 2 GB
    assert not rules["8"](_mib("16Gi"))  # billed as 8 vCPU / 20 GB
    assert not rules["16"](_mib("120Gi"))  # fits no size
    memory = spec_schema(CRD)["properties"]["job"]["properties"]["memory"]
    assert FARGATE_SIZES_HELP in memory["description"]


# -- every check of the model has its twin in the schema ---------------------------------


def _nested(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (under ``X | None`` and ``list[X]``), and whether in a list."""
    in_list = False
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        in_list = in_list or typing.get_origin(annotation) is list
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, in_list
    return None, in_list


def model_tree(model: type[BaseModel], path: Path_ = ()) -> Iterator[tuple[Path_, type[BaseModel]]]:
    """Every model below ``model``, with its path (aliases; "[]" for a list's items)."""
    yield path, model
    for name, field in model.model_fields.items():
        nested, in_list = _nested(field.annotation)
        if nested is not None:
            here = (*path, field.alias or name, *(("[]",) if in_list else ()))
            yield from model_tree(nested, here)


def test_model_tree_reaches_every_model() -> None:
    paths = {".".join(path): model.__name__ for path, model in model_tree(ProcessorSpec)}
    assert paths["snowflake.auth.privateKeySecret"] == "SecretKeyRef"
    assert paths["job.env.[].valueFrom.secretKeyRef"] == "KeySelector"
    assert paths["job.volumes.[].secret.items.[]"] == "KeyToPath"
    assert paths["job.volumes.[].projected.sources.[]"] == "VolumeProjection"
    assert paths["job.volumes.[].ephemeral.volumeClaimTemplate.spec.selector"] == "LabelSelector"
    anti = "job.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.[]"
    assert paths[f"{anti}.podAffinityTerm.labelSelector.matchExpressions.[]"] == (
        "LabelSelectorRequirement"
    )
    assert all(schema_at(spec_schema(CRD), p(path)) is not None for path in paths if path)


# What a field validator stands for in the schema: this pattern, or else a CEL rule on the
# field or on the object holding it (reading the field).
FIELD_VALIDATOR_PATTERNS = {("Endpoint", "url"): "^https://"}


def test_every_field_validator_has_a_schema_twin() -> None:
    """A field validator is opaque to JSON Schema: the model must state its twin."""
    checked = set()
    for path, model in model_tree(ProcessorSpec):
        node = schema_at(spec_schema(CRD), path)
        assert node is not None
        for decorator in model.__pydantic_decorators__.field_validators.values():
            for name in decorator.info.fields:
                key = (model.__name__, model.model_fields[name].alias or name)
                field = node["properties"][key[1]]
                if key in FIELD_VALIDATOR_PATTERNS:
                    assert field.get("pattern") == FIELD_VALIDATOR_PATTERNS[key], key
                else:
                    holder = node.get("x-kubernetes-validations", [])
                    assert field.get("x-kubernetes-validations") or any(
                        f"self.{key[1]}" in rule["rule"] for rule in holder
                    ), key
                checked.add(key)
    assert checked == {
        ("Endpoint", "url"),
        ("EnvVar", "name"),
        ("Volume", "name"),
        ("VolumeMount", "mountPath"),
        ("JobSettings", "podAnnotations"),
        ("JobSettings", "priorityClassName"),
    }


def test_identifiers_have_the_pattern_of_the_identifier_check() -> None:
    snowflake = spec_schema(CRD)["properties"]["snowflake"]["properties"]
    for name in ("role", "warehouse", "database", "schema", "table"):
        assert snowflake[name]["pattern"] == identifiers.UNQUOTED_IDENTIFIER.pattern, name


# -- defaults -----------------------------------------------------------------------------

MISSING = object()


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill in defaults the way the API server does: an absent field with a default gets
    it, and defaults inside a defaulted object apply too (hence `default: {}`)."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in properties:
                    value[key] = apply_defaults(extra, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_none(item) for item in value]
    return value


def same(left: Any, right: Any) -> bool:
    """Equality that tells False from 0 and "1" from 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, str) or isinstance(right, str):
        return type(left) is type(right) and left == right
    return bool(left == right)


def minimal_spec() -> dict[str, Any]:
    return load_example("processor-minimal.yaml")["spec"]  # type: ignore[no-any-return]


def test_defaulted_minimal_resource_is_the_model_of_the_minimal_resource() -> None:
    """What the API server stores for the minimal example is what the model reads: the
    generated defaults (objects defaulted to {}, filled in from inside) are the model's."""
    minimal = minimal_spec()
    defaulted = apply_defaults(spec_schema(CRD), copy.deepcopy(minimal))
    errors = schema_errors({**load_example("processor-minimal.yaml"), "spec": defaulted})
    assert errors == [], describe(errors)
    assert ProcessorSpec.model_validate(defaulted) == ProcessorSpec.model_validate(minimal)
    dumped = without_none(
        ProcessorSpec.model_validate(minimal).model_dump(by_alias=True, mode="json")
    )
    # Identifiers aside (the model upper-cases them), the stored resource spells out
    # exactly the model's values.
    for name in ("database", "schema", "table"):
        dumped["snowflake"][name] = defaulted["snowflake"][name]
    assert same(defaulted, dumped)


# -- descriptions -------------------------------------------------------------------------


def _all_properties() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for section in ("spec", "status"):
        schema = root_schema(CRD)["properties"][section]
        found.append((section, schema))
        for path, sub in walk_properties(schema):
            found.append((".".join((section, *path)), sub))
    return found


@pytest.mark.parametrize(("path", "prop"), _all_properties(), ids=[p for p, _ in _all_properties()])
def test_every_field_has_a_description(path: str, prop: dict[str, Any]) -> None:
    description = prop.get("description", "")
    assert isinstance(description, str)
    assert len(description.strip()) >= 10, path


def test_descriptions_state_scalar_defaults() -> None:
    missing = []
    for path, sub in walk_properties(spec_schema(CRD)):
        default = sub.get("default", MISSING)
        if default is MISSING or isinstance(default, dict):
            continue
        if isinstance(default, bool):
            spellings = [str(default).lower()]
        elif isinstance(default, float):
            spellings = [str(default), f"{default:g}"]  # 15.0: "Default 15" will do
        else:
            spellings = ['""' if default == "" else str(default)]
        if not any(f"Default {spelled}" in sub["description"] for spelled in spellings):
            spelled = spellings[0]
            missing.append(f"{'.'.join(path)}: says no 'Default {spelled}'")
    assert missing == []


def test_map_values_are_described() -> None:
    job = spec_schema(CRD)["properties"]["job"]["properties"]
    for name in ("podLabels", "podAnnotations", "nodeSelector"):
        assert job[name]["additionalProperties"]["description"], name


def _texts(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every description and CEL message in the CRD (what kubectl explain and a refused
    kubectl apply show), with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "message") and isinstance(value, str):
                yield f"{path}.{key}", value
            else:
                yield from _texts(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _texts(item, f"{path}[{index}]")


def test_descriptions_speak_to_users_not_to_the_project() -> None:
    """No project history in what kubectl shows: issue numbers, branches, the old names."""
    texts = list(_texts(CRD))
    assert len(texts) > 150
    internal = re.compile(r"\bseed\b|#\d+|\bissues?\b|\bbranch(es)?\b", re.IGNORECASE)
    assert [(where, text) for where, text in texts if internal.search(text)] == []


# -- status -------------------------------------------------------------------------------


@pytest.mark.parametrize("reachable", [True, False])
@pytest.mark.parametrize("oldest", [None, 42])
def test_status_the_operator_writes_fits_the_schema(reachable: bool, oldest: int | None) -> None:
    """Kubernetes silently prunes status fields the schema does not declare."""
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    counts = QueueCounts(
        eligible=5000,
        pending=5200,
        processing=10,
        completed=7,
        failed=1,
        oldest_pending_age_seconds=oldest,
    )
    seen = Observation(now=now, unfinished_jobs=1, counts=counts if reachable else None)
    plan = plan_poll("orders", ProcessorSpec.model_validate(minimal_spec()), seen)
    status = {
        **plan.status,
        "conditions": [condition.as_dict(now) for condition in plan.conditions],
        "observedGeneration": 3,
        "totals": {"completed": 100, "failed": 2},
        "certificates": {
            "fingerprint": "ab:cd",
            "notAfter": "2026-01-01T00:00:00Z",
            "secretName": "orders-certificates",
        },
    }
    doc = {**load_example("processor-minimal.yaml"), "status": status}
    errors = schema_errors(doc)
    assert errors == [], describe(errors)
    assert ("oldestPendingAgeSeconds" in status) is reachable


def test_status_schema_rejects_a_field_it_does_not_declare() -> None:
    doc = {**load_example("processor-minimal.yaml"), "status": {"backlg": 1}}
    assert any("'backlg'" in error.message for error in schema_errors(doc))
    doc["status"] = {"conditions": [{"type": "Ready", "status": "Maybe"}]}
    assert [error.validator for error in schema_errors(doc)] == ["enum"]


# -- the generator: scripts/gen_crd.py -------------------------------------------------------


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_crd", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def test_committed_crd_and_the_chart_copy_are_what_the_model_generates() -> None:
    generated = gen.render()
    assert CRD_PATH.read_text(encoding="utf-8") == generated, (
        "crds/snowflakeprocessors.yaml is out of date with the model: run "
        "`python scripts/gen_crd.py`"
    )
    assert CHART_CRD_PATH.read_bytes() == CRD_PATH.read_bytes()
    assert gen.render() == generated  # deterministic


def test_header_says_generated_from_the_model_and_how_to_regenerate() -> None:
    head = "\n".join(CRD_PATH.read_text(encoding="utf-8").splitlines()[:5])
    assert "Generated by scripts/gen_crd.py from the model" in head
    assert "do not edit" in head
    assert "`python scripts/gen_crd.py`" in head


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "crd.yaml"
    assert gen.main(["--check", "--output", str(output)]) == 1  # missing
    assert gen.main(["--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == gen.render()
    assert gen.main(["--check", "--output", str(output)]) == 0
    output.write_text(output.read_text(encoding="utf-8") + "hand: edit\n", encoding="utf-8")
    capsys.readouterr()
    assert gen.main(["--check", "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert "-hand: edit" in err  # the diff shows what generation would remove
    assert "out of date with the model" in err
    assert "python scripts/gen_crd.py" in err
    assert output.read_text(encoding="utf-8").endswith("hand: edit\n")  # --check writes nothing


def test_make_lint_checks_the_crd_against_the_model() -> None:
    assert_generated_file_current("gen_crd.py")  # both files, as a person runs it
    plan = subprocess.run(
        ["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert plan.returncode == 0, plan.stderr
    assert ".venv/bin/python scripts/gen_crd.py --check" in plan.stdout.splitlines()


class _Inner(SpecModel):
    """The inner model's own words."""

    size: int = Field(default=3, ge=1, description="A size.")
    label: str | None = Field(default=None, min_length=1, description="A label.")


class _Probe(SpecModel):
    """A probe."""

    model_config = cel_rules(("self.count > 1", "count must exceed 1"))

    count: int = Field(gt=0, lt=10, description="How many.")
    inner: _Inner = Field(
        default=_Inner(),
        description="The inner one.",
        json_schema_extra=described_fields(size="The size here."),
    )
    changed: _Inner = Field(default=_Inner(size=5), description="Not the inner defaults.")
    when: datetime | None = Field(
        default=None, description="When.", json_schema_extra={"nullable": True}
    )
    unset: datetime | None = Field(default=None, description="Left out when unset.")
    kept: dict[str, Any] | None = Field(default=None, description="Kept as written.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels.",
        json_schema_extra={"default": {}, **string_map("A label value.")},
    )
    items: list[_Inner] | None = Field(
        default=None, max_length=4, description="Items.", json_schema_extra=list_map("label")
    )


def test_generator_translates_the_model_into_a_structural_schema() -> None:
    schema = gen.openapi_schema(_Probe)
    assert schema["type"] == "object"
    assert schema["description"] == "A probe."
    assert schema["required"] == ["count"]
    assert schema["x-kubernetes-validations"] == [
        {"rule": "self.count > 1", "message": "count must exceed 1"}
    ]
    fields = schema["properties"]
    # draft 2020 bounds -> OpenAPI 3.0 bounds
    assert fields["count"] == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 10,
        "exclusiveMaximum": True,
        "description": "How many.",
    }
    # $ref inlined; the field's words win over the model's; defaults from inside: {}
    inner = fields["inner"]
    assert (inner["type"], inner["default"], inner["description"]) == (
        "object",
        {},
        "The inner one.",
    )
    assert inner["properties"]["size"]["description"] == "The size here."
    assert inner["properties"]["label"] == {
        "type": "string",
        "minLength": 1,
        "description": "A label.",
    }
    assert fields["changed"]["default"] == {"size": 5}
    assert fields["changed"]["properties"]["size"]["description"] == "A size."
    # X | None: X, left out when unset; null only where the model says so
    assert fields["when"] == {
        "type": "string",
        "format": "date-time",
        "nullable": True,
        "description": "When.",
    }
    assert fields["unset"] == {
        "type": "string",
        "format": "date-time",
        "description": "Left out when unset.",
    }
    assert fields["kept"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": "Kept as written.",
    }
    assert fields["labels"] == {
        "type": "object",
        "default": {},
        "description": "Labels.",
        "additionalProperties": {"type": "string", "description": "A label value."},
    }
    items = fields["items"]
    assert (items["type"], items["maxItems"], items["x-kubernetes-list-map-keys"]) == (
        "array",
        4,
        ["label"],
    )
    assert items["items"]["description"] == "The inner model's own words."
    assert "title" not in str(schema)
    assert "additionalProperties': False" not in str(schema)


class _Union(SpecModel):
    value: int | str


class _Untyped(SpecModel):
    value: Any = None


@pytest.mark.parametrize(("model", "words"), [(_Union, "union"), (_Untyped, "no type")])
def test_generator_refuses_what_a_structural_schema_cannot_say(
    model: type[BaseModel], words: str
) -> None:
    with pytest.raises(gen.GenerationError, match=words):
        gen.openapi_schema(model)


def test_generated_yaml_folds_long_text_and_reads_back_exactly() -> None:
    text = CRD_PATH.read_text(encoding="utf-8")
    assert "description: >-\n" in text
    assert yaml.safe_load(text) == gen.custom_resource_definition()
    long_lines = [line for line in text.splitlines() if len(line) > gen.YAML_WIDTH + 20]
    assert long_lines == []
