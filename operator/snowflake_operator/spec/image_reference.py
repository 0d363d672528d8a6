"""Container image references (``registry:5000/path/name:tag@sha256:...``). Pure."""

from __future__ import annotations

import re

# A tag, then an optional digest; or a digest alone (the OCI distribution grammar).
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"


def repository(image: str) -> str:
    """The reference without its tag and digest: ``registry:5000/team/worker``."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > last_slash else name


def repository_pattern(image: str) -> str:
    """A regular expression matching ``image``'s repository with any tag and/or digest,
    and nothing else (not ``<repository>-other``, not another registry)."""
    return f"{re.escape(repository(image))}(?::{_TAG})?(?:@{_DIGEST})?"
