"""kubectl and helm against the local cluster, as a user runs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.deploy_tools import tool


class Commands:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def run(
        self,
        name: str,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 240,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [tool(name), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return self.run("kubectl", *args, stdin=stdin, check=check).stdout

    def apply(self, manifest: dict[str, object], *args: str) -> str:
        return self.kubectl("apply", "-f", "-", *args, stdin=yaml.safe_dump(manifest))

    def helm(self, *args: str) -> str:
        # Longer than any --timeout the tests give helm (5m), so helm reports what it waited for.
        return self.run("helm", *args, timeout=420).stdout
