"""A Helm post-renderer for the real-cluster tests: adds --development-emulator-login to
the operator's and the CronJob runs' arguments, since the tests' Snowflake is the emulator
and no chart value can turn that on. Reads the rendered manifests on stdin, writes them
to stdout (`helm install --post-renderer`)."""

from __future__ import annotations

import sys
from typing import Any

import yaml

FLAG = "--development-emulator-login"


def add_flag(document: dict[str, Any]) -> dict[str, Any]:
    kind = document.get("kind")
    spec = document.get("spec") or {}
    if kind == "Deployment":
        pod = spec["template"]["spec"]
    elif kind == "CronJob":
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    else:
        return document
    for container in pod.get("containers", []):
        args = container.get("args") or []
        if args[:1] in (["operator"], ["reconcile-once"]) and FLAG not in args:
            container["args"] = [*args, FLAG]
    return document


def main() -> int:
    documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
    yaml.safe_dump_all([add_flag(d) for d in documents], sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
