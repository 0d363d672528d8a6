"""Building an earlier release's images as its Dockerfiles were written (release_images.py)."""

from __future__ import annotations

from snowflake_devtools.cluster.project_images import WORKER
from snowflake_devtools.cluster.release_images import EarlierRelease, base_names


def test_the_bases_are_the_images_from_lines_name_not_their_stages() -> None:
    dockerfile = """
FROM python:3.11.14-slim-bookworm AS builder
RUN true
FROM --platform=linux/amd64 builder AS second
from python:3.11.14-slim-bookworm
FROM debian:bookworm-slim
"""
    assert base_names(dockerfile) == ["python:3.11.14-slim-bookworm", "debian:bookworm-slim"]


def test_a_dockerfile_without_from_names_nothing() -> None:
    assert base_names("RUN true\n# FROM python:3\n") == []


def test_an_earlier_release_is_tagged_by_version_and_commit() -> None:
    release = EarlierRelease("0.1.0", "e25aa23")
    assert release.tag(WORKER) == "localhost/snowflake-processor-worker:0.1.0-e25aa23"
