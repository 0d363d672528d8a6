"""The one JSON line `make e2e` ends with (devtools/snowflake_devtools/e2e_report.py)."""

from __future__ import annotations

from snowflake_devtools.e2e_report import HEADLINE, summary


def test_summary_lists_every_headline_figure_first_even_when_not_measured() -> None:
    line = summary({"kubelet": True, "lost": 0, "drain_seconds": 41.5}, 123.456, 0)
    assert list(line)[: len(HEADLINE)] == list(HEADLINE)
    assert line["kubelet"] is True and line["lost"] == 0
    assert line["helm"] is None  # its test did not get that far: null, never a guess
    assert line["seconds"] == 123.5
    assert line["drain_seconds"] == 41.5
    assert line["passed"] is True
    assert line["not_run"] == {}


def test_summary_carries_pytests_verdict_and_the_parts_that_did_not_run() -> None:
    line = summary({"not_run": {"kubelet": "no cgroups"}}, 1.0, 1)
    assert line["passed"] is False
    assert line["not_run"] == {"kubelet": "no cgroups"}
