"""The store's schema: versioned migrations, append-only.

`MIGRATIONS[i]` brings a database from version `i` to `i + 1`; a later release appends to
that list and never edits an entry. The version lives in the `meta` table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _migrate_v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE attempts (
            task TEXT NOT NULL,
            number INTEGER NOT NULL,
            created_at REAL,
            pid INTEGER,
            create_time REAL,
            started_at REAL,
            ended_at REAL,
            exit_code INTEGER,
            outcome TEXT,
            reason TEXT NOT NULL DEFAULT '',
            retry_at REAL,
            conflicts TEXT NOT NULL DEFAULT '[]',
            agent TEXT,
            base_sha TEXT,
            PRIMARY KEY (task, number)
        )"""
    )
    conn.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            task TEXT,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            data TEXT
        )"""
    )
    conn.execute("CREATE TABLE controller (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("CREATE INDEX events_task ON events(task)")
    conn.execute("CREATE INDEX events_kind ON events(kind)")
    conn.execute("CREATE INDEX attempts_task ON attempts(task)")


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Remote runners (Ray) identify an attempt by a handle, not a pid."""
    conn.execute("ALTER TABLE attempts ADD COLUMN handle TEXT")


def _migrate_v3(conn: sqlite3.Connection) -> None:
    """What an attempt cost (tokens, USD, turns, as its agent reported them) and the port
    the planner handed it (`ports`)."""
    for column in (
        "input_tokens INTEGER",
        "output_tokens INTEGER",
        "cache_read_tokens INTEGER",
        "cache_write_tokens INTEGER",
        "cost_usd REAL",
        "turns INTEGER",
        "port INTEGER",
    ):
        conn.execute(f"ALTER TABLE attempts ADD COLUMN {column}")


def _migrate_v4(conn: sqlite3.Connection) -> None:
    """`orchestrator spawn-parallel` asks for tasks to start first: a fact per task, kept
    until the task starts (or leaves the spec)."""
    conn.execute(
        """CREATE TABLE requests (
            task TEXT PRIMARY KEY,
            requested_at REAL NOT NULL
        )"""
    )


def _migrate_v5(conn: sqlite3.Connection) -> None:
    """A process's identity survives wall-clock steps: its start in clock ticks since boot,
    with the boot id (`state.identity`), next to psutil's create time."""
    conn.execute("ALTER TABLE attempts ADD COLUMN start_id TEXT")


def _migrate_v6(conn: sqlite3.Connection) -> None:
    """Early conflict checks: a task branch merged in memory onto the integration tip."""
    conn.execute(
        """CREATE TABLE conflict_checks (
            task TEXT PRIMARY KEY,
            branch_sha TEXT NOT NULL,
            base_sha TEXT NOT NULL,
            checked_at REAL NOT NULL,
            conflicts TEXT NOT NULL DEFAULT '[]'
        )"""
    )


def _migrate_v7(conn: sqlite3.Connection) -> None:
    """A person's orders about a task (`retry`, `reset`, `stop --task`): facts, appended,
    never edited; the latest per task is in force."""
    conn.execute(
        """CREATE TABLE interventions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task TEXT NOT NULL,
            kind TEXT NOT NULL,
            after INTEGER NOT NULL,
            at REAL NOT NULL,
            fresh INTEGER NOT NULL DEFAULT 0
        )"""
    )
    conn.execute("CREATE INDEX interventions_task ON interventions(task)")


def _migrate_v8(conn: sqlite3.Connection) -> None:
    """The fleet's rate limiter per provider (`model.ratelimit.LimiterState`), so that a
    restarted controller keeps backing off where the last one was."""
    conn.execute(
        """CREATE TABLE rate_limits (
            provider TEXT PRIMARY KEY,
            lowered_to INTEGER,
            resume_at REAL NOT NULL DEFAULT 0,
            changed_at REAL NOT NULL DEFAULT 0,
            strikes INTEGER NOT NULL DEFAULT 0
        )"""
    )


# Append only: MIGRATIONS[i] upgrades version i to i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_v1,
    _migrate_v2,
    _migrate_v3,
    _migrate_v4,
    _migrate_v5,
    _migrate_v6,
    _migrate_v7,
    _migrate_v8,
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0
