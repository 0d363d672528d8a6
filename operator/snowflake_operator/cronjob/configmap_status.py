"""A processor without the CRD (CronJob mode, cronjob/reconcile_once.py) keeps its status in a
ConfigMap that any namespaced user can read: ``<name>-status``, one key per field of a
SnowflakeProcessor's status. Strings are stored as they are, everything else (numbers,
booleans, conditions, totals) as JSON. Pure.

    kubectl get configmap orders-status -o yaml      # backlog: "250", conditions: '[...]'
    kubectl describe configmap orders-status         # ... and the events about it

What the next run needs and a user does not (the idle gate's table signature) is kept in an
annotation of the same ConfigMap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from snowflake_operator.constants import GROUP
from snowflake_operator.poll.idle_gate import IdleGate
from snowflake_worker.queue_records import QueueCounts, TableSignature

SPEC_SUFFIX, STATUS_SUFFIX = "-spec", "-status"
SPEC_KEY = "spec.yaml"  # the key of the spec ConfigMap the CronJob mounts as a file
IDLE_GATE_ANNOTATION = f"{GROUP}/idle-gate"


def spec_config_map(processor: str) -> str:
    return processor + SPEC_SUFFIX


def status_config_map(processor: str) -> str:
    return processor + STATUS_SUFFIX


def status_data(status: Mapping[str, Any]) -> dict[str, str]:
    """ConfigMap data for a status (None fields left out)."""
    return {
        key: value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in status.items()
        if value is not None
    }


def status_from_data(data: Mapping[str, str] | None) -> dict[str, Any]:
    """The status as it was written: JSON values parsed, text left as it is."""
    status: dict[str, Any] = {}
    for key, text in (data or {}).items():
        try:
            status[key] = json.loads(text)
        except ValueError:
            status[key] = text
    return status


def idle_gate_text(gate: IdleGate, now: datetime, clock: float) -> str:
    """The gate as JSON, its last full poll as wall-clock time (the next run has another
    monotonic clock); empty while it is awake."""
    if gate.signature is None or gate.counts is None:
        return ""
    last_full_poll = now.timestamp() - (clock - gate.last_full_poll)
    return json.dumps(
        {
            "signature": asdict(gate.signature),
            "counts": asdict(gate.counts),
            "lastFullPoll": round(last_full_poll, 3),
        },
        sort_keys=True,
    )


def restore_idle_gate(text: str | None, now: datetime, clock: float) -> IdleGate:
    """The gate the last run left, on this run's clock; awake when there is none (or it
    cannot be read: the next full poll writes it again)."""
    if not text:
        return IdleGate()
    try:
        saved = json.loads(text)
        return IdleGate(
            signature=TableSignature(**saved["signature"]),
            counts=QueueCounts(**saved["counts"]),
            last_full_poll=clock - (now.timestamp() - float(saved["lastFullPoll"])),
        )
    except (ValueError, KeyError, TypeError):
        return IdleGate()
