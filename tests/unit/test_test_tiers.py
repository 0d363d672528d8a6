"""What `make test` shows of the tests that ran beside the real-cluster ones."""

from __future__ import annotations

from snowflake_devtools.test_tiers import TAIL_LINES_ON_FAILURE, summary_lines

LOG = "\n".join(
    [
        "============ test session starts ============",
        *[f"tests/unit/test_{i}.py ......" for i in range(300)],
        "=========== short test summary info ===========",
        "SKIPPED [1] tests/unit/test_x.py: no helm",
        "======= 2,000 passed, 1 skipped in 1200.00s =======",
    ]
)


def test_a_passing_run_shows_its_short_summary_and_result() -> None:
    shown = summary_lines(LOG, failed=False)
    assert shown[0].startswith("=========== short test summary info")
    assert shown[-1] == "======= 2,000 passed, 1 skipped in 1200.00s ======="
    assert len(shown) == 3


def test_a_run_without_a_summary_shows_its_last_line() -> None:
    assert summary_lines("collected 0 items\nno tests ran in 0.01s", failed=False) == [
        "no tests ran in 0.01s"
    ]


def test_a_failing_run_shows_its_last_lines_with_the_tracebacks() -> None:
    shown = summary_lines(LOG, failed=True)
    assert len(shown) == TAIL_LINES_ON_FAILURE
    assert shown[-1].endswith("in 1200.00s =======")
