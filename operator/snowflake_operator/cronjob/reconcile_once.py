"""`snowflake-processor reconcile-once NAME --spec FILE`: exactly one poll of one processor,
for clusters that allow no CRD and no controller (the chart's ``mode: cronjob`` runs it from
a CronJob every minute).

It is the operator's poll (poll.run_poll with the cluster's edges, kube/edges.py): lease
recovery, the idle gate, certificates from S3 into a Secret, launches, finished Jobs folded
into the totals and cleaned up. What differs is where things come from:

    spec       a YAML file (the CRD's spec fields, or a whole SnowflakeProcessor), admitted
               by admission.admit with the operator's own messages
    Jobs       a list call by the processor label (a one-shot run has no watch to index)
    owner      the ConfigMap ``NAME-spec``: deleting it deletes the Jobs and the Secret
    status     the ConfigMap ``NAME-status`` (cronjob/configmap_status.py), events on it
    names      Jobs named per minute slot, whatever spec.pollIntervalSeconds says, so two
               runs that overlap in a minute create the same names: the second create gets
               409 AlreadyExists, counted in ``already_existed``, never a second Job

Exit status: 0 the poll ran; 1 it failed (Snowflake, certificates, the API server, or the
status changed under it by another run), one line on stderr says why; 2 bad configuration
or a refused spec (the status says so too). One JSON line on stdout tells what it did.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from snowflake_operator.constants import APP_NAME, COMPONENT_LABEL, NAME_LABEL, PROCESSOR_LABEL
from snowflake_operator.kube.api import (
    CONFLICT,
    list_labelled,
    post_event,
    read_config_map,
    write_config_map,
)
from snowflake_operator.kube.edges import kube_poll_edges
from snowflake_operator.kube.processor_ref import ProcessorRef
from snowflake_operator.kube.processor_state import ProcessorState
from snowflake_operator.poll.job_history import best_summary, job_record, termination_message
from snowflake_operator.poll.planning import Condition, merge_conditions, poll_slot
from snowflake_operator.poll.run import run_poll
from snowflake_operator.poll.status_write import HEARTBEAT_FIELD, write_due
from snowflake_operator.spec.admission import Refusal, admit
from snowflake_operator.spec.fields import UNKNOWN_FIELDS, unknown_fields_message
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_operator.spec.operator_settings import OperatorSettings
from snowflake_operator.spec.table_claims import TableClaim
from snowflake_worker.errors import ConfigError, FatalError, one_line
from snowflake_worker.logs import configure_json_logging
from snowflake_worker.validation_errors import settings_error_message

from .configmap_status import (
    IDLE_GATE_ANNOTATION,
    StoredStatus,
    idle_gate_text,
    invalid_status_message,
    restore_idle_gate,
    spec_config_map,
    status_config_map,
    status_data,
    trusted_status,
)

log = logging.getLogger("snowflake_operator")
# One poll slot per minute: the finest a CronJob schedule runs, so runs that overlap share
# a slot (and Job names), and successive runs never do.
SLOT_SECONDS = 60
EXIT_FAILED, EXIT_CONFIG = 1, 2
STATUS_INVALID = "StatusInvalid"  # the event when the status ConfigMap was edited badly
RESOURCE_KINDS = ("SnowflakeProcessor",)


class StatusConflict(FatalError):
    """Another run wrote the status ConfigMap after this one read it."""


@dataclass(frozen=True)
class Run:
    """What one run works on."""

    api: client.ApiClient
    processor: ProcessorRef
    settings: OperatorSettings
    status_map: dict[str, Any] | None  # the status ConfigMap as read, None when missing
    now: datetime
    clock: float

    @property
    def stored(self) -> StoredStatus:
        """The last run's status, validated: a ConfigMap anyone in the namespace may edit."""
        return trusted_status((self.status_map or {}).get("data"), self.now)

    @property
    def previous_status(self) -> dict[str, Any]:
        return self.stored.status


