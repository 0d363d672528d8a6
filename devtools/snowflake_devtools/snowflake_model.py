"""Snowflake's behaviour where fakesnow differs and the project depends on it, as an ASGI
layer in front of fakesnow's server (the emulator runs it unless ``--fakesnow-only``).

fakesnow is lenient where Snowflake is strict and strict where Snowflake is lenient. The
model makes it behave as Snowflake documents, for every client of the emulator process
(tests, worker processes, the operator):

- PRIMARY KEY, UNIQUE and FOREIGN KEY are declared, never enforced (DuckDB enforces them):
  they are removed from CREATE TABLE, so duplicate ids get in unless the SQL prevents them.
- VARCHAR(n) is enforced (fakesnow stores any length): a longer string fails with 100078.
- UPDATE, DELETE and MERGE take the table's lock: they run one at a time per table (fakesnow
  runs them side by side and reports "Conflict on update"), a transaction keeps the lock until
  it ends, a statement that would be the 21st waiter fails with 000625, and one that waits
  longer than its session's LOCK_TIMEOUT (default 43,200 s) or STATEMENT_TIMEOUT_IN_SECONDS
  (default 172,800 s) fails, as Snowflake reports it (000625, 000630). With ``lock_hold_seconds``
  each such statement holds the lock at least that long, its own execution included (on
  Snowflake about 0.2-0.5 s; fakesnow takes milliseconds), and answers only then; SELECTs
  and INSERTs never wait for it.
- A statement still running after ``in_progress_seconds`` (Snowflake: about 45 s) is
  answered "query in progress" (333333) with a URL the client polls for its result, as
  Snowflake does, so a statement may wait for the lock for minutes without the client's
  socket timing out (60 s) and resending it; a resent request (same requestId) joins the
  statement it repeats instead of running it twice.
- Optionally (``arrival_snapshot_updates``, off by default) the unsafe reading of READ
  COMMITTED: an UPDATE that has to wait for the table's lock chooses its rows from the data
  committed when it arrived and writes them once granted, whatever happened to them
  meanwhile (arrival_snapshot.py); each locking statement then writes at the end of its
  hold, as Snowflake commits at the end of a statement. Off, a waiting statement reads the
  table once it holds the lock (the safe reading). Snowflake's documentation settles
  neither; docs/snowflake-checks.md has the check for a real account.
- A client's cancel (``/queries/v1/abort-request``, what the connector sends when its own
  timer for a statement fires: network_timeout, or execute's timeout) ends a statement still
  waiting for the lock with 000604 "SQL execution canceled", as Snowflake does; fakesnow
  ignores the request. A statement already running finishes (the cancel came too late).
- Account or user defaults for session parameters (``user_defaults``): a login that does
  not set AUTOCOMMIT or LOCK_TIMEOUT gets its user's default, as after
  ``ALTER USER ... SET AUTOCOMMIT = FALSE``.
- CREATE TABLE IF NOT EXISTS of an existing table changes nothing (fakesnow records the
  new definition's column lengths for the old table).
- A bind in a SHOW or DDL statement is a syntax error (001003), as the server answers it;
  fakesnow runs the statement.
- SHOW TABLES reports each table's ``rows`` (COUNT(*)) and ``bytes`` (its rows as JSON
  text; table_sizes.py); fakesnow reports 0 for both.
- Table ownership (table_records.py): the session's current role is the login's (the
  connector's ``role``; SYSADMIN without one) until USE ROLE changes it; the role that
  creates a table owns it, SHOW TABLES names it in ``owner``, ALTER TABLE, DROP TABLE and
  CREATE OR REPLACE of it by another role fail with 003001 "Insufficient privileges to
  operate on table", and GRANT OWNERSHIP ON TABLE (answered by the model: fakesnow knows no
  GRANT) moves it. No role hierarchy: ACCOUNTADMIN acts as every table's owner, no other role
  inherits one; any login may use any role. fakesnow reports SYSADMIN for every table.
- CREATE TRANSIENT TABLE ... DATA_RETENTION_TIME_IN_DAYS = n: SHOW TABLES reports ``kind``
  TRANSIENT and ``retention_time`` n (fakesnow: TABLE and 1 for every table).
- An ALTER TABLE that decreases a text column's length fails (040050), as on Snowflake;
  fakesnow shrinks the recorded length.
- A joined UPDATE that joins one target row to several source rows (multi_joined.py) fails
  with 100090 when the session sets ERROR_ON_NONDETERMINISTIC_UPDATE (at login or with
  ALTER SESSION, which the model answers for the parameters it keeps); otherwise it runs,
  each target row counted once and the multi-joined ones apart (DuckDB counts join rows).

``GET /model/stats`` answers what it saw, as JSON: the lock figures per table, counts of
statements refused, how many answers were "query in progress", how many UPDATEs ran on
their arrival snapshot (and the rows they chose then), and the tables it keeps records of
(owner, kind, retention_time). ``GET /model/queries``
lists the text of the latest statements as they arrived (QUERY_HISTORY's QUERY_TEXT: what
anyone who can see the history reads).
Statements the model itself runs (length, size and existence probes) are not counted by
clients, and only the emulator pays for them.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from sqlglot import exp
from sqlglot.errors import SqlglotError

from . import multi_joined, table_sizes
from . import snowflake_rules as rules
from .arrival_snapshot import arrival_probe, with_chosen_rows
from .string_lengths import TooLong, check_probe, string_writes, written_table
from .table_locks import SNOWFLAKE_WAITERS_LIMIT, LockWaitersExceeded, LockWaitTimedOut, TableLocks
from .table_records import DEFAULT_OWNER, TableRecord, TableRecords

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SNOWFLAKE_LOCK_TIMEOUT_SECONDS = 43_200.0
SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS = 172_800.0  # also what 0 means
_LOGIN = "/session/v1/login-request"
_QUERY = "/queries/v1/query-request"
_RESULT_PREFIX, _RESULT_SUFFIX = "/queries/", "/result"  # GET /queries/<id>/result
QUERY_IN_PROGRESS = "333333"
_ABORT = "/queries/v1/abort-request"
_SESSION = "/session"
_STATS = "/model/stats"
_QUERIES = "/model/queries"
_QUERY_TEXTS_KEPT = 500
# Session parameters the model keeps and fakesnow's ALTER SESSION does not know.
_MODEL_PARAMETERS = frozenset(
    {"LOCK_TIMEOUT", "STATEMENT_TIMEOUT_IN_SECONDS", "ERROR_ON_NONDETERMINISTIC_UPDATE"}
)
_QUERY_TEXT_CHARS = 64 * 1024


@dataclass(frozen=True)
class ModelOptions:
    """What the model changes; every part can be switched off on its own."""

    drop_unenforced_constraints: bool = True
    enforce_varchar_lengths: bool = True
    lock_waiters_limit: int | None = SNOWFLAKE_WAITERS_LIMIT  # None: no table locks
    lock_hold_seconds: float = 0.0  # the least time each locking statement holds the lock
    in_progress_seconds: float = 45.0  # then "query in progress": the client polls
    arrival_snapshot_updates: bool = False  # a waiting UPDATE chooses rows as it arrived
    user_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class _Session:
    autocommit: bool
    lock_timeout: float
    statement_timeout: float = SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS
    nondeterministic_update_error: bool = False  # ERROR_ON_NONDETERMINISTIC_UPDATE
    role: str = DEFAULT_OWNER  # the current role: the login's, then USE ROLE's

    def set(self, name: str, value: Any) -> None:
        """A session parameter the model keeps, as login or ALTER SESSION sets it."""
        if name == "AUTOCOMMIT":
            self.autocommit = _truthy(value)
        elif name == "LOCK_TIMEOUT":
            self.lock_timeout = float(value)
        elif name == "STATEMENT_TIMEOUT_IN_SECONDS":
            self.statement_timeout = float(value) or SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS
        elif name == "ERROR_ON_NONDETERMINISTIC_UPDATE":
            self.nondeterministic_update_error = _truthy(value)


@dataclass
class _MultiJoins:
    """What a joined UPDATE matches: target rows, those joining more than one source row,
    and Snowflake's refusal when the session wants one."""

    rows: int
    multi: int
    refusal: str | None = None


