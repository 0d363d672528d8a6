"""The probe endpoints: GET /healthz (liveness) and /readyz (readiness) on
SFP_OPERATOR_HEALTH_PORT. 200 with the verdict's text, or 503.

kopf's own liveness endpoint serves one path for both probes and answers 200 while no
probe handler fails, so it cannot tell readiness from liveness; this small server can.
It runs in its own thread, so a probe never waits behind polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .health import Health, Verdict

log = logging.getLogger("snowflake_operator")


def serve_health(health: Health, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104 (the kubelet probes the pod's IP)
    """Start answering probes in a daemon thread; stop with ``server.shutdown()``."""
    routes: dict[str, Callable[[], Verdict]] = {
        "/healthz": health.liveness,
        "/readyz": health.readiness,
    }

    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            verdict = routes.get(self.path.split("?", 1)[0])
            if verdict is None:
                self.send_error(404)
                return
            ok, message = verdict()
            body = (message + "\n").encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if not ok:
                log.warning("probe failed", extra={"probe": self.path, "reason": message})

        def log_message(self, format: str, *args: object) -> None:
            """Probes come every few seconds: no access log."""

    server = ThreadingHTTPServer((host, port), Probe)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
