"""The `conflict_checks` table (schema v6): the controller's latest early conflict check of
each task branch, one row per task, replaced by the next check (`core.conflicts` says which
branches are checked when; `observe.conflicts` runs the checks). The store's methods of the
same names call these."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from controller.model.observed import ConflictCheck


def save(conn: sqlite3.Connection, checks: Iterable[ConflictCheck]) -> None:
    rows = [
        (c.task, c.branch_sha, c.base_sha, c.checked_at, json.dumps(list(c.conflicts)))
        for c in checks
    ]
    if rows:
        conn.executemany(
            "INSERT INTO conflict_checks(task, branch_sha, base_sha, checked_at, conflicts) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(task) DO UPDATE SET "
            "branch_sha = excluded.branch_sha, base_sha = excluded.base_sha, "
            "checked_at = excluded.checked_at, conflicts = excluded.conflicts",
            rows,
        )


def load(conn: sqlite3.Connection) -> dict[str, ConflictCheck]:
    out: dict[str, ConflictCheck] = {}
    sql = "SELECT task, branch_sha, base_sha, checked_at, conflicts FROM conflict_checks"
    for task, branch, base, at, raw in conn.execute(sql):
        try:
            files = tuple(str(f) for f in json.loads(raw))
        except (ValueError, TypeError):
            files = ()
        out[task] = ConflictCheck(task, branch, base, at, files)
    return out
