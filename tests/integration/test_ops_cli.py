"""The ops commands (`status`, `enqueue`, `requeue`, `purge`) run as a user runs them:
`python -m snowflake_processor ...` against the fakesnow server, queue named by flags or by a
SnowflakeProcessor resource file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from snowflake_devtools.processes import ServerProcess
from snowflake_processor.cli import main
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient, completed, dead_lettered, released

from .conftest import fetch_rows

LONG_ERROR = "HTTP 422: " + "the address field is not a deliverable postal address; " * 6


def _flags(server: ServerProcess, table: TableRef) -> list[str]:
    return [
        "--auth",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(server.port),
        "--account",
        "local",
        "--database",
        table.database,
        "--schema",
        table.schema,
        "--table",
        table.table,
    ]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SFP_")}
    return subprocess.run(
        [sys.executable, "-m", "snowflake_processor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**clean, **(env or {})},
    )


def _ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert isinstance(document, dict)
    return document


def _refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _settle(
    queue: QueueClient,
    *,
    failed: Sequence[tuple[str, str]] = (),
    done: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> None:
    """Claim every pending entry, then dead-letter (one statement each, in order, so their
    failed_at differ), complete, or keep processing; the rest go back to pending."""
    batch = {e.id: e for e in queue.claim(10_000, max_attempts=3, processor_id="test")}
    for entry_id, error in failed:
        assert queue.write_back([dead_lettered(batch.pop(entry_id), error)]) == 1
    queue.write_back([completed(batch.pop(entry_id)) for entry_id in done])
    for entry_id in keep:
        batch.pop(entry_id)
    queue.write_back([released(e) for e in batch.values()])


def _statuses(queue: QueueClient) -> dict[str, str]:
    return {row["id"]: row["status"] for row in fetch_rows(queue)}


def _data(queue: QueueClient, entry_id: str) -> Any:
    cursor = queue._connection.cursor()
    cursor.execute(f"SELECT data FROM {queue.table.sql} WHERE id = %(id)s", {"id": entry_id})
    (row,) = cursor.fetchall()
    return json.loads(row[0])


def _write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# -- status ---------------------------------------------------------------------------


@pytest.fixture
def mixed(queue: QueueClient) -> QueueClient:
    """10 entries: 4 pending, 1 processing, 2 completed, 3 dead letters (d3 newest)."""
    ids = [f"e{i}" for i in range(5)] + ["c1", "c2", "d1", "d2", "d3"]
    queue.enqueue((entry_id, {"id": entry_id}) for entry_id in ids)
    _settle(
        queue,
        failed=[("d1", "HTTP 400: no such customer"), ("d2", LONG_ERROR), ("d3", "HTTP 404")],
        done=["c1", "c2"],
        keep=["e4"],
    )
    return queue


def test_status_json_has_counts_age_and_newest_dead_letters_in_full(
    snowflake_server: ServerProcess, queue_table: TableRef, mixed: QueueClient
) -> None:
    status = _ok_json(
        _run("status", *_flags(snowflake_server, queue_table), "--dead-letters", "2", "--json")
    )
    assert status["table"] == str(queue_table)
    assert status["counts"] == {
        "eligible": 4,
        "pending": 4,
        "processing": 1,
        "completed": 2,
        "failed": 3,
        "total": 10,
    }
    assert isinstance(status["oldest_pending_age_seconds"], int)
    assert 0 <= status["oldest_pending_age_seconds"] < 600
    assert status["oldest_pending_age"].endswith("s")
    letters = status["dead_letters"]
    assert [d["id"] for d in letters] == ["d3", "d2"]  # newest first, limited to 2
    assert letters[1]["error_message"] == LONG_ERROR  # not truncated in JSON
    assert letters[0]["retry_count"] == 1
    assert letters[0]["failed_at"] >= letters[1]["failed_at"]
    assert letters[0]["failed_at"].endswith("+00:00")


def test_status_table_truncates_long_errors(
    snowflake_server: ServerProcess, queue_table: TableRef, mixed: QueueClient
) -> None:
    result = _run("status", *_flags(snowflake_server, queue_table))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split() == ["failed", "(dead", "letters)", "3"] for line in lines)
    assert any(line.split()[:2] == ["pending", "4"] for line in lines)
    assert "oldest pending entry:" in result.stdout
    (d2,) = [line for line in lines if line.startswith("d2 ")]
    assert d2.endswith("...") and LONG_ERROR not in result.stdout
    assert LONG_ERROR[:60] in d2
    assert [line.split()[0] for line in lines if line[:2] in ("d1", "d2", "d3")] == [
        "d3",
        "d2",
        "d1",
    ]


def test_status_from_a_resource_file_uses_its_queue_settings(
    snowflake_server: ServerProcess, queue_table: TableRef, queue: QueueClient, tmp_path: Path
) -> None:
    queue.enqueue((f"e{i}", {"n": i}) for i in range(3))
    cursor = queue._connection.cursor()
    cursor.execute(f"UPDATE {queue.table.sql} SET retry_count = 2 WHERE id = 'e0'")
    resource = tmp_path / "processor.yaml"
    resource.write_text(
        f"""\
