"""The Fargate profiles of terraform/eks as the e2e tests check worker pods against them."""

from __future__ import annotations

from tests.support.terraform_config import TF_DIR, fargate_selectors, load_config

WORKER_LABELS = {"snowflake-processor.dev/fargate": "true", "job-name": "j"}


def test_a_worker_pod_with_the_profile_label_in_the_jobs_namespace_matches() -> None:
    selectors = fargate_selectors(load_config(TF_DIR))
    assert any(s.matches("snowflake-processor", WORKER_LABELS) for s in selectors)


def test_a_pod_without_the_label_or_in_another_namespace_matches_no_profile() -> None:
    selectors = fargate_selectors(load_config(TF_DIR))
    assert not any(s.matches("snowflake-processor", {"job-name": "j"}) for s in selectors)
    assert not any(s.matches("default", WORKER_LABELS) for s in selectors)
