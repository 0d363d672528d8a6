"""`make chaos`: the fault-injection run (snowflake_devtools.chaos), from the command line."""

from __future__ import annotations

import sys

from snowflake_devtools.chaos import main

if __name__ == "__main__":
    sys.exit(main())
