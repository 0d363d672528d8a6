"""Is an endpoint URL one the worker can call? Decided before anything is claimed.

A URL that only starts with ``https://`` can still be uncallable: no host, a port out of
range, a broken IPv6 literal. Found at call time, those end a run in a traceback or are
mistaken for certificate problems; found here, they are one line naming the variable.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx


def endpoint_url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as the service endpoint, or None when it is fine."""
    if not url.lower().startswith("https://"):
        return f"must be an https:// URL (mutual TLS), got {url!r}"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return f"{url!r} is not a valid URL: it contains spaces or control characters"
    try:
        parts = urlsplit(url)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"{url!r} is not a valid URL: {exc}"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        return f"{url!r} has no valid port: a port is 1-65535"
    if not parts.hostname:
        return f"{url!r} has no host"
    return None
