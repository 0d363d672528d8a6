"""Which changes rebuild the project's images for the real cluster (project_images.py)."""

from __future__ import annotations

from pathlib import Path

from snowflake_devtools.cluster.project_images import WORKER, source_hash


def make_context(root: Path) -> None:
    (root / "worker" / "snowflake_worker" / "__pycache__").mkdir(parents=True)
    (root / "worker" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    (root / "worker" / "snowflake_worker" / "drain.py").write_text("x = 1\n")


def test_a_source_change_or_a_new_base_changes_the_hash(tmp_path: Path) -> None:
    make_context(tmp_path)
    first = source_hash(tmp_path, WORKER, "base-1")
    assert source_hash(tmp_path, WORKER, "base-1") == first
    assert source_hash(tmp_path, WORKER, "base-2") != first
    (tmp_path / "worker" / "snowflake_worker" / "drain.py").write_text("x = 2\n")
    assert source_hash(tmp_path, WORKER, "base-1") != first


def test_caches_and_build_metadata_do_not_change_the_hash(tmp_path: Path) -> None:
    make_context(tmp_path)
    first = source_hash(tmp_path, WORKER, "base-1")
    (
        tmp_path / "worker" / "snowflake_worker" / "__pycache__" / "drain.cpython-311.pyc"
    ).write_bytes(b"\0")
    (tmp_path / "worker" / "snowflake_processor_worker.egg-info").mkdir()
    (tmp_path / "worker" / "snowflake_processor_worker.egg-info" / "PKG-INFO").write_text("x")
    assert source_hash(tmp_path, WORKER, "base-1") == first
