"""The service call a resource configures (spec.endpoint), made by the real worker process
against the Snowflake emulator and the real mTLS service: extra headers from a mounted
Secret's folder, method and payload, answers stored in the result column, Retry-After, the
per-Job rate limit; and what the worker reports: one log line per dead letter, the
service's answers by status class and the latency of its calls."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

from snowflake_devtools.mtls_service import fetch_stats
from snowflake_worker.queue import QueueClient
from tests.support.queues import fetch_rows, fill
from tests.support.worker_runs import WorkerWorld

API_KEY = "k3y-never-log-9f4c"
TOKEN = "Bearer t0ken-never-log-51ab"
CARD = "4111-1111-never-log"


def _headers_folder(tmp_path: Path, **files: str) -> Path:
    """A folder as Kubernetes mounts a Secret: one file per key, plus its own dot-entries."""
    folder = tmp_path / "endpoint-headers"
    (folder / "..data").mkdir(parents=True)
    for name, value in files.items():
        (folder / name).write_text(value)
    return folder


def _query(queue: QueueClient, sql: str) -> list[tuple[Any, ...]]:
    cursor = queue._connection.cursor()
    cursor.execute(sql.format(table=queue.table.sql))
    return list(cursor.fetchall())


def _log_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


# -- headers from a Secret ------------------------------------------------------------------


def test_headers_from_the_secret_folder_reach_the_service_and_nothing_else(
    workers: WorkerWorld, tmp_path: Path
) -> None:
    fill(workers.queue, 20)
    required = {"Authorization": TOKEN, "X-Api-Key": API_KEY}
    service = workers.start_service(required_headers=required)
    folder = _headers_folder(tmp_path, Authorization=TOKEN + "\n", **{"X-Api-Key": API_KEY})
    spec = workers.spec(service.port, endpoint={"headers_secret": "service-api"})
    run = workers.start(spec, SFP_ENDPOINT_HEADERS_DIR=str(folder))
    code, stderr = run.wait()
    assert code == 0, stderr
    assert workers.queue.counts(max_attempts=3).completed == 20
    stats = fetch_stats(service.port, workers.certs)
    assert (stats["successes"], stats["unauthorized"]) == (20, 0)
    for secret in (API_KEY, TOKEN, "t0ken"):
        assert secret not in stderr
        assert secret not in run.termination.read_text()

    # Without them (a resource with no headersSecret) the service refuses every call: 401
    # is the entry's fault as far as HTTP says, so the entries are dead-lettered at once.
    fill(workers.queue, 3, prefix="n")
    bare = workers.start(workers.spec(service.port), name="job-1")
    code, stderr = bare.wait()
    assert code == 0, stderr
    failed = fetch_rows(workers.queue, "status = 'failed'")
    assert [r["id"] for r in failed] == ["n00000", "n00001", "n00002"]
    assert all(r["error_message"].startswith("HTTP 401") for r in failed)


def test_a_lower_case_twin_or_a_connector_variable_is_never_read(
    workers: WorkerWorld, tmp_path: Path
) -> None:
    """sfp_endpoint_headers_dir in a pod's env (an author's, where the allow-list failed)
    must not make the worker send that folder's files (say, the pod's identity token) as
    headers; SNOWFLAKE_* and AWS profile variables must not reach the libraries either."""
    fill(workers.queue, 4)
    service = workers.start_service(required_headers={"X-Token": TOKEN})
    folder = _headers_folder(tmp_path, **{"X-Token": TOKEN})
    config = tmp_path / "aws-config"
    config.write_text("[default]\ncredential_process = /bin/false\n")
    run = workers.start(
        workers.spec(service.port),
        sfp_endpoint_headers_dir=str(folder),
        SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES="attacker.example",
        AWS_CONFIG_FILE=str(config),
    )
    code, stderr = run.wait()
    assert code == 0, stderr
    stats = fetch_stats(service.port, workers.certs)
    assert (stats["successes"], stats["unauthorized"]) == (0, 4)  # no header was sent
    started = next(line for line in _log_lines(stderr) if line["msg"] == "worker started")
    assert started["ignored_environment"] == [
        "AWS_CONFIG_FILE",
        "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES",
        "sfp_endpoint_headers_dir",
    ]
    assert TOKEN not in stderr and str(config) not in stderr  # names only, never values


def test_a_header_the_worker_sets_itself_stops_the_job_before_claiming(
    workers: WorkerWorld, tmp_path: Path
) -> None:
    fill(workers.queue, 5)
    service = workers.start_service()
    folder = _headers_folder(tmp_path, **{"Content-Type": "text/" + API_KEY, "X-Api-Key": "k"})
    spec = workers.spec(service.port, endpoint={"headers_secret": "service-api"})
    run = workers.start(spec, SFP_ENDPOINT_HEADERS_DIR=str(folder))
    code, stderr = run.wait()
    assert code == 2, stderr
    (line,) = [entry for entry in _log_lines(stderr) if entry["level"] == "error"]
    assert "'Content-Type'" in line["msg"] and "set by the worker itself" in line["msg"]
    assert API_KEY not in stderr and API_KEY not in run.termination.read_text()
    assert json.loads(run.termination.read_text())["event"] == "fatal"
    assert workers.queue.counts(max_attempts=3).pending == 5  # nothing claimed
    assert fetch_stats(service.port, workers.certs)["requests"] == 0


# -- method, payload, stored answers ----------------------------------------------------------


def test_put_of_the_data_alone_with_the_answers_kept_in_the_result_column(
    workers: WorkerWorld,
) -> None:
    queue = workers.queue
    queue.enqueue(
        [
            ("echo-1", {"echo": True, "n": 1}),
            ("echo-2", {"echo": True, "n": 2}),
            ("long", {"response_bytes": 9000}),
            ("poison", {"poison": True}),
        ]
    )
    service = workers.start_service()
    endpoint = {"method": "PUT", "payload": "data", "store_response_bytes": 4096}
    run = workers.start(workers.spec(service.port, endpoint=endpoint))
    code, stderr = run.wait()
    assert code == 0, stderr
    rows = dict(_query(queue, "SELECT id, result FROM {table} ORDER BY id"))
    echo = json.loads(rows["echo-1"])
    assert echo["method"] == "PUT"
    assert echo["received"] == {"echo": True, "n": 1}  # the data alone, no envelope
    assert echo["entry_id"] == f"{queue.table}/echo-1"  # the Idempotency-Key names it
    assert json.loads(rows["echo-2"])["received"] == {"echo": True, "n": 2}
    assert rows["long"] == "x" * 4096  # cut at storeResponseBytes
    assert rows["poison"] is None  # only the answer that completes an entry is kept
    assert fetch_stats(service.port, workers.certs)["methods"] == {"PUT": 4}
    assert run.summary()["statements_by_kind"]["write_back_result"] >= 1


def test_an_answer_in_a_charset_that_does_not_decode_still_completes_its_entry(
    workers: WorkerWorld,
) -> None:
    """A 200 is a completed call, whatever its Content-Type says: a charset with no BOM
    (utf-16), one that is not text at all (base64, a bytes codec) or one that refuses
    replacement characters (idna) is stored as well as it decodes, never retried."""
    charsets = ("utf-16", "utf-32", "base64", "idna", "rot13", "no-such-charset")
    queue = workers.queue
    queue.enqueue(
        [
            (f"cs-{name}", {"response_bytes": 64, "content_type": f"text/plain; charset={name}"})
            for name in charsets
        ]
        + [("json-utf16", {"content_type": "application/json; charset=utf-16"})]
    )
    service = workers.start_service()
    run = workers.start(workers.spec(service.port, endpoint={"store_response_bytes": 16384}))
    code, stderr = run.wait()
    assert code == 0, stderr
    rows = dict(_query(queue, "SELECT id, status FROM {table}"))
    assert set(rows.values()) == {"completed"}, rows
    results = dict(_query(queue, "SELECT id, result FROM {table}"))
    assert all(isinstance(text, str) and text for text in results.values()), results
    assert results["cs-no-such-charset"] == "x" * 64  # unknown: read as UTF-8
    stats = fetch_stats(service.port, workers.certs)
    assert (stats["requests"], stats["duplicates"]) == (len(charsets) + 1, 0)  # once each
    assert run.summary()["responses"] == {"2xx": len(charsets) + 1}


def test_the_default_call_stores_nothing_and_never_touches_the_result_column(
    workers: WorkerWorld,
) -> None:
    fill(workers.queue, 10)
    _query(workers.queue, "ALTER TABLE {table} DROP COLUMN result")  # a table before sql/005
    service = workers.start_service()
    run = workers.start(workers.spec(service.port))
    code, stderr = run.wait()
    assert code == 0, stderr
    assert workers.queue.counts(max_attempts=3).completed == 10
    assert fetch_stats(service.port, workers.certs)["methods"] == {"POST": 10}
    assert "write_back_result" not in run.summary()["statements_by_kind"]


def test_storing_answers_without_the_result_column_stops_before_claiming(
    workers: WorkerWorld,
) -> None:
    fill(workers.queue, 10)
    _query(workers.queue, "ALTER TABLE {table} DROP COLUMN result")
    service = workers.start_service()
    run = workers.start(workers.spec(service.port, endpoint={"store_response_bytes": 100}))
    code, stderr = run.wait()
    assert code == 2, stderr
    assert "sql/005_result_column.sql" in json.loads(run.termination.read_text())["error"]
    assert workers.queue.counts(max_attempts=3).pending == 10
    assert fetch_stats(service.port, workers.certs)["requests"] == 0


# -- Retry-After and the rate limit ---------------------------------------------------------


def test_retry_after_within_the_limit_is_waited_for_then_the_entry_completes(
    workers: WorkerWorld,
) -> None:
    queue = workers.queue
    queue.enqueue([(f"slow-{i}", {"retry_after": "1"}) for i in range(3)])
    fill(queue, 5)
    service = workers.start_service()
    endpoint = {"retry_after_max_seconds": 10}
    run = workers.start(workers.spec(service.port, retries=1, endpoint=endpoint))
    code, stderr = run.wait()
    assert code == 0, stderr
    assert queue.counts(max_attempts=3).completed == 8
    arrivals = fetch_stats(service.port, workers.certs, arrivals=True)["arrivals"]
    for i in range(3):
        first, second = [at for at, key in arrivals if key.endswith(f"/slow-{i}")]
        assert second - first >= 0.95  # the service said 1 s; the worker's backoff is 0.05 s
    summary = run.summary()
    assert summary["responses"] == {"2xx": 8, "4xx": 3}
    assert summary["http_retries"] == 3


def test_retry_after_beyond_the_limit_sends_the_entry_back_that_far_ahead(
    workers: WorkerWorld,
) -> None:
    queue = workers.queue
    in_ten_minutes = formatdate(time.time() + 600, usegmt=True)  # the HTTP-date form
    queue.enqueue(
        [
            ("seconds", {"retry_after": "120", "retry_status": 503, "fail_first": 99}),
            ("date", {"retry_after": in_ten_minutes, "fail_first": 99}),
        ]
    )
    service = workers.start_service()
    endpoint = {"retry_after_max_seconds": 2}
    started = time.monotonic()
    run = workers.start(workers.spec(service.port, retries=2, endpoint=endpoint))
    code, stderr = run.wait()
    assert code == 0, stderr
    assert time.monotonic() - started < 60  # it did not sit out the service's 2 or 10 minutes
    rows = dict(
        (row[0], row[1:])
        for row in _query(
            queue,
            "SELECT id, status, retry_count, TIMESTAMPDIFF(second, SYSDATE(), next_attempt_at) "
            "FROM {table}",
        )
    )
    status, retries, seconds_ahead = rows["seconds"]
    assert (status, retries) == ("pending", 1)
    assert 100 <= seconds_ahead <= 121
    status, retries, seconds_ahead = rows["date"]
    assert (status, retries) == ("pending", 1)
    assert 540 <= seconds_ahead <= 601
    assert fetch_stats(service.port, workers.certs)["requests"] == 2  # one call each


def test_a_retry_after_of_hundreds_of_digits_sends_the_entry_back_an_hour_ahead(
    workers: WorkerWorld,
) -> None:
    """Seconds too many for a float: as long as the worker ever waits (an hour), no error."""
    queue = workers.queue
    queue.enqueue([("huge", {"retry_after": "9" * 400, "retry_status": 503, "fail_first": 99})])
    fill(queue, 3)
    service = workers.start_service()
    run = workers.start(
        workers.spec(service.port, retries=2, endpoint={"retry_after_max_seconds": 2})
    )
    code, stderr = run.wait()
    assert code == 0, stderr
    assert queue.counts(max_attempts=3).completed == 3
    ((status, retries, seconds_ahead),) = _query(
        queue,
        "SELECT status, retry_count, TIMESTAMPDIFF(second, SYSDATE(), next_attempt_at) "
        "FROM {table} WHERE id = 'huge'",
    )
    assert (status, retries) == ("pending", 1)
    assert 3500 <= seconds_ahead <= 3601  # MAX_RELEASE_SECONDS


def test_the_rate_limit_spaces_the_jobs_calls(workers: WorkerWorld) -> None:
    fill(workers.queue, 30)
    service = workers.start_service(latency_ms=2)
    spec = workers.spec(service.port, concurrency=8, endpoint={"requests_per_second": 10})
    run = workers.start(spec)
    code, stderr = run.wait()
    assert code == 0, stderr
    assert workers.queue.counts(max_attempts=3).completed == 30
    times = [at for at, _ in fetch_stats(service.port, workers.certs, arrivals=True)["arrivals"]]
    assert times[-1] - times[0] >= 29 / 10 * 0.9  # 8 callers, yet 10 calls a second
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 12, busiest


# -- what the worker reports --------------------------------------------------------------


def test_each_dead_letter_is_one_log_line_with_its_id_and_error_never_its_data(
    workers: WorkerWorld,
) -> None:
    queue = workers.queue
    fill(queue, 10)
    queue.enqueue(
        [
            ("poison", {"poison": True, "card": CARD}),
            ("broken", '{"card": "' + CARD + '", broken'),
        ]
    )
    service = workers.start_service()
    run = workers.start(workers.spec(service.port))
    code, stderr = run.wait()
    assert code == 0, stderr
    dead = [line for line in _log_lines(stderr) if line["msg"] == "entry dead-lettered"]
    assert sorted(line["id"] for line in dead) == ["broken", "poison"]
    errors = {line["id"]: line["error"] for line in dead}
    assert errors["poison"].startswith("HTTP 422")
    assert errors["broken"].startswith("data is not valid JSON")
    assert all(line["level"] == "warning" for line in dead)
    assert CARD not in stderr


def test_the_summary_counts_the_services_answers_by_class_and_times_every_call(
    workers: WorkerWorld,
) -> None:
    queue = workers.queue
    fill(queue, 80)
    queue.enqueue([(f"poison-{i}", {"poison": True}) for i in range(4)])
    service = workers.start_service(latency_ms=20, transient_rate=0.2, seed=11)
    run = workers.start(workers.spec(service.port, retries=3))
    code, stderr = run.wait()
    assert code == 0, stderr
    summary = run.summary()
    stats = fetch_stats(service.port, workers.certs)
    by_class: dict[str, int] = {}
    for status, calls in stats["status_counts"].items():  # as the service itself counted
        by_class[f"{status[0]}xx"] = by_class.get(f"{status[0]}xx", 0) + calls
    assert summary["responses"] == by_class
    assert by_class["5xx"] > 0 and by_class["4xx"] == 4
    latency = summary["call_seconds"]
    assert sum(latency["counts"]) == summary["http_calls"] == stats["requests"]
    assert latency["sum"] >= 0.02 * summary["http_calls"]  # each answer took 20 ms or more
    assert latency["counts"][0] == 0  # none under 10 ms: le 0.01 stays empty
