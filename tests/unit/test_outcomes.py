"""Pure decisions about one entry: response classification, data parsing, delays."""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
import pytest

from snowflake_worker.outcomes import (
    BadData,
    CallResult,
    backoff_delay,
    classify_exception,
    classify_status,
    failed_attempt,
    parse_entry_data,
    release_delay,
)
from snowflake_worker.queue import ClaimedEntry, Status

# -- classify_status ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, CallResult.SUCCESS),
        (201, CallResult.SUCCESS),
        (204, CallResult.SUCCESS),
        (299, CallResult.SUCCESS),
        (408, CallResult.TRANSIENT),
        (425, CallResult.TRANSIENT),
        (429, CallResult.TRANSIENT),
        (500, CallResult.TRANSIENT),
        (502, CallResult.TRANSIENT),
        (503, CallResult.TRANSIENT),
        (504, CallResult.TRANSIENT),
        (400, CallResult.PERMANENT),
        (401, CallResult.PERMANENT),
        (403, CallResult.PERMANENT),
        (404, CallResult.PERMANENT),
        (409, CallResult.PERMANENT),
        (422, CallResult.PERMANENT),
        (301, CallResult.PERMANENT),
        (302, CallResult.PERMANENT),
    ],
)
def test_classify_status(status: int, expected: CallResult) -> None:
    assert classify_status(status) is expected


# -- classify_exception -------------------------------------------------------------

_REQUEST = httpx.Request("POST", "https://service.example/entries")


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("timed out", request=_REQUEST),
        httpx.ReadTimeout("read timed out", request=_REQUEST),
        httpx.ConnectError("[Errno 111] Connection refused", request=_REQUEST),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["connect-timeout", "read-timeout", "connection-refused", "disconnected"],
)
def test_transport_errors_are_transient(exc: Exception) -> None:
    assert classify_exception(exc) is CallResult.TRANSIENT


_TLS_TEXTS = [
    "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)",
    "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)",
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
    "unable to get local issuer certificate (_ssl.c:1006)",
]


@pytest.mark.parametrize("text", _TLS_TEXTS)
def test_tls_rejection_in_the_message_is_fatal(text: str) -> None:
    exc = httpx.ConnectError(text, request=_REQUEST)
    assert classify_exception(exc) is CallResult.FATAL


@pytest.mark.parametrize("text", _TLS_TEXTS)
def test_tls_rejection_in_the_cause_is_fatal(text: str) -> None:
    cause = ssl.SSLError(1, text)
    exc = httpx.ConnectError("connection failed", request=_REQUEST)
    exc.__cause__ = cause
    assert classify_exception(exc) is CallResult.FATAL


def test_tls_rejection_in_the_implicit_context_is_fatal() -> None:
    try:
        try:
            raise ssl.SSLError(1, _TLS_TEXTS[0])
        except ssl.SSLError:
            raise httpx.ConnectError("wrapped", request=_REQUEST)  # noqa: B904
    except httpx.ConnectError as exc:
        assert classify_exception(exc) is CallResult.FATAL


def test_non_tls_cause_stays_transient() -> None:
    exc = httpx.ConnectError("connection failed", request=_REQUEST)
    exc.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert classify_exception(exc) is CallResult.TRANSIENT


def test_cyclic_cause_chain_terminates() -> None:
    first = httpx.ConnectError("first", request=_REQUEST)
    second = OSError("second")
    first.__cause__ = second
    second.__cause__ = first
    assert classify_exception(first) is CallResult.TRANSIENT


# -- parse_entry_data ---------------------------------------------------------------


def test_json_object_text_becomes_a_dict() -> None:
    assert parse_entry_data('{"a": 1, "b": [true, null]}') == {"a": 1, "b": [True, None]}


def test_json_string_holding_an_object_is_unwrapped_once() -> None:
    raw = '"{\\"order\\": 42}"'  # a VARIANT string whose text is JSON
    assert parse_entry_data(raw) == {"order": 42}


def test_json_string_holding_an_array_is_unwrapped() -> None:
    assert parse_entry_data('"  [1, 2, 3]  "') == [1, 2, 3]


def test_unwrapping_happens_only_once() -> None:
    inner = '"{\\"x\\": 1}"'  # JSON text of a string holding JSON text
    raw = json.dumps(inner)  # a VARIANT string containing a JSON string
    assert parse_entry_data(raw) == inner


def test_json_string_with_broken_json_is_bad_data() -> None:
    with pytest.raises(BadData, match="not valid JSON"):
        parse_entry_data('"{broken"')


@pytest.mark.parametrize("wrapped", [False, True], ids=["variant", "string-holding-json"])
def test_data_nested_too_deeply_is_bad_data(wrapped: bool) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(BadData, match="nested too deeply"):
        parse_entry_data(json.dumps(deep) if wrapped else deep)


def test_null_is_bad_data() -> None:
    with pytest.raises(BadData, match="NULL"):
        parse_entry_data(None)


def test_plain_json_string_stays_a_string() -> None:
    assert parse_entry_data('"hello"') == "hello"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("42", 42), ("true", True), ("[1]", [1]), ('""', "")],
)
def test_other_json_values_pass_through(raw: str, expected: Any) -> None:
    assert parse_entry_data(raw) == expected


def test_already_parsed_values_pass_through() -> None:
    assert parse_entry_data({"a": 1}) == {"a": 1}
    assert parse_entry_data([1, 2]) == [1, 2]


# -- delays -------------------------------------------------------------------------


def test_backoff_delay_doubles_from_the_base() -> None:
    assert [backoff_delay(n, 0.5) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_delay_is_capped() -> None:
    assert backoff_delay(10, 0.5) == 30.0
    assert backoff_delay(4, 1.0, cap=5.0) == 5.0
    assert backoff_delay(3, 1.0, cap=5.0) == 4.0


def test_backoff_delay_is_a_float() -> None:
    assert isinstance(backoff_delay(1, 1), float)


def test_release_delay_grows_with_retries() -> None:
    assert [release_delay(n, 60) for n in range(4)] == [60, 120, 240, 480]


def test_release_delay_is_capped() -> None:
    assert release_delay(10, 60) == 3600
    assert release_delay(3, 60, cap_seconds=300) == 300
    assert release_delay(1000, 60) == 3600  # no overflow for huge retry counts


def test_release_delay_treats_negative_retry_counts_as_zero() -> None:
    assert release_delay(-3, 60) == 60


@pytest.mark.parametrize("base", [0, -5])
def test_release_delay_zero_base_means_no_delay(base: int) -> None:
    assert release_delay(0, base) == 0
    assert release_delay(5, base) == 0


# -- failed_attempt -----------------------------------------------------------------


def _entry(retry_count: int) -> ClaimedEntry:
    return ClaimedEntry("e-1", "{}", retry_count, "token-1")


def test_a_failed_attempt_with_attempts_left_is_released_for_later() -> None:
    outcome = failed_attempt(_entry(1), "HTTP 503", max_attempts=5, release_delay_seconds=60)
    assert outcome.status is Status.PENDING
    assert (outcome.error, outcome.retry_increment, outcome.delay_seconds) == ("HTTP 503", 1, 120)


@pytest.mark.parametrize("retry_count", [4, 9])
def test_the_last_failed_attempt_dead_letters_with_the_error(retry_count: int) -> None:
    outcome = failed_attempt(
        _entry(retry_count), "worker error: ValueError: x", max_attempts=5, release_delay_seconds=60
    )
    assert outcome.status is Status.FAILED
    assert outcome.retry_increment == 1
    assert outcome.error == "gave up after 5 attempts: worker error: ValueError: x"
