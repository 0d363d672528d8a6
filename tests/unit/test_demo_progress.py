"""The demo's drain rate and ETA: finished entries over the last seconds, the rest at that
rate (a pure function of the samples)."""

from __future__ import annotations

import pytest

from snowflake_devtools.progress import Pace, RateMeter


def test_no_rate_from_a_single_sample() -> None:
    assert RateMeter().observe(0.0, 0, 100) == Pace(None, None)


def test_rate_and_eta_from_the_samples() -> None:
    meter = RateMeter(window_seconds=10)
    meter.observe(0.0, 0, 1000)
    pace = meter.observe(2.0, 100, 900)
    assert pace.rate == pytest.approx(50.0)
    assert pace.eta_seconds == pytest.approx(18.0)
    assert (pace.rate_text, pace.eta_text) == ("50.0/s", "18 s")


def test_the_rate_follows_the_recent_window() -> None:
    meter = RateMeter(window_seconds=4)
    for second in range(0, 11, 2):  # 100 entries/s for 10 s ...
        meter.observe(float(second), second * 100, 10_000 - second * 100)
    for second in range(12, 21, 2):  # ... then 10 entries/s
        meter.observe(float(second), 1000 + (second - 10) * 10, 8900)
    pace = meter.observe(22.0, 1120, 8880)
    assert pace.rate == pytest.approx(10.0)
    assert pace.eta_text == "14 min 48 s"


def test_eta_when_stalled_or_done() -> None:
    meter = RateMeter()
    meter.observe(0.0, 50, 50)
    assert meter.observe(2.0, 50, 50).eta_seconds is None  # nothing finished: no ETA
    assert meter.observe(4.0, 100, 0) == Pace(12.5, 0.0)
    assert Pace(None, None).eta_text == "-"
