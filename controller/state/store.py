"""SQLite store: what the world cannot tell (attempt verdicts, backoff deadlines, events).

Git refs, worktrees, processes and exit records are read from the world on every pass; this
database only keeps what cannot be recovered from them: the intent row written before a
process starts, the controller's verdict on each attempt (outcome, reason, retry deadline,
conflicting files), an append-only event log, the tasks `spawn-parallel` asked to start
first, a person's orders about tasks (retry, reset, stop), the fleet's rate limiter per
provider, and a few controller facts (pid, last pass, the spec it runs on and its
generation, command-line settings). Losing it costs history, never correctness of the next
pass.

The schema is versioned in the `meta` table. `MIGRATIONS[i]` brings a database from version
`i` to `i + 1`; a later release appends to that list and never edits an entry. A database
written by a newer release (a version above `SCHEMA_VERSION`) is refused with a clear error
instead of being misread. Connections use WAL so read-only commands (`status`, `diff`) can
read while the controller writes, and a 5 s busy timeout rides out short write locks.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from controller.model.observed import ConflictCheck, TaskOrders, Usage
from controller.model.ratelimit import LimiterState
from controller.state import asks, files
from controller.state import conflict_checks as checks_table
from controller.state import rate_limits as limits_table
from controller.state.rows import ATTEMPT_COLUMNS, AttemptRow, EventRow, row_to_attempt
from controller.state.schema import MIGRATIONS, SCHEMA_VERSION, schema_version

BUSY_TIMEOUT_S = 5.0
# SQLite opens these beside the database, following symlinks (and truncates `-shm` as the
# first connection): one planted in the state folder must never be opened
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _planted_companions(path: Path) -> list[str]:
    return files.planted(path.parent, [path.name + suffix for suffix in DB_SUFFIXES])


class StoreError(RuntimeError):
    """The database cannot be used (e.g. it was written by a newer orchestrator)."""


def _newer_error(path: Path, found: int) -> StoreError:
    return StoreError(
        f"{path}: database schema version {found} is newer than this orchestrator "
        f"understands (up to {SCHEMA_VERSION}); upgrade orchestrator or use a fresh state/"
    )


class Store:
    """The controller's database. Use `Store.open` (controller) or `Store.open_readonly`."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if readonly:
                conn.execute("PRAGMA query_only = ON")
                found = schema_version(conn)
                if found > SCHEMA_VERSION:
                    raise _newer_error(self.path, found)
                self.schema_version = found
            else:
                conn.execute("PRAGMA journal_mode = WAL")
                self.schema_version = self._migrate()
        except BaseException:
            conn.close()
            raise

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating parents, file and schema as needed) for reading and writing."""
        path = Path(path)
        files.ensure_dirs(path.parent)
        for name in _planted_companions(path):
            files.unlink(path.parent, path.parent / name)
        return cls(path)

    @classmethod
    def open_readonly(cls, path: Path) -> Store | None:
        """Open for reading only; None when there is no database yet. Never creates it.

        A database not yet migrated to this release's schema is reported as None as well when
        it is empty (version 0); an older non-empty one raises `StoreError` (the controller
        migrates on its next start).
        """
        path = Path(path)
        if not path.is_file():
            return None
        planted = _planted_companions(path)
        if planted:
            raise StoreError(
                f"{path.parent}: {', '.join(planted)} is not a file the controller made "
                "(a symlink, pipe or hard link); not opening the store through it. "
                "Starting the controller removes it."
            )
        store = cls(path, readonly=True)
        if store.schema_version == 0:
            store.close()
            return None
        if store.schema_version < SCHEMA_VERSION:
            found = store.schema_version
            store.close()
            raise StoreError(
                f"{path}: database schema version {found} is older than {SCHEMA_VERSION}; "
                "start the controller once to migrate it"
            )
        return store

    def _migrate(self) -> int:
        conn = self._conn
        found = schema_version(conn)
        if found > SCHEMA_VERSION:
            raise _newer_error(self.path, found)
        if found == SCHEMA_VERSION:
            return found
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = schema_version(conn)  # another process may have migrated meanwhile
            if found > SCHEMA_VERSION:
                raise _newer_error(self.path, found)
            if found == 0:
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            for migration in MIGRATIONS[found:]:
                migration(conn)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return SCHEMA_VERSION

    # --- attempts -------------------------------------------------------------------------

    def begin_attempt(
        self,
        task: str,
        number: int,
        agent: str | None,
        base_sha: str | None,
        now: float,
        port: int | None = None,
    ) -> None:
        """Record the intent to start attempt `number` of `task`, before the process starts.

        Idempotent: a second call for the same (task, number) leaves the first row as is.
        """
        self._conn.execute(
            "INSERT INTO attempts(task, number, created_at, agent, base_sha, port) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(task, number) DO NOTHING",
            (task, number, now, agent, base_sha, port),
        )

    def set_usage(self, task: str, number: int, usage: Usage | None, turns: int | None) -> None:
        """Record what an attempt cost, as its agent reported it (a missing row is made)."""
        values: tuple[int | float | None, ...] = (None,) * 5
        if usage is not None:
            values = (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                usage.cost_usd,
            )
        self._conn.execute(
            "INSERT INTO attempts(task, number, input_tokens, output_tokens, cache_read_tokens, "
            "cache_write_tokens, cost_usd, turns) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(task, number) DO UPDATE SET input_tokens = excluded.input_tokens, "
            "output_tokens = excluded.output_tokens, cache_read_tokens = "
            "excluded.cache_read_tokens, cache_write_tokens = excluded.cache_write_tokens, "
            "cost_usd = excluded.cost_usd, turns = excluded.turns",
            (task, number, *values, turns),
        )

    def set_launched(
        self,
        task: str,
        number: int,
        pid: int | None,
        create_time: float | None,
        started_at: float,
        handle: str | None = None,
        start_id: str | None = None,
    ) -> None:
        """Record the started process or job (upserts if the intent row is missing)."""
        self._conn.execute(
            "INSERT INTO attempts(task, number, pid, create_time, started_at, handle, start_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(task, number) DO UPDATE SET "
            "pid = excluded.pid, create_time = excluded.create_time, "
            "started_at = excluded.started_at, handle = excluded.handle, "
            "start_id = excluded.start_id",
            (task, number, pid, create_time, started_at, handle, start_id),
        )

    def record_exit(self, task: str, number: int, exit_code: int, ended_at: float) -> None:
        """The exit of an attempt judged before it ended (a remote job stopped by the
        controller): its verdict stays, it no longer counts as running."""
        self._conn.execute(
            "UPDATE attempts SET exit_code = ?, ended_at = COALESCE(ended_at, ?) "
            "WHERE task = ? AND number = ? AND exit_code IS NULL",
            (exit_code, ended_at, task, number),
        )

    def finish_attempt(
        self,
        task: str,
        number: int,
        *,
        outcome: str,
        reason: str = "",
        exit_code: int | None = None,
        ended_at: float | None = None,
        retry_at: float | None = None,
        conflicts: Sequence[str] = (),
    ) -> None:
        """Record the controller's verdict. Sets outcome and reason, plus the other fields
        only when given (non-None; `conflicts` when non-empty). Upserts a missing row."""
        values: dict[str, Any] = {"outcome": outcome, "reason": reason}
        if exit_code is not None:
            values["exit_code"] = exit_code
        if ended_at is not None:
            values["ended_at"] = ended_at
        if retry_at is not None:
            values["retry_at"] = retry_at
        if conflicts:
            values["conflicts"] = json.dumps(list(conflicts))
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)
        self._conn.execute(
            f"INSERT INTO attempts(task, number, {cols}) VALUES (?, ?, {marks}) "
            f"ON CONFLICT(task, number) DO UPDATE SET {updates}",
            (task, number, *values.values()),
        )

    def attempts(self, task: str | None = None) -> list[AttemptRow]:
        """Attempt rows ordered by (task, number); only `task`'s when given."""
        sql = f"SELECT {ATTEMPT_COLUMNS} FROM attempts"
        params: tuple[Any, ...] = ()
        if task is not None:
            sql += " WHERE task = ?"
            params = (task,)
        rows = self._conn.execute(sql + " ORDER BY task, number", params).fetchall()
        return [row_to_attempt(r) for r in rows]

    def attempts_by_task(self) -> dict[str, list[AttemptRow]]:
        """All attempt rows grouped by task, each list ordered by number (one query)."""
        out: dict[str, list[AttemptRow]] = {}
        for row in self.attempts():
            out.setdefault(row.task, []).append(row)
        return out

    # --- events ---------------------------------------------------------------------------

    def add_event(
        self,
        kind: str,
        message: str,
        task: str | None = None,
        data: Any = None,
        now: float | None = None,
    ) -> int:
        """Append an event; returns its id (ids increase with insertion order)."""
        cur = self._conn.execute(
            "INSERT INTO events(ts, task, kind, message, data) VALUES (?, ?, ?, ?, ?)",
            (
                time.time() if now is None else now,
                task,
                kind,
                message,
                None if data is None else json.dumps(data, default=str),
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def events(
        self,
        task: str | None = None,
        kinds: Iterable[str] | None = None,
        since_id: int = 0,
        limit: int | None = None,
        *,
        newest: bool = False,
    ) -> list[EventRow]:
        """Events with id > `since_id`, oldest first, optionally filtered by task and kinds.

        `limit` keeps the first `limit` matches (so `--follow` paging never skips one), or
        the last `limit` when `newest` is true (still returned oldest first).
        """
        where = ["id > ?"]
        params: list[Any] = [since_id]
        if task is not None:
            where.append("task = ?")
            params.append(task)
        if kinds is not None:
            kind_list = list(kinds)
            if not kind_list:
                return []
            where.append(f"kind IN ({', '.join('?' for _ in kind_list)})")
            params.extend(kind_list)
        sql = "SELECT id, ts, task, kind, message, data FROM events WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC" if newest else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._conn.execute(sql, params).fetchall()
        if newest:
            rows.reverse()
        return [EventRow(*r[:5], None if r[5] is None else json.loads(r[5])) for r in rows]

    # --- early conflict checks ------------------------------------------------------------

    def set_conflict_checks(self, checks: Iterable[ConflictCheck]) -> None:
        """Store the latest check of each task branch (one row per task, replaced)."""
        checks_table.save(self._conn, checks)

    def conflict_checks(self) -> dict[str, ConflictCheck]:
        """The latest check of each task branch (none in a database before the table)."""
        return checks_table.load(self._conn)

    # --- what people asked for: start requests (spawn-parallel), orders (`state.asks`) ----

    def add_request(self, task: str, now: float) -> bool:
        return asks.add_request(self._conn, task, now)

    def requests(self) -> dict[str, float]:
        return asks.requests(self._conn)

    def clear_request(self, task: str) -> bool:
        return asks.clear_request(self._conn, task)

    def add_intervention(
        self, task: str, kind: str, after: int, now: float, *, fresh: bool = False
    ) -> None:
        asks.add_intervention(self._conn, task, kind, after, now, fresh=fresh)

    def orders(self) -> dict[str, TaskOrders]:
        return asks.orders(self._conn)

    # --- rate limits ----------------------------------------------------------------------

    def rate_limits(self) -> dict[str, LimiterState]:
        return limits_table.load(self._conn)

    def set_rate_limit(self, state: LimiterState) -> None:
        limits_table.save(self._conn, state)

    # --- controller facts -----------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO controller(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM controller WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
