"""Test sessions on one machine share its one cluster (fixed ports, one bridge).

A session attaches to the running cluster or starts one, and holds a shared lock on it
while its tests run; at its end, the last session out stops the cluster, if a test
session started it (one started by `make cluster-up` keeps running). Without this, a
session that started the cluster stopped it under another session's running tests.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .cluster import Cluster
from .locking import file_lock

STARTED_BY_TESTS = "started-by-tests"


class ClusterLease:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        # Beside the state dir: a start empties the state dir.
        self.start_lock = state_dir.parent / f"{state_dir.name}.start.lock"
        self.users_lock = state_dir.parent / f"{state_dir.name}.users.lock"
        self._users: IO[str] | None = None

    def acquire(self, start: Callable[[], Cluster]) -> tuple[Cluster, bool]:
        """The running cluster, or one `start()` starts; (cluster, whether it was started)."""
        with file_lock(self.start_lock):
            cluster = Cluster.attach(self.state_dir)
            started = cluster is None
            if cluster is None:
                cluster = start()
                (self.state_dir / STARTED_BY_TESTS).touch()
            self._users = self.users_lock.open("a")
            fcntl.flock(self._users, fcntl.LOCK_SH)
        return cluster, started

    def release(self, stop: Callable[[], list[str]]) -> list[str]:
        """Give the lease back; the last user of a cluster a test session started calls
        `stop()` (under the start lock, so nobody attaches meanwhile). Returns its result."""
        assert self._users is not None, "release() without acquire()"
        with file_lock(self.start_lock):
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []  # others still use it: the last one out stops it
            finally:
                self._users.close()  # drops whatever lock this handle holds
                self._users = None
            if not (self.state_dir / STARTED_BY_TESTS).exists():
                return []  # `make cluster-up` started it: it stays up
            return stop()
