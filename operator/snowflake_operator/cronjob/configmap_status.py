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
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from snowflake_operator.constants import GROUP
from snowflake_operator.poll.idle_gate import IdleGate
from snowflake_operator.poll.status_write import HEARTBEAT_FIELD
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
    """The status as it was written: JSON values parsed, text left as it is (also text
    nested too deeply for the parser, which no run writes)."""
    status: dict[str, Any] = {}
    for key, text in (data or {}).items():
        try:
            status[key] = json.loads(text) if len(text) <= STORED_VALUE_LIMIT else text
        except (ValueError, RecursionError):
            status[key] = text
    return status


# Anyone who may edit ConfigMaps in the namespace can write the status ConfigMap, so a run
# trusts nothing in it: the fields the next poll goes on from are validated, and an
# invalid one is dropped (the run then writes a valid status) with a warning.
STORED_VALUE_LIMIT = 256 * 1024  # no field a run writes comes near it
# spec.job.launchBackoff.maxSeconds' bound: no backoff a run sets ends later than this.
LONGEST_LAUNCH_BACKOFF = timedelta(seconds=86_400)
_COUNT = Annotated[int, Field(ge=0, le=10**15)]


class _Totals(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    completed: _COUNT = 0
    failed: _COUNT = 0


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: str = Field(max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(default="", max_length=1024)
    message: str = Field(default="", max_length=32_768)
    lastTransitionTime: str = Field(default="", max_length=64)  # the API's own name


def _timestamp(value: Any) -> datetime:
    """An RFC 3339 time with its zone, as a run writes it (not a number of seconds)."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("not an RFC 3339 time")
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("a time without its zone")
    return when


_TIMESTAMP = Annotated[datetime, BeforeValidator(_timestamp)]
_TRUSTED: dict[str, TypeAdapter[Any]] = {
    "totals": TypeAdapter(_Totals),
    "consecutiveFailedJobs": TypeAdapter(Annotated[int, Field(strict=True, ge=0, le=10**6)]),
    "launchBackoffUntil": TypeAdapter(_TIMESTAMP | None),
    "conditions": TypeAdapter(Annotated[list[_Condition], Field(max_length=20)]),
    HEARTBEAT_FIELD: TypeAdapter(_TIMESTAMP),
}


@dataclass(frozen=True)
class StoredStatus:
    """The last run's status as far as it can be trusted, and what was dropped from it."""

    status: dict[str, Any]
    invalid: tuple[str, ...] = ()


def trusted_status(data: Mapping[str, str] | None, now: datetime) -> StoredStatus:
    """The status ConfigMap's data, with every field a poll goes on from checked: totals,
    the launch backoff, the conditions, the heartbeat. Other fields are only compared with
    the next status (to tell whether it changed), never obeyed."""
    status = status_from_data(data)
    invalid = []
    for key, adapter in _TRUSTED.items():
        if key not in status:
            continue
        try:
            value = adapter.validate_python(status[key])
        except ValidationError:
            invalid.append(key)
            del status[key]
            continue
        if (
            key == "launchBackoffUntil"
            and value is not None
            and value > now + LONGEST_LAUNCH_BACKOFF
        ):
            invalid.append(key)
            del status[key]
    return StoredStatus(status, tuple(invalid))


def invalid_status_message(name: str, fields: tuple[str, ...]) -> str:
    return (
        f"ConfigMap {name} held invalid {', '.join(fields)} (edited by hand?): not used, "
        "and replaced by this run's status"
    )


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
