"""The ops commands (`status`, `enqueue`, `requeue`, `purge`) run as a user runs them:
`python -m snowflake_processor ...` against the fakesnow server, queue named by flags or by a
SnowflakeProcessor resource file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from snowflake_devtools.processes import ServerProcess
from snowflake_processor.cli import main
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from tests.support.cli import ok_json, queue_flags, refused, run_cli, write_lines
from tests.support.queues import entry_data, fetch_rows, settle, statuses
from tests.support.snowflake import query_texts

LONG_ERROR = "HTTP 422: " + "the address field is not a deliverable postal address; " * 6


@pytest.fixture
def flags(snowflake_server: ServerProcess, queue_table: TableRef) -> list[str]:
    """The flags that name the test's queue table (a fresh list for each test)."""
    return queue_flags(snowflake_server.port, queue_table)


# -- status ---------------------------------------------------------------------------


@pytest.fixture
def mixed(queue: QueueClient) -> QueueClient:
    """10 entries: 4 pending, 1 processing, 2 completed, 3 dead letters (d3 newest)."""
    ids = [f"e{i}" for i in range(5)] + ["c1", "c2", "d1", "d2", "d3"]
    queue.enqueue((entry_id, {"id": entry_id}) for entry_id in ids)
    settle(
        queue,
        failed=[("d1", "HTTP 400: no such customer"), ("d2", LONG_ERROR), ("d3", "HTTP 404")],
        done=["c1", "c2"],
        keep=["e4"],
    )
    return queue


def test_status_json_has_counts_age_and_newest_dead_letters_in_full(
    flags: list[str], mixed: QueueClient
) -> None:
    status = ok_json(run_cli("status", *flags, "--dead-letters", "2", "--json"))
    assert status["table"] == str(mixed.table)
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


def test_status_table_truncates_long_errors(flags: list[str], mixed: QueueClient) -> None:
    result = run_cli("status", *flags)
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
    snowflake_server: ServerProcess, flags: list[str], queue: QueueClient, tmp_path: Path
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
    database: {queue.table.database.lower()}
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
    by_resource = ok_json(run_cli("status", "--resource", str(resource), "--json"))
    assert by_resource["table"] == str(queue.table)
    assert by_resource["max_attempts"] == 2
    # e0 has used its 2 attempts: not eligible under the resource's maxAttempts
    assert (by_resource["counts"]["pending"], by_resource["counts"]["eligible"]) == (3, 2)
    by_flags = ok_json(run_cli("status", *flags, "--json"))
    assert (by_flags["max_attempts"], by_flags["counts"]["eligible"]) == (5, 3)


# -- enqueue --------------------------------------------------------------------------


def test_enqueue_500_lines_in_bulk_then_counts(
    flags: list[str], queue: QueueClient, tmp_path: Path
) -> None:
    lines = []
    for i in range(500):
        if i % 5 == 0:
            lines.append(json.dumps({"n": i}))  # no id: one is generated
        elif i % 2:
            lines.append(json.dumps({"id": f"x{i:03d}", "data": {"n": i, "tags": ["a"]}}))
        else:
            lines.append(json.dumps({"id": f"x{i:03d}", "n": i, "data": "kept whole"}))
    path = write_lines(tmp_path / "entries.jsonl", lines)
    report = ok_json(run_cli("enqueue", str(path), *flags, "--json"))
    assert report["dry_run"] is False
    assert (report["entries"], report["inserted"], report["already_present"]) == (500, 500, 0)
    assert report["generated_ids"] == 100
    counts = queue.counts(max_attempts=3)
    assert (counts.pending, counts.total) == (500, 500)
    # {id, data}: the data field; anything else: the object without its id
    assert entry_data(queue, "x001") == {"n": 1, "tags": ["a"]}
    assert entry_data(queue, "x002") == {"n": 2, "data": "kept whole"}
    generated = [r["id"] for r in fetch_rows(queue) if not r["id"].startswith("x")]
    assert len(generated) == 100 and all(len(entry_id) == 36 for entry_id in generated)


