"""`python -m snowflake_worker` and the `snowflake-processor-worker` command: run one Job.

The worker image holds only this package, so the Job's command needs nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .termination import (
    NOTHING_CLAIMED,
    StoppedBeforeClaiming,
    stop_cleanly_until_claiming,
    termination_message_path,
    write_termination_message,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:  # `snowflake-processor worker` spelled the long way
        args = args[1:]
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: snowflake-processor-worker\n\n"
            "Run one Job: claim entries from the queue table and call the service.\n"
            "Configured by SFP_* environment variables (docs/worker-environment.md)."
        )
        return 0
    if args:
        print(f"error: unrecognized arguments: {' '.join(args)}", file=sys.stderr)
        return 2
    stop_cleanly_until_claiming()  # before the heavy imports below
    try:
        from .worker import run_worker
    except StoppedBeforeClaiming:
        write_termination_message(termination_message_path(), NOTHING_CLAIMED)
        return 0
    return run_worker()


if __name__ == "__main__":
    sys.exit(main())
