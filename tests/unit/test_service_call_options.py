"""What a call sends and how the worker paces it: Retry-After, the rate limit, extra headers
from files, the stored answer, the request's shape, and the call statistics of the summary."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from snowflake_worker.batch_sizing import BatchStats
from snowflake_worker.call_stats import CALL_SECONDS_BUCKETS, CallStats, status_class
from snowflake_worker.drain import summary_line
from snowflake_worker.errors import ConfigError
from snowflake_worker.outcomes import Summary, failed_attempt
from snowflake_worker.queue import ClaimedEntry, Outcome, Status, completed, write_back_kind
from snowflake_worker.queue_sql import TEMPLATES
from snowflake_worker.rate_limit import RequestPacer
from snowflake_worker.response_storage import STORE_RESPONSE_MAX_BYTES, stored_response
from snowflake_worker.retry_after import (
    FOREVER,
    MAX_RELEASE_SECONDS,
    honour_retry_after,
    retry_after_seconds,
)
from snowflake_worker.service_call import Answer
from snowflake_worker.service_headers import read_header_files
from snowflake_worker.service_request import Payload, ServiceRequest

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
SECRET = "Bearer s3cr3t-token-value"

# -- Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Thu, 26 Nov 2026 12:00:30 GMT", 30.0),
        (format_datetime(NOW - timedelta(minutes=5), usegmt=True), 0.0),  # already past
        (None, None),
        ("", None),
        ("-5", None),  # delay-seconds is 1*DIGIT: no sign
        ("1.5", None),  # ... and no fraction
        ("soon", None),
        ("Thu, 99 Foo 2026 99:00:00 GMT", None),
        ("٣", None),  # a digit to str.isdigit, not to HTTP
        ("0000120", 120.0),
        ("9" * 400, float(FOREVER)),  # more than a float holds: as long as allowed
        ("9" * 5000, float(FOREVER)),  # more digits than int() parses by default
        ("Thu, 26 Nov 99999 12:00:30 GMT", None),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_within_the_limit_pauses_the_job_and_waits_for_it() -> None:
    decision = honour_retry_after(5.0, backoff=0.2, limit=60)
    assert (decision.pause_seconds, decision.wait_seconds, decision.release_seconds) == (5, 5, 5)
    # The worker's own backoff wins when it is longer.
    assert honour_retry_after(1.0, backoff=3.0, limit=60).wait_seconds == 3.0


def test_retry_after_beyond_the_limit_releases_the_entry_that_far_ahead() -> None:
    decision = honour_retry_after(600.0, backoff=0.2, limit=60)
    assert decision.wait_seconds is None  # no in-Job retry
    assert decision.pause_seconds == 60  # the Job pauses for the limit only
    assert decision.release_seconds == 600
    assert honour_retry_after(10**9, 0.2, 60).release_seconds == MAX_RELEASE_SECONDS


def test_without_retry_after_or_with_limit_zero_only_the_backoff_counts() -> None:
    for decision in (honour_retry_after(None, 0.7, 60), honour_retry_after(30.0, 0.7, 0)):
        assert (decision.pause_seconds, decision.wait_seconds, decision.release_seconds) == (
            0,
            0.7,
            0,
        )


def test_a_release_waits_at_least_as_long_as_the_service_asked() -> None:
    entry = ClaimedEntry("e1", "{}", retry_count=0, claim_token="t")
    outcome = failed_attempt(
        entry, "HTTP 429", max_attempts=5, release_delay_seconds=60, at_least_seconds=900
    )
    assert (outcome.status, outcome.delay_seconds) == (Status.PENDING, 900)
    shorter = failed_attempt(
        entry, "HTTP 429", max_attempts=5, release_delay_seconds=60, at_least_seconds=5
    )
    assert shorter.delay_seconds == 60  # the worker's own release delay is longer
    last = ClaimedEntry("e1", "{}", retry_count=4, claim_token="t")
    dead = failed_attempt(
        last, "HTTP 429", max_attempts=5, release_delay_seconds=60, at_least_seconds=900
    )
    assert dead.status is Status.FAILED  # the attempt limit still holds


# -- the rate limit and the pause ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_limit_spaces_call_starts_evenly() -> None:
    clock = Clock()
    pacer = RequestPacer(4.0, clock)
    assert [pacer.reserve() for _ in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    clock.now += 10  # idle for a while: no burst is saved up
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.25, 0.5]


def test_without_a_rate_limit_only_a_pause_delays_calls() -> None:
    clock = Clock()
    pacer = RequestPacer(None, clock)
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    pacer.hold(2.0)
    assert pacer.held()
    assert [pacer.reserve() for _ in range(2)] == [2.0, 2.0]
    clock.now += 2.0
    assert not pacer.held() and pacer.reserve() == 0.0


def test_after_a_pause_rate_limited_calls_start_spaced_again() -> None:
    clock = Clock()
    pacer = RequestPacer(2.0, clock)
    pacer.reserve()
    pacer.hold(5.0)
    assert [pacer.reserve() for _ in range(3)] == [5.0, 5.5, 6.0]


def test_a_pause_that_begins_while_waiting_holds_the_waiting_call_too() -> None:
    async def scenario() -> tuple[bool, float]:
        pacer = RequestPacer(None)
        stopping = asyncio.Event()
        pacer.hold(0.05)
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiter = asyncio.create_task(pacer.wait_turn(stopping))
        await asyncio.sleep(0.02)
        pacer.hold(0.2)  # another caller got a Retry-After meanwhile
        went = await waiter
        return went, loop.time() - started

    went, waited = asyncio.run(scenario())
    assert went and waited >= 0.2


def test_a_stop_ends_the_wait_for_a_turn() -> None:
    async def scenario() -> tuple[bool, float]:
        pacer = RequestPacer(None)
        stopping = asyncio.Event()
        pacer.hold(30.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.05, stopping.set)
        went = await pacer.wait_turn(stopping)
        return went, loop.time() - started

    went, waited = asyncio.run(scenario())
    assert not went and waited < 5


# -- extra headers from files --------------------------------------------------------------


def test_each_file_is_one_header_and_the_mount_internals_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "Authorization").write_text(SECRET + "\n")  # kubectl --from-file keeps it
    (tmp_path / "X-Api-Key").write_text("k3y")
    (tmp_path / "..data").mkdir()  # what a mounted Secret holds besides its keys
    (tmp_path / "..2026_11_26_12_00_00.1").mkdir()
    assert read_header_files(tmp_path) == {"Authorization": SECRET, "X-Api-Key": "k3y"}


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Idempotency-Key", "x", "set by the worker itself"),
        ("content-type", "text/plain", "set by the worker itself"),
        ("Host", "evil.example.com", "set by the worker itself"),
        ("X-Token", SECRET + "\nInjected: 1", "line break"),
        ("X-Token", SECRET + "\x07", "control character"),
        ("X-Token", "\n", "is empty"),
        ("X-Token", "tökén-" + SECRET, "not ASCII"),
        ("Bad Name", SECRET, "not a valid HTTP header name"),
    ],
)
def test_a_bad_header_file_is_one_line_naming_the_file_never_the_value(
    tmp_path: Path, name: str, value: str, problem: str
) -> None:
    (tmp_path / name).write_bytes(value.encode())
    with pytest.raises(ConfigError) as raised:
        read_header_files(tmp_path)
    message = str(raised.value)
    assert problem in message and repr(name) in message
    assert "\n" not in message
    assert "s3cr3t" not in message and "evil" not in message


def test_an_empty_or_missing_header_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no header file"):
        read_header_files(tmp_path)
    with pytest.raises(ConfigError, match="is not a folder"):
        read_header_files(tmp_path / "missing")


def test_the_request_keeps_its_secrets_out_of_its_repr() -> None:
    request = ServiceRequest("PUT", Payload.DATA, {"Authorization": SECRET})
    assert "s3cr3t" not in repr(request)
    assert request.headers("T/e1") == {"Authorization": SECRET, "Idempotency-Key": "T/e1"}


# -- the body --------------------------------------------------------------------------------


def test_the_default_body_is_the_seeds_envelope() -> None:
    body = ServiceRequest().body("e1", {"n": 1}, "job-0")
    assert set(body) == {"entry_id", "data", "processor_id", "timestamp"}
    assert (body["entry_id"], body["data"], body["processor_id"]) == ("e1", {"n": 1}, "job-0")
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None


def test_the_data_payload_is_the_entrys_data_alone() -> None:
    request = ServiceRequest("PATCH", Payload.DATA)
    assert request.body("e1", {"n": 1}, "job-0") == {"n": 1}
    assert request.body("e2", [1, 2], "job-0") == [1, 2]


# -- the stored answer ---------------------------------------------------------------------


def _answer(body: bytes, charset: str | None = "utf-8") -> Answer:
    return Answer(200, body=body, charset=charset)


def test_the_stored_answer_is_cut_at_the_limit_never_inside_a_character() -> None:
    assert stored_response(_answer(b'{"ok": true}'), 0) is None  # not storing
    assert stored_response(_answer(b'{"ok": true}'), 100) == '{"ok": true}'
    assert stored_response(_answer(b"abcdef"), 4) == "abcd"
    euro = "€".encode()  # three bytes
    assert stored_response(_answer(b"ab" + euro), 4) == "ab"  # the cut character is left out
    assert stored_response(_answer("é".encode("latin-1"), "latin-1"), 10) == "é"
    assert stored_response(_answer(b""), 10) == ""  # stored: an empty answer


def test_the_largest_stored_answer_fits_the_result_column() -> None:
    body = ("é" * STORE_RESPONSE_MAX_BYTES).encode()
    kept = stored_response(_answer(body), STORE_RESPONSE_MAX_BYTES)
    assert kept is not None and len(kept) <= 16384  # VARCHAR(16384) in sql/005


def test_a_batch_uses_the_result_statement_only_when_an_outcome_carries_an_answer() -> None:
    entry = ClaimedEntry("e1", "{}", retry_count=0, claim_token="t")
    plain = [completed(entry), Outcome("e2", "t", Status.FAILED, "HTTP 422")]
    assert write_back_kind(plain) == "write_back"
    assert "result" not in completed(entry).as_json()
    with_answer = [*plain, completed(entry, result='{"ok": true}')]
    assert write_back_kind(with_answer) == "write_back_result"
    assert completed(entry, result="").as_json()["result"] == ""


# -- call statistics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "2xx"),
        (204, "2xx"),
        (301, "3xx"),
        (404, "4xx"),
        (429, "4xx"),
        (503, "5xx"),
        (None, "error"),
        (100, "other"),
        (600, "other"),
    ],
)
def test_a_call_is_counted_in_its_status_class(status: int | None, kind: str) -> None:
    assert status_class(status) == kind


def test_the_latency_histogram_counts_each_call_once_in_its_bucket() -> None:
    stats = CallStats()
    for seconds in (0.001, 0.01, 0.011, 0.3, 29.0, 31.0, 500.0):
        stats.record(200, seconds)
    stats.record(None, 2.0)
    summary = stats.summary()
    counts = summary["call_seconds"]["counts"]
    assert summary["call_seconds"]["le"] == list(CALL_SECONDS_BUCKETS)
    assert len(counts) == len(CALL_SECONDS_BUCKETS) + 1
    assert counts[0] == 2  # 0.001 and exactly 0.01: le 0.01
    assert counts[1] == 1  # 0.011: le 0.025
    assert counts[CALL_SECONDS_BUCKETS.index(0.5)] == 1  # 0.3
    assert counts[CALL_SECONDS_BUCKETS.index(2.5)] == 1  # 2.0
    assert counts[CALL_SECONDS_BUCKETS.index(30.0)] == 1  # 29
    assert counts[-1] == 2  # beyond the last bound: +Inf
    assert sum(counts) == stats.calls == 8
    assert summary["call_seconds"]["sum"] == pytest.approx(562.322)
    assert summary["responses"] == {"2xx": 7, "error": 1}  # only classes that occurred


def test_the_largest_summary_fits_the_termination_message() -> None:
    """The kubelet keeps 4096 bytes; the summary never needs cutting (a cut one is not JSON)."""
    huge = 10**12
    stats = CallStats()
    for kind in (200, 301, 404, 503, 100, None):
        stats.record(kind, 0.0)
    stats.by_class.update(dict.fromkeys(stats.by_class, huge))
    stats.bucket_counts = [huge] * len(stats.bucket_counts)
    stats.seconds_sum = 10.0**15
    summary = Summary(
        processor_id="p" * 255,
        stop_reason="queue_empty",
        claimed=huge,
        completed=huge,
        failed=huge,
        released=huge,
        not_applied=huge,
        unwritten=huge,
        http_calls=huge,
        http_retries=huge,
        snowflake_statements=huge,
        statements_by_kind={kind: huge for kind in TEMPLATES},
        seconds=10.0**7,
        cpu_seconds=10.0**7,
        batches=dict.fromkeys(BatchStats().as_summary(10.0**7), huge),
        **stats.summary(),
    )
    text = json.dumps(summary_line(summary), separators=(",", ":"))
    assert len(text.encode()) < 3000, len(text)
    assert set(asdict(summary)) >= {"responses", "call_seconds"}
