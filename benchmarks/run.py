"""`make bench`: run every benchmark, print tables, end with one JSON line.

1. worker throughput: one worker process, concurrency 32, then 128, service latency 50 ms.
2. a fleet of 1, 2 and 4 Jobs behind a Snowflake-like table lock (benchmarks/fleet.py).
3. ours vs the legacy design (benchmarks/legacy_baseline.py) on identical workloads: the
   same entries, the same Snowflake emulator and mTLS service, latency 50 ms.
4. the operator: Kubernetes API requests per poll for a busy resource, and the idle cost
   of 100 resources polled every 60 s (benchmarks/operator_idle.py): CPU and API writes.
Options: ``make bench ARGS="--entries 2000 --worker-entries 6000"``; one part or a few:
``make bench ARGS="--only worker,fleet"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    fleet,
    legacy_baseline,
    operator_idle,
    operator_requests,
    ours,
    worker_throughput,
)
from benchmarks.fargate_model import START_BILLED_SECONDS
from benchmarks.harness import bench_environment

LATENCY_MS = 50.0
TARGETS = {"throughput_ratio": 10.0, "statement_ratio": 40.0, "pod_start_ratio": 50.0}
# Upper bounds for the operator's idle cost (100 idle resources, one poll a minute).
OPERATOR_LIMITS = {
    "operator_cpu_percent_100_resources": 2.5,
    "operator_api_writes_per_idle_poll": 0.2,
}


def comparison_entries(count: int) -> list[tuple[str, Any]]:
    """The identical workload both designs drain."""
    return [(f"cmp-{i:06d}", {"n": i, "text": "x" * 64}) for i in range(count)]


def _table(rows: list[tuple[str, Any, Any]], headers: tuple[str, str, str]) -> None:
    cells = [headers, *[(name, str(a), str(b)) for name, a, b in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(3)]
    for index, (name, a, b) in enumerate(cells):
        print(f"  {name:<{widths[0]}}  {a:>{widths[1]}}  {b:>{widths[2]}}")
        if index == 0:
            print(f"  {'-' * widths[0]}  {'-' * widths[1]}  {'-' * widths[2]}")


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 1) if denominator else None


SECTIONS = ("worker", "worker_c128", "fleet", "comparison", "operator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000, help="comparison workload (2000)")
    parser.add_argument("--worker-entries", type=int, default=6000, help="worker benchmark")
    parser.add_argument(
        "--fleet-entries-per-job", type=int, default=10000, help="fleet benchmark (10000)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated parts to run, of {', '.join(SECTIONS)} (all)",
    )
    parser.add_argument(
        "--operator-window", type=float, default=120, help="seconds of idle operator measured"
    )
    args = parser.parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the servers and workers it started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    if unknown := only - set(SECTIONS):
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")

    result: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()} {platform.python_version()}",
        "load_average": _load_average(),
    }
    if "worker" in only:
        result.update(_worker_section(args.worker_entries))
    if "worker_c128" in only:
        result.update(_worker_c128_section(args.worker_entries))
    if "fleet" in only:
        result.update(_fleet_section(args.fleet_entries_per_job))
    if "comparison" in only:
        result.update(_comparison_section(args.entries))
    if "operator" in only:
        result.update(_operator_section(args.operator_window))
    result["load_average_after"] = _load_average()
    print(json.dumps(result), flush=True)
    return 0


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _print_rows(rows: list[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _worker_section(entries: int) -> dict[str, Any]:
    print("worker throughput: 1 worker, concurrency 32, service latency 50 ms ...", flush=True)
    worker = worker_throughput.run(entries)
    _print_rows(
        [
            ("entries drained", worker["entries"]),
            ("drain time (s)", worker["drain_seconds"]),
            ("entries/s (drain)", worker["entries_per_second"]),
            ("entries/s (incl. process start)", worker["entries_per_second_incl_start"]),
            ("ceiling entries/s (32 / 50 ms)", worker["ceiling_entries_per_second"]),
            ("worker_efficiency", worker["worker_efficiency"]),
            ("worker CPU ms per entry", worker["cpu_ms_per_entry"]),
            ("worker CPU, share of a core", worker["cpu_share_of_a_core"]),
            ("service / emulator CPU, share of a core", _shares(worker)),
            ("aiohttp alone on the same service (efficiency)", worker["service_floor_efficiency"]),
            ("claim sizes (first, largest)", _claims(worker)),
            ("Snowflake statements", worker["snowflake_statements"]),
            ("statements per 1,000 entries", worker["statements_per_1000_entries"]),
        ]
    )
    return {
        "worker_efficiency": worker["worker_efficiency"],
        "worker_cpu_ms_per_entry": worker["cpu_ms_per_entry"],
        "statements_per_1000_entries": worker["statements_per_1000_entries"],
        "worker": worker,
    }


def _worker_c128_section(entries: int) -> dict[str, Any]:
    print("worker throughput: 1 worker, concurrency 128, service latency 50 ms ...", flush=True)
    worker = worker_throughput.run(2 * entries, concurrency=128)
    _print_rows(
        [
            ("entries/s (drain)", worker["entries_per_second"]),
            ("ceiling entries/s (128 / 50 ms)", worker["ceiling_entries_per_second"]),
            ("worker_efficiency_c128", worker["worker_efficiency"]),
            ("worker CPU ms per entry", worker["cpu_ms_per_entry"]),
            ("worker CPU, share of a core", worker["cpu_share_of_a_core"]),
            ("service / emulator CPU, share of a core", _shares(worker)),
            ("aiohttp alone on the same service (efficiency)", worker["service_floor_efficiency"]),
            ("claim sizes (first, largest)", _claims(worker)),
        ]
    )
    return {"worker_efficiency_c128": worker["worker_efficiency"], "worker_c128": worker}


def _fleet_section(entries_per_job: int) -> dict[str, Any]:
    print(
        f"fleet: 1, 2 and 4 Jobs, concurrency {fleet.CONCURRENCY}, service latency "
        f"{fleet.LATENCY_MS:.0f} ms, Snowflake-like table lock held "
        f"{fleet.LOCK_HOLD_SECONDS} s per DML statement ...",
        flush=True,
    )
    result = fleet.run(entries_per_job)
    for jobs, run in result["runs"].items():
        print(
            f"  {jobs} Job(s): {run['entries_per_second']} entries/s, lock utilization "
            f"{run['lock_utilization']}, {run['statements_per_1000_entries']} statements "
            f"per 1,000 entries; CPU (share of a core): workers "
            f"{round(sum(run['worker_cpu_seconds']) / max(run['worker_seconds']), 2)}, "
            f"service {run['service_cpu_share_of_a_core']}, "
            f"emulator {run['emulator_cpu_share_of_a_core']}"
        )
    print(
        f"  fixed-batch ceiling (claim and write-back {fleet.FIXED_BATCH}): "
        f"{result['fixed_batch_ceiling']} entries/s; 4 Jobs reach "
        f"{result['ratio_to_fixed_batch_ceiling']}x it and {result['ratio_to_one_job']}x one Job",
        flush=True,
    )
    return {"fleet": result}


def _comparison_section(count: int) -> dict[str, Any]:
    entries = comparison_entries(count)
    print(
        f"\nours vs the legacy design: {count} entries, service latency "
        f"{LATENCY_MS:.0f} ms, same emulator and service (the legacy design takes minutes) ...",
        flush=True,
    )
    with bench_environment(LATENCY_MS) as bench:
        mine = ours.run(bench, entries)
        print(f"  ours drained in {mine['seconds']} s; now the legacy design ...", flush=True)
        legacy = legacy_baseline.run(bench, entries)
    ratios = {
        "throughput_ratio": _ratio(mine["entries_per_second"], legacy["entries_per_second"]),
        "statement_ratio": _ratio(
            legacy["statements_per_1000_entries"], mine["statements_per_1000_entries"]
        ),
        "pod_start_ratio": _ratio(
            legacy["pod_starts_per_1000_entries"], mine["pod_starts_per_1000_entries"]
        ),
    }
    ours_cost, legacy_cost, before = mine["fargate"], legacy["fargate"], mine["fargate_before"]
    fargate = {
        "model": (
            f"(starts x {START_BILLED_SECONDS:.0f} s + run seconds) x billed size; EKS bills "
            "the request + 256 MB rounded up to a Fargate size"
        ),
        "ours_billed": ours_cost["billed"],
        "legacy_billed": legacy_cost["billed"],
        "ours_vcpu_seconds_per_1000_entries": ours_cost["vcpu_seconds_per_1000_entries"],
        "legacy_vcpu_seconds_per_1000_entries": legacy_cost["vcpu_seconds_per_1000_entries"],
        "vcpu_seconds_ratio": _ratio(
            legacy_cost["vcpu_seconds_per_1000_entries"], ours_cost["vcpu_seconds_per_1000_entries"]
        ),
        "ours_gb_seconds_per_1000_entries": ours_cost["gb_seconds_per_1000_entries"],
        "legacy_gb_seconds_per_1000_entries": legacy_cost["gb_seconds_per_1000_entries"],
        "ours_usd_per_1000_entries": ours_cost["usd_per_1000_entries"],
        "legacy_usd_per_1000_entries": legacy_cost["usd_per_1000_entries"],
        "usd_ratio": _ratio(legacy_cost["usd_per_1000_entries"], ours_cost["usd_per_1000_entries"]),
        "ours_before_billed": before["billed"],
        "ours_before_usd_per_1000_entries": before["usd_per_1000_entries"],
    }
    both = [
        ("entries", mine["entries"], legacy["entries"]),
        ("completed / failed", _pair(mine), _pair(legacy)),
        ("wall time (s)", mine["seconds"], legacy["seconds"]),
        ("entries/s", mine["entries_per_second"], legacy["entries_per_second"]),
        ("Snowflake statements", mine["snowflake_statements"], legacy["snowflake_statements"]),
        (
            "statements per 1,000 entries",
            mine["statements_per_1000_entries"],
            legacy["statements_per_1000_entries"],
        ),
        ("worker (pod) starts", mine["pod_starts"], legacy["pod_starts"]),
        (
            "pod starts per 1,000 entries",
            mine["pod_starts_per_1000_entries"],
            legacy["pod_starts_per_1000_entries"],
        ),
        ("Fargate size billed", ours_cost["billed"], legacy_cost["billed"]),
        (
            "Fargate GB-s per 1,000 entries",
            ours_cost["gb_seconds_per_1000_entries"],
            legacy_cost["gb_seconds_per_1000_entries"],
        ),
        (
            "Fargate USD per 1,000 entries",
            ours_cost["usd_per_1000_entries"],
            legacy_cost["usd_per_1000_entries"],
        ),
        (
            "Fargate vCPU-s per 1,000 entries",
            mine["fargate"]["vcpu_seconds_per_1000_entries"],
            legacy["fargate"]["vcpu_seconds_per_1000_entries"],
        ),
        (
            "  of which starts (60 s each)",
            mine["fargate"]["start_vcpu_seconds_per_1000_entries"],
            legacy["fargate"]["start_vcpu_seconds_per_1000_entries"],
        ),
        ("HTTP calls", mine["http_calls"], legacy["http_calls"]),
        ("duplicate successful calls", mine["duplicates"], legacy["duplicates"]),
    ]
    _table(both, ("figure", "ours", "legacy"))
    for name, value in ratios.items():
        target = TARGETS[name]
        verdict = "met" if value is not None and value >= target else "MISSED"
        print(f"  {name}: {value} (target {target:.0f}x: {verdict})")
    print(f"  Fargate vCPU-seconds ratio: {fargate['vcpu_seconds_ratio']}", flush=True)
    print(
        f"  Fargate cost ratio: {fargate['usd_ratio']} (ours billed as {fargate['ours_billed']}; "
        f"at the former 0.5 vCPU / 1Gi request, billed as {fargate['ours_before_billed']}: "
        f"{fargate['ours_before_usd_per_1000_entries']} USD per 1,000 entries)",
        flush=True,
    )
    if not legacy["drained"] or not mine["drained"]:
        print(
            "  note: a side did not drain within its time limit; its per-1,000 figures divide "
            "by all entries, which understates them"
        )
    if legacy["launches_skipped"]:
        print(
            f"  note: {legacy['launches_skipped']} legacy launches skipped by the "
            f"{legacy_baseline.MAX_ALIVE_TASKS}-process memory guard (not counted as starts)"
        )

    return {
        **ratios,
        "targets": TARGETS,
        "targets_met": all(v is not None and v >= TARGETS[k] for k, v in ratios.items()),
        "fargate": fargate,
        "ours": mine,
        "legacy": legacy,
    }


def _operator_section(window: float) -> dict[str, Any]:
    print("operator: one resource with 20 unfinished Jobs and nothing to launch ...", flush=True)
    operator = {**operator_requests.requests_per_poll(), **operator_requests.reconcile_wall_time()}
    print(
        f"  Kubernetes API requests per poll: {operator['requests_per_poll']} "
        f"({operator['writes_per_poll']} of them writes)"
    )
    print(f"  reconcile wall time excluding Snowflake: {operator['reconcile_wall_time_us']} us")

    print("operator: 100 idle resources polled every 60 s (about 5 minutes) ...", flush=True)
    idle = operator_idle.idle_cost(window=window)
    for name, limit in OPERATOR_LIMITS.items():
        verdict = "met" if idle[name] is not None and idle[name] <= limit else "MISSED"
        print(f"  {name}: {idle[name]} (at most {limit}: {verdict})")
    return {
        "operator": operator,
        "operator_requests_per_poll": operator["requests_per_poll"],
        "reconcile_wall_time_us": operator["reconcile_wall_time_us"],
        "operator_idle": idle,
        "operator_cpu_percent_100_resources": idle["operator_cpu_percent_100_resources"],
        "operator_api_writes_per_idle_poll": idle["operator_api_writes_per_idle_poll"],
        "operator_limits": OPERATOR_LIMITS,
    }


def _shares(worker: dict[str, Any]) -> str:
    return f"{worker['service_cpu_share_of_a_core']} / {worker['emulator_cpu_share_of_a_core']}"


def _claims(worker: dict[str, Any]) -> str:
    batches = worker.get("batches") or {}
    return f"{batches.get('claim_size_first')}, {batches.get('claim_size_max')}"


def _pair(side: dict[str, Any]) -> str:
    return f"{side['completed']} / {side['failed']}"


if __name__ == "__main__":
    sys.exit(main())