@dataclass
class _Response:
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


class SnowflakeModel:
    """The ASGI app that wraps fakesnow's; ``sessions`` is fakesnow's token -> connection map
    (the model runs its length probes on the statement's own session)."""

    def __init__(self, app: ASGIApp, sessions: Mapping[str, Any], options: ModelOptions) -> None:
        self.app = app
        self.sessions = sessions
        self.options = options
        limit = options.lock_waiters_limit
        self.locks = TableLocks(limit) if limit is not None else None
        self.refused: dict[str, int] = {
            "too_long": 0,
            "constraints_dropped": 0,
            "shrunk_columns": 0,
            "duplicate_rows": 0,
            "insufficient_privileges": 0,
        }
        self.query_texts: deque[tuple[int, str]] = deque(maxlen=_QUERY_TEXTS_KEPT)
        self._session_state: dict[str, _Session] = {}
        self._limits: dict[str, dict[str, int]] = {}
        # Statements waiting for a table's lock, by the request id the client sent, so an
        # abort-request can end the wait; and the ids it ended.
        self._waiting: dict[str, asyncio.Task[None]] = {}
        self._aborted: set[str] = set()
        # Statements not answered yet, by request id (also their query id): a poll of
        # their result, or the client resending the request, waits for them.
        self._running: dict[str, asyncio.Task[_Response]] = {}
        self.in_progress_answers = 0
        self.arrival_snapshots = {"statements": 0, "rows_chosen": 0, "skipped": 0}
        self.tables = TableRecords()  # owner, kind and retention of the tables made here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif path == _STATS:
            await _send(send, _json_response(self.stats()))
        elif path == _QUERIES:
            texts = [{"length": n, "text": text} for n, text in self.query_texts]
            await _send(send, _json_response({"queries": texts}))
        elif path == _LOGIN:
            await _send(send, await self._login(scope, await read_body(receive)))
        elif path == _QUERY:
            await _send(send, await self._statement(scope, await read_body(receive)))
        elif path.startswith(_RESULT_PREFIX) and path.endswith(_RESULT_SUFFIX):
            query_id = path[len(_RESULT_PREFIX) : -len(_RESULT_SUFFIX)]
            await _send(send, await self._result(query_id))
        elif path == _ABORT:
            self._abort(scope, await read_body(receive))
            await _send(send, _json_response({"data": None, "success": True}))
        elif path == _SESSION and b"delete=true" in scope.get("query_string", b""):
            self._forget(_token(scope))
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def stats(self) -> dict[str, Any]:
        locks = self.locks.stats() if self.locks is not None else None
        return {
            "locks": locks,
            **self.refused,
            "in_progress_answers": self.in_progress_answers,
            "arrival_snapshots": {
                "enabled": self.options.arrival_snapshot_updates,
                **self.arrival_snapshots,
            },
            "tables": self.tables.stats(),
        }

    # -- login: a user's defaults for session parameters ------------------------------------

    async def _login(self, scope: Scope, raw: bytes) -> _Response:
        body, compressed = _decode(scope, raw)
        data = body.setdefault("data", {})
        params = data.setdefault("SESSION_PARAMETERS", {})
        for name, value in self.options.user_defaults.get(str(data.get("LOGIN_NAME")), {}).items():
            params.setdefault(name, value)
        response = await self._forward(scope, _encode(body, compressed))
        token = (json.loads(response.body or b"{}").get("data") or {}).get("token")
        if token:
            session = _Session(autocommit=True, lock_timeout=SNOWFLAKE_LOCK_TIMEOUT_SECONDS)
            if role := _login_role(scope):
                session.role = role
            for name, value in params.items():
                session.set(str(name).upper(), value)
            self._session_state[token] = session
        return response

    # -- long statements: "query in progress", then the client polls ----------------------

    async def _statement(self, scope: Scope, raw: bytes) -> _Response:
        request_id = _request_id(scope)
        if not request_id:
            return await self._query(scope, raw)
        running = self._running.get(request_id)
        if running is None:  # not a resent request: a new statement
            running = asyncio.ensure_future(self._query(scope, raw))
            self._running[request_id] = running
        return await self._answer(request_id, running)

    async def _result(self, query_id: str) -> _Response:
        running = self._running.get(query_id)
        if running is None:
            return _error("000709", "02000", f"Statement {query_id} not found")
        return await self._answer(query_id, running)

    async def _answer(self, query_id: str, running: asyncio.Task[_Response]) -> _Response:
        """The statement's answer once it has one, or "in progress" after a while."""
        done, _ = await asyncio.wait({running}, timeout=self.options.in_progress_seconds)
        if not done:
            self.in_progress_answers += 1
            return _json_response(
                {
                    "code": QUERY_IN_PROGRESS,
                    "message": "Query execution is in progress",
                    "success": True,
                    "data": {
                        "queryId": query_id,
                        "getResultUrl": f"{_RESULT_PREFIX}{query_id}{_RESULT_SUFFIX}",
                    },
                }
            )
        self._running.pop(query_id, None)
        return running.result()

    # -- a client's cancel ----------------------------------------------------------------

    def _abort(self, scope: Scope, raw: bytes) -> None:
        """End the wait of the statement the client cancels (by its request id)."""
        body, _ = _decode(scope, raw)
        request_id = str(body.get("requestId", ""))
        waiting = self._waiting.get(request_id)
        if waiting is not None and not waiting.done():
            self._aborted.add(request_id)
            waiting.cancel()

    # -- queries ------------------------------------------------------------------------

    async def _query(self, scope: Scope, raw: bytes) -> _Response:
        body, compressed = _decode(scope, raw)
        token = _token(scope)
        text = str(body.get("sqlText", ""))
        self.query_texts.append((len(text), text[:_QUERY_TEXT_CHARS]))
        try:
            statement = _parsed(text)
        except SqlglotError:
            return await self._forward(scope, raw)  # fakesnow reports its own syntax error
        if body.get("describeOnly"):
            return await self._forward(scope, raw)
        if body.get("bindings") and (bind_error := rules.refused_bind(text, statement)):
            return _error(*rules.SYNTAX_ERROR, bind_error)
        if refusal := await self._not_owner(statement, token):
            self.refused["insufficient_privileges"] += 1
            return _error(*refusal)
        if isinstance(statement, exp.Command | exp.Grant) and (
            grant := rules.ownership_grant(text)
        ):
            # fakesnow knows no GRANT: the model keeps the owner and answers it
            refusal = await self._grant_ownership(*grant, token)
            if refusal is not None:
                return _error(*refusal)
            body = {"sqlText": "SELECT 'Statement executed successfully.' AS status"}
            return await self._forward(scope, _encode(body, compressed))
        if shrunk := await self._shrunk_column(statement, token):
            self.refused["shrunk_columns"] += 1
            return _error(*rules.SHRINK_ERROR, shrunk)
        if isinstance(statement, exp.Create | exp.Alter | exp.Drop):
            self._limits.clear()
        if await self._creates_nothing(statement, token):
            # fakesnow would record the new definition's column lengths for the old table
            body = {"sqlText": "SELECT 'Table already exists, statement succeeded.' AS status"}
            return await self._forward(scope, _encode(body, compressed))
        if (parameters := _session_parameters(statement)) and set(parameters) <= _MODEL_PARAMETERS:
            # parameters only the model keeps (fakesnow refuses them): set, and answered here
            self._after_statement(statement, token, None)
            body = {"sqlText": "SELECT 'Statement executed successfully.' AS status"}
            return await self._forward(scope, _encode(body, compressed))
        rewritten = self._without_constraints(statement)
        if rewritten is not None:
            body["sqlText"] = rewritten
            raw = _encode(body, compressed)
        table = self._locked_table(statement, token)
        chosen: asyncio.Future[list[Any] | None] | None = None
        if table is not None and self.locks is not None:
            binds = _bound_values(body.get("bindings") or {})
            if self.options.arrival_snapshot_updates and self.locks.would_wait(table, token):
                # read now, while the holder's write is not committed yet
                chosen = asyncio.ensure_future(self._arrival_rows(statement, token, binds))
            refused = await self._take_lock(table, token, _request_id(scope))
            if refused is not None:
                if chosen is not None:
                    await asyncio.wait({chosen})
                return refused
            if chosen is not None and (ids := await chosen) is not None:
                body["sqlText"] = with_chosen_rows(statement, binds, ids)
                body.pop("bindings", None)
                raw = _encode(body, compressed)
        held_until = time.monotonic() + self.options.lock_hold_seconds
        try:
            if table is not None and self.options.arrival_snapshot_updates:
                # the write commits at the end of the hold, as a statement's does
                await asyncio.sleep(max(0.0, held_until - time.monotonic()))
            too_long = await self._checked_lengths(statement, token, body.get("bindings") or {})
            if too_long is not None:
                self.refused["too_long"] += 1
                return _error("100078", "22000", too_long.message())
            binds = _bound_values(body.get("bindings") or {})
            joins = await self._multi_joins(statement, token, binds)
            if joins is not None and joins.refusal is not None:
                self.refused["duplicate_rows"] += 1
                return _error(*multi_joined.DUPLICATE_ROW, joins.refusal)
            response = await self._forward(scope, raw)
            if joins is not None:
                response.body = multi_joined.counted_once(response.body, joins.rows, joins.multi)
            if _succeeded(response):
                self._record(statement, token)
            if table_sizes.shows_tables(statement):
                response.body = await self._with_table_facts(
                    response.body, token, sizes=not statement.args.get("terse")
                )
            if table is not None:  # the statement ends once the lock was held long enough
                await asyncio.sleep(max(0.0, held_until - time.monotonic()))
            return response
        finally:
            self._after_statement(statement, token, table)

    async def _arrival_rows(
        self, statement: exp.Expr, token: str, binds: list[Any]
    ) -> list[Any] | None:
        """The ids the UPDATE's WHERE matches in the data committed now; None when it is not
        read at arrival or the probe failed (then it reads once granted, with a log line)."""
        connection = self.sessions.get(token)
        try:
            probe = arrival_probe(statement, binds)
            if probe is None or connection is None:
                return None
            ids = [row[0] for row in await asyncio.to_thread(_all_rows, connection, probe)]
        except Exception as exc:  # the model's own probe failed: not the client's error
            self.arrival_snapshots["skipped"] += 1
            print(f"snowflake model: arrival snapshot skipped: {exc}", file=sys.stderr, flush=True)
            return None
        self.arrival_snapshots["statements"] += 1
        self.arrival_snapshots["rows_chosen"] += len(ids)
        return ids

    async def _shrunk_column(self, statement: exp.Expr, token: str) -> str | None:
        """Snowflake's refusal of an ALTER TABLE that decreases a text column's length."""
        table = rules.altered_table(statement)
        connection = self.sessions.get(token)
        if table is None or connection is None:
            return None
        name = rules.qualified_name(table, *self._session_location(token))
        try:
            lengths = await asyncio.to_thread(_column_limits, connection, name)
        except Exception as exc:  # the model's own probe failed: fakesnow decides
            print(f"snowflake model: column check skipped: {exc}", file=sys.stderr, flush=True)
            return None
        return rules.shrunk_text_column(statement, lengths)

    async def _multi_joins(
        self, statement: exp.Expr, token: str, binds: list[Any]
    ) -> _MultiJoins | None:
        """For a joined UPDATE, read before it runs: the target rows it matches, how many
        of them join more than one source row, and the refusal when its session sets
        ERROR_ON_NONDETERMINISTIC_UPDATE and one does. None when not read."""
        connection = self.sessions.get(token)
        session = self._session_state.get(token)
        try:
            probe = multi_joined.multi_join_probe(statement, binds)
            if probe is None or connection is None:
                return None
            rows, multi, first = await asyncio.to_thread(_first_row, connection, probe)
            found = _MultiJoins(int(rows or 0), int(multi or 0))
            if found.multi and session is not None and session.nondeterministic_update_error:
                assert isinstance(statement, exp.Update)
                shown = multi_joined.row_values_probe(statement, int(first))
                values = await asyncio.to_thread(_first_row, connection, shown)
                found.refusal = multi_joined.duplicate_row_message(values)
            return found
        except Exception as exc:  # the model's own probe failed: fakesnow decides
            print(f"snowflake model: join check skipped: {exc}", file=sys.stderr, flush=True)
            return None

    async def _with_table_facts(self, body: bytes, token: str, sizes: bool) -> bytes:
        """SHOW TABLES' answer with each table's rows and bytes (fakesnow answers 0), and
        its owner, kind and retention_time from the model's records (fakesnow answers
        SYSADMIN, TABLE and 1)."""
        connection = self.sessions.get(token)
        values: dict[table_sizes.TableName, dict[str, Any]] = {}
        for table in table_sizes.listed_tables(body):
            record = self.tables.get(".".join(table))
            values[table] = record.show_columns() if record is not None else {}
            if not sizes or connection is None:
                continue
            try:
                figures = await asyncio.to_thread(
                    _first_row, connection, table_sizes.size_probe(table)
                )
            except Exception as exc:  # the model's own probe failed: fakesnow's figures
                print(f"snowflake model: size skipped: {exc}", file=sys.stderr, flush=True)
                continue
            values[table].update(
                zip(table_sizes.SIZE_COLUMNS, (int(n or 0) for n in figures), strict=True)
            )
        return table_sizes.with_columns(body, values)

    # -- roles and table ownership --------------------------------------------------------

    def _role(self, token: str) -> str:
        session = self._session_state.get(token)
        return session.role if session is not None else DEFAULT_OWNER

    def _name(self, table: exp.Table, token: str) -> str:
        return rules.qualified_name(table, *self._session_location(token))

    async def _not_owner(self, statement: exp.Expr, token: str) -> tuple[str, str, str] | None:
        """Snowflake's refusal of an ALTER TABLE, DROP TABLE or CREATE OR REPLACE TABLE by a
        role that does not own the table. A table the model has no record of is checked only
        if it exists (so IF EXISTS, and fakesnow's own "does not exist", still answer)."""
        role = self._role(token)
        for table in rules.owned_tables(statement):
            name = self._name(table, token)
            if rules.may_operate(role, self.tables.owner(name)):
                continue
            if self.tables.get(name) is None and not await self._exists(name, token):
                continue
            return (*rules.INSUFFICIENT_PRIVILEGES, rules.insufficient_privileges(table))
        return None

    async def _grant_ownership(
        self, table: exp.Table, role: str, token: str
    ) -> tuple[str, str, str] | None:
        """GRANT OWNERSHIP ON TABLE: the new owner kept, or Snowflake's refusal."""
        name = self._name(table, token)
        if not await self._exists(name, token):
            return (*rules.NOT_FOUND, rules.table_not_found(table))
        if not rules.may_grant_ownership(self._role(token), self.tables.owner(name)):
            self.refused["insufficient_privileges"] += 1
            return (*rules.INSUFFICIENT_PRIVILEGES, rules.insufficient_privileges(table))
        self.tables.owned_by(name, role)
        return None

    async def _exists(self, name: str, token: str) -> bool:
        connection = self.sessions.get(token)
        if connection is None:
            return False
        try:
            return await asyncio.to_thread(_table_exists, connection, name)
        except Exception as exc:  # the model's own probe failed: fakesnow decides
            print(f"snowflake model: table check skipped: {exc}", file=sys.stderr, flush=True)
            return False

    def _record(self, statement: exp.Expr, token: str) -> None:
        """After a statement succeeded: the session's role, and the records of the tables
        it made, dropped, renamed or changed."""
        session = self._session_state.get(token)
        if (role := rules.used_role(statement)) is not None and session is not None:
            session.role = role
        elif (created := rules.created_table(statement)) is not None:
            record = TableRecord(self._role(token), created.kind, created.retention_days)
            self.tables.created(self._name(created.table, token), record)
        elif isinstance(statement, exp.Drop) and str(statement.args.get("kind")).upper() == "TABLE":
            for table in rules.owned_tables(statement):
                self.tables.dropped(self._name(table, token))
        elif prefix := rules.dropped_prefix(statement, self._session_location(token)[0]):
            self.tables.dropped_under(prefix)
        elif (renamed := rules.renamed_table(statement)) is not None:
            old, new, swap = renamed
            new_name = self._name(new, token) if swap else self._renamed_to(old, new, token)
            self.tables.renamed(self._name(old, token), new_name, swap)

    def _renamed_to(self, old: exp.Table, new: exp.Table, token: str) -> str:
        """RENAME TO's new name: a bare name stays in the old table's schema."""
        if new.args.get("db") is not None:
            return self._name(new, token)
        database, schema, _ = self._name(old, token).split(".")
        return rules.qualified_name(new, database, schema)

    async def _creates_nothing(self, statement: exp.Expr, token: str) -> bool:
        """CREATE TABLE IF NOT EXISTS of a table that exists: a no-op on Snowflake."""
        if not (
            isinstance(statement, exp.Create)
            and statement.kind == "TABLE"
            and statement.args.get("exists")
            and isinstance(table := statement.find(exp.Table), exp.Table)
        ):
            return False
        connection = self.sessions.get(token)
        if connection is None:
            return False
        name = rules.qualified_name(table, *self._session_location(token))
        return await asyncio.to_thread(_table_exists, connection, name)

    def _without_constraints(self, statement: exp.Expr) -> str | None:
        if not self.options.drop_unenforced_constraints:
            return None
        bare = rules.without_unenforced_constraints(statement)
        if bare is None:
            return None
        self.refused["constraints_dropped"] += 1
        return bare.sql(dialect=rules.DIALECT)

    def _locked_table(self, statement: exp.Expr, token: str) -> str | None:
        table = rules.locked_table(statement)
        if table is None:
            return None
        database, schema = self._session_location(token)
        return rules.qualified_name(table, database, schema)

    async def _take_lock(self, table: str, token: str, request_id: str) -> _Response | None:
        """Wait for the table's lock as long as the session's LOCK_TIMEOUT and
        STATEMENT_TIMEOUT_IN_SECONDS allow, or until the client cancels the statement; the
        refusal, as Snowflake answers it, when the lock was not taken."""
        assert self.locks is not None
        session = self._session_state.get(token) or _Session(True, SNOWFLAKE_LOCK_TIMEOUT_SECONDS)
        bound = min(session.lock_timeout, session.statement_timeout)
        waiting = asyncio.ensure_future(self.locks.acquire(table, token, bound))
        self._waiting[request_id] = waiting
        try:
            await waiting
        except LockWaitersExceeded as exc:
            return _error("000625", "57014", str(exc))
        except LockWaitTimedOut as exc:
            if session.statement_timeout <= session.lock_timeout:
                seconds = f"{session.statement_timeout:g}"
                return _error(
                    "000630",
                    "57014",
                    f"Statement reached its statement or warehouse timeout of {seconds} "
                    "second(s) and was canceled.",
                )
            # Which code Snowflake gives a LOCK_TIMEOUT is not documented; 000625, the lock
            # queue's code, is a guess (docs/snowflake-checks.md has a check for it).
            return _error("000625", "57014", str(exc))
        except asyncio.CancelledError:
            if request_id not in self._aborted:
                raise  # the request itself was cancelled
            self._aborted.discard(request_id)
            return _error("000604", "57014", "SQL execution canceled")
        finally:
            self._waiting.pop(request_id, None)
        return None

    def _after_statement(self, statement: exp.Expr, token: str, table: str | None) -> None:
        """Autocommit ends the statement's transaction; COMMIT, ROLLBACK and DDL end an open
        one (Snowflake commits before and after DDL); ALTER SESSION may switch autocommit."""
        session = self._session_state.get(token)
        if session is not None:
            for name, value in _session_parameters(statement).items():
                session.set(name, value)
        if self.locks is None:
            return
        if _ends_transaction(statement, session):
            self.locks.release_all(token)
        elif table is not None and (session is None or session.autocommit):
            self.locks.release(table, token)

    async def _checked_lengths(
        self, statement: exp.Expr, token: str, bindings: Mapping[str, Any]
    ) -> TooLong | None:
        """The first string too long for its column, if any. A probe the model cannot run
        lets the statement through (fakesnow decides), with a line in the emulator's log."""
        try:
            return await self._too_long(statement, token, bindings)
        except Exception as exc:  # the model's own probe failed: not the client's error
            print(f"snowflake model: length check skipped: {exc}", file=sys.stderr, flush=True)
            return None

    async def _too_long(
        self, statement: exp.Expr, token: str, bindings: Mapping[str, Any]
    ) -> TooLong | None:
        if not self.options.enforce_varchar_lengths:
            return None
        target = written_table(statement)
        connection = self.sessions.get(token)
        if target is None or connection is None:
            return None
        database, schema = self._session_location(token)
        name = rules.qualified_name(target, database, schema)
        limits = self._limits.get(name)
        if limits is None:
            limits = await asyncio.to_thread(_column_limits, connection, name)
            self._limits[name] = limits
        writes = string_writes(statement, _bound_values(bindings), limits)
        if writes.too_long:
            return writes.too_long[0]
        for probe, columns in writes.probes:
            lengths = await asyncio.to_thread(_first_row, connection, probe)
            found = check_probe(columns, lengths, limits)
            if found:
                return found[0]
        return None

    # -- plumbing -----------------------------------------------------------------------

    def _session_location(self, token: str) -> tuple[str | None, str | None]:
        connection = self.sessions.get(token)
        if connection is None:
            return None, None
        return getattr(connection, "database", None), getattr(connection, "schema", None)

    def _forget(self, token: str) -> None:
        if self.locks is not None:
            self.locks.release_all(token)
        self._session_state.pop(token, None)

    async def _forward(self, scope: Scope, body: bytes) -> _Response:
        """Run fakesnow's app on ``body`` and collect its whole answer."""
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        inner_scope = {**scope, "headers": headers}
        sent = False
        response = _Response()

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def collect(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.status = int(message["status"])
                response.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                response.body += message.get("body", b"")

        await self.app(inner_scope, receive, collect)
        return response


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> exp.Expr:
    """Parsed once per distinct text (the protocol sends a few texts over and over); callers
    copy before they change anything."""
    return rules.parse(text)


def _column_limits(connection: Any, name: str) -> dict[str, int]:
    """Declared VARCHAR lengths of a table's columns, from its information schema."""
    database, schema, table = name.split(".")
    cursor = connection.cursor()
    cursor.execute(
        f'SELECT column_name, character_maximum_length FROM "{database}".information_schema.columns'
        f" WHERE table_schema = '{schema}' AND table_name = '{table}'"
        " AND character_maximum_length IS NOT NULL"
    )
    return {str(column).upper(): int(length) for column, length in cursor.fetchall()}


def _succeeded(response: _Response) -> bool:
    try:
        answer = json.loads(response.body or b"{}")
    except ValueError:
        return False
    return bool(isinstance(answer, dict) and answer.get("success"))


def _login_role(scope: Scope) -> str | None:
    """The role the client logs in with (the connector's ``role``: roleName in the URL)."""
    query = parse_qs(scope.get("query_string", b"").decode())
    role = str((query.get("roleName") or [""])[0])
    return rules.role_name(role) if role.strip() else None


def _table_exists(connection: Any, name: str) -> bool:
    database, schema, table = name.split(".")
    cursor = connection.cursor()
    cursor.execute(
        f'SELECT COUNT(*) FROM "{database}".information_schema.tables'
        f" WHERE table_schema = '{schema}' AND table_name = '{table}'"
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def _first_row(connection: Any, sql: str) -> tuple[Any, ...]:
    cursor = connection.cursor()
    cursor.execute(sql)
    row = cursor.fetchone()
    return tuple(row) if row is not None else ()


def _all_rows(connection: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = connection.cursor()
    cursor.execute(sql)
    return [tuple(row) for row in cursor.fetchall()]


def _bound_values(bindings: Mapping[str, Any]) -> list[Any]:
    """Positional binds (``{"1": {"type": ..., "value": ...}}``) as Python values."""
    from fakesnow.converter import from_binding

    if not bindings or not all(key.isdigit() for key in bindings):
        return []
    values: list[Any] = []
    for position in range(1, len(bindings) + 1):
        binding = bindings[str(position)]
        value = binding.get("value")
        values.append(None if value is None or isinstance(value, list) else from_binding(binding))
    return values


def _ends_transaction(statement: exp.Expr, session: _Session | None) -> bool:
    """COMMIT, ROLLBACK, DDL (Snowflake commits before and after it), or switching
    autocommit on."""
    if isinstance(statement, exp.Commit | exp.Rollback | exp.Create | exp.Drop):
        return True
    if isinstance(statement, exp.Alter):
        return not _is_alter_session(statement) or session is None or session.autocommit
    return False


def _is_alter_session(statement: exp.Expr) -> bool:
    return isinstance(statement, exp.Alter) and str(statement.args.get("kind")).upper() == "SESSION"


def _session_parameters(statement: exp.Expr) -> dict[str, str]:
    """NAME -> value text of an ALTER SESSION SET; empty for anything else."""
    if not _is_alter_session(statement):
        return {}
    found: dict[str, str] = {}
    for item in statement.find_all(exp.SetItem):
        if isinstance(item.this, exp.EQ):
            value = item.this.expression  # a literal's text; TRUE and FALSE have no name
            text = value.name if isinstance(value, exp.Literal) else value.sql(rules.DIALECT)
            found[item.this.this.name.upper()] = text
    return found


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().upper() in {"TRUE", "1", "ON", "YES"}


def _request_id(scope: Scope) -> str:
    """The requestId the client put in the query's URL (an abort-request names it)."""
    query = parse_qs(scope.get("query_string", b"").decode())
    return str((query.get("requestId") or [""])[0])


def _token(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == b"authorization":
            return str(value.decode()[17:-1])  # Snowflake Token="..."
    return ""


def _decode(scope: Scope, raw: bytes) -> tuple[dict[str, Any], bool]:
    compressed = any(
        k.lower() == b"content-encoding" and v.lower() == b"gzip"
        for k, v in scope.get("headers", [])
    )
    text = gzip.decompress(raw) if compressed else raw
    return json.loads(text or b"{}"), compressed


def _encode(body: Mapping[str, Any], compressed: bool) -> bytes:
    raw = json.dumps(body).encode()
    return gzip.compress(raw) if compressed else raw


async def read_body(receive: Receive) -> bytes:
    """An ASGI request's whole body (every front layer of the emulator reads it so)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _json_response(payload: Mapping[str, Any]) -> _Response:
    return _Response(200, [(b"content-type", b"application/json")], json.dumps(payload).encode())


def _error(code: str, state: str, message: str) -> _Response:
    """A failed query as Snowflake (and fakesnow) answer it: HTTP 200, success false."""
    return _json_response(
        {
            "data": {"errorCode": code, "sqlState": state},
            "code": code,
            "message": message,
            "success": False,
        }
    )


async def _send(send: Send, response: _Response) -> None:
    headers = [(k, v) for k, v in response.headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
