"""The one JSON line `make e2e` ends with (devtools/snowflake_devtools/e2e_report.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snowflake_devtools.e2e_report import HEADLINE, REPORT_ENV, run, summary
from tests.e2e import figures


def test_summary_lists_every_headline_figure_first_even_when_not_measured() -> None:
    line = summary({"kubelet": True, "lost": 0, "drain_seconds": 41.5}, 123.456, 0)
    assert list(line)[: len(HEADLINE)] == list(HEADLINE)
    assert line["kubelet"] is True and line["lost"] == 0
    assert line["helm"] is None  # its test did not get that far: null, never a guess
    assert line["cronjob_mode"] is None and line["failover"] is None  # not measured either
    assert line["seconds"] == 123.5
    assert line["drain_seconds"] == 41.5
    assert line["passed"] is True
    assert line["not_run"] == {}


def test_summary_carries_pytests_verdict_and_the_parts_that_did_not_run() -> None:
    line = summary({"not_run": {"kubelet": "no cgroups"}}, 1.0, 1)
    assert line["passed"] is False
    assert line["not_run"] == {"kubelet": "no cgroups"}


def test_a_part_recorded_as_not_run_appears_in_the_json_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the e2e session writes (tests/e2e/figures.py) is what the JSON line says: a
    skipped test, with pytest's reason, and a figure recorded beside it."""
    monkeypatch.setattr(figures, "FIGURES", {})
    report = tmp_path / "figures.json"
    monkeypatch.setenv(REPORT_ENV, str(report))
    figures.record(gc_ok=True)
    skipped = "tests/e2e/test_nodes_on_cluster.py::test_jobs_on_nodes"
    figures.record_skipped(skipped, ("tests/e2e/conftest.py", 90, "Skipped: no cgroup v2"))
    figures.write_report({"passed": 1, "skipped": 1})
    line = summary(json.loads(report.read_text()), 1.0, 0)
    assert line["not_run"] == {skipped: "no cgroup v2"}
    assert line["gc_ok"] is True
    assert json.loads(json.dumps(line))["not_run"] == {skipped: "no cgroup v2"}


def test_tests_left_out_of_a_make_e2e_run_are_named_in_not_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make e2e -k ...` runs pytest on tests/e2e: every e2e test the selection leaves out
    is in the JSON line's not_run, with the reason (a selection matching nothing runs no
    test, so no cluster is started)."""
    code = run(["-k", "no_e2e_test_is_named_like_this", "-q"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 5  # pytest: no test ran
    assert line["passed"] is False
    not_run = line["not_run"]
    assert "tests/e2e/test_lifecycle_on_cluster.py::test_suspend_cordon_and_delete" in not_run
    assert set(not_run.values()) == {figures.DESELECTED}
    assert all(part.startswith("tests/e2e/test_") for part in not_run)
