"""operator.zones: one operator Deployment per availability zone, the way replicas end up in
different zones on EKS Fargate (which ignores anti-affinity and topology spread, and honours
a topology.kubernetes.io/zone nodeSelector). Rendered with the real helm."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.test_chart import RELEASE_NAMESPACE, helm, of_kind, one, render, template_args
from tests.support.terraform_config import TF_DIR, fargate_selectors, load_config

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
ZONE_KEY = "topology.kubernetes.io/zone"


def zones_set(*zones: str) -> tuple[str, ...]:
    return ("--set-json", f"operator.zones={list(zones)!r}".replace("'", '"'))


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def lease_name(deployment: dict[str, Any]) -> str:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    return str(args[args.index("--leader-elect-resource-name") + 1])


def test_without_zones_one_deployment_as_before() -> None:
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert ZONE_KEY not in (deployment["spec"]["template"]["spec"].get("nodeSelector") or {})
    assert lease_name(deployment) == deployment["metadata"]["name"]


def test_one_deployment_per_zone_held_there_sharing_one_lease() -> None:
    docs = render(*zones_set(*ZONES))
    deployments = of_kind(docs, "Deployment")
    default_name = one(render(), "Deployment")["metadata"]["name"]
    assert [d["metadata"]["name"] for d in deployments] == [f"{default_name}-{z}" for z in ZONES]
    pdb, service = one(docs, "PodDisruptionBudget"), one(docs, "Service")
    profiles = fargate_selectors(load_config(TF_DIR))
    for zone, deployment in zip(ZONES, deployments, strict=True):
        spec = deployment["spec"]
        pod_labels = spec["template"]["metadata"]["labels"]
        assert spec["replicas"] == 1
        assert spec["template"]["spec"]["nodeSelector"] == {ZONE_KEY: zone}
        assert lease_name(deployment) == default_name  # one Lease: one replica acts
        # Its selector takes its own pods and no other zone's (Deployments whose selectors
        # overlap fight over pods).
        assert selects(spec["selector"]["matchLabels"], pod_labels)
        for other in deployments:
            if other is not deployment:
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not selects(spec["selector"]["matchLabels"], other_labels)
        # The PodDisruptionBudget and the metrics Service count and reach every replica.
        assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
        assert selects(service["spec"]["selector"], pod_labels)
        assert any(p.matches(RELEASE_NAMESPACE, pod_labels) for p in profiles)


def test_the_zone_wins_over_a_node_selector_and_other_keys_stay() -> None:
    docs = render(
        *zones_set(*ZONES[:2]),
        "--set-json",
        f'operator.nodeSelector={{"{ZONE_KEY}": "elsewhere", "team": "ops"}}',
    )
    selectors = [d["spec"]["template"]["spec"]["nodeSelector"] for d in of_kind(docs, "Deployment")]
    assert selectors == [{ZONE_KEY: zone, "team": "ops"} for zone in ZONES[:2]]


@pytest.mark.parametrize(
    "zones", [("us-east-1a",), ("us-east-1a", "us-east-1a"), ("US-EAST-1A", "b"), ("a_b", "c")]
)
def test_one_zone_a_repeat_or_a_bad_name_is_refused(zones: tuple[str, ...]) -> None:
    result = helm(*template_args(*zones_set(*zones)), check=False)
    assert result.returncode != 0
    assert "operator/zones" in result.stderr, result.stderr
