"""The cold rehearsal's decisions: what it removes, how it reads a run's phases."""

from __future__ import annotations

from pathlib import Path

from snowflake_devtools import cold_check
from snowflake_devtools.cluster import hostdeps


def test_removes_every_package_a_step_installs_and_none_the_machine_ships() -> None:
    removed = set(cold_check.packages_to_remove())
    assert {"buildah", "runc", "containerd", "debootstrap", "nftables", "crun"} <= removed
    assert not removed & hostdeps.MACHINE_PACKAGES


def test_keeps_only_the_go_build_when_asked(tmp_path: Path) -> None:
    for name in ("kubernetes", "cluster", "image-archives", "images.lock"):
        (tmp_path / name).mkdir()
    kept = cold_check.cache_entries_to_remove(tmp_path, keep_go_build=True)
    assert [p.name for p in kept] == ["cluster", "image-archives", "images.lock"]
    everything = cold_check.cache_entries_to_remove(tmp_path, keep_go_build=False)
    assert len(everything) == 4
    assert cold_check.cache_entries_to_remove(tmp_path / "absent", keep_go_build=True) == []


def test_phases_are_read_from_the_run_output() -> None:
    timeline = cold_check.Timeline(started=100.0)
    lines = [
        (130.0, "ruff check .\n"),
        (160.0, "=" * 29 + " test session starts " + "=" * 30 + "\n"),
        (700.0, "[phase] kubernetes binaries: 500.0 s\n"),
        (800.0, "[phase] images: 100.0 s\n"),
        (900.0, "[phase] images are ready\n"),  # not a phase line
    ]
    for now, line in lines:
        timeline.feed(line, now)
    assert timeline.report(finished=2000.0) == {
        "bootstrap": 60.0,
        "kubernetes binaries": 500.0,
        "images": 100.0,
        "tests": 1900.0 - 60.0 - 600.0,
        "total": 1900.0,
    }


def test_a_run_that_never_reached_pytest_is_all_bootstrap() -> None:
    timeline = cold_check.Timeline(started=0.0)
    timeline.feed("make: *** [Makefile:40: lint] Error 1\n", 20.0)
    assert timeline.report(finished=25.0) == {"bootstrap": 25.0, "tests": 0.0, "total": 25.0}
