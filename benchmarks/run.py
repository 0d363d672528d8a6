"""`make bench`: run every benchmark, print a table, end with one JSON line."""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import worker_throughput


def main() -> int:
    print("worker throughput: 1 worker, concurrency 32, service latency 50 ms ...", flush=True)
    worker = worker_throughput.run()
    rows = [
        ("entries drained", worker["entries"]),
        ("drain time (s)", worker["drain_seconds"]),
        ("entries/s (drain)", worker["entries_per_second"]),
        ("entries/s (incl. process start)", worker["entries_per_second_incl_start"]),
        ("ceiling entries/s (32 / 50 ms)", worker["ceiling_entries_per_second"]),
        ("worker_efficiency", worker["worker_efficiency"]),
        ("Snowflake statements", worker["snowflake_statements"]),
        ("statements per 1,000 entries", worker["statements_per_1000_entries"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    result = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()} {platform.python_version()}",
        "worker_efficiency": worker["worker_efficiency"],
        "statements_per_1000_entries": worker["statements_per_1000_entries"],
        "worker": worker,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
