"""The operator survives any object the API server admits (a property test).

hypothesis generates SnowflakeProcessor resources as an author who may only create them
would write them: a valid spec with values replaced by any JSON at any place, keys
removed, unknown keys added. Each is pruned and validated the way the API server does
with the CRD's own schema (unknown fields dropped unless preserved, then the OpenAPI
checks); what the server would refuse never reaches the operator, as in a cluster. The
rest are created beside a well-formed resource, and the operator must go on polling that
one: its poll counter rises, its Jobs are launched, and the operator neither crashes nor
stops.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snowflake_operator.constants import GROUP, PLURAL, VERSION
from snowflake_worker.identifiers import TableRef
from tests.support.operator_world import OperatorWorld, Processor
from tests.support.polling import wait_for
from tests.support.queues import fill

pytestmark = pytest.mark.integration

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "snowflakeprocessors.yaml"
HOSTILE_NAMESPACE = "hostile"
# The pod template fields an author fills in: where most of what a resource can do to a
# pod is, so the mutations start from all of them.
POD_TEMPLATE: dict[str, Any] = {
    "podAnnotations": {"example.com/owner": "team-a"},
    "env": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}, {"name": "TZ", "value": "UTC"}],
    "nodeSelector": {"kubernetes.io/arch": "amd64"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "queue",
                     "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}}]}},
    "volumes": [{"name": "extra", "configMap": {"name": "extra-config"}}],
    "volumeMounts": [{"name": "extra", "mountPath": "/mnt/extra", "readOnly": True}],
}  # fmt: skip
EXAMPLES = 20  # hypothesis examples; each creates up to PER_EXAMPLE resources
PER_EXAMPLE = 12
NAMES = itertools.count()
CREATED: list[int] = []  # how many generated resources reached the operator, in all


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def as_draft7(node: Any) -> Any:
    """OpenAPI 3.0's spelling of an exclusive bound and of null, in JSON Schema draft 7's."""
    if isinstance(node, list):
        return [as_draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: as_draft7(value) for key, value in node.items()}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True:
            node[exclusive] = node.pop(bound)
        elif node.get(exclusive) is False:
            del node[exclusive]
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    return node


SCHEMA = crd_schema()
VALIDATOR = jsonschema.Draft7Validator(as_draft7(SCHEMA))


def pruned(value: Any, schema: dict[str, Any]) -> Any:
    """What the API server stores: fields the structural schema does not declare are
    dropped, except under x-kubernetes-preserve-unknown-fields."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict) and "properties" in schema:
        return {
            key: pruned(item, schema["properties"][key])
            for key, item in value.items()
            if key in schema["properties"]
        }
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return {key: pruned(item, schema["additionalProperties"]) for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [pruned(item, schema["items"]) for item in value]
    return value


def admitted_by_the_server(resource: dict[str, Any]) -> dict[str, Any] | None:
    stored = pruned(resource, SCHEMA)
    stored["metadata"] = resource["metadata"]
    return stored if VALIDATOR.is_valid(stored) else None


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=40,
)
HOSTILE_TEXT = st.sampled_from(
    ["", " ", "x" * 5000, "../../etc/passwd", "${HOME}", "\x00", "é" * 300, "-1", "1e309"]
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def set_at(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return document


def same_kind(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the kind the schema expects there: what gets past its types and
    still tests the operator (bounds, odd text, duplicates, emptiness)."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(min_value=-(2**31), max_value=2**31)
    if isinstance(value, float):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(value, str):
        return HOSTILE_TEXT | st.text(max_size=80)
    if isinstance(value, list):
        return st.lists(st.just(value[0]) if value else JSON, max_size=40)
    return JSON


@st.composite
def hostile_spec(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.sampled_from(paths(spec)[1:]))  # not the spec itself: never admitted
        action = draw(st.sampled_from(["same-kind"] * 4 + ["any", "delete", "add"]))
        if action == "same-kind" and isinstance(_at(spec, where), dict):
            action = "add"
        if action == "delete" and where:
            parent = spec
            for step in where[:-1]:
                parent = parent[step]
            del parent[where[-1]]
        elif action == "add" and isinstance(_at(spec, where), dict):
            _at(spec, where)[draw(st.text(min_size=1, max_size=12))] = draw(JSON)
        elif action == "any":
            spec = set_at(spec, where, draw(JSON))
        else:
            spec = set_at(spec, where, draw(same_kind(_at(spec, where))))
    return spec


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def hostile_resource(spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": f"generated-{next(NAMES)}", "namespace": HOSTILE_NAMESPACE},
        "spec": spec,
    }


@pytest.fixture
def served(world: OperatorWorld) -> tuple[OperatorWorld, Processor]:
    fill(world.queue, 250)
    return world, world.create("orders")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_operator_keeps_serving_beside_any_admitted_resource(
    served: tuple[OperatorWorld, Processor], data: st.DataObject
) -> None:
    world, orders = served
    # Another table than the served resource's: the earlier of two on one table keeps it,
    # and within a second that is decided by namespace and name.
    generated_table = TableRef(world.table.database, world.table.schema, "GENERATED")
    base = world.manifest("template", table=generated_table, job=POD_TEMPLATE)["spec"]
    specs = data.draw(st.lists(hostile_spec(base), min_size=1, max_size=PER_EXAMPLE))
    stored = [admitted_by_the_server(hostile_resource(spec)) for spec in specs]
    created = [resource for resource in stored if resource is not None]
    for resource in created:
        world.custom.create_namespaced_custom_object(
            GROUP, VERSION, HOSTILE_NAMESPACE, PLURAL, resource
        )
    CREATED.append(len(created))
    try:
        with world.run():
            orders.wait_for_condition("Ready", status="True")
            world.wait_for_polls("orders", more=3)
            wait_for(lambda: len(orders.jobs()) >= 1, what="its Jobs")
    finally:
        for resource in created:
            world.custom.delete_namespaced_custom_object(
                GROUP, VERSION, HOSTILE_NAMESPACE, PLURAL, resource["metadata"]["name"]
            )


def test_enough_generated_resources_reached_the_operator() -> None:
    """The property above is not vacuous: generated resources did get past the schema."""
    if not CREATED:
        pytest.skip("run with the property test")
    print(f"\n{sum(CREATED)} generated resources reached the operator in {len(CREATED)} runs")
    assert sum(CREATED) >= EXAMPLES, CREATED