def test_enqueue_with_bad_lines_reports_each_and_inserts_nothing(
    flags: list[str], queue: QueueClient, tmp_path: Path
) -> None:
    queue.enqueue([("old", {"n": 0})])
    before = queue.counts(max_attempts=3).total
    path = write_lines(
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
    result = run_cli("enqueue", str(path), *flags, "--json")
    refused(result, "nothing was enqueued", "3 bad line(s)")
    reported = sorted(
        int(line.split(":")[0].removeprefix("line "))
        for line in result.stderr.splitlines()
        if line.startswith("line ")
    )
    assert reported == [2, 4, 5]
    assert "line 2: not valid JSON" in result.stderr
    assert "line 5: duplicate id 'a1' (first on line 1)" in result.stderr
    assert queue.counts(max_attempts=3).total == before == 1
    assert set(statuses(queue)) == {"old"}


def test_enqueue_rejects_non_objects_and_empty_ids(
    flags: list[str], queue: QueueClient, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "odd.jsonl",
        ['{"id": "ok", "v": 1}', "[1, 2]", '{"id": "  "}', '"text"', '{"id": null}', ""],
    )
    result = run_cli("enqueue", str(path), *flags)
    refused(
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
    flags: list[str], queue: QueueClient, tmp_path: Path
) -> None:
    lines = [json.dumps({"id": f"k{i:02d}", "data": {"v": 1}}) for i in range(20)]
    path = write_lines(tmp_path / "entries.jsonl", lines)
    dry = ok_json(run_cli("enqueue", str(path), *flags, "--dry-run", "--json"))
    assert (dry["dry_run"], dry["would_insert"], dry["already_present"]) == (True, 20, 0)
    assert fetch_rows(queue) == []
    first = ok_json(run_cli("enqueue", str(path), *flags, "--json"))
    assert (first["inserted"], first["already_present"]) == (20, 0)
    # again, with one entry's data changed and one new entry: existing ids are left alone
    lines[0] = json.dumps({"id": "k00", "data": {"v": 2}})
    write_lines(path, [*lines, json.dumps({"id": "k20", "data": {"v": 2}})])
    dry_again = ok_json(run_cli("enqueue", str(path), *flags, "--dry-run", "--json"))
    assert (dry_again["would_insert"], dry_again["already_present"]) == (1, 20)
    second = ok_json(run_cli("enqueue", str(path), *flags, "--json"))
    assert (second["inserted"], second["already_present"]) == (1, 20)
    assert queue.counts(max_attempts=3).total == 21
    assert entry_data(queue, "k00") == {"v": 1}


# -- requeue --------------------------------------------------------------------------


@pytest.fixture
def dead(queue: QueueClient) -> QueueClient:
    """5 dead letters (3 address errors, 2 customer errors), 1 completed, 1 pending."""
    ids = ["f1", "f2", "f3", "g1", "g2", "done", "wait"]
    queue.enqueue((entry_id, {"id": entry_id}) for entry_id in ids)
    settle(
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


def test_requeue_dry_run_counts_and_changes_nothing(flags: list[str], dead: QueueClient) -> None:
    before = fetch_rows(dead)
    report = ok_json(
        run_cli("requeue", *flags, "--error-contains", "ADDRESS", "--dry-run", "--json")
    )
    assert report["dry_run"] is True
    assert report["would_requeue"] == 3
    assert report["ids"] == ["f1", "f2", "f3"]
    assert report["more_ids"] == 0
    everything = ok_json(run_cli("requeue", *flags, "--all", "--dry-run", "--json"))
    assert everything["would_requeue"] == 5
    text = run_cli("requeue", *flags, "--id", "g1", "--id", "done", "--dry-run")
    assert text.returncode == 0, text.stderr
    assert any(
        line.split() == ["would", "be", "requeued", "1"] for line in text.stdout.splitlines()
    )
    assert "not dead letters, left alone: done" in text.stdout
    assert "would requeue: g1" in text.stdout
    assert fetch_rows(dead) == before


def test_requeue_by_id_and_by_error_text(flags: list[str], dead: QueueClient) -> None:
    by_id = ok_json(run_cli("requeue", *flags, "--id", "f2", "--id", "done", "--json"))
    assert by_id["requeued"] == 1
    assert by_id["not_dead_letters"] == ["done"]
    status = statuses(dead)
    assert status["f2"] == "pending" and status["done"] == "completed"
    assert status["f1"] == status["f3"] == "failed"
    by_text = ok_json(run_cli("requeue", *flags, "--error-contains", "Customer", "--json"))
    assert by_text["requeued"] == 2
    rows = {row["id"]: row for row in fetch_rows(dead)}
    assert {i for i, r in rows.items() if r["status"] == "failed"} == {"f1", "f3"}
    assert rows["g1"]["status"] == "pending" and rows["g1"]["retry_count"] == 0
    assert rows["done"]["status"] == "completed"


def test_requeue_with_an_unknown_id_changes_nothing(flags: list[str], dead: QueueClient) -> None:
    before = fetch_rows(dead)
    result = run_cli(
        "requeue",
        *flags,
        "--id",
        "f1",
        "--id",
        "no-such-entry",
        "--json",
    )
    refused(result, "'no-such-entry'", "nothing was requeued")
    assert "'f1'" not in result.stderr
    assert fetch_rows(dead) == before


def test_bare_requeue_is_refused(flags: list[str], dead: QueueClient) -> None:
    before = fetch_rows(dead)
    refused(run_cli("requeue", *flags), "--all", "--id", "--error-contains")
    refused(run_cli("requeue", *flags, "--all", "--id", "f1"), "--all")
    refused(run_cli("requeue", *flags, "--error-contains", " "), "--error-contains")
    assert fetch_rows(dead) == before


# -- purge ----------------------------------------------------------------------------


@pytest.fixture
def aged(queue: QueueClient) -> QueueClient:
    """6 completed (4 of them 10 days ago), 1 dead letter and 1 pending, both with an old
    completed_at that must not make them purgeable."""
    ids = [f"c{i}" for i in range(6)] + ["dl", "p"]
    queue.enqueue((entry_id, {"id": entry_id}) for entry_id in ids)
    settle(queue, failed=[("dl", "HTTP 400")], done=[f"c{i}" for i in range(6)])
    cursor = queue._connection.cursor()
    cursor.execute(
        f"UPDATE {queue.table.sql} SET completed_at = DATEADD(day, -10, SYSDATE()) "
        "WHERE id IN ('c0', 'c1', 'c2', 'c3', 'dl', 'p')"
    )
    return queue


def test_purge_dry_run_then_purge(flags: list[str], aged: QueueClient) -> None:
    dry = ok_json(run_cli("purge", *flags, "--older-than", "7d", "--dry-run", "--json"))
    assert (dry["dry_run"], dry["would_purge"], dry["older_than_seconds"]) == (True, 4, 604_800)
    assert len(fetch_rows(aged)) == 8
    narrower = ok_json(run_cli("purge", *flags, "--older-than", "11d", "--dry-run", "--json"))
    assert narrower["would_purge"] == 0
    purged = ok_json(run_cli("purge", *flags, "--older-than", "168h", "--json"))
    assert (purged["dry_run"], purged["purged"], purged["batches"]) == (False, 4, 1)
    assert statuses(aged) == {"c4": "completed", "c5": "completed", "dl": "failed", "p": "pending"}
    again = run_cli("purge", *flags, "--older-than", "7d")
    assert again.returncode == 0, again.stderr
    assert any(line.split() == ["deleted", "0"] for line in again.stdout.splitlines())


def test_purge_deletes_in_bounded_batches_and_only_what_is_eligible(
    snowflake_server: ServerProcess, flags: list[str], queue: QueueClient
) -> None:
    """25 old completed rows in batches of 10: three DELETEs (10, 10, 5), each choosing at
    most 10 ids. Kept: recent completions, old-looking failed and pending rows, and a
    pending row a legacy writer added under an id that is also an old completed row's."""
    old = [f"old-{n:02d}" for n in range(25)]
    recent = [f"new-{n}" for n in range(3)]
    queue.enqueue((entry_id, {"id": entry_id}) for entry_id in [*old, *recent, "dl", "p"])
    settle(queue, failed=[("dl", "HTTP 400")], done=[*old, *recent])
    cursor = queue._connection.cursor()
    cursor.execute(
        f"UPDATE {queue.table.sql} SET completed_at = DATEADD(day, -10, SYSDATE()) "
        "WHERE id LIKE 'old-%' OR id IN ('dl', 'p')"
    )
    # No primary key is enforced: a second row under an old completed row's id, pending.
    cursor.execute(
        f"INSERT INTO {queue.table.sql} (id, status, retry_count, created_at, completed_at) "
        "SELECT 'old-00', 'pending', 0, SYSDATE(), DATEADD(day, -10, SYSDATE())"
    )
    dry = ok_json(run_cli("purge", *flags, "--older-than", "7d", "--batch-size", "10",
                          "--dry-run", "--json"))  # fmt: skip
    assert (dry["would_purge"], dry["batches"], dry["batch_size"]) == (25, 3, 10)

    purged = ok_json(run_cli("purge", *flags, "--older-than", "7d", "--batch-size", "10",
                             "--json"))  # fmt: skip
    assert (purged["purged"], purged["batches"], purged["batch_size"]) == (25, 3, 10)
    kept = fetch_rows(queue)
    assert sorted((row["id"], row["status"]) for row in kept) == [
        ("dl", "failed"),
        *((entry_id, "completed") for entry_id in recent),
        ("old-00", "pending"),
        ("p", "pending"),
    ]
    deletes = [
        q["text"]
        for q in query_texts(snowflake_server.port)
        if q["text"].startswith(f"DELETE FROM {queue.table.sql}")
    ]
    assert len(deletes) == 3
    assert all("QUALIFY ROW_NUMBER() OVER (ORDER BY completed_at, id) <= ?" in d for d in deletes)


def test_purge_refuses_a_bad_batch_size(flags: list[str], aged: QueueClient) -> None:
    for size in ("0", "-5", "ten", "1000001"):
        refused(run_cli("purge", *flags, "--older-than", "7d", f"--batch-size={size}"),
                "--batch-size", repr(size))  # fmt: skip
    assert len(fetch_rows(aged)) == 8


@pytest.mark.parametrize("duration", ["0d", "7", "2w", "-1h"])
def test_purge_refuses_a_bad_duration(flags: list[str], aged: QueueClient, duration: str) -> None:
    result = run_cli("purge", *flags, f"--older-than={duration}")
    refused(result, "--older-than", repr(duration))
    assert len(fetch_rows(aged)) == 8


# -- configuration and errors ---------------------------------------------------------


def test_the_queue_comes_from_exactly_one_place(flags: list[str], tmp_path: Path) -> None:
    refused(run_cli("status"), "--resource FILE", "--account")
    refused(
        run_cli("status", "--account", "local", "--database", "D", "--auth", "emulator"),
        "missing --schema, --table",
    )
    resource = tmp_path / "r.yaml"
    resource.write_text("kind: SnowflakeProcessor\nspec: {}\n", encoding="utf-8")
    refused(
        run_cli("status", "--resource", str(resource), "--database", "OTHER"),
        "leave out --database",
    )
    refused(
        run_cli("status", "--resource", str(resource)),
        "invalid resource",
        "spec.snowflake: Field required",
        "spec.endpoint: Field required",
    )
    flags[flags.index("--table") + 1] = "work-queue"
    refused(run_cli("status", *flags), "--table: invalid Snowflake identifier 'work-queue'")


def test_secrets_are_never_printed(flags: list[str]) -> None:
    flags[flags.index("--auth") + 1] = "password"
    secret = "s3cret-Passw0rd-value"
    result = run_cli("status", *flags, env={"SFP_SNOWFLAKE_PASSWORD": secret})
    refused(result, "--snowflake-user")
    assert secret not in result.stderr
    no_password = run_cli("status", *flags, "--snowflake-user", "ops")
    refused(no_password, "SFP_SNOWFLAKE_PASSWORD")


def test_the_old_user_flag_still_names_the_snowflake_user_with_a_warning(
    flags: list[str],
) -> None:
    """kubectl's --user is a kubeconfig user; ours was the Snowflake user, so it keeps
    working for now and says what to write instead."""
    flags[flags.index("--auth") + 1] = "password"
    result = run_cli("status", *flags, "--user", "ops")
    refused(result, "SFP_SNOWFLAKE_PASSWORD", "--user is deprecated", "--snowflake-user")
    assert "Field required" not in result.stderr  # the user was taken: only the password lacks


def test_a_workload_identity_login_from_a_laptop_says_how_to_log_in_instead() -> None:
    flags = ["--account", "xy12345", "--database", "D", "--schema", "S", "--table", "T"]
    result = run_cli("status", *flags, "-o", "json", timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith("error: cannot connect to Snowflake at xy12345 with auth "
                            "workload_identity")  # fmt: skip
    assert hint.startswith("hint: workload_identity") and "--auth key_pair" in hint


def test_a_snowflake_error_is_one_line_and_exit_1(flags: list[str]) -> None:
    flags[flags.index("--table") + 1] = "NO_SUCH_TABLE"
    result = run_cli("status", *flags, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Snowflake: ") and "NO_SUCH_TABLE" in line


def test_status_draws_a_rich_table_on_a_terminal(
    flags: list[str],
    mixed: QueueClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["status", *flags]) == 0
    out = capsys.readouterr().out
    assert "┃" in out and "│" in out  # rich's box, not the plain "----" rule
    assert "failed (dead letters)" in out and "HTTP 400: no such customer" in out
    assert "-----" not in out