def reconcile_once(args: argparse.Namespace) -> int:
    configure_json_logging(args.log_level)
    began = time.monotonic()
    try:
        report = reconcile(args)
    except FatalError as exc:
        print(f"reconcile-once: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ApiException, HTTPError) as exc:
        print(f"reconcile-once: the Kubernetes API: {one_line(exc, limit=300)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # one line, as the operator reports a failed poll
        log.exception("reconcile-once failed")
        print(f"reconcile-once: {type(exc).__name__}: {one_line(exc, limit=300)}", file=sys.stderr)
        return EXIT_FAILED
    report["seconds"] = round(time.monotonic() - began, 3)
    print(json.dumps(report))
    if report["failed"]:
        print(f"reconcile-once: {report['reason']}", file=sys.stderr)
        return EXIT_CONFIG if report.get("refused") else EXIT_FAILED
    return 0


def reconcile(args: argparse.Namespace) -> dict[str, Any]:
    """The run, as a report; FatalError for what stops it before its status is written."""
    from snowflake_operator.kube.client_config import kube_client
    from snowflake_operator.spec.documents import read_yaml_file

    try:
        settings = OperatorSettings()
    except ValueError as exc:
        raise ConfigError(settings_error_message(exc, "SFP_OPERATOR_")) from None
    raw_spec = spec_mapping(read_yaml_file(args.spec, "spec file"), args.spec)
    api, default_namespace = kube_client(args.context, args.kubeconfig)
    namespace = args.namespace or default_namespace
    owner = args.owner_configmap or spec_config_map(args.name)
    run = Run(
        api,
        owner_ref(api, args.name, namespace, owner),
        settings,
        read_config_map(api, namespace, status_config_map(args.name)),
        datetime.now(UTC),
        time.monotonic(),
    )
    admitted = admit(
        raw_spec, settings.reference_policy(), TableClaim("", namespace, args.name), []
    )
    if isinstance(admitted, Refusal):
        condition = Condition("Ready", False, admitted.reason, admitted.message)
        written, conflict = recorded(
            run, {}, [condition], [("Warning", admitted.reason, admitted.message)]
        )
        return {
            **base_report(run),
            "refused": admitted.reason,
            "failed": True,
            "reason": conflict or f"{admitted.reason}: {admitted.message}",
            "status_written": written,
        }
    # Fields of a newer CRD than this code knows are left out, with a warning (as the
    # operator does); the event counts up run after run instead of repeating.
    unknown = list(admitted.unknown_fields)
    warnings = [("Warning", UNKNOWN_FIELDS, unknown_fields_message(unknown))] if unknown else []
    return {**polled(run, admitted.spec, warnings), "unknown_fields": unknown}


def spec_mapping(document: Any, path: Path) -> dict[str, Any]:
    """The spec fields: the document itself, or a resource's spec."""
    if isinstance(document, dict) and document.get("kind") in RESOURCE_KINDS:
        document = document.get("spec")
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path} holds no spec: give the fields of a SnowflakeProcessor's spec "
            "(snowflake, endpoint, ...) or a whole SnowflakeProcessor"
        )
    return document


def owner_ref(api: client.ApiClient, name: str, namespace: str, owner: str) -> ProcessorRef:
    found = read_config_map(api, namespace, owner)
    if found is None:
        raise ConfigError(
            f"ConfigMap {namespace}/{owner} does not exist: it holds the processor's spec and "
            "owns its Jobs and certificates Secret (the chart creates it; by hand: kubectl "
            f"create configmap {owner} -n {namespace} --from-file=spec.yaml=FILE)"
        )
    return ProcessorRef(
        name,
        namespace,
        str(found["metadata"]["uid"]),
        owner_kind="ConfigMap",
        owner_api_version="v1",
        owner_name=owner,
    )


def polled(run: Run, spec: ProcessorSpec, warnings: list[tuple[str, str, str]]) -> dict[str, Any]:
    processor, api = run.processor, run.api
    selector = f"{PROCESSOR_LABEL}={processor.name}"
    records = [
        job_record(job["metadata"]["name"], job["metadata"], job.get("status"))
        for job in list_labelled(api, "jobs", processor.namespace, selector)
    ]
    messages: dict[str, list[str | None]] = {}
    for pod in list_labelled(api, "pods", processor.namespace, selector):
        job = str((pod["metadata"].get("labels") or {}).get("job-name"))
        messages.setdefault(job, []).append(termination_message(pod.get("status")))
    # Only Jobs with a pod known: a Job without one was evicted or deleted with it.
    summaries = {
        r.name: best_summary(messages[r.name])
        for r in records
        if r.finished and not r.counted and r.name in messages
    }
    state = ProcessorState()
    gate_text = ((run.status_map or {}).get("metadata", {}).get("annotations") or {}).get(
        IDLE_GATE_ANNOTATION
    )
    gate = restore_idle_gate(gate_text, run.now, run.clock)
    edges = kube_poll_edges(
        api,
        processor,
        state,
        image=spec.job.image or run.settings.worker_image,
        records=records,
        summaries=summaries,
        s3_endpoint_url=run.settings.s3_endpoint_url,
        certificates_recheck_seconds=0,
        idle_gate=gate,
        launcher=os.environ.get("POD_ID") or socket.gethostname(),
    )
    slotted = spec.model_copy(update={"poll_interval_seconds": SLOT_SECONDS})
    try:  # the last run's status: its totals and launch backoff go on from there
        result = run_poll(processor.name, slotted, edges, run.now, dict(run.previous_status))
    finally:
        state.drop_connection()
    written, conflict = recorded(
        run,
        dict(result.status),
        result.conditions,
        warnings + result.events,
        idle_gate_text(gate, run.now, run.clock),
    )
    # The poll's own failure first: a lost status write only repeats what another run said.
    reasons = [r for r in (failure_reason(result.failed, result.conditions), conflict) if r]
    reason = "; ".join(reasons) or None
    return {
        **base_report(run),
        "slot": poll_slot(run.now, SLOT_SECONDS),
        "backlog": None
        if result.observation.counts is None
        else result.observation.counts.eligible,
        "unfinished_jobs": result.observation.unfinished_jobs,
        "idle": result.observation.idle,
        "planned": result.plan.launch,
        "launched": result.launched,
        "already_existed": [j for j in result.plan.launch if j not in result.launched],
        "counted_jobs": [r.name for r in records if r.finished and not r.counted],
        "failed": reason is not None,
        "reason": reason,
        "status_written": written,
    }


