"""What people asked the controller for, as facts in the store: start requests
(`spawn-parallel`, table `requests`) and orders about tasks (`retry`, `reset`,
`stop --task`, table `interventions`). The store's methods of the same names call these."""

from __future__ import annotations

import sqlite3

from controller.model.observed import TaskOrders
from controller.state.rows import ORDERS_QUERY, row_to_orders


def add_request(conn: sqlite3.Connection, task: str, now: float) -> bool:
    """Ask for `task` to start first; False when it was asked for already (the first
    request keeps its place)."""
    cur = conn.execute(
        "INSERT INTO requests(task, requested_at) VALUES (?, ?) ON CONFLICT(task) DO NOTHING",
        (task, now),
    )
    return cur.rowcount > 0


def requests(conn: sqlite3.Connection) -> dict[str, float]:
    """task -> when it was requested, oldest first."""
    rows = conn.execute("SELECT task, requested_at FROM requests ORDER BY requested_at, rowid")
    return {r[0]: r[1] for r in rows.fetchall()}


def clear_request(conn: sqlite3.Connection, task: str) -> bool:
    """Forget the request for `task` (it started, or left the spec); True if there was one."""
    return conn.execute("DELETE FROM requests WHERE task = ?", (task,)).rowcount > 0


def add_intervention(
    conn: sqlite3.Connection, task: str, kind: str, after: int, now: float, *, fresh: bool
) -> None:
    """Record an order about `task` given when its last attempt was number `after`."""
    conn.execute(
        "INSERT INTO interventions(task, kind, after, at, fresh) VALUES (?, ?, ?, ?, ?)",
        (task, kind, after, now, int(fresh)),
    )


def orders(conn: sqlite3.Connection) -> dict[str, TaskOrders]:
    """task -> the orders in force: the latest, and the attempt numbers up to which the
    retries and resets given so far stop counting (or forget) its attempts."""
    return dict(row_to_orders(r) for r in conn.execute(ORDERS_QUERY).fetchall())