apiVersion: snowflake-processor.dev/v1alpha1
kind: SnowflakeProcessor
metadata:
  name: ops-test
spec:
  snowflake:
    account: local
    database: {queue_table.database.lower()}
    schema: queue
    table: work_queue
    host: 127.0.0.1
    port: {snowflake_server.port}
    auth:
      mode: emulator
  endpoint:
    url: https://127.0.0.1:9/process
  queue:
    maxAttempts: 2
""",
        encoding="utf-8",
    )
    by_resource = _ok_json(_run("status", "--resource", str(resource), "--json"))
    assert by_resource["table"] == str(queue_table)
    assert by_resource["max_attempts"] == 2
    # e0 has used its 2 attempts: not eligible under the resource's maxAttempts
    assert (by_resource["counts"]["pending"], by_resource["counts"]["eligible"]) == (3, 2)
    by_flags = _ok_json(_run("status", *_flags(snowflake_server, queue_table), "--json"))
    assert (by_flags["max_attempts"], by_flags["counts"]["eligible"]) == (5, 3)


# -- enqueue --------------------------------------------------------------------------


def test_enqueue_500_lines_in_bulk_then_counts(
    snowflake_server: ServerProcess, queue_table: TableRef, queue: QueueClient, tmp_path: Path
) -> None:
    lines = []
    for i in range(500):
        if i % 5 == 0:
            lines.append(json.dumps({"n": i}))  # no id: one is generated
        elif i % 2:
            lines.append(json.dumps({"id": f"x{i:03d}", "data": {"n": i, "tags": ["a"]}}))
        else:
            lines.append(json.dumps({"id": f"x{i:03d}", "n": i, "data": "kept whole"}))
    path = _write_lines(tmp_path / "entries.jsonl", lines)
    report = _ok_json(_run("enqueue", str(path), *_flags(snowflake_server, queue_table), "--json"))
    assert report["dry_run"] is False
    assert (report["entries"], report["inserted"], report["already_present"]) == (500, 500, 0)
    assert report["generated_ids"] == 100
    counts = queue.counts(max_attempts=3)
    assert (counts.pending, counts.total) == (500, 500)
    # {id, data}: the data field; anything else: the object without its id
    assert _data(queue, "x001") == {"n": 1, "tags": ["a"]}
    assert _data(queue, "x002") == {"n": 2, "data": "kept whole"}
    generated = [r["id"] for r in fetch_rows(queue) if not r["id"].startswith("x")]
    assert len(generated) == 100 and all(len(entry_id) == 36 for entry_id in generated)


def test_enqueue_with_bad_lines_reports_each_and_inserts_nothing(
    snowflake_server: ServerProcess, queue_table: TableRef, queue: QueueClient, tmp_path: Path
) -> None:
    queue.enqueue([("old", {"n": 0})])
    before = queue.counts(max_attempts=3).total
    path = _write_lines(
        tmp_path / "bad.jsonl",
        [
            '{"id": "a1", "data": {"n": 1}}',
            '{"id": "a2", "data": ',  # line 2: cut short
            '{"id": "a3", "data": {"n": 3}}',
            "id=a4",  # line 4: not JSON at all
            '{"id": "a1", "data": {"n": 5}}',  # line 5: duplicate of line 1
            '{"id": "a6", "data": {"n": 6}}',
        ],
    )
    result = _run("enqueue", str(path), *_flags(snowflake_server, queue_table), "--json")
    _refused(result, "nothing was enqueued", "3 bad line(s)")
    reported = sorted(
        int(line.split(":")[0].removeprefix("line "))
        for line in result.stderr.splitlines()
        if line.startswith("line ")
    )
    assert reported == [2, 4, 5]
    assert "line 2: not valid JSON" in result.stderr
    assert "line 5: duplicate id 'a1' (first on line 1)" in result.stderr
    assert queue.counts(max_attempts=3).total == before == 1
    assert set(_statuses(queue)) == {"old"}


def test_enqueue_rejects_non_objects_and_empty_ids(
    snowflake_server: ServerProcess, queue_table: TableRef, queue: QueueClient, tmp_path: Path
) -> None:
    path = _write_lines(
        tmp_path / "odd.jsonl",
        ['{"id": "ok", "v": 1}', "[1, 2]", '{"id": "  "}', '"text"', '{"id": null}', ""],
    )
    result = _run("enqueue", str(path), *_flags(snowflake_server, queue_table))
    _refused(
        result,
        "line 2: expected a JSON object, got an array",
        'line 3: empty "id"',
        "line 4: expected a JSON object, got a string",
        'line 5: "id" is null',
    )
    assert "line 1:" not in result.stderr and "line 6:" not in result.stderr
    assert fetch_rows(queue) == []


def test_enqueue_line_rules() -> None:
    """The id and data rules of `enqueue --help`, without a server."""
    from snowflake_operator.ops.enqueue_file import parse_lines

    lines = [
        b'\xef\xbb\xbf{"id": 7, "data": [1, 2]}',  # a BOM, a numeric id, data only
        b'{"data": {"a": 1}}',  # no id: generated, data is the field
        b'{"key": "k1", "data": 1, "x": 2}',  # another field besides data: the whole object
        b'{"id": true}',
        b'{"id": "' + b"x" * 65 + b'"}',
        b'{"id": "n", "v": NaN}',
        b"\xff\xfe",
        b"   ",
    ]
    parsed = parse_lines(lines, "id")
    assert parsed.entries[0] == ("7", [1, 2])
    assert parsed.entries[1][1] == {"a": 1} and parsed.entries[1][0] in parsed.generated
    assert parsed.entries[2][1] == {"key": "k1", "data": 1, "x": 2}
    assert len(parsed.entries) == 3 and len(parsed.generated) == 2
    assert [p.split(":")[0] for p in parsed.problems] == ["line 4", "line 5", "line 6", "line 7"]
    assert "must be a string or a whole number, not a boolean" in parsed.problems[0]
    assert "longer than 64" in parsed.problems[1]
    assert "NaN is not allowed" in parsed.problems[2]
    assert "not UTF-8" in parsed.problems[3]
    by_key = parse_lines([b'{"key": "k1", "data": 1}'], "key")
    assert by_key.entries == [("k1", 1)] and not by_key.generated


def test_enqueue_twice_is_idempotent_and_the_dry_run_changes_nothing(
    snowflake_server: ServerProcess, queue_table: TableRef, queue: QueueClient, tmp_path: Path
) -> None:
    flags = _flags(snowflake_server, queue_table)
    lines = [json.dumps({"id": f"k{i:02d}", "data": {"v": 1}}) for i in range(20)]
    path = _write_lines(tmp_path / "entries.jsonl", lines)
    dry = _ok_json(_run("enqueue", str(path), *flags, "--dry-run", "--json"))
    assert (dry["dry_run"], dry["would_insert"], dry["already_present"]) == (True, 20, 0)
    assert fetch_rows(queue) == []
    first = _ok_json(_run("enqueue", str(path), *flags, "--json"))
    assert (first["inserted"], first["already_present"]) == (20, 0)
    # again, with one entry's data changed and one new entry: existing ids are left alone
    lines[0] = json.dumps({"id": "k00", "data": {"v": 2}})
    _write_lines(path, [*lines, json.dumps({"id": "k20", "data": {"v": 2}})])
    dry_again = _ok_json(_run("enqueue", str(path), *flags, "--dry-run", "--json"))
    assert (dry_again["would_insert"], dry_again["already_present"]) == (1, 20)
    second = _ok_json(_run("enqueue", str(path), *flags, "--json"))
    assert (second["inserted"], second["already_present"]) == (1, 20)
    assert queue.counts(max_attempts=3).total == 21
    assert _data(queue, "k00") == {"v": 1}


# -- requeue --------------------------------------------------------------------------


@pytest.fixture
def dead(queue: QueueClient) -> QueueClient:
    """5 dead letters (3 address errors, 2 customer errors), 1 completed, 1 pending."""
    ids = ["f1", "f2", "f3", "g1", "g2", "done", "wait"]
    queue.enqueue((entry_id, {"id": entry_id}) for entry_id in ids)
    _settle(
        queue,
        failed=[
            ("f1", "HTTP 422: bad address"),
            ("f2", "HTTP 422: bad address"),
            ("f3", "HTTP 422: Bad Address line 2"),
            ("g1", "HTTP 400: no such customer"),
            ("g2", "HTTP 400: no such customer"),
        ],
        done=["done"],
    )
    return queue


def test_requeue_dry_run_counts_and_changes_nothing(
    snowflake_server: ServerProcess, queue_table: TableRef, dead: QueueClient
) -> None:
    before = fetch_rows(dead)
    flags = _flags(snowflake_server, queue_table)
    report = _ok_json(_run("requeue", *flags, "--error-contains", "ADDRESS", "--dry-run", "--json"))
    assert report["dry_run"] is True
    assert report["would_requeue"] == 3
    assert report["ids"] == ["f1", "f2", "f3"]
    assert report["more_ids"] == 0
    everything = _ok_json(_run("requeue", *flags, "--all", "--dry-run", "--json"))
    assert everything["would_requeue"] == 5
    text = _run("requeue", *flags, "--id", "g1", "--id", "done", "--dry-run")
    assert text.returncode == 0, text.stderr
    assert any(
        line.split() == ["would", "be", "requeued", "1"] for line in text.stdout.splitlines()
    )
    assert "not dead letters, left alone: done" in text.stdout
    assert "would requeue: g1" in text.stdout
    assert fetch_rows(dead) == before


def test_requeue_by_id_and_by_error_text(
    snowflake_server: ServerProcess, queue_table: TableRef, dead: QueueClient
) -> None:
    flags = _flags(snowflake_server, queue_table)
    by_id = _ok_json(_run("requeue", *flags, "--id", "f2", "--id", "done", "--json"))
    assert by_id["requeued"] == 1
    assert by_id["not_dead_letters"] == ["done"]
    statuses = _statuses(dead)
    assert statuses["f2"] == "pending" and statuses["done"] == "completed"
    assert statuses["f1"] == statuses["f3"] == "failed"
    by_text = _ok_json(_run("requeue", *flags, "--error-contains", "Customer", "--json"))
    assert by_text["requeued"] == 2
    rows = {row["id"]: row for row in fetch_rows(dead)}
    assert {i for i, r in rows.items() if r["status"] == "failed"} == {"f1", "f3"}
    assert rows["g1"]["status"] == "pending" and rows["g1"]["retry_count"] == 0
    assert rows["done"]["status"] == "completed"


def test_requeue_with_an_unknown_id_changes_nothing(
    snowflake_server: ServerProcess, queue_table: TableRef, dead: QueueClient
) -> None:
    before = fetch_rows(dead)
    result = _run(
        "requeue",
        *_flags(snowflake_server, queue_table),
        "--id",
        "f1",
        "--id",
        "no-such-entry",
        "--json",
    )
    _refused(result, "'no-such-entry'", "nothing was requeued")
    assert "'f1'" not in result.stderr
    assert fetch_rows(dead) == before


def test_bare_requeue_is_refused(
    snowflake_server: ServerProcess, queue_table: TableRef, dead: QueueClient
) -> None:
    before = fetch_rows(dead)
    flags = _flags(snowflake_server, queue_table)
    _refused(_run("requeue", *flags), "--all", "--id", "--error-contains")
    _refused(_run("requeue", *flags, "--all", "--id", "f1"), "--all")
    _refused(_run("requeue", *flags, "--error-contains", " "), "--error-contains")
    assert fetch_rows(dead) == before


# -- purge ----------------------------------------------------------------------------


@pytest.fixture
def aged(queue: QueueClient) -> QueueClient:
    """6 completed (4 of them 10 days ago), 1 dead letter and 1 pending, both with an old
    completed_at that must not make them purgeable."""
    ids = [f"c{i}" for i in range(6)] + ["dl", "p"]
    queue.enqueue((entry_id, {"id": entry_id}) for entry_id in ids)
    _settle(queue, failed=[("dl", "HTTP 400")], done=[f"c{i}" for i in range(6)])
    cursor = queue._connection.cursor()
    cursor.execute(
        f"UPDATE {queue.table.sql} SET completed_at = DATEADD(day, -10, SYSDATE()) "
        "WHERE id IN ('c0', 'c1', 'c2', 'c3', 'dl', 'p')"
    )
    return queue


def test_purge_dry_run_then_purge(
    snowflake_server: ServerProcess, queue_table: TableRef, aged: QueueClient
) -> None:
    flags = _flags(snowflake_server, queue_table)
    dry = _ok_json(_run("purge", *flags, "--older-than", "7d", "--dry-run", "--json"))
    assert (dry["dry_run"], dry["would_purge"], dry["older_than_seconds"]) == (True, 4, 604_800)
    assert len(fetch_rows(aged)) == 8
    narrower = _ok_json(_run("purge", *flags, "--older-than", "11d", "--dry-run", "--json"))
    assert narrower["would_purge"] == 0
    purged = _ok_json(_run("purge", *flags, "--older-than", "168h", "--json"))
    assert (purged["dry_run"], purged["purged"]) == (False, 4)
    assert _statuses(aged) == {"c4": "completed", "c5": "completed", "dl": "failed", "p": "pending"}
    again = _run("purge", *flags, "--older-than", "7d")
    assert again.returncode == 0, again.stderr
    assert any(line.split() == ["deleted", "0"] for line in again.stdout.splitlines())


@pytest.mark.parametrize("duration", ["0d", "7", "2w", "-1h"])
def test_purge_refuses_a_bad_duration(
    snowflake_server: ServerProcess, queue_table: TableRef, aged: QueueClient, duration: str
) -> None:
    result = _run("purge", *_flags(snowflake_server, queue_table), f"--older-than={duration}")
    _refused(result, "--older-than", repr(duration))
    assert len(fetch_rows(aged)) == 8


# -- configuration and errors ---------------------------------------------------------


def test_the_queue_comes_from_exactly_one_place(
    snowflake_server: ServerProcess, queue_table: TableRef, tmp_path: Path
) -> None:
    _refused(_run("status"), "--resource FILE", "--account")
    _refused(
        _run("status", "--account", "local", "--database", "D", "--auth", "emulator"),
        "missing --schema, --table",
    )
    resource = tmp_path / "r.yaml"
    resource.write_text("kind: SnowflakeProcessor\nspec: {}\n", encoding="utf-8")
    _refused(
        _run("status", "--resource", str(resource), "--database", "OTHER"),
        "leave out --database",
    )
    _refused(
        _run("status", "--resource", str(resource)),
        "invalid resource",
        "spec.snowflake: Field required",
        "spec.endpoint: Field required",
    )
    flags = _flags(snowflake_server, queue_table)
    flags[flags.index("--table") + 1] = "work-queue"
    _refused(_run("status", *flags), "--table: invalid Snowflake identifier 'work-queue'")


def test_secrets_are_never_printed(snowflake_server: ServerProcess, queue_table: TableRef) -> None:
    flags = _flags(snowflake_server, queue_table)
    flags[flags.index("--auth") + 1] = "password"
    secret = "s3cret-Passw0rd-value"
    result = _run("status", *flags, env={"SFP_SNOWFLAKE_PASSWORD": secret})
    _refused(result, "--user")
    assert secret not in result.stderr
    no_password = _run("status", *flags, "--user", "ops")
    _refused(no_password, "SFP_SNOWFLAKE_PASSWORD")


def test_a_snowflake_error_is_one_line_and_exit_1(
    snowflake_server: ServerProcess, queue_table: TableRef
) -> None:
    flags = _flags(snowflake_server, queue_table)
    flags[flags.index("--table") + 1] = "NO_SUCH_TABLE"
    result = _run("status", *flags, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Snowflake: ") and "NO_SUCH_TABLE" in line


def test_status_draws_a_rich_table_on_a_terminal(
    snowflake_server: ServerProcess,
    queue_table: TableRef,
    mixed: QueueClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["status", *_flags(snowflake_server, queue_table)]) == 0
    out = capsys.readouterr().out
    assert "┃" in out and "│" in out  # rich's box, not the plain "----" rule
    assert "failed (dead letters)" in out and "HTTP 400: no such customer" in out
    assert "-----" not in out