def base_report(run: Run) -> dict[str, Any]:
    return {"processor": run.processor.name, "namespace": run.processor.namespace}


# The conditions whose False fails a poll (Suspended or LaunchBackoff False is healthy).
FAILURE_CONDITIONS = ("SnowflakeReachable", "CertificatesSynced")


def failure_reason(failed: bool, conditions: Sequence[Condition]) -> str | None:
    """One line for a failed poll: the condition that failed it, with its message."""
    if not failed:
        return None
    for condition in conditions:
        if condition.type in FAILURE_CONDITIONS and not condition.status:
            return f"{condition.type} is False ({condition.reason}): {condition.message}"
    return "the poll failed"


def recorded(
    run: Run,
    status: dict[str, Any],
    conditions: list[Condition],
    events_after: list[tuple[str, str, str]],
    gate_text: str = "",
) -> tuple[bool, str | None]:
    """Write the status ConfigMap when something changed or the heartbeat is due, only over
    the version this run read, then post the events on it: (whether the status was
    written, why it could not be: another run wrote it meanwhile). A status ConfigMap
    with invalid fields is always written over, with a warning naming them."""
    stored = run.stored
    previous = stored.status
    if stored.invalid:
        name = status_config_map(run.processor.name)
        events = [("Warning", STATUS_INVALID, invalid_status_message(name, stored.invalid))]
        events += events_after
    else:
        events = events_after
    status = {
        **status,
        "conditions": merge_conditions(list(previous.get("conditions") or []), conditions, run.now),
    }
    annotations = dict(((run.status_map or {}).get("metadata") or {}).get("annotations") or {})
    since = _seconds_since(previous.get(HEARTBEAT_FIELD), run.now)
    gate_changed = annotations.get(IDLE_GATE_ANNOTATION, "") != gate_text
    due = (
        bool(stored.invalid)
        or gate_changed
        or write_due(
            previous if run.status_map else None,
            status,
            since,
            run.settings.status_heartbeat_seconds,
        )
    )
    target = run.status_map
    if due:
        status[HEARTBEAT_FIELD] = run.now.isoformat().replace("+00:00", "Z")
        try:
            target = write_status(run, status, gate_text)
        except StatusConflict as conflict:
            return False, str(conflict)
    if target is not None:
        involved = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": target["metadata"]["name"],
            "namespace": target["metadata"]["namespace"],
            "uid": target["metadata"]["uid"],
        }
        stamp = run.now.isoformat().replace("+00:00", "Z")
        for event in events:
            post_event(run.api, involved, event, stamp)
    return due, None


def write_status(run: Run, status: dict[str, Any], gate_text: str) -> dict[str, Any]:
    processor = run.processor
    name = status_config_map(processor.name)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": processor.namespace,
        "annotations": {IDLE_GATE_ANNOTATION: gate_text},
    }
    version = None if run.status_map is None else run.status_map["metadata"]["resourceVersion"]
    if version is None:  # the chart creates it; by hand, this run does
        metadata["labels"] = {
            NAME_LABEL: APP_NAME,
            COMPONENT_LABEL: "status",
            PROCESSOR_LABEL: processor.name,
        }
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    data: dict[str, str | None] = dict(status_data(status))
    # A field this status leaves out is deleted (null in the patch), not left as it was.
    stale = ((run.status_map or {}).get("data") or {}).keys() - data.keys()
    data.update(dict.fromkeys(stale))
    manifest["data"] = data
    try:
        return write_config_map(run.api, manifest, version)
    except ApiException as exc:
        if exc.status == CONFLICT:
            raise StatusConflict(
                f"ConfigMap {processor.namespace}/{name} changed during this run (another run "
                "at the same time?): this run's status was not written"
            ) from None
        raise


def _seconds_since(timestamp: Any, now: datetime) -> float:
    try:
        then = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (now - then).total_seconds()
